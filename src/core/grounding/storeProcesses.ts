/**
 * A shadow store's object work through long-lived git processes (gitProcess.ts): reading objects
 * (`cat-file --batch`), hashing workspace files (`hash-object -w --no-filters --stdin-paths`),
 * writing trees (`mktree --batch`) and commits, moving the run's ref (`update-ref --stdin`) and
 * diffing two trees (`diff-tree --stdin`). Git does all of it: objects, trees and patches are
 * git's own, byte for byte, with every option the user set.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { endsWith, type Framer, GitProcess, lines } from './gitProcess';

export interface TreeEntry {
  mode: string;
  /** Hex object id. */
  id: string;
  name: string;
}

/** A path in git's C-quoted form when it has characters a line-based request cannot carry as they are. */
export function quotePathLine(relative: string): string {
  if (!/["\\\x00-\x1f\x7f]/.test(relative)) return relative;
  let quoted = '"';
  for (const char of relative) {
    const code = char.charCodeAt(0);
    if (char === '"' || char === '\\') quoted += `\\${char}`;
    else if (char === '\n') quoted += '\\n';
    else if (char === '\t') quoted += '\\t';
    else if (code < 0x20 || code === 0x7f) quoted += `\\${code.toString(8).padStart(3, '0')}`;
    else quoted += char;
  }
  return `${quoted}"`;
}

/** `cat-file --batch`: a header line, then the object and a newline; or "<name> missing". */
const catFileAnswer: Framer = (received) => {
  const newline = received.indexOf(10);
  if (newline < 0) return undefined;
  const header = received.subarray(0, newline).toString('utf8');
  const size = /^[0-9a-f]{40} \S+ (\d+)$/.exec(header);
  if (!size) return newline + 1;
  const total = newline + 1 + Number(size[1]) + 1;
  return received.length >= total ? total : undefined;
};

/** What tells one set of packs from another: the pack folder's change time and names. */
function packStamp(dir: string): string {
  const stat = statSync(dir, { throwIfNoEntry: false, bigint: true });
  return stat ? `${stat.mtimeNs}:${stat.ctimeNs}:${stat.ino}` : 'none';
}

/** Answers of `count` NUL-ended fields. */
const nulFields =
  (count: number): Framer =>
  (received) => {
    let at = -1;
    for (let i = 0; i < count; i++) {
      at = received.indexOf(0, at + 1);
      if (at < 0) return undefined;
    }
    return at + 1;
  };

/** Reads a tree object's body: "<mode> <name>\0<20-byte id>" per entry (gitformat-tree). */
function parseTree(body: Buffer): TreeEntry[] {
  const entries: TreeEntry[] = [];
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(32, at);
    const nul = body.indexOf(0, space);
    const name = body.subarray(space + 1, nul);
    // A name that is not UTF-8 would not survive as a string: such a folder is left to the index.
    if (!Buffer.from(name.toString('utf8'), 'utf8').equals(name)) throw new Error('A tree entry name is not UTF-8.');
    entries.push({ mode: body.subarray(at, space).toString('latin1'), name: name.toString('utf8'), id: body.subarray(nul + 1, nul + 21).toString('hex') });
    at = nul + 21;
  }
  return entries;
}

/** The files commit bodies go through, removed when the process ends (each is also removed when idle). */
const scratchFiles = new Set<string>();
process.on('exit', () => {
  for (const file of scratchFiles) rmSync(file, { force: true });
});
const SCRATCH_IDLE_MS = 30_000;

export class StoreProcesses {
  private readonly catFile: GitProcess;
  private readonly hashFiles: GitProcess;
  private readonly hashCommits: GitProcess;
  private readonly mktree: GitProcess;
  private readonly updateRef: GitProcess;
  private readonly diffTree: GitProcess;
  private readonly checkIgnore: GitProcess;
  /** The store's packs when diff-tree started: it sizes abbreviated names by them, once. */
  private packsSeen: string | undefined;
  private readonly packDir: string;
  private readonly marker = `apollo-end-${randomBytes(12).toString('hex')}`;
  private readonly scratch: string;
  private scratchTimer: NodeJS.Timeout | undefined;
  private commitWrites: Promise<unknown> = Promise.resolve();

  /**
   * `env` is the store's environment (GIT_DIR among it); files are hashed relative to `workspace`.
   */
  constructor(storeDir: string, workspace: string, env: Record<string, string>) {
    const at = (cwd: string, args: string[]) => new GitProcess({ args: [`--git-dir=${storeDir}`, ...args], cwd, env });
    this.catFile = at(storeDir, ['cat-file', '--batch']);
    // No filters: the store hashes workspace files this way only where no attributes apply (the
    // caller checks), and there `git add` would store the bytes as they are.
    this.hashFiles = at(workspace, ['-c', 'core.autocrlf=false', 'hash-object', '-w', '--no-filters', '--stdin-paths']);
    this.hashCommits = at(storeDir, ['hash-object', '-w', '-t', 'commit', '--stdin-paths']);
    // --missing: the entries come from trees and blobs just stored; checking each one's type costs a read per entry.
    this.mktree = at(storeDir, ['mktree', '-z', '--missing', '--batch']);
    this.updateRef = at(storeDir, ['update-ref', '--stdin']);
    this.diffTree = at(storeDir, ['diff-tree', '--stdin', '-r', '-M', '--raw', '--numstat', '-p', '-z', '--no-color', '--no-ext-diff', '--no-textconv']);
    this.checkIgnore = at(workspace, [`--work-tree=${workspace}`, 'check-ignore', '--stdin', '-z', '-v', '-n', '--no-index']);
    this.packDir = path.join(storeDir, 'objects', 'pack');
    this.scratch = path.join(storeDir, 'apollo-index', `commits-${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  /** An object by name (an id or any revision git takes on one line), or undefined when there is none. */
  async read(name: string): Promise<{ id: string; type: string; body: Buffer } | undefined> {
    if (/[\n\r]/.test(name)) return undefined;
    const answer = await this.catFile.request(`${name}\n`, catFileAnswer);
    const newline = answer.indexOf(10);
    const header = /^([0-9a-f]{40}) (\S+) (\d+)$/.exec(answer.subarray(0, newline).toString('utf8'));
    if (!header) return undefined;
    return { id: header[1], type: header[2], body: answer.subarray(newline + 1, answer.length - 1) };
  }

  async listTree(id: string): Promise<TreeEntry[] | undefined> {
    const object = await this.read(id);
    return object?.type === 'tree' ? parseTree(object.body) : undefined;
  }

  /** The tree a commit records; undefined when the store has no such commit. */
  async treeOf(commit: string): Promise<string | undefined> {
    return (await this.read(`${commit}^{tree}`))?.id;
  }

  /** Stores workspace files (workspace-relative) as blobs; their ids in order. */
  async hash(relativePaths: string[]): Promise<string[]> {
    if (!relativePaths.length) return [];
    const answer = await this.hashFiles.request(relativePaths.map((relative) => `${quotePathLine(relative)}\n`).join(''), lines(relativePaths.length));
    return answer.toString('utf8').split('\n').slice(0, relativePaths.length);
  }

  /** Stores a tree of these entries (git sorts them) and returns its id. */
  async writeTree(entries: TreeEntry[]): Promise<string> {
    const type = (mode: string) => (mode === '40000' ? 'tree' : mode === '160000' ? 'commit' : 'blob');
    const body = entries.map((entry) => `${entry.mode} ${type(entry.mode)} ${entry.id}\t${entry.name}\0`).join('');
    return (await this.mktree.request(`${body}\0`, lines(1))).toString('utf8').trim();
  }

  /**
   * Stores a commit object with this body; git checks its form. The body goes through one file,
   * written over for each commit (one at a time): creating or truncating a file costs a journal
   * write on most file systems, writing over the same bytes does not, and snapshot commits all
   * have the same length.
   */
  writeCommit(body: string): Promise<string> {
    const written = this.commitWrites.then(async () => {
      this.writeScratch(Buffer.from(body, 'utf8'));
      return (await this.hashCommits.request(`${quotePathLine(this.scratch)}\n`, lines(1))).toString('utf8').trim();
    });
    this.commitWrites = written.catch(() => undefined);
    return written;
  }

  private writeScratch(content: Buffer): void {
    let fd: number;
    try {
      fd = openSync(this.scratch, 'r+');
    } catch {
      // Not made yet, or removed (a gc empties the store's scratch folder).
      mkdirSync(path.dirname(this.scratch), { recursive: true });
      fd = openSync(this.scratch, 'w');
    }
    try {
      writeSync(fd, content, 0, content.length, 0);
      if (fstatSync(fd).size > content.length) ftruncateSync(fd, content.length);
    } finally {
      closeSync(fd);
    }
    scratchFiles.add(this.scratch);
    // Left idle, or when the process ends, the file goes.
    if (this.scratchTimer) clearTimeout(this.scratchTimer);
    this.scratchTimer = setTimeout(() => this.removeScratch(), SCRATCH_IDLE_MS);
    this.scratchTimer.unref();
  }

  private removeScratch(): void {
    if (this.scratchTimer) clearTimeout(this.scratchTimer);
    this.scratchTimer = undefined;
    // A commit under way keeps its file: the next one finds it gone and makes it again.
    void this.commitWrites.then(() => {
      if (this.scratchTimer) return;
      scratchFiles.delete(this.scratch);
      rmSync(this.scratch, { force: true });
    });
  }

  /** Points `ref` at `id` in one transaction (no hook runs: gitEnvironment). */
  async setRef(ref: string, id: string): Promise<void> {
    const answer = await this.updateRef.request(`start\nupdate ${ref} ${id}\ncommit\n`, lines(2));
    if (!answer.toString('utf8').endsWith('commit: ok\n')) throw new Error(`git update-ref answered: ${answer.toString('utf8').trim()}`);
  }

  /** `diff-tree -r -M --raw --numstat -p -z` of two trees, as git prints it (bytes: names may not be UTF-8). */
  async diff(before: string, after: string): Promise<Buffer> {
    // Git sizes the abbreviated names a patch shows by the number of packed objects, counted
    // when the process starts: after a gc (or any new pack) a new process counts again.
    const packs = packStamp(this.packDir);
    if (this.packsSeen !== undefined && packs !== this.packsSeen) this.diffTree.restart();
    this.packsSeen = packs;
    const pair = `${before} ${after}\n`;
    const header = Buffer.from(pair);
    const answer = await this.diffTree.request(`${pair}${this.marker}\n`, endsWith(`${this.marker}\n`));
    // git echoes the pair before its diff; a pair it could not read is left out silently.
    if (!answer.subarray(0, header.length).equals(header)) throw new Error(`git diff-tree could not compare ${before} and ${after}.`);
    return answer.subarray(header.length, answer.length - this.marker.length - 1);
  }

  /**
   * The pattern that decides each path's ignore status (.gitignore files, the store's excludes,
   * the user's), or '' where none matches; a pattern starting with "!" keeps the path.
   */
  async ignorePatterns(relativePaths: string[]): Promise<string[]> {
    if (!relativePaths.length) return [];
    // -z -v -n: four NUL-ended fields per path (source, line, pattern, path), in order.
    const answer = await this.checkIgnore.request(relativePaths.map((relative) => `${relative}\0`).join(''), nulFields(relativePaths.length * 4));
    const fields = answer.toString('utf8').split('\0');
    return relativePaths.map((_, index) => fields[index * 4 + 2] ?? '');
  }

  dispose(): void {
    for (const process of [this.catFile, this.hashFiles, this.hashCommits, this.mktree, this.updateRef, this.diffTree, this.checkIgnore]) process.dispose();
    this.removeScratch();
  }
}
