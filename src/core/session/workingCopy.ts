/**
 * Isolated working copies: the folders the runs of one sampling work in, one each, outside the
 * user's workspace. All of them start from one snapshot of the workspace (uncommitted changes
 * included; what snapshots leave out — .gitignored files, dependency folders, large files — is
 * left out of the copies too), taken in the workspace's own shadow store and pinned there under
 * `refs/apollo/tasks/<taskId>`.
 *
 * Layout: `<runsDir>/<taskId>/<index>`. Nothing is written to the user's workspace or repository.
 */
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DatasetStore } from '../dataset/store';
import { isValidRunId } from '../dataset/ids';
import { lendObjects } from '../grounding/borrowedObjects';
import { type Driver, driverOverrides, hardenedGit } from '../grounding/gitEnvironment';
import { datasetExclusions, ShadowStore, shadowStoreDir, TASK_REF_PREFIX } from '../grounding/shadowStore';
import { isInside } from '../paths';
import { ConfigError, type GroundingOptions, resolveGrounding } from './runSession';
import { openSetting } from './errors';
import { baseDir, mountCopy, unmountCopies } from './overlayCopy';

/** The snapshot of the user's workspace that a sampling's working copies are made from. */
export interface OriginSnapshot {
  /** The user's workspace (real path). */
  workspace: string;
  datasetRoot: string;
  /** The workspace's own shadow store, holding the snapshot. */
  storeDir: string;
  snapshot: string;
  taskId: string;
}

/** A working copy ready for its run. */
export interface PreparedCopy {
  dir: string;
  /** The copy has a `.git` of its own (the workspace is a git repository with commits). */
  git: boolean;
  /** The copy's own shadow store, which borrows the origin store's objects. */
  storeDir: string;
  /** The copy's files were reflinked from another copy (false: made from the store, or copied plainly). */
  reflinked: boolean;
  /** The copy is an overlay mount over the sampling's base (overlayCopy.ts). */
  overlay: boolean;
}

// Every git call here runs hardened (gitEnvironment.ts); those that touch a work tree or an index
// also have the drivers that repository's config defines emptied.
const git = (cwd: string, extra: Record<string, string> = {}, drivers: Driver[] = []) => hardenedGit({ baseDir: cwd, trimmed: false }, extra, drivers);

/** The folder of one working copy; numbered from 1, as the runs are named ("run 2 of 3" works in `2`). */
export function workingCopyDir(runsDir: string, taskId: string, index: number): string {
  return path.join(path.resolve(runsDir), taskId, String(index + 1));
}

/** The real path of a folder that may not exist yet: its nearest existing ancestor's, joined with the rest. */
async function realPathOfNearest(target: string): Promise<string> {
  const missing: string[] = [];
  let current = path.resolve(target);
  for (;;) {
    try {
      return path.join(await fs.realpath(current), ...missing.reverse());
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return path.resolve(target);
      missing.push(path.basename(current));
      current = parent;
    }
  }
}

/** Refuses a runs folder inside the workspace or the dataset folder (or holding either). */
export async function checkRunsDir(runsDir: string, workspace: string, datasetDir: string): Promise<void> {
  const runs = await realPathOfNearest(runsDir);
  const realWorkspace = await realPathOfNearest(workspace);
  const dataset = await realPathOfNearest(datasetDir);
  if (isInside(runs, realWorkspace)) {
    throw new ConfigError(
      `The runs folder ${runsDir} is inside the workspace ${workspace}: working copies must live outside it. Pick another folder (CLI: --runs-dir).`,
      openSetting('apollo.runsPath'),
    );
  }
  if (isInside(runs, dataset)) {
    throw new ConfigError(
      `The runs folder ${runsDir} is inside the dataset folder ${datasetDir}: the agent may never work there. Pick another folder (CLI: --runs-dir).`,
      openSetting('apollo.runsPath'),
    );
  }
  if (isInside(realWorkspace, runs) || isInside(dataset, runs)) {
    throw new ConfigError(`The runs folder ${runsDir} holds the workspace or the dataset folder; pick a folder of its own (CLI: --runs-dir).`, openSetting('apollo.runsPath'));
  }
  const stat = await fs.stat(runs).catch(() => undefined);
  if (stat && !stat.isDirectory()) throw new ConfigError(`The runs folder ${runsDir} is a file, not a folder.`);
}

/**
 * Snapshots the user's workspace into its shadow store (the one `apollo run` on it uses) and pins
 * the snapshot under `refs/apollo/tasks/<taskId>`, so `apollo gc` keeps it while runs of the task
 * remain.
 */
export async function snapshotOrigin(options: { workspace: string; datasetDir: string; taskId: string; grounding?: GroundingOptions }): Promise<OriginSnapshot> {
  const workspace = await fs.realpath(options.workspace);
  const store = new DatasetStore(path.resolve(workspace, options.datasetDir));
  await store.init();
  const datasetRoot = await fs.realpath(store.root);
  const storeDir = shadowStoreDir(datasetRoot, workspace);
  // Its snapshots hang off a ref of their own with no parent; the ref is renamed to the task's below.
  const scratchRun = `task-${options.taskId}`;
  const shadow = new ShadowStore({ workspace, storeDir, exclude: datasetExclusions(workspace, datasetRoot), ...resolveGrounding(options.grounding), runId: scratchRun });
  await shadow.init();
  const snapshot = await shadow.snapshot();
  await shadow.settled();
  const raw = (args: string[]) => git(storeDir).raw([`--git-dir=${storeDir}`, ...args]);
  await raw(['update-ref', `${TASK_REF_PREFIX}${options.taskId}`, snapshot]);
  await raw(['update-ref', '-d', `refs/apollo/runs/${scratchRun}`]);
  return { workspace, datasetRoot, storeDir, snapshot, taskId: options.taskId };
}

/**
 * Writes a snapshot's files into an empty (or `.git`-only) folder: `read-tree` into a temporary
 * index of the store, then `checkout-index`. The user's repository is not involved.
 */
export async function materializeSnapshot(storeDir: string, snapshot: string, dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.mkdir(path.join(storeDir, 'apollo-index'), { recursive: true });
  const index = path.join(storeDir, 'apollo-index', `checkout-${randomBytes(6).toString('hex')}`);
  const store = git(dir, { GIT_INDEX_FILE: index }, await driverOverrides(storeDir, {}, [`--git-dir=${storeDir}`]));
  try {
    await store.raw([`--git-dir=${storeDir}`, 'read-tree', snapshot]);
    // Parallel checkout (one worker a core) writes the files of a large tree markedly faster.
    const config = ['-c', 'core.autocrlf=false', '-c', 'checkout.workers=0'];
    await store.raw([`--git-dir=${storeDir}`, `--work-tree=${dir}`, ...config, 'checkout-index', '--all', '--force', `--prefix=${dir}${path.sep}`]);
  } finally {
    await fs.rm(index, { force: true });
  }
}

/**
 * Copies a working copy's files (not its `.git`) into another folder, reflinked where the file
 * system can (copy-on-write: Btrfs, XFS, APFS…), plainly copied elsewhere. Working files are never
 * hard-linked: an in-place write by the agent in one copy would change the file in every copy.
 */
export async function copyWorkingFiles(from: string, to: string): Promise<{ files: number; reflinked: boolean }> {
  const files: string[] = [];
  const walk = async (relative: string) => {
    await fs.mkdir(path.join(to, relative), { recursive: true });
    for (const entry of await fs.readdir(path.join(from, relative), { withFileTypes: true })) {
      if (!relative && entry.name === '.git') continue;
      const child = path.join(relative, entry.name);
      if (entry.isDirectory()) await walk(child);
      else if (entry.isSymbolicLink()) await fs.symlink(await fs.readlink(path.join(from, child)), path.join(to, child));
      else if (entry.isFile()) files.push(child);
    }
  };
  await walk('');
  if (!files.length) return { files: 0, reflinked: false };
  // The first file finds out whether reflinks work here; FICLONE falls back to a plain copy.
  let reflinked = true;
  await fs.copyFile(path.join(from, files[0]), path.join(to, files[0]), fsConstants.COPYFILE_FICLONE_FORCE).catch(() => {
    reflinked = false;
    return fs.copyFile(path.join(from, files[0]), path.join(to, files[0]), fsConstants.COPYFILE_FICLONE);
  });
  // Where reflinks do not work, a plain copy spares each file the attempt.
  const mode = reflinked ? fsConstants.COPYFILE_FICLONE : 0;
  let next = 1;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      await fs.copyFile(path.join(from, file), path.join(to, file), mode);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return { files: files.length, reflinked };
}

/**
 * Gives a working copy a `.git` of its own when the workspace is the top of a git repository with
 * commits: `git clone --local --no-checkout` (git hard-links the immutable objects), at the user's
 * HEAD, without the remote pointing back at the user's repository. Returns false (and writes
 * nothing) otherwise. Only reads the user's repository: nothing there changes.
 * Call it on the empty copy folder; `indexCopy` then makes the copy's index match HEAD.
 */
export async function cloneUserRepository(workspace: string, dir: string): Promise<boolean> {
  const user = git(workspace);
  const top = (await user.raw(['rev-parse', '--show-toplevel']).catch(() => '')).trim();
  if (!top || (await fs.realpath(top).catch(() => top)) !== (await fs.realpath(workspace))) return false;
  const head = (await user.raw(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']).catch(() => '')).trim();
  if (!head) return false;
  const branch = (await user.raw(['symbolic-ref', '--quiet', 'HEAD']).catch(() => '')).trim();
  const commonDir = path.resolve(workspace, (await user.raw(['rev-parse', '--git-common-dir'])).trim());

  await fs.mkdir(dir, { recursive: true });
  await git(dir).raw(['clone', '--local', '--no-checkout', '--quiet', '--', workspace, dir]);
  const copy = (args: string[]) => git(dir).raw([`--git-dir=${path.join(dir, '.git')}`, `--work-tree=${dir}`, ...args]);
  // The clone's HEAD follows the repository's main HEAD; the workspace may be a linked worktree.
  if (branch) {
    await copy(['update-ref', branch, head]);
    await copy(['symbolic-ref', 'HEAD', branch]);
  } else {
    await copy(['update-ref', '--no-deref', 'HEAD', head]);
  }
  // A push from the copy must not reach the user's repository.
  await copy(['remote', 'remove', 'origin']).catch(() => undefined);
  const exclude = await fs.readFile(path.join(commonDir, 'info', 'exclude')).catch(() => undefined);
  if (exclude) {
    await fs.mkdir(path.join(dir, '.git', 'info'), { recursive: true });
    await fs.writeFile(path.join(dir, '.git', 'info', 'exclude'), exclude);
  }
  return true;
}

/**
 * Makes a cloned copy's index match its HEAD, so the files that differ show as the user's
 * uncommitted changes. Tracked files that snapshots leave out (over the size limit, in a
 * dependency folder, .gitignored after being committed) are copied from the workspace as they
 * are there, so they do not show as deleted.
 */
export async function indexCopy(dir: string, workspace: string): Promise<void> {
  const gitDir = path.join(dir, '.git');
  const drivers = await driverOverrides(dir, {}, [`--git-dir=${gitDir}`]);
  const copy = (args: string[]) => git(dir, {}, drivers).raw([`--git-dir=${gitDir}`, `--work-tree=${dir}`, ...args]);
  await copy(['read-tree', 'HEAD']);
  const missing = (await copy(['ls-files', '--deleted', '-z'])).split('\0').filter(Boolean);
  const realWorkspace = await fs.realpath(workspace);
  for (const relative of missing) {
    const source = path.join(realWorkspace, relative);
    const stat = await fs.lstat(source).catch(() => undefined);
    // Gone from the workspace too: the user deleted it, and the copy shows that.
    if (!stat || !(stat.isFile() || stat.isSymbolicLink())) continue;
    if (!isInside(await fs.realpath(path.dirname(source)).catch(() => ''), realWorkspace)) continue;
    const target = path.join(dir, relative);
    await fs.mkdir(path.dirname(target), { recursive: true });
    if (stat.isSymbolicLink()) await fs.symlink(await fs.readlink(source), target);
    else await fs.copyFile(source, target, fsConstants.COPYFILE_FICLONE);
  }
  // Exits non-zero when files differ from HEAD: those are the user's changes.
  await copy(['update-index', '-q', '--refresh']).catch(() => undefined);
}

/**
 * The copy's own shadow store, made before its run starts, borrowing the origin store's objects:
 * its first snapshot finds every object there and writes none of its own.
 */
export async function createCopyStore(datasetRoot: string, dir: string, originStoreDir: string): Promise<string> {
  const storeDir = shadowStoreDir(datasetRoot, dir);
  await new ShadowStore({ workspace: dir, storeDir }).init();
  await lendObjects(storeDir, originStoreDir);
  return storeDir;
}

/** Refuses a working copy folder that exists and is not empty. */
async function checkEmpty(dir: string): Promise<void> {
  const exists = await fs.readdir(dir).then(
    (entries) => entries.length > 0,
    () => false,
  );
  if (exists) throw new ConfigError(`The working copy folder ${dir} already exists and is not empty.`);
}

/**
 * Writes a working copy's files at `dir`: its `.git` (when the workspace has one with commits) and
 * its files — copied from `pristine`, a copy no run has started in, when given, else from the
 * snapshot. Returns whether it has a `.git` and whether its files were reflinked.
 */
async function writeCopy(origin: OriginSnapshot, dir: string, pristine?: string): Promise<{ git: boolean; reflinked: boolean }> {
  await checkEmpty(dir);
  await fs.mkdir(dir, { recursive: true });
  const hasGit = await cloneUserRepository(origin.workspace, dir);
  let reflinked = false;
  if (pristine) reflinked = (await copyWorkingFiles(pristine, dir)).reflinked;
  else await materializeSnapshot(origin.storeDir, origin.snapshot, dir);
  if (hasGit) await indexCopy(dir, origin.workspace);
  return { git: hasGit, reflinked };
}

/**
 * Makes one working copy at `dir`: its files (see writeCopy) and its shadow store.
 */
export async function prepareWorkingCopy(origin: OriginSnapshot, dir: string, pristine?: string): Promise<PreparedCopy> {
  const { git: hasGit, reflinked } = await writeCopy(origin, dir, pristine);
  const storeDir = await createCopyStore(origin.datasetRoot, dir, origin.storeDir);
  return { dir: await fs.realpath(dir), git: hasGit, storeDir, reflinked, overlay: false };
}

/**
 * Makes the base of a sampling's overlay copies (overlayCopy.ts): the files a working copy gets,
 * written once, never run in.
 */
export async function prepareOverlayBase(origin: OriginSnapshot, copiesDir: string): Promise<string> {
  const base = baseDir(copiesDir);
  await writeCopy(origin, base);
  return base;
}

/**
 * Makes one working copy at `dir` as an overlay mount over the sampling's base (prepareOverlayBase
 * first), and its shadow store.
 */
export async function prepareOverlayCopy(origin: OriginSnapshot, dir: string): Promise<PreparedCopy> {
  await checkEmpty(dir);
  await mountCopy(dir);
  const storeDir = await createCopyStore(origin.datasetRoot, dir, origin.storeDir);
  const hasGit = await fs.stat(path.join(dir, '.git')).then(
    () => true,
    () => false,
  );
  return { dir: await fs.realpath(dir), git: hasGit, storeDir, reflinked: false, overlay: true };
}

/**
 * Removes every working copy of a task: `<runsDir>/<taskId>`. Refuses a task id that is not one,
 * and anything that is not inside the runs folder (a symlink leading out of it, say). Returns false
 * when there was nothing to remove. The runs' records and snapshots stay in the dataset.
 */
export async function removeWorkingCopies(runsDir: string, taskId: string): Promise<boolean> {
  if (!isValidRunId(taskId)) throw new ConfigError(`"${taskId}" is not a task id.`);
  const root = await fs.realpath(runsDir).catch(() => undefined);
  if (!root) return false;
  const dir = path.join(root, taskId);
  const stat = await fs.lstat(dir).catch(() => undefined);
  if (!stat) return false;
  const real = await fs.realpath(dir);
  if (stat.isSymbolicLink() || !stat.isDirectory() || real === root || !isInside(real, root)) {
    throw new ConfigError(`Refused: ${dir} is not a folder inside the runs folder ${root}.`);
  }
  // Overlay copies still mounted (by this process, or by root on the host) are unmounted first:
  // removing through a mount would only write whiteouts into its upper layer.
  const copies = (await fs.readdir(real)).filter((name) => /^\d+$/.test(name)).map((name) => path.join(real, name));
  await unmountCopies(copies).catch((error: Error) => {
    throw new ConfigError(`Could not unmount a working copy of task ${taskId}: ${error.message}`);
  });
  await fs.rm(real, { recursive: true, force: true });
  return true;
}
