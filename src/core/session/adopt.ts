/**
 * Adopt: applies a sampled run's net change to the user's workspace it was sampled from. The net
 * change runs from the snapshot the run's working copy was made from (in the origin workspace's
 * shadow store) to the run's last snapshot (in the working copy's store). Preview first, then
 * apply: only files the run changed are looked at, only those that differ are written, the
 * user's own edits to them are overwritten only when confirmed, and nothing is written through a
 * symbolic link, outside the workspace or into a `.git`.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FileChange, RunAdoptedEvent, RunStartedEvent, RunStatus } from '../dataset/events';
import { DatasetError, DatasetStore } from '../dataset/store';
import { runSnapshotRef, shadowStoreDir } from '../grounding/shadowStore';
import { blobId, compareListings, eventPath, keyOfChange, MODE_EXECUTABLE, MODE_SYMLINK, pathBytes, pathKey, SnapshotReader, type TreeItem, type TreeListing } from '../grounding/snapshotTree';
import { isInside } from '../paths';
import { currentPath } from './branches';
import { ConfigError } from './runSession';
import { claimWorkspace } from './workspaceClaim';

/** Why a run cannot be adopted (or previewed); the CLI prints the message. */
export class AdoptError extends ConfigError {}

/** The user changed files the run changed too; adopting would overwrite them. */
export class AdoptConflictError extends AdoptError {
  constructor(
    readonly runId: string,
    readonly files: string[],
  ) {
    super(
      `The workspace has changes of its own to file(s) run ${runId} changed too: ${files.join(', ')}. Nothing was written. ` +
        'Keep your changes somewhere else first, or adopt with --force to overwrite them.',
    );
  }
}

export interface BlockedPath {
  path: string;
  reason: string;
}

export interface AdoptPreview {
  runId: string;
  taskId?: string;
  /** How the run stands: only a run that has ended can be adopted. */
  status: RunStatus;
  /** The user's workspace the run was sampled from: where adopting writes. */
  workspace: string;
  /** The snapshot of `workspace` the run's working copy was made from (a commit of originStore). */
  base: string;
  /** The run's last snapshot (a commit of runStore). */
  final: string;
  originStore: string;
  runStore: string;
  /** The run's net change, base to final. */
  files: FileChange[];
  /** Files the run changed whose content or mode in the workspace now differs from both base and the run's version. */
  conflicts: string[];
  /** Files already as the run left them; adopting leaves them alone. */
  upToDate: string[];
  /** Files that cannot be written whatever the user confirms (a symbolic link or folder in the way, a path into .git). */
  blocked: BlockedPath[];
  /** When the run was adopted before, if it was. */
  adoptedAt?: string;
}

export interface AdoptOptions {
  /** Overwrite the user's own changes to files the run changed (the conflicts). */
  overwrite?: boolean;
}

export interface AdoptResult {
  preview: AdoptPreview;
  /** The event recorded; undefined when the run had been adopted before and nothing differed. */
  event?: RunAdoptedEvent;
  /** The files written or removed. */
  written: FileChange[];
  /** Conflicting files that were overwritten. */
  overwritten: string[];
}

/** What a path holds in the workspace now. */
type DiskState =
  | { kind: 'absent' }
  | { kind: 'entry'; mode: string; id: string; isFile: boolean }
  | { kind: 'folder' }
  | { kind: 'other' }
  /** A folder on the way is a symbolic link or a file. */
  | { kind: 'in-the-way'; at: string; what: 'link' | 'file' };

/**
 * Inside, paths are listing keys (snapshotTree's pathKey: the text, a part that is not UTF-8 kept
 * as its bytes), so such a name is read and written under its own bytes; what the preview and
 * the event show is the events' form (its path text, or git's quoted form and pathBase64).
 */
interface Plan {
  preview: AdoptPreview;
  /** The realpath of the workspace. */
  root: string;
  finalListing: TreeListing;
  runReader: SnapshotReader;
  states: Map<string, DiskState>;
  /** Paths that differ from the run's version: what adopting writes or removes. */
  pending: string[];
  /** The conflicts, by key. */
  conflicts: string[];
  store: DatasetStore;
}

/** A path, by its key, as a message shows it. */
const shown = (key: string) => eventPath(key).path;

/** A workspace-relative path, by its key, as the bytes of the path on disk. */
const onDisk = (root: string, relative: string): Buffer => (relative === '' || relative === '.' ? Buffer.from(root) : Buffer.concat([Buffer.from(root + path.sep), pathBytes(relative)]));

const ENDED: ReadonlySet<RunStatus> = new Set(['finished', 'max_steps', 'budget', 'stopped', 'failed']);
/** Windows has no exec bit: a file's mode there says nothing about it. */
const EXEC_BIT_KNOWN = process.platform !== 'win32';

function sameItem(state: DiskState, item: TreeItem | undefined): boolean {
  if (!item) return state.kind === 'absent';
  if (state.kind !== 'entry' || state.id !== item.id) return false;
  if (state.mode === item.mode) return true;
  return !EXEC_BIT_KNOWN && state.mode !== MODE_SYMLINK && item.mode !== MODE_SYMLINK;
}

/** Why a path from a snapshot must not be written, or undefined when it may. */
function unsafePath(relative: string, datasetRelative: string | undefined): string | undefined {
  const parts = relative.split('/');
  if (!relative || relative.startsWith('/') || parts.some((part) => part === '' || part === '.' || part === '..')) return 'not a plain relative path';
  if (process.platform === 'win32' && /[\\:]/.test(relative)) return 'not a plain relative path on this system';
  if (parts.some((part) => part.toLowerCase() === '.git')) return 'inside a .git folder, which adopting never touches';
  if (datasetRelative !== undefined && (relative === datasetRelative || relative.startsWith(`${datasetRelative}/`))) return 'inside the dataset folder';
  return undefined;
}

/** True when the listing holds files below the path: it is a folder there. */
function hasChildren(listing: TreeListing, relative: string): boolean {
  const prefix = `${relative}/`;
  for (const file of listing.keys()) if (file.startsWith(prefix)) return true;
  return false;
}

/** What a workspace-relative path holds, without following any symbolic link. */
async function readState(root: string, relative: string): Promise<DiskState> {
  const parts = relative.split('/');
  for (let i = 1; i < parts.length; i++) {
    const stat = await fs.lstat(onDisk(root, parts.slice(0, i).join('/'))).catch(() => undefined);
    if (!stat) return { kind: 'absent' };
    if (stat.isSymbolicLink()) return { kind: 'in-the-way', at: parts.slice(0, i).join('/'), what: 'link' };
    if (!stat.isDirectory()) return { kind: 'in-the-way', at: parts.slice(0, i).join('/'), what: 'file' };
  }
  const full = onDisk(root, relative);
  const stat = await fs.lstat(full).catch(() => undefined);
  if (!stat) return { kind: 'absent' };
  if (stat.isSymbolicLink()) return { kind: 'entry', mode: MODE_SYMLINK, id: blobId(await fs.readlink(full, { encoding: 'buffer' })), isFile: false };
  if (stat.isFile()) return { kind: 'entry', mode: stat.mode & 0o100 ? MODE_EXECUTABLE : '100644', id: blobId(await fs.readFile(full)), isFile: true };
  if (stat.isDirectory()) return { kind: 'folder' };
  return { kind: 'other' };
}

/** Removes the folders above a removed path that it left empty, up to the workspace. */
async function removeEmptyParents(root: string, relative: string): Promise<void> {
  for (let dir = path.posix.dirname(relative); dir !== '.'; dir = path.posix.dirname(dir)) {
    const full = onDisk(root, dir);
    const entries = await fs.readdir(full).catch(() => undefined);
    if (!entries || entries.length) return;
    await fs.rmdir(full).catch(() => undefined);
  }
}

/** The workspace-relative paths of everything but folders below a folder (symbolic links not followed). */
async function filesBelow(root: string, relative: string): Promise<string[]> {
  const found: string[] = [];
  const entries = await fs.readdir(onDisk(root, relative), { withFileTypes: true, encoding: 'buffer' }).catch(() => []);
  for (const entry of entries) {
    const child = `${relative}/${pathKey(entry.name)}`;
    if (entry.isDirectory()) found.push(...(await filesBelow(root, child)));
    else found.push(child);
  }
  return found;
}

async function inspect(datasetDir: string, runId: string): Promise<Plan> {
  const store = new DatasetStore(datasetDir);
  const manifest = await store.readManifest(runId);
  const { events } = await store.readEvents(runId);
  const started = events.find((event): event is RunStartedEvent => event.type === 'run_started');
  if (!started) throw new AdoptError(`Run ${runId} has no start recorded; there is nothing to adopt.`);
  if (!started.origin) {
    throw new AdoptError(`Run ${runId} is not a sampled run (it worked in ${started.workspace} itself, not in a copy of another workspace); there is nothing to adopt.`);
  }
  const datasetRoot = await fs.realpath(datasetDir);
  const originStore = shadowStoreDir(datasetRoot, started.origin.workspace);
  const runStore = shadowStoreDir(datasetRoot, started.workspace);
  const originReader = new SnapshotReader(originStore);
  const runReader = new SnapshotReader(runStore);
  const base = await originReader.resolve(started.origin.snapshot);
  if (!base) {
    throw new AdoptError(`The snapshot run ${runId} was sampled from (${started.origin.snapshot.slice(0, 12)}) is missing from ${originStore}; the run cannot be adopted.`);
  }
  const final = (await runReader.resolve(runSnapshotRef(runId))) ?? (await runReader.resolve(currentPath(events).lastSnapshot ?? ''));
  if (!final) throw new AdoptError(`Run ${runId}'s snapshots are missing from ${runStore}; the run cannot be adopted.`);

  let root: string;
  try {
    root = await fs.realpath(started.origin.workspace);
    if (!(await fs.stat(root)).isDirectory()) throw new Error('not a folder');
  } catch {
    throw new AdoptError(`The workspace run ${runId} was sampled from, ${started.origin.workspace}, is not there any more.`);
  }

  const [baseListing, finalListing] = await Promise.all([originReader.list(base), runReader.list(final)]);
  const counts = await new SnapshotReader(runStore, [originStore]).lineCounts(base, final);
  const files = compareListings(baseListing, finalListing).map((change) => ({ ...change, ...counts.get(keyOfChange(change)) }));
  const keys = files.map(keyOfChange);

  const datasetRelative = isInside(datasetRoot, root) && datasetRoot !== root ? path.relative(root, datasetRoot).split(path.sep).join('/') : undefined;
  const blocked: BlockedPath[] = [];
  const states = new Map<string, DiskState>();
  for (const key of keys) {
    const why = unsafePath(key, datasetRelative);
    if (why) blocked.push({ path: shown(key), reason: why });
    else states.set(key, await readState(root, key));
  }
  // Paths the change removes: a link, file or folder there is no obstacle, it goes first.
  const removed = new Set(keys.filter((key) => !finalListing.has(key)));
  const conflicts: string[] = [];
  const upToDate: string[] = [];
  const pending: string[] = [];
  for (const key of keys) {
    let state = states.get(key);
    if (!state) continue;
    const target = finalListing.get(key);
    if (state.kind === 'in-the-way') {
      if (!removed.has(state.at) || !states.has(state.at)) {
        blocked.push({
          path: shown(key),
          reason: state.what === 'link' ? `${shown(state.at)} is a symbolic link in the workspace; nothing is written through it` : `${shown(state.at)} is a file in the workspace, not a folder`,
        });
        continue;
      }
      state = { kind: 'absent' };
    }
    if (state.kind === 'folder' && !target && hasChildren(finalListing, key)) {
      upToDate.push(key); // the run replaced a file or link by a folder, and it is one already
      continue;
    }
    if (state.kind === 'folder') {
      // The run replaced a folder by a file: fine when the folder holds only files the run removes.
      const below = target ? await filesBelow(root, key) : undefined;
      if (!below || below.some((file) => !removed.has(file))) {
        blocked.push({ path: shown(key), reason: `${shown(key)} is a folder in the workspace${target ? ' holding files the run did not remove' : ''}` });
        continue;
      }
      state = { kind: 'absent' };
    }
    if (state.kind === 'other') {
      blocked.push({ path: shown(key), reason: `${shown(key)} is neither a file, a folder nor a symbolic link` });
      continue;
    }
    if (sameItem(state, target)) {
      upToDate.push(key);
      continue;
    }
    pending.push(key);
    if (!sameItem(state, baseListing.get(key))) conflicts.push(key);
  }

  const preview: AdoptPreview = {
    runId,
    ...(started.taskId ? { taskId: started.taskId } : {}),
    status: manifest.status,
    workspace: started.origin.workspace,
    base,
    final,
    originStore,
    runStore,
    files,
    conflicts: conflicts.map(shown),
    upToDate: upToDate.map(shown),
    blocked,
    ...(manifest.adoptedAt ? { adoptedAt: manifest.adoptedAt } : {}),
  };
  return { preview, root, finalListing, runReader, states, pending, conflicts, store };
}

/** What adopting the run would write, and what stands in its way; changes nothing. */
export async function previewAdopt(datasetDir: string, runId: string): Promise<AdoptPreview> {
  return (await inspect(datasetDir, runId)).preview;
}

/** Why adopting a previewed run would be refused, or undefined when it would go through. */
export function adoptRefusal(preview: AdoptPreview, options: AdoptOptions = {}): AdoptError | undefined {
  if (!ENDED.has(preview.status)) {
    return new AdoptError(`Run ${preview.runId} is ${preview.status}; only a run that has ended can be adopted. Let it finish or stop it first.`);
  }
  if (preview.blocked.length) {
    return new AdoptError(`Run ${preview.runId} cannot be adopted: ${preview.blocked.map((entry) => `${entry.path} (${entry.reason})`).join('; ')}. Nothing was written.`);
  }
  if (preview.conflicts.length && !options.overwrite) return new AdoptConflictError(preview.runId, preview.conflicts);
  return undefined;
}

/**
 * Makes sure a workspace-relative folder exists as a real folder: every part of it is created
 * or found as a folder, never as a symbolic link (which could lead out of the workspace).
 */
async function realFolder(root: string, relative: string): Promise<Buffer> {
  const parts = relative === '.' ? [] : relative.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const at = parts.slice(0, i).join('/');
    const dir = onDisk(root, at);
    let stat = await fs.lstat(dir).catch(() => undefined);
    if (!stat) {
      await fs.mkdir(dir).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      stat = await fs.lstat(dir);
    }
    if (!stat.isDirectory()) throw new AdoptError(`${shown(at)} is ${stat.isSymbolicLink() ? 'a symbolic link' : 'a file'} now, not a folder; adopting stopped there.`);
  }
  return onDisk(root, relative);
}

/** Permission bits for a file of git mode `mode`, keeping the other bits of the file it replaces. */
function permissions(mode: string, previous: number | undefined): number {
  const bits = previous === undefined ? (mode === MODE_EXECUTABLE ? 0o755 : 0o644) : previous & 0o777;
  return mode === MODE_EXECUTABLE ? bits | ((bits & 0o444) >> 2) : bits & ~0o111;
}

async function write(plan: Plan, relative: string, item: TreeItem): Promise<void> {
  const parent = await realFolder(plan.root, path.posix.dirname(relative));
  const name = pathBytes(path.posix.basename(relative));
  const full = Buffer.concat([parent, Buffer.from(path.sep), name]);
  const stat = await fs.lstat(full).catch(() => undefined);
  if (stat?.isDirectory()) {
    if ((await filesBelow(plan.root, relative)).length) throw new AdoptError(`${shown(relative)} is a folder holding files now; adopting stopped there.`);
    await fs.rm(full, { recursive: true });
  }
  const state = plan.states.get(relative);
  if (item.mode !== MODE_SYMLINK && stat?.isFile() && state?.kind === 'entry' && state.isFile && state.id === item.id) {
    await fs.chmod(full, permissions(item.mode, stat.mode)); // only the exec bit differs
    return;
  }
  const content = await plan.runReader.read(item.id);
  const temporary = Buffer.concat([parent, Buffer.from(`${path.sep}.`), name, Buffer.from(`.apollo-adopt-${randomBytes(4).toString('hex')}`)]);
  try {
    if (item.mode === MODE_SYMLINK) {
      await fs.symlink(content, temporary);
    } else {
      await fs.writeFile(temporary, content, { flag: 'wx', mode: permissions(item.mode, undefined) });
      if (stat?.isFile()) await fs.chmod(temporary, permissions(item.mode, stat.mode));
    }
    // A rename replaces what is there (a file or a link) without following it.
    await fs.rename(temporary, full);
  } catch (error) {
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * Applies the run's net change to its origin workspace and records it (a `run_adopted` event and
 * the manifest's adoptedAt). Refused, with nothing written, when the run is not a sampled run or
 * has not ended, its snapshots are missing, a path cannot be written safely, or the user changed
 * files the run changed too and `overwrite` is not set.
 */
export async function adoptRun(datasetDir: string, runId: string, options: AdoptOptions = {}): Promise<AdoptResult> {
  const plan = await inspect(datasetDir, runId);
  const { preview } = plan;
  const refusal = adoptRefusal(preview, options);
  if (refusal) throw refusal;
  const byKey = new Map(preview.files.map((change) => [keyOfChange(change), change]));
  const written = plan.pending.map((file) => byKey.get(file)!);
  const overwritten = plan.conflicts.filter((file) => plan.pending.includes(file)).map(shown);
  if (!written.length && preview.adoptedAt) return { preview, written, overwritten };
  // No run may be changing the workspace while the run's changes are written into it.
  const claim = await claimWorkspace(preview.workspace, runId, 'adopt');
  try {
    return await writeChanges(plan, runId, written, overwritten);
  } finally {
    await claim.release();
  }
}

async function writeChanges(plan: Plan, runId: string, written: FileChange[], overwritten: string[]): Promise<AdoptResult> {
  const { preview } = plan;
  // Removals first, deepest first, so a link or file the run replaced by a folder is gone before the folder is made.
  const removals = plan.pending.filter((file) => !plan.finalListing.has(file)).sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? 1 : -1));
  for (const relative of removals) {
    const state = await readState(plan.root, relative);
    if (state.kind === 'folder' || state.kind === 'other') throw new AdoptError(`${shown(relative)} is no longer a file; adopting stopped there.`);
    // Absent, or below a link or file the run replaces (counted as absent): nothing to remove, never through a link.
    if (state.kind !== 'entry') continue;
    const full = onDisk(plan.root, relative);
    await fs.unlink(full);
    await removeEmptyParents(plan.root, relative);
  }
  for (const relative of plan.pending.filter((file) => plan.finalListing.has(file)).sort()) {
    await write(plan, relative, plan.finalListing.get(relative)!);
  }

  const mismatched: string[] = [];
  for (const relative of plan.pending) {
    const state = await readState(plan.root, relative);
    const target = plan.finalListing.get(relative);
    const replacedByFolder = !target && state.kind === 'folder' && hasChildren(plan.finalListing, relative);
    if (!replacedByFolder && !sameItem(state, target)) mismatched.push(relative);
  }
  if (mismatched.length) {
    throw new AdoptError(`After adopting run ${runId}, ${mismatched.map(shown).join(', ')} do(es) not match the run's version (changed meanwhile?). Check them, then adopt again.`);
  }

  const event: RunAdoptedEvent = {
    type: 'run_adopted',
    time: new Date().toISOString(),
    workspace: preview.workspace,
    snapshot: preview.final,
    files: written,
    overwritten,
  };
  try {
    await plan.store.appendEvent(runId, event);
    const writer = await plan.store.openRun(runId);
    await writer.updateManifest({ adoptedAt: event.time });
  } catch (error) {
    throw new DatasetError(`Run ${runId}'s changes were written to ${preview.workspace}, but recording that failed: ${(error as Error).message}`);
  }
  return { preview: { ...preview, adoptedAt: event.time }, event, written, overwritten };
}
