/**
 * Git's object database read and written in-process, for the shadow store's common step: loose
 * objects, a loose ref, and the abbreviated object names git prints in a patch. Starting a git
 * process costs 15–18 ms on a small machine, several times what the work itself takes; the loose
 * formats are stable and documented (gitformat-loose(5), gitrepository-layout(5)). What lies
 * beyond them (packed objects, alternates, a multi-pack index) is reported as unknown, and the
 * caller asks git instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

const deflate = promisify(zlib.deflate);
const inflate = promisify(zlib.inflate);

/**
 * Objects up to this size are compressed and written synchronously: a few tens of microseconds,
 * where a round trip through Node's thread pool costs more than the work. Larger ones are
 * compressed off the main thread.
 */
const SYNC_BYTES = 256 * 1024;

/**
 * Level 1 with a window no larger than the object: the same stream git would inflate, without
 * setting up (and collecting) a 32 KiB window and a 64 KiB hash table for a few hundred bytes.
 */
function compression(length: number): zlib.ZlibOptions {
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(length + 262))));
  return { level: 1, windowBits, memLevel: Math.min(9, Math.max(1, windowBits - 6)) };
}

export type ObjectType = 'blob' | 'tree' | 'commit';

/** The all-zero name git prints for the missing side of an added or deleted file. */
export const NULL_ID = '0'.repeat(40);

export function objectId(type: ObjectType, body: Buffer): string {
  return createHash('sha1').update(`${type} ${body.length}\0`).update(body).digest('hex');
}

const isHexId = (id: string) => /^[0-9a-f]{40}$/.test(id);

/**
 * An object stored or freshened this recently is not freshened again: while a run records, `apollo
 * gc` keeps unreferenced objects younger than an hour.
 */
const FRESH_MS = 10 * 60 * 1000;

export class LooseObjects {
  private readonly objectsDir: string;
  /** Fan-out folders known to exist. */
  private readonly folders = new Set<string>();
  /** When objects were last stored or freshened here. */
  private readonly fresh = new Map<string, number>();
  /** Objects named by `writeLater` and not stored yet, by id. */
  private readonly pending = new Map<string, { type: ObjectType; body: Buffer }>();
  private flushing: Promise<void> = Promise.resolve();
  /** Temporary file names: unique to this process, then counted. */
  private readonly temporaryPrefix = `tmp_obj_${process.pid}_${randomBytes(4).toString('hex')}_`;
  private temporaryCount = 0;

  constructor(readonly gitDir: string) {
    this.objectsDir = path.join(gitDir, 'objects');
  }

  private file(id: string): string {
    return path.join(this.objectsDir, id.slice(0, 2), id.slice(2));
  }

  /**
   * Stores an object as git would: "<type> <size>\0" and the body, zlib-deflated, written to a
   * temporary file and renamed into place. An object already stored loose is left as it is and
   * only has its time refreshed, as git does, so that a prune does not take it while a new
   * snapshot comes to refer to it.
   */
  async write(type: ObjectType, body: Buffer): Promise<string> {
    const id = objectId(type, body);
    const now = Date.now();
    if (now - (this.fresh.get(id) ?? -Infinity) < FRESH_MS) return id;
    if (this.fresh.size >= 100_000) this.fresh.clear();
    const target = this.file(id);
    if (existsSync(target)) {
      try {
        utimesSync(target, now / 1000, now / 1000);
        this.fresh.set(id, now);
        return id;
      } catch {
        // gone meanwhile (a prune): write it
      }
    }
    const folder = path.dirname(target);
    if (!this.folders.has(folder)) {
      mkdirSync(folder, { recursive: true });
      this.folders.add(folder);
    }
    // Level 1 is git's default for loose objects (core.looseCompression); any level reads back alike.
    const raw = Buffer.concat([Buffer.from(`${type} ${body.length}\0`), body]);
    const data = raw.length <= SYNC_BYTES ? zlib.deflateSync(raw, compression(raw.length)) : await deflate(raw, { level: 1 });
    // Named like git's own temporary objects, which `git gc` cleans up if one is ever left behind.
    const temporary = path.join(folder, `${this.temporaryPrefix}${this.temporaryCount++}`);
    const store = () => {
      writeFileSync(temporary, data, { mode: 0o444, flag: 'wx' });
      renameSync(temporary, target);
    };
    try {
      try {
        store();
      } catch (error) {
        // The fan-out folder went away (a gc removes empty ones): make it again, once.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        mkdirSync(folder, { recursive: true });
        store();
      }
    } catch (error) {
      rmSync(temporary, { force: true });
      throw error;
    }
    this.fresh.set(id, now);
    return id;
  }

  /**
   * Names an object now and stores it at the next `flush()`. Until then it is read here as if
   * stored, and counted when names are abbreviated; a git process must not be asked about it.
   * A step's snapshot is named on the step's path and written while the agent waits for the model.
   */
  writeLater(type: ObjectType, body: Buffer): string {
    const id = objectId(type, body);
    if (!this.pending.has(id) && Date.now() - (this.fresh.get(id) ?? -Infinity) >= FRESH_MS) this.pending.set(id, { type, body });
    return id;
  }

  /** Stores every object `writeLater` named; git can then be asked about them. */
  flush(): Promise<void> {
    // One flush at a time; one that failed (a full disk) leaves its objects listed for the next.
    const settled = this.flushing.catch(() => undefined);
    if (!this.pending.size) return settled;
    this.flushing = settled.then(async () => {
      // Each leaves the list once it is on disk, so a read meanwhile finds it in one or the other.
      for (const [id, object] of this.pending) {
        await this.write(object.type, object.body);
        this.pending.delete(id);
      }
    });
    return this.flushing;
  }

  /** An object stored loose, or undefined when it is not (packed, or missing). */
  async read(id: string): Promise<{ type: string; body: Buffer } | undefined> {
    if (!isHexId(id)) return undefined;
    const pending = this.pending.get(id);
    if (pending) return pending;
    let data: Buffer;
    try {
      const stored = readFileSync(this.file(id));
      data = stored.length <= SYNC_BYTES / 4 ? zlib.inflateSync(stored) : await inflate(stored);
    } catch {
      return undefined;
    }
    const nul = data.indexOf(0);
    const header = data.subarray(0, nul).toString('latin1');
    const space = header.indexOf(' ');
    const body = data.subarray(nul + 1);
    if (nul < 0 || space < 0 || Number(header.slice(space + 1)) !== body.length) throw new Error(`The stored object ${id} is damaged.`);
    return { type: header.slice(0, space), body };
  }

  async readBlob(id: string): Promise<Buffer | undefined> {
    const object = await this.read(id);
    return object?.type === 'blob' ? object.body : undefined;
  }

  /** A tree's entries, or undefined when the tree is not stored loose or a name is not UTF-8. */
  async readTree(id: string): Promise<{ mode: string; id: string; name: string }[] | undefined> {
    const object = await this.read(id);
    if (object?.type !== 'tree') return undefined;
    const entries = [];
    const body = object.body;
    let at = 0;
    while (at < body.length) {
      const space = body.indexOf(0x20, at);
      const nul = body.indexOf(0, space);
      if (space < 0 || nul < 0 || nul + 21 > body.length) throw new Error(`The stored tree ${id} is damaged.`);
      const nameBytes = body.subarray(space + 1, nul);
      const name = nameBytes.toString('utf8');
      // A name that is not UTF-8 would not come back as the same bytes: leave it to git.
      if (!Buffer.from(name).equals(nameBytes)) return undefined;
      entries.push({ mode: body.toString('latin1', at, space), id: body.toString('hex', nul + 1, nul + 21), name });
      at = nul + 21;
    }
    return entries;
  }

  /** The tree a commit stored loose records. */
  async commitTree(id: string): Promise<string | undefined> {
    const object = await this.read(id);
    if (object?.type !== 'commit') return undefined;
    const match = /^tree ([0-9a-f]{40})\n/.exec(object.body.toString('latin1', 0, 46));
    return match?.[1];
  }

  /**
   * Points a ref at an object the way git does: "<ref>.lock" created exclusively, the id written
   * into it, then renamed over the ref. A loose ref takes precedence over the same ref in
   * packed-refs, which stays as it is, as when git itself updates a packed ref. False when this
   * could not be done safely here (a lock held, a folder in the way); then git should do it.
   */
  async writeRef(ref: string, id: string): Promise<boolean> {
    if (!isHexId(id) || !/^refs\/[A-Za-z0-9._/-]+$/.test(ref) || ref.split('/').some((part) => part === '' || part.startsWith('.') || part.endsWith('.lock'))) return false;
    const file = path.join(this.gitDir, ...ref.split('/'));
    const lock = `${file}.lock`;
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(lock, `${id}\n`, { flag: 'wx' });
    } catch {
      return false;
    }
    try {
      renameSync(lock, file);
      return true;
    } catch {
      rmSync(lock, { force: true });
      return false;
    }
  }

  /**
   * Abbreviates object names as git's patches do ("index 1a2b3c4..5d6e7f8"), against the objects
   * stored now. Undefined when the store has objects this cannot see (alternates, a multi-pack
   * index, an old pack index format).
   */
  async abbreviator(configured: number | 'auto'): Promise<Abbreviator | undefined> {
    if (existsSync(path.join(this.objectsDir, 'info', 'alternates'))) return undefined;
    const packFolder = path.join(this.objectsDir, 'pack');
    let names: string[] = [];
    try {
      names = readdirSync(packFolder);
    } catch {
      // no packs
    }
    if (names.includes('multi-pack-index')) return undefined;
    const packs: PackIndex[] = [];
    for (const name of names) {
      if (!name.endsWith('.idx') || !names.includes(name.replace(/\.idx$/, '.pack'))) continue;
      const index = PackIndex.open(path.join(packFolder, name));
      if (!index) return undefined;
      packs.push(index);
    }
    let length: number;
    if (configured === 'auto') {
      // Git's default: about twice the bits needed to count the packed objects, at least 7.
      const count = packs.reduce((sum, pack) => sum + pack.count, 0);
      const bits = count > 0 ? 32 - Math.clz32(count) : 1;
      length = Math.max(7, Math.ceil(bits / 2));
    } else {
      length = configured;
    }
    return new Abbreviator(this.objectsDir, packs, length, [...this.pending.keys()]);
  }
}

/** `length` bytes of a file from `offset`, or undefined when the file is shorter. */
function readAt(file: string, offset: number, length: number): Buffer | undefined {
  const descriptor = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    return readSync(descriptor, buffer, 0, length, offset) === length ? buffer : undefined;
  } finally {
    closeSync(descriptor);
  }
}

/** One pack's index (version 2): the sorted object names, read a few at a time. */
class PackIndex {
  private constructor(
    private readonly file: string,
    private readonly fanout: Uint32Array,
  ) {}

  get count(): number {
    return this.fanout[255];
  }

  static open(file: string): PackIndex | undefined {
    const head = readAt(file, 0, 8 + 1024);
    if (!head || head.readUInt32BE(0) !== 0xff744f63 || head.readUInt32BE(4) !== 2) return undefined;
    const fanout = new Uint32Array(256);
    for (let i = 0; i < 256; i++) fanout[i] = head.readUInt32BE(8 + i * 4);
    return new PackIndex(file, fanout);
  }

  /**
   * The names next to where `id` sorts: the one after it (or at its place, when it is absent)
   * and the one before, as git compares an abbreviation against.
   */
  neighbours(id: string): string[] {
    const first = parseInt(id.slice(0, 2), 16);
    const low = Math.max(0, (first === 0 ? 0 : this.fanout[first - 1]) - 1);
    const high = Math.min(this.count, this.fanout[first] + 1);
    if (high <= low) return [];
    const slice = readAt(this.file, 8 + 1024 + low * 20, (high - low) * 20);
    if (!slice) throw new Error(`The pack index ${this.file} is shorter than it says.`);
    const names = Array.from({ length: high - low }, (_, i) => slice.toString('hex', i * 20, i * 20 + 20));
    // Position of id among all names: the first not below it.
    let at = names.findIndex((name) => name >= id);
    const position = at < 0 ? high : low + at;
    at = position - low;
    const found = at < names.length && names[at] === id;
    const result: string[] = [];
    if (!found) {
      if (position < this.count && at < names.length) result.push(names[at]);
    } else if (position < this.count - 1 && at + 1 < names.length) {
      result.push(names[at + 1]);
    }
    if (position > 0 && at - 1 >= 0) result.push(names[at - 1]);
    return result;
  }
}

const commonHexPrefix = (a: string, b: string) => {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i;
};

/** Shortest unambiguous names, at least the configured length, as git's find_unique_abbrev gives. */
export class Abbreviator {
  private readonly looseFolders = new Map<string, string[]>();

  constructor(
    private readonly objectsDir: string,
    private readonly packs: PackIndex[],
    private readonly length: number,
    /** Objects about to be stored loose: git will count them by the time it is asked. */
    private readonly pending: string[] = [],
  ) {}

  async abbreviate(id: string): Promise<string> {
    if (this.length >= 40 || this.length <= 0) return id;
    let length = this.length;
    // A name shared with another object for i characters needs i + 1 (git stops counting at 32).
    const extend = (other: string) => {
      const shared = commonHexPrefix(id, other);
      if (shared < 32 && shared >= length) length = shared + 1;
    };
    for (const pack of this.packs) for (const other of pack.neighbours(id)) extend(other);
    const folder = id.slice(0, 2);
    let listing = this.looseFolders.get(folder);
    if (!listing) {
      try {
        listing = readdirSync(path.join(this.objectsDir, folder));
      } catch {
        listing = [];
      }
      this.looseFolders.set(folder, listing);
    }
    const prefix = id.slice(2, length);
    for (const name of listing) {
      if (name.length === 38 && name.startsWith(prefix)) extend(folder + name);
    }
    for (const other of this.pending) extend(other);
    return id.slice(0, length);
  }
}
