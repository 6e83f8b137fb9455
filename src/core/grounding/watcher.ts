/**
 * Tells the shadow store which paths changed since its last snapshot, so a snapshot costs in
 * proportion to what changed rather than to the size of the workspace. When it cannot be sure
 * (not started, a watch failed, a flood of events, or time for the periodic check) it answers
 * "unknown" and the store falls back to a full stat pass, so a missed event never loses a change.
 */
import { FSWatcher, promises as fs, watch } from 'node:fs';
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
const isGitPath = (relative: string) => relative === '.git' || relative.startsWith('.git/') || relative.endsWith('/.git') || relative.includes('/.git/');

export class WorkspaceWatcher implements ChangeFeed {
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly changed = new Set<string>();
  /** Folders being added to the watch; a snapshot waits for them. */
  private readonly pending = new Set<Promise<void>>();
  private trusted = false;
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
  }

  private watchFolder(relativeDir: string, recursive = false): void {
    if (this.watchers.has(relativeDir) || this.failed) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(path.join(this.workspace, relativeDir), { persistent: false, recursive }, (event, filename) => this.onEvent(relativeDir, event, filename));
    } catch {
      // Out of watches (inotify limit) or a folder that vanished: fall back to full passes.
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
    if (filename === null || filename === undefined) return this.distrust();
    const name = toPosix(filename.toString());
    const relative = relativeDir ? `${relativeDir}/${name}` : name;
    // A folder became (or stopped being) a repository of its own: it is snapshotted differently
    // from then on, which only a full pass works out.
    if (relative.endsWith('/.git') && event === 'rename') return this.distrust();
    // Changes inside a git directory (the user's or a nested repository's) are not content.
    if (isGitPath(relative)) return;
    if (this.changed.size >= this.maxPaths) return this.distrust();
    this.changed.add(relative);
    if (!this.nativeRecursive && event === 'rename') this.followRename(relative);
  }

  /** A name appeared or went away: watch a new folder, forget a removed one. */
  private followRename(relative: string): void {
    const check = (async () => {
      const stat = await fs.lstat(path.join(this.workspace, relative)).catch(() => undefined);
      if (stat?.isDirectory()) {
        const parent = path.posix.dirname(relative);
        if (!this.watchers.has(relative) && !this.skip(parent === '.' ? '' : parent, path.posix.basename(relative))) await this.addTree(relative);
      } else if (!stat) {
        for (const [dir, watcher] of this.watchers) {
          if (dir === relative || dir.startsWith(`${relative}/`)) {
            watcher.close();
            this.watchers.delete(dir);
          }
        }
      }
    })();
    this.pending.add(check);
    void check.finally(() => this.pending.delete(check));
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
    while (this.pending.size) await Promise.all([...this.pending]);
    const paths = [...this.changed];
    this.changed.clear();
    const known = this.active && this.trusted && this.sinceFullPass < this.fullPassEvery;
    // From here on, events describe changes after this snapshot.
    this.trusted = this.active;
    if (!known) {
      this.sinceFullPass = 0;
      return undefined;
    }
    this.sinceFullPass++;
    return paths;
  }

  dispose(): void {
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    this.trusted = false;
  }
}
