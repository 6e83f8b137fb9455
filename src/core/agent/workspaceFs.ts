/**
 * Every host-side file operation on a path the agent named: read, write, list, locate. The file
 * tools run on the host, outside the command sandbox, while the agent's own background jobs may
 * change the workspace under them (swap a folder for a symlink to the host in a loop). So no
 * operation here resolves a path and then opens it by name: it walks the path one component at a
 * time from a file descriptor of the workspace root, and never lets the kernel follow a symlink.
 *
 * How (Linux): Node has no openat(2), but `/proc/self/fd/<fd>/<name>` is the same thing. The
 * kernel resolves `/proc/self/fd/<fd>` to the directory the descriptor holds (not by its path),
 * and with a single-component `<name>` and O_NOFOLLOW the lookup is openat(fd, name, O_NOFOLLOW).
 * - Each intermediate folder is opened O_DIRECTORY|O_NOFOLLOW relative to the previous one.
 * - A symlink met on the way is read (readlink, fd-relative); when its target stays inside the
 *   workspace lexically, the walk starts again from the root with the target substituted (at most
 *   40 links), else the path is refused. A swap during the re-walk meets O_NOFOLLOW again: it is
 *   substituted or refused, never followed. Symlinks inside the workspace keep working.
 * - Lexical `..` that leaves the workspace and absolute paths outside it are refused before walking.
 * - Reads open the file O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_NOCTTY and fstat it: anything but a regular
 *   file (FIFO, socket, device) is refused at once, never waited on.
 * - Writes create a temporary file O_CREAT|O_EXCL|O_NOFOLLOW in the held parent folder and rename it
 *   over the name, both fd-relative: atomic, the existing file's mode kept. Missing parents are
 *   made one at a time with mkdir (which never follows a final symlink). A file with more than one
 *   hard link is refused: its other link may be outside the workspace.
 * - The dataset folder and the shadow store are refused by identity: the (device, inode) of every
 *   folder walked is compared with theirs, so a rename or a symlink inside the workspace does not
 *   lead into them; and by name, for the parts that do not exist yet. Writes into the
 *   repository's .git folder are refused the same two ways.
 * - Listings read the held folder (`/proc/self/fd/<fd>`). Every descriptor is closed on every path.
 *
 * Elsewhere (macOS, Windows, a Linux without /proc): the path's real location is checked first
 * (every symlink followed, dangling ones too) and the file then opened with O_NOFOLLOW, which covers
 * only the last component. That check is not race-free: a folder swapped for a symlink between the
 * check and the open is followed. There is no command sandbox there either; commands go through
 * the command policy, which asks before or refuses what it flags.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants as C,
  existsSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  promises as fs,
  readFile as readFileCallback,
  readlinkSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeFile as writeFileCallback,
} from 'node:fs';
import path from 'node:path';
import { isInside } from '../paths';

export class PathRefusedError extends Error {}

/** Symlinks followed before a path counts as a loop (Linux's own limit). */
export const MAX_SYMLINKS = 40;

const PROC_FD = '/proc/self/fd';
const O_NOFOLLOW = C.O_NOFOLLOW ?? 0;
const O_NONBLOCK = C.O_NONBLOCK ?? 0;
const O_NOCTTY = C.O_NOCTTY ?? 0;
const O_DIRECTORY = C.O_DIRECTORY ?? 0;
const DIR_FLAGS = C.O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const READ_FLAGS = C.O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
const CREATE_FLAGS = C.O_WRONLY | C.O_CREAT | C.O_EXCL | O_NOFOLLOW;
/** The fallback's write: never follows a symlink in the last component, never waits on a FIFO. */
const FALLBACK_WRITE_FLAGS = C.O_WRONLY | C.O_CREAT | C.O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;

let procFdWorks: boolean | undefined;

/** True where `/proc/self/fd/<fd>/<name>` resolves relative to a descriptor (Linux with /proc). */
export function fdRelativeAvailable(): boolean {
  if (procFdWorks !== undefined) return procFdWorks;
  procFdWorks = false;
  if (process.platform !== 'linux' || !existsSync(PROC_FD)) return procFdWorks;
  try {
    // The descriptor of a folder must lead to that very folder.
    const fd = openSync('/', C.O_RDONLY | O_DIRECTORY);
    try {
      const held = fstatSync(fd);
      const seen = statSync(`${PROC_FD}/${fd}/.`);
      procFdWorks = held.ino === seen.ino && held.dev === seen.dev;
    } finally {
      closeSync(fd);
    }
  } catch {
    procFdWorks = false;
  }
  return procFdWorks;
}

/**
 * The real path of `target`: of its nearest existing ancestor joined with the rest — and when a
 * component on the way is a dangling symlink, of the place that symlink points to. For Apollo's
 * own folders, and for the check of the platforms without fd-relative paths.
 */
export async function realPathOfNearest(target: string, depth = 0): Promise<string> {
  if (depth > MAX_SYMLINKS) throw new PathRefusedError(`Refused: too many levels of symbolic links in "${target}".`);
  const missing: string[] = [];
  let current = target;
  for (;;) {
    try {
      const real = await fs.realpath(current);
      return path.join(real, ...missing.reverse());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new PathRefusedError(`Refused: too many levels of symbolic links in "${target}".`);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      const link = await fs.readlink(current).catch(() => undefined);
      if (link !== undefined) {
        // A dangling symlink: what matters is where it leads.
        // Relative targets start from the link's real folder (`..` included).
        const folder = await realPathOfNearest(path.dirname(current), depth + 1);
        return realPathOfNearest(path.join(path.resolve(folder, link), ...missing.reverse()), depth + 1);
      }
      const parent = path.dirname(current);
      if (parent === current) return target;
      missing.push(path.basename(current));
      current = parent;
    }
  }
}

export type Purpose = 'read' | 'write';

/** An entry of a listing: its name, and whether it is a folder (a symlink is not). */
export interface ListedEntry {
  name: string;
  directory: boolean;
}

interface Identity {
  dev: number;
  ino: number;
}

interface Roots {
  /** The workspace's real path. */
  workspace: string;
  /** Lexical prefixes an absolute path or link target may start with: the workspace as given and real. */
  bases: string[];
  /** The forbidden folders' real paths. */
  forbidden: string[];
  /** The forbidden folders relative to the workspace, for those inside it ('/'-separated). */
  forbiddenInside: string[];
  /** True when the workspace itself lies in a forbidden folder: then every path is refused. */
  workspaceForbidden: boolean;
}

/** An errno-style error, so callers that map codes to observations keep working. */
function fsError(code: string, message: string, where: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${message}, '${where}'`);
  error.code = code;
  error.path = where;
  return error;
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function describeKind(stat: Stats): string | undefined {
  if (stat.isFIFO()) return 'a named pipe (FIFO)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return undefined;
}

function sameIdentity(stat: Identity, other: Identity | undefined): boolean {
  return other !== undefined && stat.ino === other.ino && stat.dev === other.dev;
}

function join(parts: string[]): string {
  return parts.join('/');
}

/** `/proc/self/fd/<fd>/<name>`: `name` (one component) relative to the folder the descriptor holds. */
function at(dir: number, name?: string): string {
  return name === undefined ? `${PROC_FD}/${dir}` : `${PROC_FD}/${dir}/${name}`;
}

/** Whether the mode bits let this process write the file (root may write any). */
function writableByUs(stat: Stats): boolean {
  if (typeof process.getuid !== 'function' || process.getuid() === 0) return true;
  if (stat.uid === process.getuid()) return (stat.mode & 0o200) !== 0;
  if (typeof process.getgroups === 'function' && (stat.gid === process.getgid?.() || process.getgroups().includes(stat.gid))) return (stat.mode & 0o020) !== 0;
  return (stat.mode & 0o002) !== 0;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed.
  }
}

function readlinkOrUndefined(where: string): string | undefined {
  try {
    return readlinkSync(where);
  } catch {
    return undefined;
  }
}

/** The whole content of an open file, from where it stands (the start), without closing it. */
function readWhole(fd: number): Promise<Buffer> {
  return new Promise((resolve, reject) => readFileCallback(fd, (error, data) => (error ? reject(error) : resolve(data))));
}

function writeWhole(fd: number, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => writeFileCallback(fd, data, (error) => (error ? reject(error) : resolve())));
}

/** A walk that must start again from the root with another path (a symlink was substituted). */
class Restart {
  constructor(readonly parts: string[]) {}
}

export interface WorkspaceFsOptions {
  /** false: use the platform fallback even where fd-relative paths work (for benchmarks and tests). */
  fdRelative?: boolean;
}

export class WorkspaceFs {
  private roots_: Roots | undefined;
  /** The forbidden folders' identities, taken as soon as each exists (a later rename does not hide it). */
  private readonly forbiddenIds: (Identity | undefined)[];
  private gitId: Identity | undefined;
  readonly fdRelative: boolean;

  constructor(
    readonly workspace: string,
    private readonly forbidden: string[] = [],
    options: WorkspaceFsOptions = {},
  ) {
    this.fdRelative = options.fdRelative !== false && fdRelativeAvailable();
    this.forbiddenIds = forbidden.map((dir) => identityOf(dir));
    this.gitId = identityOf(path.join(workspace, '.git'));
  }

  get forbiddenPaths(): string[] {
    return [...this.forbidden];
  }

  private async roots(): Promise<Roots> {
    if (this.roots_) return this.roots_;
    const workspace = await fs.realpath(this.workspace);
    const forbidden = await Promise.all(this.forbidden.map((dir) => realPathOfNearest(path.resolve(dir))));
    const forbiddenInside = forbidden.filter((dir) => dir !== workspace && isInside(dir, workspace)).map((dir) => path.relative(workspace, dir).split(path.sep).join('/'));
    const bases = [...new Set([workspace, path.resolve(this.workspace)])];
    const workspaceForbidden = forbidden.some((dir) => isInside(workspace, dir));
    this.roots_ = { workspace, bases, forbidden, forbiddenInside, workspaceForbidden };
    return this.roots_;
  }

  private refreshIdentities(): void {
    for (let i = 0; i < this.forbidden.length; i++) this.forbiddenIds[i] ??= identityOf(this.forbidden[i]);
    this.gitId ??= identityOf(path.join(this.workspace, '.git'));
  }

  // ——— messages (the same words as before the fd-relative walk) ———

  private outside(userPath: string, roots: Roots): PathRefusedError {
    return new PathRefusedError(`Refused: "${userPath}" is outside the workspace; only files inside ${roots.workspace} can be used.`);
  }

  private inDataset(userPath: string, purpose: Purpose): PathRefusedError {
    return new PathRefusedError(`Refused: "${userPath}" is inside Apollo's dataset folder, which the agent may not ${purpose}.`);
  }

  private inGit(userPath: string): PathRefusedError {
    return new PathRefusedError(`Refused: "${userPath}" is inside the repository's .git folder.`);
  }

  private loop(userPath: string): PathRefusedError {
    return new PathRefusedError(`Refused: too many levels of symbolic links in "${userPath}".`);
  }

  private hardLinks(userPath: string, nlink: number): PathRefusedError {
    return new PathRefusedError(`Refused: "${userPath}" has ${nlink} hard links; another one may lie outside the workspace. Write a new file instead (delete it first, then write it).`);
  }

  private notRegular(userPath: string, kind: string, purpose: Purpose): PathRefusedError {
    const verb = purpose === 'read' ? 'read' : 'written';
    return new PathRefusedError(
      `Refused: "${userPath}" is ${kind}, not a regular file; nothing was ${verb}. The file tools only read and write regular files (a pipe or device could block the run). To work with it, use run_command with a timeout.`,
    );
  }

  // ——— the lexical step ———

  /** The path as components relative to the workspace, or a refusal; no `..` and no absolute path survives. */
  private lexical(userPath: string, roots: Roots): string[] {
    if (typeof userPath !== 'string' || userPath.trim() === '') throw new PathRefusedError('The path is empty.');
    if (userPath.includes('\0')) throw new PathRefusedError('The path contains a NUL character.');
    let relative: string;
    if (path.isAbsolute(userPath)) {
      const absolute = path.resolve(userPath);
      const base = roots.bases.find((candidate) => isInside(absolute, candidate));
      if (base === undefined) throw this.outside(userPath, roots);
      relative = path.relative(base, absolute);
    } else {
      relative = path.normalize(userPath);
    }
    const parts = relative.split('/').filter((part) => part !== '' && part !== '.');
    if (parts.includes('..')) throw this.outside(userPath, roots);
    return parts;
  }

  /** A symlink's target substituted for it: the new components, or a refusal when it leads outside. */
  private substitute(userPath: string, roots: Roots, before: string[], target: string, after: string[]): string[] {
    let relative: string;
    if (path.isAbsolute(target)) {
      const absolute = path.resolve(target);
      const base = roots.bases.find((candidate) => isInside(absolute, candidate));
      if (base === undefined) throw this.outside(userPath, roots);
      relative = path.relative(base, absolute);
    } else {
      relative = path.normalize(path.join(...before, target));
    }
    const parts = relative.split('/').filter((part) => part !== '' && part !== '.');
    if (parts.includes('..')) throw this.outside(userPath, roots);
    return [...parts, ...after];
  }

  /** Refusals by name: the forbidden folders inside the workspace (also before they exist), and .git for writes. */
  private checkNames(userPath: string, parts: string[], purpose: Purpose, roots: Roots): void {
    const relative = join(parts);
    if (roots.workspaceForbidden) throw this.inDataset(userPath, purpose);
    if (roots.forbiddenInside.some((dir) => isInside(relative, dir))) throw this.inDataset(userPath, purpose);
    if (purpose === 'write' && parts[0] === '.git') throw this.inGit(userPath);
  }

  /** Refusals by identity: a folder walked that is a forbidden one, or .git for writes, whatever it is called now. */
  private checkIdentity(userPath: string, stat: Identity, purpose: Purpose): void {
    if (this.forbiddenIds.some((id) => sameIdentity(stat, id))) throw this.inDataset(userPath, purpose);
    if (purpose === 'write' && sameIdentity(stat, this.gitId)) throw this.inGit(userPath);
  }

  // ——— the fd-relative walk ———

  /**
   * Opens the folders of `parts` one by one from the root and hands `body` the last one (held),
   * the physical components that lead to it, and the final name (undefined for the root itself).
   * `body` may throw a Restart to walk again with a substituted path. The walk's own calls
   * (open a folder, fstat, readlink, mkdir, close) are metadata operations on the local tree and are
   * made synchronously: through the thread pool they cost several times more per folder.
   */
  private async walk<T>(
    userPath: string,
    purpose: Purpose,
    options: { create: boolean; finalIsFolder: boolean },
    body: (dir: number, parents: string[], name: string | undefined, roots: Roots) => Promise<T>,
  ): Promise<T> {
    const roots = await this.roots();
    this.refreshIdentities();
    let parts = this.lexical(userPath, roots);
    for (let links = 0; ; links++) {
      if (links > MAX_SYMLINKS) throw this.loop(userPath);
      this.checkNames(userPath, parts, purpose, roots);
      const folders = options.finalIsFolder ? parts : parts.slice(0, -1);
      const name = options.finalIsFolder ? undefined : parts[parts.length - 1];
      let dir = openSync(roots.workspace, C.O_RDONLY | O_DIRECTORY);
      try {
        let restart: Restart | undefined;
        for (let i = 0; i < folders.length && !restart; i++) {
          const next = this.openFolder(userPath, dir, folders, i, parts, purpose, options.create, roots);
          if (next instanceof Restart) restart = next;
          else {
            closeSync(dir);
            dir = next;
          }
        }
        if (!restart) {
          try {
            return await body(dir, folders, name, roots);
          } catch (caught) {
            if (!(caught instanceof Restart)) throw caught;
            restart = caught;
          }
        }
        parts = restart.parts;
      } finally {
        closeQuietly(dir);
      }
    }
  }

  /** Opens folder `folders[i]` inside `dir`: the new descriptor, a Restart through a symlink, or an error. */
  private openFolder(userPath: string, dir: number, folders: string[], i: number, parts: string[], purpose: Purpose, create: boolean, roots: Roots): number | Restart {
    const name = folders[i];
    for (let attempt = 0; ; attempt++) {
      let fd: number;
      try {
        fd = openSync(at(dir, name), DIR_FLAGS);
      } catch (caught) {
        const errno = code(caught);
        if (errno === 'ENOENT' && create && attempt < 3) {
          // mkdir never follows a final symlink: one swapped in makes EEXIST, and the open decides.
          try {
            mkdirSync(at(dir, name));
          } catch (made) {
            if (code(made) !== 'EEXIST') throw made;
          }
          continue;
        }
        if (errno === 'ENOTDIR' || errno === 'ELOOP') {
          const target = readlinkOrUndefined(at(dir, name));
          if (target !== undefined) return new Restart(this.substitute(userPath, roots, folders.slice(0, i), target, parts.slice(i + 1)));
          throw fsError('ENOTDIR', 'not a directory', path.join(roots.workspace, ...folders.slice(0, i + 1)));
        }
        if (errno === 'ENOENT') throw fsError('ENOENT', 'no such file or directory', path.join(roots.workspace, ...parts));
        throw caught;
      }
      try {
        this.checkIdentity(userPath, fstatSync(fd), purpose);
      } catch (refused) {
        closeSync(fd);
        throw refused;
      }
      return fd;
    }
  }

  // ——— operations ———

  /**
   * The content of a regular file. `purpose: 'write'` (edit_file reads before it writes) adds the
   * write refusals: .git, hard links.
   */
  async readFile(userPath: string, purpose: Purpose = 'read'): Promise<Buffer> {
    if (!this.fdRelative) return this.fallbackRead(userPath, purpose);
    return this.walk(userPath, purpose, { create: false, finalIsFolder: false }, async (dir, parents, name, roots) => {
      if (name === undefined) throw fsError('EISDIR', 'illegal operation on a directory', roots.workspace);
      const fd = this.openFinal(userPath, dir, parents, name, roots);
      try {
        this.checkFile(userPath, fstatSync(fd), purpose, path.join(roots.workspace, ...parents, name));
        // The content is read through the thread pool: a file may be large.
        return await readWhole(fd);
      } finally {
        closeSync(fd);
      }
    });
  }

  /** Opens the last component for reading without following it or waiting on it: a symlink restarts the walk. */
  private openFinal(userPath: string, dir: number, parents: string[], name: string, roots: Roots): number {
    try {
      return openSync(at(dir, name), READ_FLAGS);
    } catch (caught) {
      const errno = code(caught);
      if (errno === 'ELOOP') {
        const target = readlinkOrUndefined(at(dir, name));
        if (target !== undefined) throw new Restart(this.substitute(userPath, roots, parents, target, []));
      }
      if (errno === 'ENOENT') throw fsError('ENOENT', 'no such file or directory', path.join(roots.workspace, ...parents, name));
      this.refuseSpecial(userPath, at(dir, name), errno);
      throw caught;
    }
  }

  /** An open that failed on a socket (ENXIO) or the like: say what the thing is. */
  private refuseSpecial(userPath: string, where: string, errno: string | undefined): void {
    if (errno !== 'ENXIO' && errno !== 'EOPNOTSUPP' && errno !== 'ENODEV') return;
    let stat: Stats | undefined;
    try {
      stat = lstatSync(where);
    } catch {
      return;
    }
    const kind = describeKind(stat);
    if (kind) throw this.notRegular(userPath, kind, 'read');
  }

  private checkFile(userPath: string, stat: Stats, purpose: Purpose, where: string): void {
    if (stat.isDirectory()) {
      this.checkIdentity(userPath, stat, purpose);
      throw fsError('EISDIR', 'illegal operation on a directory', where);
    }
    const kind = describeKind(stat);
    if (kind) throw this.notRegular(userPath, kind, purpose);
    if (purpose === 'write' && stat.nlink > 1) throw this.hardLinks(userPath, stat.nlink);
  }

  /** Creates or replaces a regular file, making missing parent folders; atomic where fd-relative. */
  async writeFile(userPath: string, data: string | Uint8Array): Promise<void> {
    if (!this.fdRelative) return this.fallbackWrite(userPath, data);
    await this.walk(userPath, 'write', { create: true, finalIsFolder: false }, async (dir, parents, name, roots) => {
      const where = path.join(roots.workspace, ...parents, name ?? '');
      if (name === undefined) throw fsError('EISDIR', 'illegal operation on a directory', where);
      let existing: Stats | undefined;
      try {
        existing = lstatSync(at(dir, name));
      } catch (caught) {
        if (code(caught) !== 'ENOENT') throw caught;
      }
      if (existing?.isSymbolicLink()) throw new Restart(this.substitute(userPath, roots, parents, readlinkSync(at(dir, name)), []));
      if (existing) this.checkFile(userPath, existing, 'write', where);
      // The rename would replace a file its mode makes read-only to us; an open for writing would not.
      if (existing && !writableByUs(existing)) throw fsError('EACCES', 'permission denied', where);
      const temporary = at(dir, `.apollo-write-${randomBytes(6).toString('hex')}.tmp`);
      const fd = openSync(temporary, CREATE_FLAGS, 0o666);
      let renamed = false;
      try {
        try {
          await writeWhole(fd, data);
          if (existing) {
            fchmodSync(fd, existing.mode & 0o7777);
            if (typeof process.getuid === 'function' && process.getuid() === 0 && (existing.uid !== 0 || existing.gid !== 0)) {
              try {
                fchownSync(fd, existing.uid, existing.gid);
              } catch {
                // The owner could not be kept; the content is what matters.
              }
            }
          }
        } finally {
          closeSync(fd);
        }
        // rename replaces the name itself: a symlink or file swapped in since the lstat is replaced, never followed.
        renameSync(temporary, at(dir, name));
        renamed = true;
      } finally {
        if (!renamed) {
          try {
            unlinkSync(temporary);
          } catch {
            // Already gone.
          }
        }
      }
    });
  }

  /** The entries of a folder, without those the agent may not see (dataset, the .apollo holding it, .git). */
  async listDir(userPath: string): Promise<{ entries: ListedEntry[]; relative: string }> {
    if (!this.fdRelative) return this.fallbackList(userPath);
    return this.walk(userPath, 'read', { create: false, finalIsFolder: true }, async (dir, parents, _name, roots) => {
      const entries = await fs.readdir(at(dir), { withFileTypes: true });
      const listed: ListedEntry[] = [];
      for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        const relative = join([...parents, entry.name]);
        if (this.hiddenByName(relative, roots)) continue;
        if (entry.isDirectory()) {
          let stat: Stats | undefined;
          try {
            stat = lstatSync(at(dir, entry.name));
          } catch {
            stat = undefined;
          }
          if (stat && (this.forbiddenIds.some((id) => sameIdentity(stat, id)) || sameIdentity(stat, this.gitId))) continue;
        }
        listed.push({ name: entry.name, directory: entry.isDirectory() });
      }
      return { entries: listed, relative: join(parents) || '.' };
    });
  }

  private hiddenByName(relative: string, roots: Roots): boolean {
    const name = relative.split('/').pop();
    return relative === '.git' || roots.forbiddenInside.some((dir) => isInside(relative, dir) || (name === '.apollo' && isInside(dir, relative)));
  }

  /**
   * Where a path really is, relative to the workspace ('/'-separated, '.' for the root), for a tool
   * that hands a path to another program (search). It must exist: a file or a folder.
   */
  async locate(userPath: string): Promise<string> {
    if (!this.fdRelative) {
      const real = await this.resolve(userPath, 'read');
      await fs.lstat(real);
      return (
        path
          .relative((await this.roots()).workspace, real)
          .split(path.sep)
          .join('/') || '.'
      );
    }
    return this.walk(userPath, 'read', { create: false, finalIsFolder: false }, async (dir, parents, name, roots) => {
      if (name === undefined) return '.';
      const fd = this.openFinal(userPath, dir, parents, name, roots);
      try {
        const stat = fstatSync(fd);
        if (stat.isDirectory()) this.checkIdentity(userPath, stat, 'read');
        else {
          const kind = describeKind(stat);
          if (kind) throw this.notRegular(userPath, kind, 'read');
        }
      } finally {
        closeSync(fd);
      }
      return join([...parents, name]);
    });
  }

  // ——— the check by real path (and the fallback where fd-relative paths do not exist) ———

  /**
   * Resolves a path the agent gave (relative to the workspace, or absolute) to its real path,
   * following symlinks, and refuses it when it leaves the workspace or enters a forbidden folder.
   * A check only: between it and an open by name, a folder on the way can be swapped.
   */
  async resolve(userPath: string, purpose: Purpose): Promise<string> {
    if (typeof userPath !== 'string' || userPath.trim() === '') throw new PathRefusedError('The path is empty.');
    if (userPath.includes('\0')) throw new PathRefusedError('The path contains a NUL character.');
    const roots = await this.roots();
    const requested = path.resolve(roots.workspace, userPath);
    const real = await realPathOfNearest(requested);
    if (!isInside(real, roots.workspace)) throw this.outside(userPath, roots);
    if (roots.forbidden.some((dir) => isInside(real, dir))) throw this.inDataset(userPath, purpose);
    if (purpose === 'write' && isInside(real, path.join(roots.workspace, '.git'))) throw this.inGit(userPath);
    if (purpose === 'write') {
      const stat = await fs.lstat(real).catch(() => undefined);
      if (stat?.isFile() && stat.nlink > 1) throw this.hardLinks(userPath, stat.nlink);
    }
    return real;
  }

  /** True for paths a listing should not show: the dataset (and the `.apollo` folder holding it), .git. */
  async isHidden(realPath: string): Promise<boolean> {
    const roots = await this.roots();
    const holdsDataset = (dir: string) => path.basename(realPath) === '.apollo' && isInside(dir, realPath);
    return roots.forbidden.some((dir) => isInside(realPath, dir) || holdsDataset(dir)) || realPath === path.join(roots.workspace, '.git');
  }

  private async fallbackRead(userPath: string, purpose: Purpose): Promise<Buffer> {
    const real = await this.resolve(userPath, purpose);
    const handle = await fs.open(real, READ_FLAGS).catch((caught: unknown) => {
      this.refuseSpecial(userPath, real, code(caught));
      throw caught;
    });
    try {
      this.checkFile(userPath, await handle.stat(), purpose, real);
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }

  private async fallbackWrite(userPath: string, data: string | Uint8Array): Promise<void> {
    const real = await this.resolve(userPath, 'write');
    await fs.mkdir(path.dirname(real), { recursive: true });
    const existing = await fs.lstat(real).catch(() => undefined);
    if (existing && !existing.isSymbolicLink()) this.checkFile(userPath, existing, 'write', real);
    const handle = await fs.open(real, FALLBACK_WRITE_FLAGS, 0o666);
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
  }

  private async fallbackList(userPath: string): Promise<{ entries: ListedEntry[]; relative: string }> {
    const real = await this.resolve(userPath, 'read');
    const entries = await fs.readdir(real, { withFileTypes: true });
    const listed: ListedEntry[] = [];
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (await this.isHidden(path.join(real, entry.name))) continue;
      listed.push({ name: entry.name, directory: entry.isDirectory() });
    }
    return { entries: listed, relative: path.relative((await this.roots()).workspace, real) || '.' };
  }
}

function identityOf(dir: string): Identity | undefined {
  try {
    const stat = statSync(dir);
    return stat.isDirectory() ? { dev: stat.dev, ino: stat.ino } : undefined;
  } catch {
    return undefined;
  }
}
