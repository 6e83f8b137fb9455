/**
 * Tells the shadow store which paths changed since its last snapshot, so a snapshot costs in
 * proportion to what changed rather than to the size of the workspace. When it cannot be sure
 * (not started, a watch failed, a flood of events, or time for the periodic check) it answers
 * "unknown" and the store falls back to a full stat pass, so a missed event never loses a change.
 *
 * Bounded: the changed paths (`maxPaths`) and the names waiting to be checked after a rename (one
 * entry per name however many events it gets, at most `maxPaths`) — past either bound the
 * watcher collapses into "everything may have changed": the next snapshot does a full pass and
 * the watch is laid anew over the whole tree. A snapshot waits for the pending work at most
 * `SETTLE_ROUNDS` rounds; a job renaming paths in a loop never lets it settle, so then the
 * snapshot is a full pass too. Memory stays bounded whatever the event rate.
 */
import { type FSWatcher, promises as fs, watch } from 'node:fs';
import path from 'node:path';

export interface ChangeFeed {
  /** Workspace-relative paths changed since the last call, or undefined when a full pass is needed. */
  take(): Promise<string[] | undefined>;
}

export interface WatcherOptions {
  /** Past this many changed paths a full pass is cheaper and surer. */
  maxPaths?: number;
  /** Every this many snapshots, a full pass checks that nothing was missed. */
  fullPassEvery?: number;
  /** Workspace-relative folders not watched: the dataset folder, excluded dependency folders. */
  skip?: (relativeDir: string, name: string) => boolean;
  /** Forces one recursive watch even on Linux (tests compare both ways). */
  nativeRecursive?: boolean;
}

const toPosix = (value: string) => value.split(path.sep).join('/');
/** Names whose change may mean a bare repository appeared (git's test: HEAD, objects/, refs/). */
const BARE_REPO_NAMES = new Set(['HEAD', 'config', 'objects', 'refs', 'commondir']);
/** Rounds a snapshot waits for pending watch work before it settles for a full pass. */
const SETTLE_ROUNDS = 20;
/** Names checked at once after renames. */
const FOLLOW_BATCH = 64;
const isGitPath = (relative: string) => relative === '.git' || relative.startsWith('.git/') || relative.endsWith('/.git') || relative.includes('/.git/');

export class WorkspaceWatcher implements ChangeFeed {
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly changed = new Set<string>();
  /** Folders being added to the watch; a snapshot waits for them. */
  private readonly pending = new Set<Promise<void>>();
  /** Names to check after a rename event, each once: coalesced, bounded by maxPaths. */
  private readonly toFollow = new Set<string>();
  private following: Promise<void> | undefined;
  /** The follow-ups overflowed: the whole tree is walked again before the watch is trusted. */
  private rewalk = false;
  private readonly gitListeners: (() => void)[] = [];
  /** Folders watched after a rename, by device and inode: where each one was last seen. */
  private readonly followedFolders = new Map<string, string>();
  private trusted = false;
  /** Set once the first watch is laid; what addTree finds later is new. */
  private startedAt = 0;
  private failed = false;
  private sinceFullPass = 0;
  private readonly maxPaths: number;
  private readonly fullPassEvery: number;
  private readonly skip: (relativeDir: string, name: string) => boolean;
  private readonly nativeRecursive: boolean;

  constructor(
    readonly workspace: string,
    options: WatcherOptions = {},
  ) {
    this.maxPaths = options.maxPaths ?? 2000;
    this.fullPassEvery = options.fullPassEvery ?? 50;
    this.skip = options.skip ?? (() => false);
    // Linux has no native recursive watch; Node emulates it with a watcher and a stat per file,
    // which does not scale, so there Apollo watches each folder itself.
    this.nativeRecursive = options.nativeRecursive ?? process.platform !== 'linux';
  }

  /** True while changes are being watched (false after a watch failed). */
  get active(): boolean {
    return this.watchers.size > 0 && !this.failed;
  }

  async start(): Promise<void> {
    if (this.nativeRecursive) {
      this.watchFolder('', true);
    } else {
      await this.addTree('');
    }
    this.startedAt = Date.now();
  }

  private watchFolder(relativeDir: string, recursive = false): void {
    if (this.watchers.has(relativeDir) || this.failed) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(path.join(this.workspace, relativeDir), { persistent: false, recursive }, (event, filename) => this.onEvent(relativeDir, event, filename));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A folder that vanished meanwhile (renamed in a loop): the next snapshot is a full pass.
      if (relativeDir !== '' && (code === 'ENOENT' || code === 'ENOTDIR')) return this.distrust();
      // Out of watches (inotify limit): fall back to full passes.
      this.fail();
      return;
    }
    watcher.on('error', () => {
      watcher.close();
      this.watchers.delete(relativeDir);
      if (relativeDir === '') this.fail();
      else this.distrust();
    });
    this.watchers.set(relativeDir, watcher);
  }

  /** Watches a folder and every folder below it that is not skipped. */
  private addTree(relativeDir: string): Promise<void> {
    const work = (async () => {
      this.watchFolder(relativeDir);
      let entries;
      try {
        entries = await fs.readdir(path.join(this.workspace, relativeDir), { withFileTypes: true });
      } catch {
        return;
      }
      const children: Promise<void>[] = [];
      // A folder that arrived with a repository inside (`git init sub` creates both before the
      // watch on sub exists): said like an event under `.git`.
      if (this.startedAt && this.gitListeners.length && entries.some((entry) => entry.name === '.git' || BARE_REPO_NAMES.has(entry.name))) {
        for (const listener of this.gitListeners) listener();
      }
      for (const entry of entries) {
        if (!entry.isDirectory() || entry.name === '.git' || this.skip(relativeDir, entry.name)) continue;
        children.push(this.addTree(relativeDir ? `${relativeDir}/${entry.name}` : entry.name));
      }
      await Promise.all(children);
    })();
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
    return work;
  }

  private onEvent(relativeDir: string, event: string, filename: string | Buffer | null): void {
    if (filename === null || filename === undefined) {
      // The kernel's queue overflowed (or an event came without a name): renames may have been
      // missed, so the watch is laid anew before it is trusted again.
      this.rewalk = true;
      return this.distrust();
    }
    const name = toPosix(filename.toString());
    const relative = relativeDir ? `${relativeDir}/${name}` : name;
    if (this.gitListeners.length && (isGitPath(relative) || BARE_REPO_NAMES.has(path.posix.basename(relative)))) {
      for (const listener of this.gitListeners) listener();
    }
    // A folder became (or stopped being) a repository of its own: it is snapshotted differently
    // from then on, which only a full pass works out.
    if (relative.endsWith('/.git') && event === 'rename') return this.distrust();
    // Changes inside a git directory (the user's or a nested repository's) are not content.
    if (isGitPath(relative)) return;
    if (this.changed.size >= this.maxPaths) return this.distrust();
    this.changed.add(relative);
    if (!this.nativeRecursive && event === 'rename') this.followRename(relative);
  }

  /**
   * Called on every change under a `.git` name (a repository's metadata, also one the watch does
   * not read into: the workspace's own `.git`) and on names that make up a bare repository.
   */
  onGitMetadataChange(listener: () => void): void {
    this.gitListeners.push(listener);
  }

  /** A name appeared or went away: queued once for `follow`, however many events it gets. */
  private followRename(relative: string): void {
    if (this.rewalk) return;
    if (this.toFollow.size >= this.maxPaths) {
      // A flood of renames: walking the tree again later is cheaper than following each.
      this.toFollow.clear();
      this.rewalk = true;
      this.distrust();
      return;
    }
    this.toFollow.add(relative);
    if (!this.following) {
      this.following = this.drainFollow().finally(() => (this.following = undefined));
    }
  }

  private async drainFollow(): Promise<void> {
    while (this.toFollow.size && !this.failed) {
      const batch = [...this.toFollow].slice(0, FOLLOW_BATCH);
      for (const relative of batch) this.toFollow.delete(relative);
      await Promise.all(batch.map((relative) => this.follow(relative)));
    }
  }

  /** Watch a new folder, forget a removed one. */
  private async follow(relative: string): Promise<void> {
    const stat = await fs.lstat(path.join(this.workspace, relative)).catch(() => undefined);
    if (stat?.isDirectory()) {
      // A watch follows a folder, not its name: one seen under another name before has moved,
      // and its old name's watches would report changes under the wrong path.
      const key = `${stat.dev}:${stat.ino}`;
      const before = this.followedFolders.get(key);
      if (before !== undefined && before !== relative) this.unwatch(before);
      this.followedFolders.set(key, relative);
      const parent = path.posix.dirname(relative);
      if (!this.watchers.has(relative) && !this.skip(parent === '.' ? '' : parent, path.posix.basename(relative))) await this.addTree(relative);
    } else if (!stat) {
      this.unwatch(relative);
    }
  }

  /** Stops watching a folder and everything below it. */
  private unwatch(relative: string): void {
    const below = (dir: string) => dir === relative || dir.startsWith(`${relative}/`);
    for (const [dir, watcher] of this.watchers) {
      if (!below(dir)) continue;
      watcher.close();
      this.watchers.delete(dir);
    }
    for (const [key, dir] of this.followedFolders) if (below(dir)) this.followedFolders.delete(key);
  }

  private distrust(): void {
    this.trusted = false;
    this.changed.clear();
  }

  private fail(): void {
    this.failed = true;
    this.distrust();
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  async take(): Promise<string[] | undefined> {
    // Events the kernel queued for writes that have finished are read in a poll phase. Called
    // from an I/O callback, one setImmediate would run before the loop polls again; two make
    // sure a whole poll phase comes in between. Folders created meanwhile must be watched
    // before the snapshot starts.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    if (this.rewalk && !this.failed) {
      // Renames were not followed: a watch may sit on a folder that now has another name. Laid anew.
      this.rewalk = false;
      for (const [dir, watcher] of this.watchers) {
        if (dir === '') continue;
        watcher.close();
        this.watchers.delete(dir);
      }
      this.followedFolders.clear();
      await this.addTree('');
    }
    // Bounded: events that keep coming (a job renaming in a loop) never let the work settle.
    let settled = false;
    for (let round = 0; round < SETTLE_ROUNDS; round++) {
      if (!this.pending.size && !this.following && !this.toFollow.size) {
        settled = true;
        break;
      }
      await Promise.all([...this.pending, this.following]);
    }
    const paths = [...this.changed];
    this.changed.clear();
    const known = this.active && this.trusted && settled && !this.rewalk && this.sinceFullPass < this.fullPassEvery;
    // From here on, events describe changes after this snapshot; with watch work still pending, a
    // new folder may not be watched yet, so the next snapshot is a full pass too.
    this.trusted = this.active && settled && !this.rewalk;
    if (!known) {
      this.sinceFullPass = 0;
      return undefined;
    }
    this.sinceFullPass++;
    return paths;
  }

  /** Names waiting to be checked after renames (bounded by maxPaths); for tests. */
  get pendingCount(): number {
    return this.toFollow.size + this.pending.size;
  }

  dispose(): void {
    this.toFollow.clear();
    this.followedFolders.clear();
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    this.trusted = false;
  }
}
