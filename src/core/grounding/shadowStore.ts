/**
 * The shadow store: a git directory of Apollo's own, with its own index, that snapshots the
 * workspace before and after every action. The user's `.git` is never read or written; the
 * workspace does not even have to be a git repository.
 *
 * A step that edits, adds or deletes a few plain files is recorded without any git process:
 * its objects, the snapshot commit and the run's ref are written in-process (looseObjects.ts)
 * and its diff is worked out in-process (treeDiff.ts, lineDiff.ts), byte for byte as git would.
 * Everything else (new folders, symlinks, nested repositories, attributes, ignore checks of new
 * files, renames, packed objects) still goes through git.
 */
import { existsSync, lstatSync, promises as fs, readdirSync, readFileSync, realpathSync, Stats, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { simpleGit, SimpleGit } from 'simple-git';
import type { FileChange, FileChangeStatus, Grounding } from '../dataset/events';
import { folderBytes } from '../dataset/store';
import { isInside } from '../paths';
import { borrowersByLender, pinBorrowedObjects } from './borrowedObjects';
import { gitEnvironment } from './gitEnvironment';
import { GitShell } from './gitShell';
import { LooseObjects, objectId } from './looseObjects';
import { groundTrees, PatchSettings } from './treeDiff';
import type { ChangeFeed } from './watcher';
import { fileMode, ObjectAccess, patchTree, PathState, TreeEntry } from './treePatch';

const SNAPSHOT_REF = 'refs/apollo/snapshots';
/** Each run's snapshots hang off a ref of its own, so a deleted run's snapshots can be collected. */
const RUN_REF_PREFIX = 'refs/apollo/runs/';
/** The ref a run's snapshots hang off: it names the run's last snapshot. */
export const runSnapshotRef = (runId: string) => `${RUN_REF_PREFIX}${runId}`;
const DEFAULT_MAX_PATCH_BYTES = 256 * 1024;
const IDENTITY = { name: 'Apollo', email: 'apollo@localhost' };
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/** The dataset's subfolder that holds the shadow stores. */
export const SHADOW_FOLDER = 'shadow';

/** One store per workspace inside the dataset folder, so all runs of a workspace share objects. */
export function shadowStoreDir(datasetRoot: string, workspace: string): string {
  let real = path.resolve(workspace);
  try {
    real = realpathSync(real);
  } catch {
    // A workspace that does not exist yet still gets a stable key.
  }
  const key = createHash('sha1').update(real).digest('hex').slice(0, 16);
  return path.join(datasetRoot, SHADOW_FOLDER, `${key}.git`);
}

/** The dataset folder, workspace-relative, when it lies inside the workspace: never snapshotted. */
export function datasetExclusions(workspace: string, datasetRoot: string): string[] {
  return isInside(datasetRoot, workspace) ? [path.relative(workspace, datasetRoot)] : [];
}

function storeEnvironment(indexFile: string): Record<string, string> {
  return gitEnvironment({
    // The system's attributes file, like its config, has no say over what a snapshot holds.
    GIT_ATTR_NOSYSTEM: '1',
    GIT_INDEX_FILE: indexFile,
    GIT_AUTHOR_NAME: IDENTITY.name,
    GIT_AUTHOR_EMAIL: IDENTITY.email,
    GIT_COMMITTER_NAME: IDENTITY.name,
    GIT_COMMITTER_EMAIL: IDENTITY.email,
  });
}

/** Snapshots of one store are taken one at a time: git's index lock allows no more. */
const storeLocks = new Map<string, Promise<unknown>>();

function withStoreLock<T>(storeDir: string, work: () => Promise<T>): Promise<T> {
  const previous = storeLocks.get(storeDir) ?? Promise.resolve();
  const next = previous.then(work, work);
  storeLocks.set(storeDir, next.catch(() => undefined));
  return next;
}

function statusFromLetter(letter: string): FileChangeStatus {
  switch (letter[0]) {
    case 'A':
      return 'added';
    case 'D':
      return 'deleted';
    case 'R':
      return 'renamed';
    case 'T':
      return 'typechange';
    default:
      return 'modified';
  }
}

/** Folders and files left out of snapshots unless the user's settings say otherwise. */
export const DEFAULT_EXCLUDES = [
  'node_modules/',
  'bower_components/',
  '.venv/',
  'venv/',
  '__pycache__/',
  '*.pyc',
  '.mypy_cache/',
  '.pytest_cache/',
  '.ruff_cache/',
  '.tox/',
  '.gradle/',
  '.next/',
  '.nuxt/',
  '.turbo/',
  '.parcel-cache/',
  'target/',
];
/** Files larger than this are left out of snapshots (model checkpoints, datasets, core dumps). */
export const DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024;

export interface ShadowStoreOptions {
  workspace: string;
  storeDir: string;
  /** Workspace-relative folders always left out (the dataset folder). */
  exclude?: string[];
  /** Gitignore-style patterns left out, on top of the workspace's own .gitignore files. */
  excludePatterns?: string[];
  maxFileBytes?: number;
  /** Knows which paths changed between snapshots; without it every snapshot is a full stat pass. */
  changes?: ChangeFeed;
  /** The run whose snapshots these are; they are chained under its own ref. */
  runId?: string;
  /** False: every snapshot goes through the index (tests compare the two ways). */
  patch?: boolean;
}

/** A work tree snapshotted with its own index: the workspace, or a git repository nested in it. */
interface Unit {
  /** Relative to the workspace, '' for the workspace itself. */
  dir: string;
  git: SimpleGit;
  /** Nested repositories directly inside, relative to this unit, with their last tree. */
  nested: Map<string, string | undefined>;
  lastTree?: string;
  /** The unit's own tree without nested repositories. */
  baseTree?: string;
  /** The tree the unit's index holds (the last write-tree), and a commit of it for `git status`. */
  indexTree?: string;
  indexCommit?: { commit: string; tree: string };
  /** The last tree was patched without the index, which is behind it until the next full pass. */
  indexBehind?: boolean;
  /** Paths patched since the index was last brought up to date: status cannot see all of them. */
  drift: Set<string>;
  indexFile: string;
  /**
   * The index file as this store's last git call left it. Another store on the workspace (a
   * rewind's preview, a sampling's base snapshot, a second process) may write the index too:
   * what status then reports is measured from that store's state, not from this one's last tree.
   */
  indexStamp?: string;
}

/** What of git's configuration (the store's own and the user's global) bears on the work done in-process. */
interface GitSettings extends PatchSettings {
  /** core.abbrev: the shortest object name a patch's index line shows. */
  abbrev: number | 'auto';
  /** An attributes file outside the workspace could apply (the user's, the store's own): git hashes and diffs. */
  outsideAttributes: boolean;
  /** A setting changes git's diff in a way not reproduced in-process: git diffs. */
  diffThroughGit: boolean;
}

const DEFAULT_SETTINGS: GitSettings = { abbrev: 'auto', quotePath: true, indentHeuristic: true, suppressBlankEmpty: false, bigFileThreshold: 512 * 1024 * 1024, outsideAttributes: true, diffThroughGit: true };

function parseBoolean(value: string | undefined): boolean | undefined {
  if (value === undefined) return true; // a key without "=" is true
  if (/^(true|yes|on)$/i.test(value)) return true;
  if (/^(false|no|off|)$/i.test(value)) return false;
  return /^-?\d+$/.test(value) ? Number(value) !== 0 : undefined;
}

/** Reads `git config --list -z` output (the store's config, the user's global one and their includes). */
async function gitSettings(listing: string, storeDir: string, workspace: string): Promise<GitSettings> {
  const settings: GitSettings = { ...DEFAULT_SETTINGS, outsideAttributes: false, diffThroughGit: false };
  const home = process.env.HOME ?? '';
  const xdg = process.env.XDG_CONFIG_HOME;
  let attributesFile: string | undefined = xdg ? path.join(xdg, 'git', 'attributes') : home ? path.join(home, '.config', 'git', 'attributes') : undefined;
  for (const entry of splitNul(listing)) {
    const newline = entry.indexOf('\n');
    const key = (newline < 0 ? entry : entry.slice(0, newline)).toLowerCase();
    const value = newline < 0 ? undefined : entry.slice(newline + 1);
    const flag = () => {
      const parsed = parseBoolean(value);
      if (parsed === undefined) settings.diffThroughGit = true;
      return parsed ?? false;
    };
    switch (key) {
      case 'core.quotepath':
        settings.quotePath = flag();
        break;
      case 'diff.indentheuristic':
        settings.indentHeuristic = flag();
        break;
      case 'diff.suppressblankempty':
      case 'diff.suppress-blank-empty':
        settings.suppressBlankEmpty = flag();
        break;
      case 'core.abbrev':
        if (value !== undefined && /^auto$/i.test(value)) settings.abbrev = 'auto';
        else if (value !== undefined && parseBoolean(value) === false) settings.abbrev = 40;
        else if (value !== undefined && /^\d+$/.test(value) && Number(value) >= 4 && Number(value) <= 40) settings.abbrev = Number(value);
        else settings.diffThroughGit = true;
        break;
      case 'core.bigfilethreshold': {
        const match = /^(\d+)([kmg]?)$/i.exec(value ?? '');
        if (match) settings.bigFileThreshold = Number(match[1]) * 1024 ** ' kmg'.indexOf((match[2] || ' ').toLowerCase());
        else settings.diffThroughGit = true;
        break;
      }
      case 'core.attributesfile':
        if (value === undefined || value.startsWith('~') && !value.startsWith('~/')) settings.outsideAttributes = true;
        else attributesFile = value.startsWith('~/') ? path.join(home, value.slice(2)) : path.resolve(workspace, value);
        break;
    }
  }
  const exists = (file: string) => fs.access(file).then(() => true, () => false);
  if (attributesFile && (await exists(attributesFile))) settings.outsideAttributes = true;
  if (await exists(path.join(storeDir, 'info', 'attributes'))) settings.outsideAttributes = true;
  return settings;
}

/** Tells one write of an index file from another: git renames a new file into place each time. */
function indexStamp(file: string): string {
  const stat = statSync(file, { bigint: true, throwIfNoEntry: false });
  return stat ? `${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}` : 'none';
}

/** A file as it was looked at while git status ran: its stat (undefined: gone), and its content if read. */
interface LookedAt {
  stat: Stats | undefined;
  content?: Buffer;
  readAt?: number;
  /** The content and mode are the last tree's. */
  unchanged?: boolean;
}

/** What identifies a file's content without reading it, as git's index keeps it. */
interface StatKey {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  mode: number;
}

const statKey = (stat: Stats): StatKey => ({ size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino, mode: stat.mode });

const sameStat = (key: StatKey | undefined, stat: Stats) =>
  !!key && key.size === stat.size && key.mtimeMs === stat.mtimeMs && key.ctimeMs === stat.ctimeMs && key.ino === stat.ino && key.mode === stat.mode;

/**
 * Whether a file's stat can vouch for the content read at `readAt`: its last change must lie
 * further back than the file system's timestamp step, or a second write in the same step could
 * leave the same stat behind (git's "racily clean" entries). A second or three, for file systems
 * whose times have whole seconds.
 */
function settledBefore(stat: Stats, readAt: number): boolean {
  const changed = Math.max(stat.mtimeMs, stat.ctimeMs);
  const step = stat.mtimeMs % 1000 === 0 ? 3000 : 1000;
  return changed <= readAt && readAt - changed > step;
}

/** Contents of blobs written or read lately: the next step's diff starts from them. */
const RECENT_BLOB_BYTES = 16 * 1024 * 1024;

const PATHSPEC_BATCH = 1000;
/** Past this many files that differ from the index, a full pass brings the index up to date. */
const MAX_INDEX_DRIFT = 200;
const splitNul = (output: string) => output.split('\0').filter(Boolean);
const literal = (relative: string) => `:(literal)${relative}`;
const within = (child: string, parent: string) => child === parent || child.startsWith(`${parent}/`);
/** Adds the folders above a workspace-relative path (not '', the top). */
const addFoldersAbove = (folders: Set<string>, relative: string) => {
  for (let dir = path.posix.dirname(relative); dir !== '.'; dir = path.posix.dirname(dir)) folders.add(dir);
};

export class ShadowStore {
  readonly workspace: string;
  readonly storeDir: string;
  private readonly exclude: string[];
  private readonly excludePatterns: string[];
  private readonly maxFileBytes: number;
  private readonly changes: ChangeFeed | undefined;
  private readonly patchTrees: boolean;
  private readonly git: SimpleGit;
  /** Reads objects only; GIT_DIR points at the store because `git show` takes no --git-dir after it. */
  private readonly reader: SimpleGit;
  private lastSnapshot: { commit: string; tree: string } | undefined;
  private readonly ref: string;
  private pendingRef: Promise<unknown> = Promise.resolve();
  private readonly root: Unit;
  /** Listings of trees read before; a tree never changes, so a listing is good forever. */
  private readonly listings = new Map<string, TreeEntry[]>();
  private readonly objectAccess: ObjectAccess;
  private readonly units = new Map<string, Unit>();
  /** Files left out of the last snapshots for their size, workspace-relative. */
  readonly oversized = new Set<string>();
  /** How the workspace's snapshots were taken: tree patched, index updated for some paths, full pass. */
  readonly passes = { patched: 0, scoped: 0, full: 0 };
  /** How diffs were worked out: in-process, or by git. */
  readonly diffs = { inProcess: 0, git: 0 };
  /** Objects and refs written and read without a git process. */
  private readonly objects: LooseObjects;
  private settings: GitSettings = DEFAULT_SETTINGS;
  /** Trees of snapshot commits seen, so that a diff need not read the commits. */
  private readonly commitTrees = new Map<string, string>();
  private readonly recentBlobs = new Map<string, Buffer>();
  private recentBytes = 0;
  /** Untracked folders that hold only files over the size limit, with those files. */
  private readonly leftOutFolders = new Map<string, string[]>();
  /** Files whose content is in the last tree as the store hashed it, by their stat then. */
  private readonly hashedFiles = new Map<string, StatKey>();
  /**
   * The patch under way: the stats its changes were taken with, the files hashed so far, and new
   * files git status listed as untracked (so not ignored).
   */
  private hashing: { stats: Map<string, PathState>; hashed: Map<string, StatKey>; notIgnored: Set<string> } | undefined;
  /** What `lookAtDrift` found while the current full pass's git status ran. */
  private lookedAt: Map<string, LookedAt> | undefined;

  constructor(options: ShadowStoreOptions) {
    this.workspace = path.resolve(options.workspace);
    this.storeDir = path.resolve(options.storeDir);
    this.exclude = options.exclude ?? [];
    this.excludePatterns = options.excludePatterns ?? DEFAULT_EXCLUDES;
    this.maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.changes = options.changes;
    this.patchTrees = options.patch ?? true;
    this.ref = options.runId ? runSnapshotRef(options.runId) : SNAPSHOT_REF;
    this.git = this.gitWithIndex(path.join(this.storeDir, 'index'));
    // Reading objects needs no index, but git reads attributes from the index when it has no
    // work tree: an index file that never exists keeps a 100k-file index from being parsed.
    this.reader = simpleGit({ baseDir: this.workspace, trimmed: false }).env({
      ...storeEnvironment(path.join(this.storeDir, 'apollo-index', 'none')),
      GIT_DIR: this.storeDir,
    });
    this.root = { dir: '', git: this.git, nested: new Map(), drift: new Set(), indexFile: path.join(this.storeDir, 'index') };
    this.objects = new LooseObjects(this.storeDir);
    this.objectAccess = this.createObjectAccess();
  }

  private gitWithIndex(indexFile: string): SimpleGit {
    return simpleGit({ baseDir: this.workspace, maxConcurrentProcesses: 4, trimmed: false }).env(storeEnvironment(indexFile));
  }

  /** Runs git against the shadow store with a unit's folder as the work tree and its own index. */
  private async raw(args: string[], unit: Unit = this.root): Promise<string> {
    await this.objects.flush();
    return unit.git.raw(this.gitArguments(args, unit));
  }

  private gitArguments(args: string[], unit: Unit): string[] {
    const config = ['-c', 'core.autocrlf=false', '-c', 'core.safecrlf=false', '-c', 'advice.addEmbeddedRepo=false', '-c', 'advice.addIgnoredFile=false'];
    return [`--git-dir=${this.storeDir}`, `--work-tree=${path.join(this.workspace, unit.dir)}`, ...config, ...args];
  }

  /**
   * A git command run after every step (a full pass's status): through the process's git shell,
   * so that this process does not fork for it (see gitShell.ts), and through simple-git where
   * there is no shell or it fails in any way, which then gives git's own answer or error.
   */
  private async rawEveryStep(args: string[], unit: Unit): Promise<string> {
    const shell = GitShell.shared();
    if (shell) {
      await this.objects.flush();
      try {
        return await shell.run(this.workspace, this.gitArguments(args, unit), storeEnvironment(unit.indexFile));
      } catch {
        // simple-git below
      }
    }
    return this.raw(args, unit);
  }

  /** Creates the store if need be and finds where the run's snapshots stand. */
  init(): Promise<void> {
    // Two runs of one workspace may start at once (samplings do): one creates the store while
    // the other waits, or git's config lock refuses the second.
    return withStoreLock(this.storeDir, () => this.initUnlocked());
  }

  private async initUnlocked(): Promise<void> {
    await fs.mkdir(this.storeDir, { recursive: true });
    const isNew = !(await fs
      .access(path.join(this.storeDir, 'HEAD'))
      .then(() => true)
      .catch(() => false));
    if (isNew) {
      await this.git.raw(['init', '--bare', '--quiet', this.storeDir]);
      const config: [string, string][] = [
        ['gc.auto', '0'],
        ['core.bare', 'false'],
        // Unchanged folders are not read again, and an index write costs what changed.
        ['core.untrackedCache', 'true'],
        ['core.splitIndex', 'true'],
        ['index.version', '4'],
        // No reflogs: they would keep a deleted run's snapshots from being collected.
        ['core.logAllRefUpdates', 'false'],
      ];
      for (const [key, value] of config) await this.git.raw([`--git-dir=${this.storeDir}`, 'config', key, value]);
      // The user's global config may start an fsmonitor daemon; the store needs none. simple-git
      // refuses any fsmonitor setting on its command line, so it is written into the file.
      await fs.appendFile(path.join(this.storeDir, 'config'), '[core]\n\tfsmonitor = false\n');
    }
    const anchored = ['/.apollo/', ...this.exclude.map((entry) => `/${entry.split(path.sep).join('/').replace(/^\/+|\/+$/g, '')}/`)];
    await fs.mkdir(path.join(this.storeDir, 'info'), { recursive: true });
    await fs.writeFile(path.join(this.storeDir, 'info', 'exclude'), [...new Set([...anchored, ...this.excludePatterns])].join('\n') + '\n');
    await fs.mkdir(path.join(this.storeDir, 'apollo-index'), { recursive: true });
    const head = (await this.raw(['rev-parse', '--verify', '--quiet', this.ref]).catch(() => '')).trim();
    if (head) {
      const tree = (await this.raw(['rev-parse', `${head}^{tree}`])).trim();
      this.lastSnapshot = { commit: head, tree };
      this.rememberCommit(head, tree);
    }
    this.settings = await gitSettings(await this.git.raw([`--git-dir=${this.storeDir}`, 'config', '--list', '-z']), this.storeDir, this.workspace).catch(() => DEFAULT_SETTINGS);
  }

  private rememberCommit(commit: string, tree: string): void {
    if (this.commitTrees.size >= 10000) this.commitTrees.delete(this.commitTrees.keys().next().value!);
    this.commitTrees.set(commit, tree);
  }

  private rememberBlob(id: string, content: Buffer): void {
    if (content.length > RECENT_BLOB_BYTES / 4 || this.recentBlobs.has(id)) return;
    this.recentBlobs.set(id, content);
    this.recentBytes += content.length;
    while (this.recentBytes > RECENT_BLOB_BYTES) {
      const [oldest, bytes] = this.recentBlobs.entries().next().value!;
      this.recentBlobs.delete(oldest);
      this.recentBytes -= bytes.length;
    }
  }

  /**
   * Writes a commit object as `git commit-tree` does with the store's identity: the same bytes
   * but for the time, which is now.
   */
  private async writeCommit(tree: string, parents: string[], message: string): Promise<string> {
    const seconds = Math.floor(Date.now() / 1000);
    const offset = -new Date(seconds * 1000).getTimezoneOffset();
    const zone = `${offset < 0 ? '-' : '+'}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')}${String(Math.abs(offset) % 60).padStart(2, '0')}`;
    const person = `${IDENTITY.name} <${IDENTITY.email}> ${seconds} ${zone}`;
    const body = `tree ${tree}\n${parents.map((parent) => `parent ${parent}\n`).join('')}author ${person}\ncommitter ${person}\n\n${message}\n`;
    const commit = this.objects.writeLater('commit', Buffer.from(body));
    this.rememberCommit(commit, tree);
    return commit;
  }

  /** Records the work tree as it is now and returns the snapshot's commit id. */
  snapshot(): Promise<string> {
    return withStoreLock(this.storeDir, async () => {
      const changed = this.lastSnapshot ? await this.changes?.take() : undefined;
      if (!this.lastSnapshot) await this.changes?.take(); // start the feed afresh
      const tree = await this.snapshotUnit(this.root, changed);
      // An unchanged tree is the same snapshot: no new commit, and its diff is empty.
      if (this.lastSnapshot?.tree === tree) return this.lastSnapshot.commit;
      const commit = await this.writeCommit(tree, this.lastSnapshot ? [this.lastSnapshot.commit] : [], 'snapshot');
      this.lastSnapshot = { commit, tree };
      // The snapshot's objects are named now and stored, with the run's ref, once the work this
      // snapshot returns to (the diff) is done: before the store's next use (same lock) and before
      // any git process reads the store. The ref keeps snapshots from being collected and tells a
      // resumed run where it was.
      this.pendingRef = withStoreLock(this.storeDir, async () => {
        await new Promise((resolve) => setImmediate(resolve));
        await this.objects.flush();
        if (!(await this.objects.writeRef(this.ref, commit))) await this.raw(['update-ref', this.ref, commit]);
      });
      this.pendingRef.catch(() => undefined);
      return commit;
    });
  }

  /** Waits until the last snapshot's objects are stored and the run's ref points at it (snapshot() does not wait for either). */
  async settled(): Promise<void> {
    await this.pendingRef;
  }

  /** The unit of a nested repository, or a scratch index for grafting (`purpose`). */
  private unitFor(dir: string, purpose = 'nested'): Unit {
    const id = `${purpose}:${dir}`;
    let unit = this.units.get(id);
    if (!unit) {
      const key = createHash('sha1').update(id).digest('hex').slice(0, 16);
      const indexFile = path.join(this.storeDir, 'apollo-index', key);
      unit = { dir, git: this.gitWithIndex(indexFile), nested: new Map(), drift: new Set(), indexFile };
      this.units.set(id, unit);
    }
    return unit;
  }

  /**
   * Brings a unit's index up to date and returns its tree. `scope` lists the unit-relative paths
   * that changed; undefined means look everywhere (a full stat pass). Nested repositories are
   * snapshotted as content with their own index, never as a submodule link, and nothing of
   * theirs is touched.
   */
  private async snapshotUnit(unit: Unit, scope: string[] | undefined): Promise<string> {
    const excluded: string[] = [];
    const nestedScopes = new Map<string, string[] | undefined>();
    const pathspecs: string[] = [];
    const discovered: string[] = [];
    const newNested = (dirs: string[]) => {
      for (const dir of dirs) {
        if (!unit.nested.has(dir)) {
          unit.nested.set(dir, undefined);
          discovered.push(dir);
        }
        nestedScopes.set(dir, undefined);
      }
    };

    if (scope !== undefined && this.canPatch(unit)) {
      const patched = await this.patch(unit, scope);
      if (patched) {
        this.passes.patched++;
        return patched;
      }
      // The index is behind the last tree: only a full pass brings it up to date.
      if (unit.indexBehind) scope = undefined;
    }
    // Another store wrote the index since this one did: only a full pass through the index (what
    // differs from it, added to it) gives the workspace as it is, and the last tree is no base.
    const foreignIndex = unit.indexStamp !== undefined && unit.indexStamp !== indexStamp(unit.indexFile);
    if (foreignIndex) scope = undefined;
    const fullPass = scope === undefined;
    if (unit === this.root) this.passes[fullPass ? 'full' : 'scoped']++;
    // A full pass asks git what changed: one stat pass over the index plus the untracked walk,
    // which the untracked cache keeps short. Either way the changed paths are then handled alike.
    const untracked = new Set<string>();
    const status = fullPass ? this.changedByStatus(unit, untracked) : undefined;
    const patching = fullPass && !foreignIndex && this.canPatch(unit);
    if (status && patching && unit.drift.size) {
      // Status names the files the index is behind on every time: they are looked at while it runs.
      status.catch(() => undefined);
      this.lookedAt = await this.lookAtDrift(unit);
    }
    let changed: string[];
    try {
      changed = status ? await status : scope!;
      if (patching && changed.length + unit.drift.size <= MAX_INDEX_DRIFT) {
        // What status found is patched into the last tree too. The index stays behind for those
        // files; status names them again, except a file that only a patch added and that is gone
        // now, which the drift list remembers.
        const patched = await this.patch(unit, [...new Set([...changed, ...unit.drift])], untracked);
        if (patched) return patched;
      }
    } finally {
      this.lookedAt = undefined;
    }
    if (fullPass) {
      // Nested repositories always show as untracked folders; one not shown is gone or plain now.
      for (const dir of unit.nested.keys()) if (!changed.includes(dir)) unit.nested.delete(dir);
    }
    const files: string[] = [];
    const folders: string[] = [];
    const missing: string[] = [];
    for (const relative of new Set(changed)) {
      const nestedRoot = [...unit.nested.keys()].find((dir) => within(relative, dir));
      if (nestedRoot !== undefined) {
        const inner = relative === nestedRoot || fullPass ? undefined : relative.slice(nestedRoot.length + 1);
        const known = nestedScopes.has(nestedRoot) ? nestedScopes.get(nestedRoot) : [];
        nestedScopes.set(nestedRoot, inner === undefined || known === undefined ? undefined : [...known, inner]);
        continue;
      }
      const stat = await fs.lstat(path.join(this.workspace, unit.dir, relative)).catch(() => undefined);
      if (!stat) missing.push(relative);
      else if (stat.isDirectory()) folders.push(relative);
      else files.push(relative);
    }
    const tooLarge = await this.oversizedAmong(unit, files);
    if (tooLarge.length) await this.forget(unit, tooLarge);
    pathspecs.push(...files.filter((file) => !tooLarge.includes(file)));
    if (folders.length) {
      // A folder that appeared at once (moved in, unpacked): its new files, checked like any.
      const untracked = splitNul(await this.raw(['ls-files', '--others', '--exclude-standard', '-z', '--', ...folders.map(literal)], unit));
      const nested = untracked.filter((entry) => entry.endsWith('/')).map((entry) => entry.slice(0, -1));
      newNested(nested);
      const large = await this.oversizedAmong(unit, untracked.filter((entry) => !entry.endsWith('/')));
      excluded.push(...nested, ...large);
      pathspecs.push(...folders);
      if (unit === this.root) {
        for (const folder of folders) {
          const inside = untracked.filter((entry) => within(entry, folder));
          if (inside.length && inside.every((entry) => large.includes(entry))) this.leftOutFolders.set(folder, inside);
          else this.leftOutFolders.delete(folder);
        }
      }
    }
    if (missing.length) {
      // Only paths the index knows can be named to git add; the others came and went.
      const tracked = splitNul(await this.raw(['ls-files', '-z', '--', ...missing.map(literal)], unit));
      pathspecs.push(...missing.filter((gone) => tracked.some((entry) => within(entry, gone))));
      for (const dir of unit.nested.keys()) if (missing.some((gone) => within(dir, gone))) unit.nested.delete(dir);
    }

    // A nested repository is content here: what the unit's index held of it before it became
    // one (files, or a link) goes.
    if (discovered.length) await this.raw(['update-index', '--force-remove', '--', ...discovered], unit).catch(() => undefined);
    for (let i = 0; i < pathspecs.length; i += PATHSPEC_BATCH) {
      const batch = pathspecs.slice(i, i + PATHSPEC_BATCH).map((entry) => (entry === '.' ? entry : literal(entry)));
      await this.add(unit, [...batch, ...excluded.map((entry) => `:(exclude,literal)${entry}`)]);
    }
    for (const [dir, nestedScope] of nestedScopes) {
      if (unit.nested.has(dir)) unit.nested.set(dir, await this.snapshotUnit(this.unitFor(unit.dir ? `${unit.dir}/${dir}` : dir), nestedScope));
    }
    // Most steps change nothing (reading, searching): then the index is as the last tree left it.
    const indexUnchanged = !foreignIndex && pathspecs.length === 0 && tooLarge.length === 0 && nestedScopes.size === 0;
    if (indexUnchanged && unit.baseTree && unit.lastTree) return unit.lastTree;
    const base = (await this.raw(['write-tree'], unit)).trim();
    unit.indexStamp = indexStamp(unit.indexFile);
    if (unit === this.root) this.hashedFiles.clear();
    unit.baseTree = base;
    unit.indexTree = base;
    unit.indexBehind = false;
    unit.drift.clear();
    unit.lastTree = await this.graft(unit, base);
    return unit.lastTree;
  }

  /**
   * The stat of each file the index is behind on, and the content of those whose stat cannot
   * vouch for the tree's. Runs once git status has started; the patch after it uses what was
   * found instead of looking again. A file changed after this has a new stat the next pass sees.
   */
  private async lookAtDrift(unit: Unit): Promise<Map<string, LookedAt>> {
    await new Promise((resolve) => setImmediate(resolve));
    const looked = new Map<string, LookedAt>();
    // Attributes could filter what git stores: bytes equal to the tree's then prove nothing.
    const folders = new Set<string>(['']);
    for (const relative of unit.drift) addFoldersAbove(folders, relative);
    const compare = !this.settings.outsideAttributes && !this.attributesIn(folders);
    for (const relative of unit.drift) {
      const file = path.join(this.workspace, relative);
      const stat = lstatSync(file, { throwIfNoEntry: false });
      const entry: LookedAt = { stat };
      if (stat?.isFile() && stat.size <= this.maxFileBytes && !sameStat(this.hashedFiles.get(relative), stat)) {
        const readAt = Date.now();
        entry.readAt = readAt;
        try {
          entry.content = readFileSync(file);
        } catch {
          // read again by the patch, which reports what went wrong
        }
        // Content and mode as the last tree has them: nothing to patch for this file, and its
        // stat vouches for it from now on once it is old enough.
        const known = compare && entry.content ? await this.entryAt(unit.baseTree!, relative) : undefined;
        entry.unchanged = !!known && known.mode === fileMode(stat, known.mode, process.platform !== 'win32') && known.id === objectId('blob', entry.content!);
        if (entry.unchanged && settledBefore(stat, readAt)) this.hashedFiles.set(relative, statKey(stat));
      }
      looked.set(relative, entry);
    }
    return looked;
  }

  /** A path's entry in a tree read in-process; undefined when the tree has none or cannot be read here. */
  private async entryAt(tree: string, relative: string): Promise<TreeEntry | undefined> {
    let id = tree;
    const parts = relative.split('/');
    for (let i = 0; i < parts.length; i++) {
      const entry = (await this.listTreeInProcess(id))?.find((candidate) => candidate.name === parts[i]);
      if (!entry || i === parts.length - 1) return entry;
      if (entry.mode !== '40000') return undefined;
      id = entry.id;
    }
    return undefined;
  }

  /** Patching needs a last tree to start from and handles the workspace without nested repositories. */
  private canPatch(unit: Unit): boolean {
    return this.patchTrees && unit === this.root && unit.nested.size === 0 && unit.baseTree !== undefined;
  }

  /**
   * The watcher's changed paths applied to the last tree without the index: the cost follows the
   * number of changed files, not the size of the workspace. Undefined when the change is beyond
   * a plain file edit, creation or deletion (or a .gitattributes file could filter the content).
   */
  private async patch(unit: Unit, scope: string[], notIgnored = new Set<string>()): Promise<string | undefined> {
    const changes = new Map<string, PathState>();
    const folders = new Set<string>(['']);
    // Synchronous calls: a few microseconds each, less than a trip through Node's thread pool.
    for (const relative of new Set(scope)) {
      const looked = this.lookedAt?.get(relative);
      if (looked?.unchanged) continue;
      const stat = looked ? looked.stat : lstatSync(path.join(this.workspace, relative), { throwIfNoEntry: false });
      // A folder git status lists as untracked because all it holds is over the size limit.
      if (stat?.isDirectory() && this.stillLeftOut(relative)) continue;
      if (stat && !stat.isFile()) return undefined;
      // A file a full pass names only because the index is behind it: the tree has it already.
      if (stat && sameStat(this.hashedFiles.get(relative), stat)) continue;
      this.hashedFiles.delete(relative);
      changes.set(relative, stat ? { kind: 'file', stat } : { kind: 'missing' });
      addFoldersAbove(folders, relative);
    }
    if (this.attributesIn(folders)) return undefined;
    let result;
    this.hashing = { stats: changes, hashed: new Map(), notIgnored };
    try {
      result = await patchTree(
        unit.baseTree!,
        changes,
        this.objectAccess,
        this.maxFileBytes,
        process.platform !== 'win32',
      );
    } catch {
      // Anything unexpected: the index path is always right.
      return undefined;
    } finally {
      const hashed = this.hashing.hashed;
      this.hashing = undefined;
      if (result) for (const [relative, stat] of hashed) this.hashedFiles.set(relative, stat);
    }
    if (!result) return undefined;
    for (const file of result.oversized) this.oversized.add(file);
    for (const file of result.fitting) this.oversized.delete(file);
    unit.indexBehind = unit.indexBehind || result.tree !== unit.baseTree;
    if (unit.indexBehind) for (const relative of changes.keys()) unit.drift.add(relative);
    unit.baseTree = result.tree;
    unit.lastTree = result.tree;
    return result.tree;
  }

  /**
   * Whether a folder still holds exactly the files it held when they were all found too large to
   * snapshot, and they still are. Anything else (a new file, a smaller one, a link) is left to
   * the index.
   */
  private stillLeftOut(folder: string): boolean {
    const known = this.leftOutFolders.get(folder);
    if (!known) return false;
    const found: string[] = [];
    const walk = (dir: string): boolean => {
      for (const entry of readdirSync(path.join(this.workspace, dir), { withFileTypes: true })) {
        const relative = `${dir}/${entry.name}`;
        if (entry.isDirectory()) {
          if (!walk(relative)) return false;
        } else if (!entry.isFile() || (lstatSync(path.join(this.workspace, relative)).size <= this.maxFileBytes)) {
          return false;
        } else {
          found.push(relative);
        }
      }
      return true;
    };
    try {
      return walk(folder) && found.length === known.length && found.every((file) => known.includes(file));
    } catch {
      return false;
    }
  }

  /**
   * Points the store's HEAD somewhere unless it points there already. The file is read, not
   * remembered: `apollo gc` (in this process or another) points HEAD away between snapshots.
   */
  private writeHead(content: string): void {
    const file = path.join(this.storeDir, 'HEAD');
    let current: string | undefined;
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== content) writeFileSync(file, content);
  }

  /** Whether a .gitattributes file lies in one of these folders: git reads those of the work tree, tracked or not. */
  private attributesIn(folders: Iterable<string>): boolean {
    for (const dir of folders) if (existsSync(path.join(this.workspace, dir, '.gitattributes'))) return true;
    return false;
  }

  /** A tree's entries from memory or its loose object; undefined when git must read it (packed). */
  private async listTreeInProcess(id: string): Promise<TreeEntry[] | undefined> {
    const cached = this.listings.get(id);
    if (cached) return cached;
    const entries = await this.objects.readTree(id).catch(() => undefined);
    if (entries) this.rememberListing(id, entries);
    return entries;
  }

  /** A blob's content from memory or its loose object; undefined when git must read it (packed). */
  private async readBlobInProcess(id: string): Promise<Buffer | undefined> {
    const recent = this.recentBlobs.get(id);
    if (recent) return recent;
    const content = await this.objects.readBlob(id).catch(() => undefined);
    if (content) this.rememberBlob(id, content);
    return content;
  }

  /**
   * Reads, writes and ignore checks for patching trees; no index is read by any of them. Objects
   * are read and written in-process (a git process costs more than the work), except blobs that
   * attributes could filter: git hashes those, as `git add` would store them.
   */
  private createObjectAccess(): ObjectAccess {
    const objects = this.gitWithIndex(path.join(this.storeDir, 'apollo-index', 'none'));
    const run = async (args: string[]) => {
      await this.objects.flush();
      return objects.raw([`--git-dir=${this.storeDir}`, `--work-tree=${this.workspace}`, '-c', 'core.autocrlf=false', ...args]);
    };
    return {
      remember: (id, entries) => this.rememberListing(id, entries),
      listTree: async (id) => {
        const known = await this.listTreeInProcess(id);
        if (known) return known;
        await this.objects.flush();
        const entries = splitNul(await this.reader.raw(['ls-tree', '-z', id])).map((line) => {
          const [info, name] = [line.slice(0, line.indexOf('\t')), line.slice(line.indexOf('\t') + 1)];
          const [mode, , entryId] = info.split(' ');
          // ls-tree pads a folder's mode to 040000; inside a tree object it is 40000.
          return { mode: mode.replace(/^0+/, ''), id: entryId, name };
        });
        this.rememberListing(id, entries);
        return entries;
      },
      writeBlobs: async (paths, attributes) => {
        if (attributes || this.settings.outsideAttributes) return (await run(['hash-object', '-w', '--', ...paths])).split('\n').filter(Boolean);
        // No attributes apply and the store's git runs with no system config: nothing could
        // filter the content, so git would store the file's bytes as they are.
        return Promise.all(paths.map(async (relative) => {
          const state = this.hashing?.stats.get(relative);
          // Read while git status ran, at the stat the patch goes by.
          const looked = this.lookedAt?.get(relative);
          const early = looked?.content && state?.kind === 'file' && looked.stat === state.stat ? looked : undefined;
          const readAt = early?.readAt ?? Date.now();
          const content = early?.content ?? readFileSync(path.join(this.workspace, relative));
          const id = this.objects.writeLater('blob', content);
          this.rememberBlob(id, content);
          if (state?.kind === 'file' && settledBefore(state.stat, readAt)) this.hashing!.hashed.set(relative, statKey(state.stat));
          return id;
        }));
      },
      writeTrees: async (bodies) => bodies.map((body) => this.objects.writeLater('tree', body)),
      ignored: async (all) => {
        const paths = all.filter((relative) => !this.hashing?.notIgnored.has(relative));
        if (!paths.length) return new Set<string>();
        // -v -n prints one line per path, in order, ignored or not ("::" then the path when not).
        const lines = (await run(['check-ignore', '--no-index', '-v', '-n', '--', ...paths])).split('\n');
        const ignored = new Set<string>();
        paths.forEach((relative, index) => {
          const pattern = /^.*?:\d+:(.*)\t/.exec(lines[index] ?? '')?.[1];
          if (pattern && !pattern.startsWith('!')) ignored.add(relative);
        });
        return ignored;
      },
    };
  }

  private rememberListing(id: string, entries: TreeEntry[]): void {
    if (this.listings.size >= 5000) this.listings.delete(this.listings.keys().next().value!);
    this.listings.set(id, entries);
  }

  /**
   * The unit-relative paths that differ from the unit's index: modified, deleted, untracked
   * (untracked folders, nested repositories among them, as the folder). HEAD is set to the tree
   * the index holds first, so the index-to-HEAD half of status has nothing to report (only the
   * work tree's half is read).
   */
  private async changedByStatus(unit: Unit, untracked = new Set<string>()): Promise<string[]> {
    if (unit.indexTree && unit.indexCommit?.tree !== unit.indexTree) {
      const reuse = unit === this.root && this.lastSnapshot?.tree === unit.indexTree;
      const commit = reuse ? this.lastSnapshot!.commit : await this.writeCommit(unit.indexTree, [], 'index');
      unit.indexCommit = { commit, tree: unit.indexTree };
    }
    // A detached HEAD written directly: the store's HEAD means nothing else.
    this.writeHead(unit.indexCommit ? `${unit.indexCommit.commit}\n` : 'ref: refs/heads/unborn\n');
    // --branch makes status print a line even when nothing changed: a git process that prints
    // nothing costs simple-git an extra 50 ms wait for its output streams.
    const status = () => this.rawEveryStep(['status', '--porcelain=v1', '--branch', '-z', '--untracked-files=normal', '--no-renames', '--ignore-submodules=none'], unit);
    const output = await status().catch(async () => {
      // The commit was collected (it is referenced by nothing): compare against nothing instead.
      unit.indexCommit = undefined;
      this.writeHead('ref: refs/heads/unborn\n');
      return status();
    });
    // Status refreshes the index when it can; that write is this store's own.
    unit.indexStamp = indexStamp(unit.indexFile);
    const paths: string[] = [];
    for (const entry of splitNul(output)) {
      if (entry.startsWith('## ')) continue;
      const [index, worktree, relative] = [entry[0], entry[1], entry.slice(3)];
      const name = relative.replace(/\/$/, '');
      if (index === '?' || worktree !== ' ') paths.push(name);
      if (index === '?') untracked.add(name);
    }
    return paths;
  }

  /** git add -A on some paths; naming an ignored file is not an error here. */
  private async add(unit: Unit, pathspecs: string[]): Promise<void> {
    try {
      // --verbose: see status above; a changed path is always named.
      await this.raw(['add', '--all', '--verbose', '--', ...pathspecs], unit);
    } catch (error) {
      const message = String((error as Error).message);
      if (!/paths are ignored by one of your \.gitignore files/.test(message) || /fatal:/.test(message)) throw error;
    }
  }

  /** Files over the size limit among some unit-relative paths; they are left out and remembered. */
  private async oversizedAmong(unit: Unit, files: string[]): Promise<string[]> {
    const large: string[] = [];
    for (const file of files) {
      const stat = await fs.lstat(path.join(this.workspace, unit.dir, file)).catch(() => undefined);
      const relative = unit.dir ? `${unit.dir}/${file}` : file;
      if (stat?.isFile() && stat.size > this.maxFileBytes) {
        large.push(file);
        this.oversized.add(relative);
      } else {
        this.oversized.delete(relative);
      }
    }
    return large;
  }

  /** Drops paths from a unit's index (a file that grew past the size limit). */
  private async forget(unit: Unit, files: string[]): Promise<void> {
    await this.raw(['update-index', '--force-remove', '--', ...files], unit);
  }

  /** The unit's tree with the trees of its nested repositories put in at their folders. */
  private async graft(unit: Unit, base: string): Promise<string> {
    const nested = [...unit.nested].filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== EMPTY_TREE);
    if (!nested.length) return base;
    const scratch = this.unitFor(unit.dir, 'graft');
    await this.raw(['read-tree', base], scratch);
    for (const [dir, tree] of nested) await this.raw(['read-tree', `--prefix=${dir}/`, tree], scratch);
    return (await this.raw(['write-tree'], scratch)).trim();
  }

  /** What changed between two snapshots: the files with line counts, and the unified diff. */
  async ground(before: string, after: string, options: { maxPatchBytes?: number } = {}): Promise<Grounding> {
    if (before === after) return { before, after, files: [], patch: '' };
    const maxPatchBytes = options.maxPatchBytes ?? DEFAULT_MAX_PATCH_BYTES;
    const worked = await this.groundInProcess(before, after, maxPatchBytes).catch(() => undefined);
    if (worked) {
      this.diffs.inProcess++;
      return { before, after, ...worked };
    }
    this.diffs.git++;
    return this.groundWithGit(before, after, maxPatchBytes);
  }

  /** The common step's grounding without a git process; undefined where git has to work it out. */
  private async groundInProcess(before: string, after: string, maxPatchBytes: number) {
    if (this.settings.diffThroughGit || this.settings.outsideAttributes) return undefined;
    const treeOf = async (commit: string) => this.commitTrees.get(commit) ?? (await this.objects.commitTree(commit).catch(() => undefined));
    const [beforeTree, afterTree] = await Promise.all([treeOf(before), treeOf(after)]);
    if (!beforeTree || !afterTree) return undefined;
    const abbreviator = await this.objects.abbreviator(this.settings.abbrev);
    if (!abbreviator) return undefined;
    return groundTrees(
      {
        listTree: (id) => this.listTreeInProcess(id),
        readBlob: (id) => this.readBlobInProcess(id),
        abbreviate: (id) => abbreviator.abbreviate(id),
        attributesIn: async (folders) => this.attributesIn(folders),
      },
      beforeTree,
      afterTree,
      this.settings,
      maxPatchBytes,
    );
  }

  private async groundWithGit(before: string, after: string, maxPatchBytes: number): Promise<Grounding> {
    await this.objects.flush();
    // One process: the NUL-separated summary (raw entries, then numstat), then the patch text.
    const output = await this.reader.raw(['diff-tree', '-r', '-M', '--raw', '--numstat', '-p', '-z', '--no-color', '--no-ext-diff', before, after]);
    const { files, patch: fullPatch } = parseChanges(output);
    const truncated = Buffer.byteLength(fullPatch) > maxPatchBytes;
    const patch = truncated ? Buffer.from(fullPatch).subarray(0, maxPatchBytes).toString('utf8') : fullPatch;
    return { before, after, files, patch, ...(truncated ? { patchTruncated: true } : {}) };
  }

  /** The tree a snapshot records. */
  async treeOf(snapshot: string): Promise<string> {
    const known = this.commitTrees.get(snapshot) ?? (await this.objects.commitTree(snapshot).catch(() => undefined));
    if (known) return known;
    await this.objects.flush();
    return (await this.reader.raw(['rev-parse', `${snapshot}^{tree}`])).trim();
  }

  /**
   * Makes the workspace match snapshot `target`, given that it matches snapshot `current` now:
   * only the files that differ between the two are written or removed. Returns what changed.
   */
  async restore(current: string, target: string): Promise<FileChange[]> {
    const changes = (await this.ground(current, target, { maxPatchBytes: 0 })).files;
    await this.objects.flush();
    const raw = splitNul(await this.reader.raw(['diff-tree', '-r', '-z', '--no-renames', current, target]));
    // Raw entries come in pairs: ":oldmode newmode oldsha newsha status" then the path.
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const [, newMode, , newSha, status] = raw[i].slice(1).split(' ');
      const file = path.join(this.workspace, raw[i + 1]);
      if (file === this.workspace || !isInside(file, this.workspace)) throw new Error(`The snapshot names a path outside the workspace: ${raw[i + 1]}`);
      await fs.rm(file, { force: true, recursive: status === 'D' ? false : true }).catch(() => undefined);
      if (status === 'D') {
        await removeEmptyFolders(path.dirname(file), this.workspace);
        continue;
      }
      const content = await this.reader.showBuffer([newSha]);
      await fs.mkdir(path.dirname(file), { recursive: true });
      if (newMode === '120000') await fs.symlink(content.toString('utf8'), file);
      else await fs.writeFile(file, content, { mode: newMode === '100755' ? 0o755 : 0o644 });
    }
    return changes;
  }

  /** A file's content in a snapshot, or undefined when the snapshot has no such file. */
  async readFile(snapshot: string, filePath: string): Promise<Buffer | undefined> {
    const relative = filePath.split(path.sep).join('/').replace(/^\/+/, '');
    await this.objects.flush();
    try {
      return await this.reader.showBuffer([`${snapshot}:${relative}`]);
    } catch {
      return undefined;
    }
  }
}

export interface CollectedGarbage {
  /** Runs whose snapshots were let go: their folders are gone from the dataset. */
  runs: string[];
  bytesBefore: number;
  bytesAfter: number;
}

/** Each sampling pins the snapshot its working copies were made from (see session/workingCopy). */
export const TASK_REF_PREFIX = 'refs/apollo/tasks/';
/** A task's snapshot younger than this is kept even with no run of the task yet: its copies may be being made. */
const TASK_GRACE_SECONDS = 60 * 60;

/**
 * Reclaims the space of snapshots no run in the dataset refers to any more, in every shadow store
 * of a dataset. `keepRuns` are the run folders that exist; `pruneRecent` false keeps unreferenced
 * objects younger than an hour, which a run still recording may be about to refer to.
 * `keepTasks` are the task ids of the runs that exist: a sampling's base snapshot is let go once
 * no run of its task remains (and it is over an hour old); without the set every one is kept.
 * A store that others borrow objects from (a working copy's store) keeps every object theirs reach.
 */
export async function collectSnapshotGarbage(
  datasetRoot: string,
  keepRuns: Set<string>,
  options: { pruneRecent: boolean; keepTasks?: Set<string> },
): Promise<CollectedGarbage> {
  const root = path.join(datasetRoot, SHADOW_FOLDER);
  const bytesBefore = await folderBytes(root);
  const runs: string[] = [];
  const names = (await fs.readdir(root).catch(() => [] as string[])).filter((name) => name.endsWith('.git'));
  const borrowers = await borrowersByLender(names.map((name) => path.join(root, name)));
  const borrowing = new Set([...borrowers.values()].flat());
  // Borrowers first: the objects a lender keeps for them are those their remaining refs reach.
  const stores = names.map((name) => path.join(root, name)).sort((a, b) => Number(borrowing.has(b)) - Number(borrowing.has(a)));
  for (const storeDir of stores) {
    await withStoreLock(storeDir, async () => {
      const git = simpleGit({ baseDir: storeDir }).env(gitEnvironment());
      const raw = (args: string[]) => git.raw([`--git-dir=${storeDir}`, ...args]);
      const refs = (await raw(['for-each-ref', '--format=%(refname)', RUN_REF_PREFIX])).split('\n').filter(Boolean);
      for (const ref of refs) {
        const runId = ref.slice(RUN_REF_PREFIX.length);
        if (keepRuns.has(runId)) continue;
        await raw(['update-ref', '-d', ref]);
        runs.push(runId);
      }
      if (options.keepTasks) {
        const tasks = (await raw(['for-each-ref', '--format=%(refname) %(committerdate:unix)', TASK_REF_PREFIX])).split('\n').filter(Boolean);
        for (const line of tasks) {
          const [ref, date] = line.split(' ');
          const young = Date.now() / 1000 - Number(date) < TASK_GRACE_SECONDS;
          if (!young && !options.keepTasks.has(ref.slice(TASK_REF_PREFIX.length))) await raw(['update-ref', '-d', ref]);
        }
      }
      // HEAD only serves `git status` (set again before each one); left on a snapshot it would
      // keep a deleted run's last snapshot, and what it borrows, from being collected.
      await fs.writeFile(path.join(storeDir, 'HEAD'), 'ref: refs/heads/unborn\n');
      if (borrowing.has(storeDir) && !(await raw(['for-each-ref', '--count=1', '--format=%(refname)'])).trim()) {
        // A working copy's store whose runs are all gone: its indexes name objects the lender is
        // about to let go of. A run that works there again builds them afresh.
        await forgetIndexes(storeDir);
      }
      await pinBorrowedObjects(storeDir, borrowers.get(storeDir) ?? []);
      await raw(['reflog', 'expire', '--expire=now', '--all']);
      // No commit-graph: git leaves the old one in place when no ref is left, naming collected commits.
      await raw(['-c', 'gc.writeCommitGraph=false', 'gc', '--quiet', `--prune=${options.pruneRecent ? 'now' : '1.hour.ago'}`]);
      await fs.rm(path.join(storeDir, 'objects', 'info', 'commit-graph'), { force: true });
      await fs.rm(path.join(storeDir, 'objects', 'info', 'commit-graphs'), { recursive: true, force: true });
    });
  }
  return { runs, bytesBefore, bytesAfter: await folderBytes(root) };
}

/** Removes a store's indexes (its own, the split index's shared parts, those of nested repositories). */
async function forgetIndexes(storeDir: string): Promise<void> {
  for (const name of await fs.readdir(storeDir)) {
    if (name === 'index' || name.startsWith('sharedindex.')) await fs.rm(path.join(storeDir, name), { force: true });
  }
  const scratch = path.join(storeDir, 'apollo-index');
  for (const name of await fs.readdir(scratch).catch(() => [] as string[])) await fs.rm(path.join(scratch, name), { recursive: true, force: true });
}

/** Removes folders left empty by a restore, up to the workspace. */
export async function removeEmptyFolders(dir: string, workspace: string): Promise<void> {
  while (dir !== workspace && isInside(dir, workspace)) {
    const entries = await fs.readdir(dir).catch(() => undefined);
    if (!entries || entries.length) return;
    await fs.rmdir(dir).catch(() => undefined);
    dir = path.dirname(dir);
  }
}

/**
 * Reads `diff-tree --raw --numstat -p -z`: the raw entries (":modes ids status", then the path,
 * or the old and new path of a rename or copy) come first, then one numstat entry per file
 * ("added<TAB>deleted<TAB>path", or "added<TAB>deleted<TAB>" then old and new path), then the
 * patch text. Entries are counted, not searched for, so no file name can be taken for the patch.
 */
export function parseChanges(output: string): { files: FileChange[]; patch: string } {
  const fields = output.split('\0');
  const files: FileChange[] = [];
  let i = 0;
  while (i < fields.length && fields[i].startsWith(':')) {
    const letter = fields[i].split(' ')[4] ?? 'M';
    if (letter.startsWith('R') || letter.startsWith('C')) {
      files.push({ path: fields[i + 2], oldPath: fields[i + 1], status: statusFromLetter(letter), additions: 0, deletions: 0, binary: false });
      i += 3;
    } else {
      files.push({ path: fields[i + 1], status: statusFromLetter(letter), additions: 0, deletions: 0, binary: false });
      i += 2;
    }
  }
  for (const change of files) {
    const [added, deleted, ...rest] = (fields[i] ?? '').split('\t');
    // A rename's entry has an empty path, followed by the old and the new path.
    i += rest.join('\t') === '' ? 3 : 1;
    change.binary = added === '-' && deleted === '-';
    change.additions = change.binary ? 0 : Number(added) || 0;
    change.deletions = change.binary ? 0 : Number(deleted) || 0;
  }
  // An empty field separates the summary from the patch.
  if (fields[i] === '') i++;
  return { files, patch: fields.slice(i).join('\0') };
}
