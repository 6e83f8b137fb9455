/**
 * The shadow store: a git directory of Apollo's own, with its own index, that snapshots the
 * workspace before and after every action. The user's `.git` is never read or written; the
 * workspace does not even have to be a git repository.
 *
 * A step that edits, adds or deletes a few plain files is recorded without reading the index:
 * the changed files are hashed and the folders above them rebuilt from the last tree
 * (treePatch.ts), and the diff comes from `diff-tree`, all through long-lived git processes
 * (storeProcesses.ts), so a step starts no git process. Everything else (new folders, symlinks,
 * nested repositories, attributes, a full stat pass) goes through the index with git status and
 * git add. Git does every piece: objects, trees and patches are git's own.
 *
 * Its seams live in modules of their own: git settings (storeSettings.ts), the stat cache
 * (statCache.ts), store and path names (storePaths.ts), change parsing (changeParsing.ts) and
 * garbage collection (storeGc.ts); this module re-exports what others import from it.
 */
import { existsSync, lstatSync, promises as fs, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { SimpleGit } from 'simple-git';
import type { FileChange, Grounding } from '../dataset/events';
import { parseChanges, parseStatus, splitNul, wholeName } from './changeParsing';
import { type Driver, driverOverrides, hardenedGit } from './gitEnvironment';
import { settledBefore, type StatKey, statKey, sameStat } from './statCache';
import { withStoreLock } from './storeLock';
import { isTreePath, runSnapshotRef } from './storePaths';
import { StoreProcesses } from './storeProcesses';
import { IDENTITY, outsideAttributes, storeEnvironment, STORE_CONFIG, WORK_TREE_CONFIG } from './storeSettings';
import type { ChangeFeed } from './watcher';
import { type ObjectAccess, patchTree, type PathState, type TreeEntry } from './treePatch';

export { parseChanges } from './changeParsing';
export { collectSnapshotGarbage, TASK_REF_PREFIX } from './storeGc';
export type { CollectedGarbage } from './storeGc';
export { datasetExclusions, removeEmptyFolders, runSnapshotRef, SHADOW_FOLDER, shadowStoreDir } from './storePaths';

const SNAPSHOT_REF = 'refs/apollo/snapshots';
const DEFAULT_MAX_PATCH_BYTES = 256 * 1024;
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

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

/** Tells one write of an index file from another: git renames a new file into place each time. */
function indexStamp(file: string): string {
  const stat = statSync(file, { bigint: true, throwIfNoEntry: false });
  return stat ? `${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}` : 'none';
}

const PATHSPEC_BATCH = 1000;
/** Past this many files that differ from the index, a full pass brings the index up to date. */
const MAX_INDEX_DRIFT = 200;
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
  private git: SimpleGit;
  /** Reads objects only; GIT_DIR points at the store because `git show` takes no --git-dir after it. */
  private reader: SimpleGit;
  private lastSnapshot: { commit: string; tree: string } | undefined;
  private readonly ref: string;
  private pendingRef: Promise<unknown> = Promise.resolve();
  private readonly root: Unit;
  /** Listings of trees read before; a tree never changes, so a listing is good forever. */
  private readonly listings = new Map<string, TreeEntry[]>();
  private readonly objectAccess: ObjectAccess;
  /** The long-lived git processes of the hot path; started on first use. */
  private processes: StoreProcesses;
  /** Drivers the store's config defines (the user's among it): their programs are emptied. */
  private drivers: Driver[] = [];
  private readonly units = new Map<string, Unit>();
  /** Files left out of the last snapshots for their size, workspace-relative. */
  readonly oversized = new Set<string>();
  /** How the workspace's snapshots were taken: tree patched, index updated for some paths, full pass. */
  readonly passes = { patched: 0, scoped: 0, full: 0 };
  /** How diffs were worked out: by the long-lived diff-tree, or by a git process of their own. */
  readonly diffs = { stdin: 0, git: 0 };
  /** An attributes file outside the workspace could apply: every file goes through the index. */
  private outsideAttributes = true;
  /** The diff from the snapshot before the last one to the last, asked for as the last was stored. */
  private diffAhead: { before: string; after: string; output: Promise<Buffer> } | undefined;
  /** Trees of snapshot commits seen, so that a diff need not read the commits. */
  private readonly commitTrees = new Map<string, string>();
  /** Untracked folders that hold only files over the size limit, with those files. */
  private readonly leftOutFolders = new Map<string, string[]>();
  /** Files whose content is in the last tree as the store hashed it, by their stat then. */
  private readonly hashedFiles = new Map<string, StatKey>();
  /**
   * The patch under way: the stats its changes were taken with, the files hashed so far, and new
   * files git status listed as untracked (so not ignored).
   */
  private hashing: { stats: Map<string, PathState>; hashed: Map<string, StatKey>; notIgnored: Set<string> } | undefined;

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
    this.reader = this.readerGit();
    this.root = { dir: '', git: this.git, nested: new Map(), drift: new Set(), indexFile: path.join(this.storeDir, 'index') };
    this.processes = this.startProcesses();
    this.objectAccess = this.createObjectAccess();
  }

  private readerGit(): SimpleGit {
    // Reading objects needs no index, but git reads attributes from the index when it has no
    // work tree: an index file that never exists keeps a 100k-file index from being parsed.
    return hardenedGit({ baseDir: this.workspace, trimmed: false }, { ...storeEnvironment(this.noIndex, this.drivers), GIT_DIR: this.storeDir }, this.drivers);
  }

  private startProcesses(): StoreProcesses {
    return new StoreProcesses(this.storeDir, this.workspace, { ...storeEnvironment(this.noIndex, this.drivers), GIT_DIR: this.storeDir });
  }

  private get noIndex(): string {
    return path.join(this.storeDir, 'apollo-index', 'none');
  }

  private gitWithIndex(indexFile: string): SimpleGit {
    return hardenedGit({ baseDir: this.workspace, maxConcurrentProcesses: 4, trimmed: false }, storeEnvironment(indexFile, this.drivers), this.drivers);
  }

  /** Runs git against the shadow store with a unit's folder as the work tree and its own index. */
  private async raw(args: string[], unit: Unit = this.root): Promise<string> {
    return unit.git.raw(this.gitArguments(args, unit));
  }

  private gitArguments(args: string[], unit: Unit): string[] {
    return [`--git-dir=${this.storeDir}`, `--work-tree=${path.join(this.workspace, unit.dir)}`, ...WORK_TREE_CONFIG, ...args];
  }

  /** Ends the store's long-lived git processes (they also end themselves when idle). */
  close(): void {
    this.processes.dispose();
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
      for (const [key, value] of STORE_CONFIG) await this.git.raw([`--git-dir=${this.storeDir}`, 'config', key, value]);
    }
    // Every driver the store's git would see gets its programs emptied (gitEnvironment.ts).
    this.drivers = await driverOverrides(this.storeDir, storeEnvironment(this.noIndex), [`--git-dir=${this.storeDir}`]);
    this.git = this.gitWithIndex(path.join(this.storeDir, 'index'));
    this.root.git = this.git;
    this.reader = this.readerGit();
    this.processes.dispose();
    this.processes = this.startProcesses();
    const anchored = [
      '/.apollo/',
      ...this.exclude.map(
        (entry) =>
          `/${entry
            .split(path.sep)
            .join('/')
            .replace(/^\/+|\/+$/g, '')}/`,
      ),
    ];
    await fs.mkdir(path.join(this.storeDir, 'info'), { recursive: true });
    await fs.writeFile(path.join(this.storeDir, 'info', 'exclude'), [...new Set([...anchored, ...this.excludePatterns])].join('\n') + '\n');
    await fs.mkdir(path.join(this.storeDir, 'apollo-index'), { recursive: true });
    const head = (await this.raw(['rev-parse', '--verify', '--quiet', this.ref]).catch(() => '')).trim();
    if (head) {
      const tree = (await this.raw(['rev-parse', `${head}^{tree}`])).trim();
      this.lastSnapshot = { commit: head, tree };
      this.rememberCommit(head, tree);
    }
    this.outsideAttributes = await outsideAttributes(await this.git.raw([`--git-dir=${this.storeDir}`, 'config', '--list', '-z']), this.storeDir, this.workspace).catch(() => true);
  }

  private rememberCommit(commit: string, tree: string): void {
    if (this.commitTrees.size >= 10000) this.commitTrees.delete(this.commitTrees.keys().next().value!);
    this.commitTrees.set(commit, tree);
  }

  /**
   * Writes a commit object with the store's identity, the body `git commit-tree` would write;
   * git stores it (and checks its form) through the long-lived hash-object.
   */
  private async writeCommit(tree: string, parents: string[], message: string): Promise<string> {
    const seconds = Math.floor(Date.now() / 1000);
    const offset = -new Date(seconds * 1000).getTimezoneOffset();
    const zone = `${offset < 0 ? '-' : '+'}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')}${String(Math.abs(offset) % 60).padStart(2, '0')}`;
    const person = `${IDENTITY.name} <${IDENTITY.email}> ${seconds} ${zone}`;
    const body = `tree ${tree}\n${parents.map((parent) => `parent ${parent}\n`).join('')}author ${person}\ncommitter ${person}\n\n${message}\n`;
    const commit = await this.processes.writeCommit(body).catch(async () => (await this.raw(['commit-tree', tree, ...parents.flatMap((parent) => ['-p', parent]), '-m', message])).trim());
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
      const previous = this.lastSnapshot;
      // The diff a step asks for next (ground(), from the last snapshot to this one) is asked of
      // git while it stores the commit: it needs only the trees, stored by now.
      const diff = previous ? this.processes.diff(previous.tree, tree) : undefined;
      diff?.catch(() => undefined);
      const commit = await this.writeCommit(tree, previous ? [previous.commit] : [], 'snapshot');
      this.lastSnapshot = { commit, tree };
      this.diffAhead = previous && diff ? { before: previous.commit, after: commit, output: diff } : undefined;
      // The run's ref moves once the work this snapshot returns to (the diff) is done, before the
      // store's next use (same lock). It keeps snapshots from being collected and tells a resumed
      // run where it was.
      this.pendingRef = withStoreLock(this.storeDir, async () => {
        await new Promise((resolve) => setImmediate(resolve));
        await this.processes.setRef(this.ref, commit).catch(() => this.raw(['update-ref', this.ref, commit]));
      });
      this.pendingRef.catch(() => undefined);
      return commit;
    });
  }

  /** Waits until the run's ref points at the last snapshot (snapshot() does not wait for it). */
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
    // A name that lost bytes on its way here (not UTF-8) is handed to git as its folder.
    if (scope) scope = [...new Set(scope.map(wholeName))];
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
    const changed = status ? await status : scope!;
    if (patching && changed.length + unit.drift.size <= MAX_INDEX_DRIFT) {
      // What status found is patched into the last tree too. The index stays behind for those
      // files; status names them again (their stat then vouches for them), except a file that
      // only a patch added and that is gone now, which the drift list remembers.
      const patched = await this.patch(unit, [...new Set([...changed, ...unit.drift])], untracked);
      if (patched) return patched;
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
      const large = await this.oversizedAmong(
        unit,
        untracked.filter((entry) => !entry.endsWith('/')),
      );
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
      await this.add(
        unit,
        pathspecs.slice(i, i + PATHSPEC_BATCH),
        excluded.map((entry) => `:(exclude,literal)${entry}`),
      );
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
      // A name git could not take on a line, or one that is no plain tree path: the index.
      if (!isTreePath(relative) || /[\n\r]/.test(relative)) return undefined;
      const stat = lstatSync(path.join(this.workspace, relative), { throwIfNoEntry: false });
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
      result = await patchTree(unit.baseTree!, changes, this.objectAccess, this.maxFileBytes, process.platform !== 'win32');
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
        } else if (!entry.isFile() || lstatSync(path.join(this.workspace, relative)).size <= this.maxFileBytes) {
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

  /** A tree's entries, from memory or read by the long-lived cat-file. */
  private async listTree(id: string): Promise<TreeEntry[] | undefined> {
    const cached = this.listings.get(id);
    if (cached) return cached;
    const entries = await this.processes.listTree(id);
    if (entries) this.rememberListing(id, entries);
    return entries;
  }

  /**
   * Reads, writes and ignore checks for patching trees; no index is read by any of them. Git does
   * each through a long-lived process, except blobs that attributes could filter: `hash-object`
   * with filters hashes those, as `git add` would store them.
   */
  private createObjectAccess(): ObjectAccess {
    const run = (args: string[]) => this.gitWithIndex(this.noIndex).raw([`--git-dir=${this.storeDir}`, `--work-tree=${this.workspace}`, '-c', 'core.autocrlf=false', ...args]);
    return {
      remember: (id, entries) => this.rememberListing(id, entries),
      listTree: async (id) => {
        const entries = await this.listTree(id);
        if (!entries) throw new Error(`The store has no tree ${id}.`);
        return entries;
      },
      writeBlobs: async (paths, attributes) => {
        if (attributes || this.outsideAttributes) return (await run(['hash-object', '-w', '--', ...paths])).split('\n').filter(Boolean);
        // No attributes apply and the store's git runs with no system config: nothing could
        // filter the content, so `git add` would store the file's bytes as they are.
        const readAt = Date.now();
        const ids = await this.processes.hash(paths);
        for (const relative of paths) {
          const state = this.hashing?.stats.get(relative);
          if (state?.kind === 'file' && settledBefore(state.stat, readAt)) this.hashing!.hashed.set(relative, statKey(state.stat));
        }
        return ids;
      },
      writeTree: (entries) => this.processes.writeTree(entries),
      ignored: async (all) => {
        const paths = all.filter((relative) => !this.hashing?.notIgnored.has(relative));
        if (!paths.length) return new Set<string>();
        const patterns = await this.processes.ignorePatterns(paths);
        const ignored = new Set<string>();
        paths.forEach((relative, index) => {
          if (patterns[index] && !patterns[index].startsWith('!')) ignored.add(relative);
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
    const status = () => this.raw(['status', '--porcelain=v1', '--branch', '-z', '--untracked-files=normal', '--no-renames', '--ignore-submodules=none'], unit);
    const output = await status().catch(async () => {
      // The commit was collected (it is referenced by nothing): compare against nothing instead.
      unit.indexCommit = undefined;
      this.writeHead('ref: refs/heads/unborn\n');
      return status();
    });
    // Status refreshes the index when it can; that write is this store's own.
    unit.indexStamp = indexStamp(unit.indexFile);
    return parseStatus(output, untracked);
  }

  /**
   * git add -A on some paths; naming an ignored file is not an error here. A file that was there
   * when it was looked at and is gone when git adds it (a job creating and deleting files in a
   * loop) makes git refuse the whole call ("pathspec did not match", or "unable to stat" for a
   * file inside a named folder): such paths are dropped unless the index knows them (then their
   * deletion is added), and the call is made again.
   */
  private async add(unit: Unit, pathspecs: string[], excludes: string[]): Promise<void> {
    let remaining = pathspecs;
    for (let attempt = 0; ; attempt++) {
      try {
        // --verbose: see status above; a changed path is always named.
        await this.raw(['add', '--all', '--verbose', '--', ...remaining.map((entry) => (entry === '.' ? entry : literal(entry))), ...excludes], unit);
        return;
      } catch (error) {
        const message = String((error as Error).message);
        if (/paths are ignored by one of your \.gitignore files/.test(message) && !/fatal:/.test(message)) return;
        // Gone between git's walk and its read of the file: the same race, inside git.
        if (!/did not match any files|unable to stat|unable to index file|No such file or directory|Not a directory/.test(message) || attempt >= 10) throw error;
        const present: string[] = [];
        const gone: string[] = [];
        for (const entry of remaining) (lstatSync(path.join(this.workspace, unit.dir, entry), { throwIfNoEntry: false }) ? present : gone).push(entry);
        const tracked = gone.length ? splitNul(await this.raw(['ls-files', '-z', '--', ...gone.map(literal)], unit)) : [];
        remaining = [...present, ...gone.filter((entry) => tracked.some((known) => within(known, entry)))];
        if (!remaining.length) return;
      }
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

  /** What changed between two snapshots: the files with line counts, and the unified diff, as git prints them. */
  async ground(before: string, after: string, options: { maxPatchBytes?: number } = {}): Promise<Grounding> {
    if (before === after) return { before, after, files: [], patch: '' };
    const maxPatchBytes = options.maxPatchBytes ?? DEFAULT_MAX_PATCH_BYTES;
    let output: string | Buffer | undefined;
    const ahead = this.diffAhead;
    try {
      if (ahead?.before === before && ahead.after === after) {
        this.diffAhead = undefined;
        output = await ahead.output;
      } else {
        const [beforeTree, afterTree] = [await this.treeOf(before), await this.treeOf(after)];
        output = await this.processes.diff(beforeTree, afterTree);
      }
      this.diffs.stdin++;
    } catch {
      // The long-lived diff-tree failed: a process of its own says what git says.
    }
    if (output === undefined) {
      this.diffs.git++;
      output = await this.reader.raw(['diff-tree', '-r', '-M', '--raw', '--numstat', '-p', '-z', '--no-color', '--no-ext-diff', '--no-textconv', before, after]);
    }
    const { files, patch: fullPatch } = parseChanges(output);
    const truncated = Buffer.byteLength(fullPatch) > maxPatchBytes;
    const patch = truncated ? Buffer.from(fullPatch).subarray(0, maxPatchBytes).toString('utf8') : fullPatch;
    return { before, after, files, patch, ...(truncated ? { patchTruncated: true } : {}) };
  }

  /** The tree a snapshot records. */
  async treeOf(snapshot: string): Promise<string> {
    const known = this.commitTrees.get(snapshot) ?? (await this.processes.treeOf(snapshot).catch(() => undefined));
    if (known) return known;
    return (await this.reader.raw(['rev-parse', `${snapshot}^{tree}`])).trim();
  }

  /**
   * Makes the workspace match snapshot `target`, given that it matches snapshot `current` now:
   * only the files that differ between the two are written or removed. Returns what changed.
   */
  async restore(current: string, target: string): Promise<FileChange[]> {
    const changes = (await this.ground(current, target, { maxPatchBytes: 0 })).files;
    // Names are bytes here: one that is not UTF-8 is removed and written under its own name.
    const raw = splitBytes(await this.rawBytes(['diff-tree', '-r', '-z', '--no-renames', current, target]));
    const top = Buffer.from(this.workspace + path.sep);
    // Raw entries come in pairs: ":oldmode newmode oldsha newsha status" then the path.
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const [, newMode, , newSha, status] = raw[i].toString('latin1').slice(1).split(' ');
      const name = raw[i + 1];
      // A tree path is checked part by part: `..notes` is a name inside the workspace.
      if (!isTreePath(name.toString('latin1'))) throw new Error(`The snapshot names a path outside the workspace: ${name.toString('utf8')}`);
      const file = Buffer.concat([top, name]);
      const slash = file.lastIndexOf(0x2f);
      const folder = file.subarray(0, slash);
      await fs.rm(file, { force: true, recursive: status === 'D' ? false : true }).catch(() => undefined);
      if (status === 'D') {
        await removeEmptyFoldersBytes(folder, top.length - 1);
        continue;
      }
      const content = await this.reader.showBuffer([newSha]);
      await fs.mkdir(folder, { recursive: true });
      if (newMode === '120000') await fs.symlink(content, file);
      else await fs.writeFile(file, content, { mode: newMode === '100755' ? 0o755 : 0o644 });
    }
    return changes;
  }

  /**
   * A git command's output as bytes (file names that are not UTF-8 kept whole). Through
   * child_process: simple-git gives text only, and this command's output carries names.
   */
  private rawBytes(args: string[]): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      execFile(
        'git',
        args,
        { cwd: this.workspace, env: { ...storeEnvironment(this.noIndex, this.drivers), GIT_DIR: this.storeDir }, encoding: 'buffer', maxBuffer: 1 << 30 },
        (error, stdout, stderr) => (error ? reject(new Error(`git ${args[0]} failed: ${stderr.toString('utf8').trim() || error.message}`)) : resolve(stdout)),
      );
    });
  }

  /** A file's content in a snapshot, or undefined when the snapshot has no such file. */
  async readFile(snapshot: string, filePath: string): Promise<Buffer | undefined> {
    const relative = filePath.split(path.sep).join('/').replace(/^\/+/, '');
    try {
      return await this.reader.showBuffer([`${snapshot}:${relative}`]);
    } catch {
      return undefined;
    }
  }
}

const splitBytes = (buffer: Buffer): Buffer[] => {
  const fields: Buffer[] = [];
  let at = 0;
  for (let nul = buffer.indexOf(0); nul >= 0; nul = buffer.indexOf(0, at)) {
    if (nul > at) fields.push(buffer.subarray(at, nul));
    at = nul + 1;
  }
  if (at < buffer.length) fields.push(buffer.subarray(at));
  return fields;
};

/** Removes folders left empty by a restore, up to the workspace (`topLength` bytes of the path), names as bytes. */
async function removeEmptyFoldersBytes(dir: Buffer, topLength: number): Promise<void> {
  while (dir.length > topLength) {
    const entries = await fs.readdir(dir).catch(() => undefined);
    if (!entries || entries.length) return;
    await fs.rmdir(dir).catch(() => undefined);
    dir = dir.subarray(0, dir.lastIndexOf(0x2f));
  }
}
