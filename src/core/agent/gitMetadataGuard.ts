/**
 * Git metadata the agent cannot turn into code that runs outside the sandbox.
 *
 * Git runs programs named by a repository's own metadata: `core.fsmonitor` on every `git status`,
 * hooks (`post-index-change`, `pre-commit`, …), `diff.*.textconv`, `filter.*`, `core.pager`,
 * `credential.helper`, … A repository the agent can write would therefore run the agent's code on
 * the host the next time VS Code's git extension or a shell prompt runs git there. Two measures,
 * one for each kind of repository:
 *
 * 1. What exists when a command starts is read-only to it. `scanGitMetadata` walks the workspace
 *    (bounded: `maxDirs` folders, breadth first) and finds every git metadata location: `.git`
 *    folders and `.git` files at any depth, the gitdir a `.git` file points to (and that gitdir's
 *    `commondir`) when it lies inside the workspace, and bare repositories (a folder holding
 *    `HEAD`, `objects/` and `refs/`, which git discovers when a shell stands in it). The sandbox
 *    (sandbox.ts, workspace step) binds each of them read-only over itself. The result is cached per
 *    guard (one per ToolRunner, so per run) and refreshed cheaply: a folder whose inode and mtime are
 *    unchanged is not read again, only stat-ed (a new `.git` entry changes its parent's mtime).
 *    Past `maxDirs` the scan stops: repositories deeper in a larger workspace are not made
 *    read-only, and the guard says so once (a notice in the run); what the agent creates there is
 *    still caught by measure 2 when its folder lies within the scanned part.
 *
 * 2. What a command creates while it runs (`git init` at a non-git root, `cargo new` in a
 *    subfolder, a `.git` file with `gitdir: ./.bare`, a bare repository referenced later) is caught
 *    and neutralised: `check()` runs synchronously after every command (before run_command returns
 *    its observation), after every file write, when a job's output is read and when a job ends,
 *    and — between those — whenever the workspace watcher reports a change under a `.git` name
 *    (`poke()`, debounced by `LIVE_DELAY_MS`). For every repository that did not exist when the run
 *    started (the user's own repositories are never touched: they were read-only to every command)
 *    it
 *    - rewrites `config` and `config.worktree` keeping only an allow list of keys known to run
 *      nothing (`SAFE_CONFIG_KEYS`). An allow list rather than a deny list: git keeps adding keys
 *      that run programs (`core.fsmonitor`, `core.hooksPath`, `core.sshCommand`, `core.pager`,
 *      `core.editor`, `core.askPass`, `core.alternateRefsCommand`, `credential.*`,
 *      `diff.external`, `diff.*.textconv`, `diff.*.command`, `merge.*.driver`, `filter.*`,
 *      `gpg.program`, `gpg.*.program`, `sequence.editor`, `uploadpack.*Hook`,
 *      `remote.*.uploadpack`, `include.path`, `includeIf.*`, `alias.*`, `pager.*`,
 *      `hook.*.command` since git 2.46, …); a key missing from the allow list costs a setting,
 *      a key missing from a deny list costs the host. The config is read with git itself
 *      (`git config --file F --no-includes --list -z`: parsing runs nothing) and written anew.
 *      A config git cannot parse is moved aside (git then cannot open the repository either).
 *    - moves hooks aside: every entry of `hooks/` that is not a `*.sample` is renamed to
 *      `NAME.disabled-by-apollo` (nothing is lost; git only runs exact hook names), and a `hooks`
 *      that is a symlink or a file is renamed as a whole.
 *    - records what it did as a `notice` event (the run's record) and appends it to the command's
 *      observation, so the model knows.
 *    From the next command on, the repository exists at the command's start and is read-only.
 *
 * Why this is enough for VS Code's git extension (extensions/git/src/model.ts): it opens a
 * repository (and only then runs `git status`, which runs fsmonitor and index hooks) when the
 * workspace is opened (the workspace folder and subfolders up to `git.repositoryScanMaxDepth`), when
 * an editor opens a file of it (`openEditors`), or when its file watcher reports a path matching
 * `/.git/` that no open repository owns (`onPossibleGitRepositoryChange`), collected by
 * `eventuallyScanPossibleGitRepositories` behind a 500 ms debounce; `openRepository` then runs
 * `git rev-parse --show-toplevel`, which runs no configured program. So a repository the agent
 * creates is opened at the earliest 500 ms after its first `.git/` write; the guard reacts to the
 * same write within `LIVE_DELAY_MS` and again when the command ends. A `.git` file or a bare
 * repository fires no `/.git/` event at all: VS Code meets it only when the workspace is opened
 * again or a file of it is opened, long after the command ended and the guard ran.
 *
 * The window that remains: while a command or job runs, between one of its writes to a new
 * repository and the guard's next pass (a few tens of milliseconds after the watcher's event; a
 * command rewriting the config in a loop keeps reopening it), a git run on the host that reads the
 * repository at exactly that moment would run the planted program. Closing it fully needs the
 * metadata to be unwritable while it is written, which only a read-only bind can give, and that
 * exists for what existed at the command's start. A repository deeper than the scan's bound, or
 * under a folder the watcher skips, is caught only by the command-end pass if it lies within the
 * scanned part, and not at all past the bound.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, type Dirent, type FSWatcher, lstatSync, watch, openSync, readdirSync, readFileSync, readSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gitEnvironment } from '../grounding/gitEnvironment';
import { isInside } from '../paths';

/** Folders the scan reads before it stops. */
export const DEFAULT_MAX_SCAN_DIRS = 20_000;
/** How long after a watcher event under a `.git` name the guard runs. */
export const LIVE_DELAY_MS = 20;
/** Repositories created during a run whose gitdirs are watched for live passes. */
const MAX_WATCHED_GITDIRS = 64;
/** Live passes are at least this far apart. */
export const LIVE_MIN_INTERVAL_MS = 200;
const DISABLED_SUFFIX = '.disabled-by-apollo';
/** A folder whose mtime is this recent is read again rather than trusted from the cache. */
const RACY_NS = 2_000_000_000n;
/** A `.git` file is one short line; anything bigger is not git's. */
const MAX_GITFILE_BYTES = 4096;

/**
 * Config keys kept in a repository the agent created: each one only describes data (names,
 * formats, remotes' addresses, branches), none names a program or a file git would run or
 * include. `*` stands for one subsection (any text).
 */
export const SAFE_CONFIG_KEYS: readonly string[] = [
  'core.repositoryformatversion',
  'core.filemode',
  'core.bare',
  'core.logallrefupdates',
  'core.ignorecase',
  'core.precomposeunicode',
  'core.symlinks',
  'core.autocrlf',
  'core.eol',
  'core.safecrlf',
  'core.quotepath',
  'core.checkstat',
  'core.trustctime',
  'core.abbrev',
  'core.compression',
  'core.loosecompression',
  'core.preloadindex',
  'core.untrackedcache',
  'core.commentchar',
  'core.whitespace',
  'extensions.objectformat',
  'extensions.refstorage',
  'init.defaultbranch',
  'user.name',
  'user.email',
  'remote.*.url',
  'remote.*.pushurl',
  'remote.*.fetch',
  'remote.*.push',
  'remote.*.tagopt',
  'remote.*.prune',
  'remote.*.mirror',
  'branch.*.remote',
  'branch.*.merge',
  'branch.*.rebase',
  'pull.rebase',
  'pull.ff',
  'push.default',
  'fetch.prune',
  'merge.ff',
  'submodule.*.url',
  'submodule.*.active',
  'i18n.commitencoding',
  'i18n.logoutputencoding',
  'color.ui',
  'gc.auto',
];

const SAFE_KEYS = new Set(SAFE_CONFIG_KEYS.filter((key) => !key.includes('*')));
const SAFE_SUBSECTION_KEYS = new Set(SAFE_CONFIG_KEYS.filter((key) => key.includes('*')).map((key) => key.replace('.*.', '..')));

/** Whether a config key (as `git config --list` names it: section and variable lower-case) may stay. */
export function isSafeConfigKey(name: string): boolean {
  const first = name.indexOf('.');
  const last = name.lastIndexOf('.');
  if (first < 0) return false;
  const section = name.slice(0, first).toLowerCase();
  const variable = name.slice(last + 1).toLowerCase();
  if (first === last) return SAFE_KEYS.has(`${section}.${variable}`);
  return SAFE_SUBSECTION_KEYS.has(`${section}..${variable}`);
}

/** One git metadata location found in the workspace. */
export interface GitMetadataLocation {
  /** Absolute real path of a `.git` folder or file, a gitdir or a bare repository. */
  path: string;
  kind: 'git-dir' | 'git-file' | 'gitdir-target' | 'bare';
}

export interface GitMetadataScan {
  locations: GitMetadataLocation[];
  /** True when the scan stopped at its bound: deeper folders were not looked at. */
  truncated: boolean;
  dirsRead: number;
}

interface CachedDir {
  ino: bigint;
  mtimeNs: bigint;
  subdirs: string[];
  found: GitMetadataLocation[];
}

function readGitFile(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buffer = Buffer.alloc(MAX_GITFILE_BYTES);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    const match = /^gitdir:\s*(.+?)\s*$/m.exec(buffer.subarray(0, length).toString('utf8'));
    return match ? path.resolve(path.dirname(file), match[1]) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function realOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The gitdir a gitdir shares its config and hooks with (`commondir`), when it has one. */
function commonDirOf(gitDir: string): string | undefined {
  try {
    const text = readFileSync(path.join(gitDir, 'commondir'), 'utf8').slice(0, MAX_GITFILE_BYTES).trim();
    return text ? realOrUndefined(path.resolve(gitDir, text)) : undefined;
  } catch {
    return undefined;
  }
}

function looksLikeGitDir(names: Map<string, Dirent>): boolean {
  const head = names.get('HEAD');
  const objects = names.get('objects');
  const refs = names.get('refs');
  return !!head && !head.isDirectory() && !!objects?.isDirectory() && !!refs?.isDirectory();
}

/** What one folder holds of git metadata (not below it), and its subfolders to walk. */
function readFolder(dir: string, workspace: string): { subdirs: string[]; found: GitMetadataLocation[] } {
  const found: GitMetadataLocation[] = [];
  const subdirs: string[] = [];
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return { subdirs, found };
  }
  const names = new Map(entries.map((entry) => [entry.name, entry]));
  if (dir !== workspace && looksLikeGitDir(names)) {
    // A bare repository (or a gitdir kept under another name): all of it is metadata.
    found.push({ path: dir, kind: 'bare' });
    const common = commonDirOf(dir);
    if (common && isInside(common, workspace) && common !== dir) found.push({ path: common, kind: 'gitdir-target' });
    return { subdirs, found };
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.name === '.git') {
      if (entry.isDirectory()) {
        found.push({ path: full, kind: 'git-dir' });
        const common = commonDirOf(full);
        if (common && isInside(common, workspace) && common !== full) found.push({ path: common, kind: 'gitdir-target' });
      } else if (entry.isFile()) {
        found.push({ path: full, kind: 'git-file' });
        const target = realOrUndefined(readGitFile(full) ?? '');
        if (target && isInside(target, workspace) && isDir(target)) {
          found.push({ path: target, kind: 'gitdir-target' });
          const common = commonDirOf(target);
          if (common && isInside(common, workspace) && common !== target) found.push({ path: common, kind: 'gitdir-target' });
        }
      } else if (entry.isSymbolicLink()) {
        // A `.git` symlink: what it leads to is the metadata (the link itself is replaced by
        // nothing git-like without the parent changing, which a later scan sees).
        const target = realOrUndefined(full);
        if (target && isInside(target, workspace)) found.push({ path: target, kind: 'gitdir-target' });
      }
      continue;
    }
    if (entry.isDirectory()) subdirs.push(full);
  }
  return { subdirs, found };
}

/**
 * Finds the workspace's git metadata, breadth first, reading at most `maxDirs` folders; with a
 * cache from an earlier scan, folders whose inode and mtime did not change are not read again.
 */
export function scanGitMetadata(workspaceDir: string, options: { maxDirs?: number; cache?: Map<string, CachedDir>; excluded?: readonly string[] } = {}): GitMetadataScan {
  const workspace = realpathSync(workspaceDir);
  const excluded = (options.excluded ?? []).map((p) => realOrUndefined(p)).filter((p): p is string => !!p);
  const maxDirs = options.maxDirs ?? DEFAULT_MAX_SCAN_DIRS;
  const cache = options.cache;
  const seen = new Set<string>();
  const locations: GitMetadataLocation[] = [];
  const queue = [workspace];
  let dirsRead = 0;
  let truncated = false;
  for (let index = 0; index < queue.length; index++) {
    if (dirsRead >= maxDirs) {
      truncated = true;
      break;
    }
    const dir = queue[index];
    // Apollo's own folders (the dataset and its shadow store): hidden from commands, not the agent's.
    if (excluded.some((root) => isInside(dir, root))) continue;
    dirsRead++;
    let folder: { subdirs: string[]; found: GitMetadataLocation[] };
    let stat;
    try {
      stat = lstatSync(dir, { bigint: true });
    } catch {
      cache?.delete(dir);
      continue;
    }
    const cached = cache?.get(dir);
    // `.git` files are read again each time: their content may change without the folder's mtime.
    // A folder changed within the last RACY_NS may change again within the same mtime tick (the
    // kernel's clock is coarse): read it again, as git does with racily clean files.
    const racy = BigInt(Date.now()) * 1_000_000n - stat.mtimeNs < RACY_NS;
    if (cached && !racy && cached.ino === stat.ino && cached.mtimeNs === stat.mtimeNs && !cached.found.some((f) => f.kind !== 'git-dir')) {
      folder = cached;
    } else {
      folder = readFolder(dir, workspace);
      cache?.set(dir, { ino: stat.ino, mtimeNs: stat.mtimeNs, ...folder });
    }
    for (const location of folder.found) {
      if (seen.has(location.path) || excluded.some((root) => isInside(location.path, root))) continue;
      seen.add(location.path);
      locations.push(location);
    }
    queue.push(...folder.subdirs);
  }
  return { locations, truncated, dirsRead };
}

export interface GitMetadataGuardOptions {
  workspace: string;
  /** Folders the scan reads at most; default DEFAULT_MAX_SCAN_DIRS. */
  maxDirs?: number;
  /**
   * Folders outside the workspace that commands can write (the sandbox's /tmp, its package caches,
   * extra writable folders): a `.git` file of the workspace pointing there is sanitised too.
   */
  writableRoots?: () => string[];
  /** Folders not scanned: Apollo's dataset and shadow store (hidden from commands; their repositories are Apollo's). */
  excluded?: readonly string[];
  /** Receives each thing the guard did or could not do, in words for the record. */
  onNotice?: (message: string) => void;
}

/** See the module comment. One guard per run (per ToolRunner). */
export class GitMetadataGuard {
  private readonly workspace: string;
  private readonly maxDirs: number;
  private readonly cache = new Map<string, CachedDir>();
  /** Gitdirs and `.git` files that existed when the run started: the user's, never touched. */
  private baselinePaths: Set<string> | undefined;
  private last: GitMetadataScan | undefined;
  private truncationSaid = false;
  private liveTimer: NodeJS.Timeout | undefined;
  /** Watches on the gitdirs (and their hooks) of repositories created during the run. */
  private readonly gitDirWatchers = new Map<string, FSWatcher[]>();
  private lastLive = 0;
  /** What live passes did, not yet returned by `check()`. */
  private unreported: string[] = [];
  private disposed = false;

  constructor(private readonly options: GitMetadataGuardOptions) {
    this.workspace = realpathSync(options.workspace);
    this.maxDirs = options.maxDirs ?? DEFAULT_MAX_SCAN_DIRS;
  }

  /** Records what exists now as the user's own metadata. Called once, when the run starts. */
  baseline(): void {
    if (this.baselinePaths) return;
    const scan = this.scan();
    this.baselinePaths = new Set(scan.locations.map((location) => location.path));
  }

  private scan(): GitMetadataScan {
    this.last = scanGitMetadata(this.workspace, { maxDirs: this.maxDirs, cache: this.cache, excluded: this.options.excluded });
    if (this.last.truncated && !this.truncationSaid) {
      this.truncationSaid = true;
      this.options.onNotice?.(
        `The workspace has more than ${this.maxDirs} folders: git repositories below the first ${this.maxDirs} (breadth first) are not made read-only to commands, and the ones created there are not checked.`,
      );
    }
    return this.last;
  }

  /** Every git metadata location that exists now: bound read-only in the next command. */
  readOnlyPaths(): string[] {
    this.baseline();
    return this.scan().locations.map((location) => location.path);
  }

  /**
   * Neutralises every repository created since the run started (see the module comment) and
   * returns what it did, one sentence per repository changed; each is also sent to `onNotice`.
   */
  check(): string[] {
    if (this.disposed) return [];
    const earlier = this.unreported.splice(0);
    this.baseline();
    const baseline = this.baselinePaths ?? new Set<string>();
    const scan = this.scan();
    const gitDirs = new Set<string>();
    const writable = (this.options.writableRoots?.() ?? []).map((root) => realOrUndefined(root)).filter((root): root is string => !!root);
    const mayWrite = (p: string) => isInside(p, this.workspace) || writable.some((root) => isInside(p, root));
    const said: string[] = [];
    for (const location of scan.locations) {
      if (baseline.has(location.path)) continue;
      if (location.kind === 'git-file') {
        // A gitdir outside the workspace that commands can write is the agent's too.
        const target = realOrUndefined(readGitFile(location.path) ?? '');
        if (target && this.isExcluded(target)) {
          // Pointing into Apollo's own store: host git would write the store's index. Moved aside.
          const moved = moveAside(location.path);
          const message = `A .git file created during the run (${path.relative(this.workspace, location.path)}) pointed into Apollo's dataset folder; it was moved aside to ${path.basename(moved)}.`;
          said.push(message);
          this.options.onNotice?.(message);
          continue;
        }
        if (target && mayWrite(target) && isDir(target)) gitDirs.add(target);
        continue;
      }
      gitDirs.add(location.path);
    }
    for (const dir of [...gitDirs]) {
      const common = commonDirOf(dir);
      if (common && mayWrite(common) && !baseline.has(common) && !this.isExcluded(common)) gitDirs.add(common);
    }
    for (const dir of gitDirs) {
      this.watchGitDir(dir);
      const done = sanitiseGitDir(dir);
      if (!done.length) continue;
      const where = path.relative(this.workspace, dir) || '.';
      const message = `A git repository created during the run (${isInside(dir, this.workspace) ? where : dir}) was neutralised so that git run outside the sandbox cannot run its programs: ${done.join('; ')}.`;
      said.push(message);
      this.options.onNotice?.(message);
    }
    return [...earlier, ...said];
  }

  private isExcluded(p: string): boolean {
    return (this.options.excluded ?? []).some((root) => isInside(p, realOrUndefined(root) ?? path.resolve(root)));
  }

  /** A change under a `.git` name was seen: check soon (the watcher's live feed). */
  poke(): void {
    if (this.disposed || this.liveTimer) return;
    // At most one live pass per LIVE_MIN_INTERVAL_MS: a job rewriting a file named `config` in a
    // loop must not keep the scan running.
    const wait = Math.max(LIVE_DELAY_MS, this.lastLive + LIVE_MIN_INTERVAL_MS - Date.now());
    this.liveTimer = setTimeout(() => {
      this.liveTimer = undefined;
      this.lastLive = Date.now();
      try {
        // Said in the next observation too: the model learns what happened to its repository.
        this.unreported.push(...this.check());
      } catch {
        // the pass after the command retries
      }
    }, wait);
    this.liveTimer.unref();
  }

  /**
   * The workspace watcher does not look inside gitdirs: a repository created during the run is
   * watched here (its folder and its hooks), so that a config or hook written later by a command
   * still running is caught within LIVE_DELAY_MS too.
   */
  private watchGitDir(dir: string): void {
    if (this.gitDirWatchers.has(dir) || this.gitDirWatchers.size >= MAX_WATCHED_GITDIRS) return;
    const watchers: FSWatcher[] = [];
    for (const folder of [dir, path.join(dir, 'hooks')]) {
      try {
        const watcher = watch(folder, { persistent: false }, () => this.poke());
        watcher.on('error', () => watcher.close());
        watchers.push(watcher);
      } catch {
        // not there (yet): the command-end pass covers it
      }
    }
    this.gitDirWatchers.set(dir, watchers);
  }

  dispose(): void {
    for (const watchers of this.gitDirWatchers.values()) for (const watcher of watchers) watcher.close();
    this.gitDirWatchers.clear();
    this.disposed = true;
    if (this.liveTimer) clearTimeout(this.liveTimer);
    this.liveTimer = undefined;
  }
}

/** Runs git to read a config file; parsing a config runs nothing (no includes followed). */
function listConfig(file: string): { entries: [string, string | undefined][] } | { error: string } {
  try {
    const output = execFileSync('git', ['config', '--file', file, '--no-includes', '--list', '-z'], {
      cwd: path.dirname(file),
      env: gitEnvironment({ GIT_CONFIG_GLOBAL: '/dev/null', GIT_CEILING_DIRECTORIES: path.dirname(path.dirname(file)) }),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10_000,
      maxBuffer: 16 * 1024 * 1024,
    }).toString('utf8');
    const entries: [string, string | undefined][] = [];
    for (const record of output.split('\0')) {
      if (!record) continue;
      const newline = record.indexOf('\n');
      entries.push(newline < 0 ? [record, undefined] : [record.slice(0, newline), record.slice(newline + 1)]);
    }
    return { entries };
  } catch (caught) {
    const stderr = (caught as { stderr?: Buffer }).stderr?.toString('utf8').trim();
    return { error: stderr || (caught as Error).message };
  }
}

function quoteValue(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\r/g, '')}"`;
}

/** A config file holding exactly `entries` (names as git lists them). */
function renderConfig(entries: [string, string | undefined][]): string {
  const sections = new Map<string, string[]>();
  for (const [name, value] of entries) {
    const first = name.indexOf('.');
    const last = name.lastIndexOf('.');
    const section = name.slice(0, first);
    const subsection = first === last ? undefined : name.slice(first + 1, last);
    const header = subsection === undefined ? `[${section}]` : `[${section} ${quoteValue(subsection)}]`;
    const lines = sections.get(header) ?? [];
    lines.push(value === undefined ? `\t${name.slice(last + 1)}` : `\t${name.slice(last + 1)} = ${quoteValue(value)}`);
    sections.set(header, lines);
  }
  return [...sections].map(([header, lines]) => `${header}\n${lines.join('\n')}\n`).join('');
}

function moveAside(p: string): string {
  let target = `${p}${DISABLED_SUFFIX}`;
  for (let n = 2; lstatExists(target); n++) target = `${p}${DISABLED_SUFFIX}.${n}`;
  renameSync(p, target);
  return target;
}

function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function sanitiseConfig(file: string, done: string[]): void {
  let stat;
  try {
    stat = lstatSync(file);
  } catch {
    return;
  }
  const name = path.basename(file);
  if (!stat.isFile()) {
    // A symlink or folder named config: git would follow a symlink to anywhere.
    moveAside(file);
    done.push(`its ${name} (not a plain file) was moved aside`);
    return;
  }
  const listed = listConfig(file);
  if ('error' in listed) {
    moveAside(file);
    done.push(`its ${name}, which git cannot read (${listed.error.split('\n')[0]}), was moved aside`);
    return;
  }
  const removed = [...new Set(listed.entries.filter(([key]) => !isSafeConfigKey(key)).map(([key]) => key))];
  if (!removed.length) return;
  const kept = listed.entries.filter(([key]) => isSafeConfigKey(key));
  const temporary = `${file}.apollo-${process.pid}`;
  writeFileSync(temporary, renderConfig(kept), { mode: 0o644 });
  renameSync(temporary, file);
  done.push(`removed from its ${name}: ${removed.slice(0, 20).join(', ')}${removed.length > 20 ? ` and ${removed.length - 20} more` : ''}`);
}

function sanitiseHooks(hooks: string, done: string[]): void {
  let stat;
  try {
    stat = lstatSync(hooks);
  } catch {
    return;
  }
  if (!stat.isDirectory()) {
    moveAside(hooks);
    done.push('its hooks (not a plain folder) were moved aside');
    return;
  }
  const moved: string[] = [];
  for (const entry of readdirSync(hooks)) {
    if (entry.endsWith('.sample') || entry.includes(DISABLED_SUFFIX)) continue;
    moveAside(path.join(hooks, entry));
    moved.push(entry);
  }
  if (moved.length) done.push(`hooks moved aside (renamed to NAME${DISABLED_SUFFIX}): ${moved.slice(0, 20).join(', ')}`);
}

/** Neutralises one gitdir; returns what it changed. */
export function sanitiseGitDir(gitDir: string): string[] {
  const done: string[] = [];
  for (const file of ['config', 'config.worktree']) {
    try {
      sanitiseConfig(path.join(gitDir, file), done);
    } catch (caught) {
      done.push(`its ${file} could not be checked (${(caught as Error).message})`);
    }
  }
  try {
    sanitiseHooks(path.join(gitDir, 'hooks'), done);
  } catch (caught) {
    done.push(`its hooks could not be checked (${(caught as Error).message})`);
  }
  return done;
}
