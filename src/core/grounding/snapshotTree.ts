/**
 * Snapshots read straight from a shadow store, with no work tree: a snapshot's full listing
 * (mode and object id per path), the objects' content, and the object id a file on disk would
 * get. Snapshots of two stores can be compared this way even when neither borrows the other's
 * objects (a sampled run's store and the store of the workspace it was copied from).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { SimpleGit } from 'simple-git';
import type { FileChange } from '../dataset/events';
import { gitEnvironment, hardenedGit } from './gitEnvironment';
import { fileName, parseChanges } from './changeParsing';

/** Git's modes for what a snapshot can hold. */
export const MODE_FILE = '100644';
export const MODE_EXECUTABLE = '100755';
export const MODE_SYMLINK = '120000';

export interface TreeItem {
  mode: string;
  /** The object id (a blob: the file's content, or a symbolic link's target). */
  id: string;
}

/** Every file of a snapshot by its slash-separated path (as `pathKey` writes it). */
export type TreeListing = Map<string, TreeItem>;

/**
 * File names are bytes. A listing names a path by its text, part by part; a part that is not
 * UTF-8 is written as this mark and then its bytes, one character each. No text decoded from
 * UTF-8 holds the mark (a lone surrogate), so no two paths get the same key, and "/", "." and
 * ".." are where they are in the bytes.
 */
const NOT_UTF8 = '\uDFFF';

const isUtf8 = (bytes: Buffer) => Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);

/** The key of a slash-separated path given as its bytes (see NOT_UTF8). */
export function pathKey(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const parts: string[] = [];
  for (let at = 0; at <= bytes.length;) {
    const slash = bytes.indexOf(0x2f, at);
    const part = bytes.subarray(at, slash < 0 ? bytes.length : slash);
    parts.push(isUtf8(part) ? part.toString('utf8') : NOT_UTF8 + part.toString('latin1'));
    if (slash < 0) break;
    at = slash + 1;
  }
  return parts.join('/');
}

/** The bytes of a path given by its key. */
export function pathBytes(key: string): Buffer {
  if (!key.includes(NOT_UTF8)) return Buffer.from(key, 'utf8');
  const parts = key.split('/').map((part) => (part.startsWith(NOT_UTF8) ? Buffer.from(part.slice(NOT_UTF8.length), 'latin1') : Buffer.from(part, 'utf8')));
  return Buffer.concat(parts.flatMap((part, index) => (index ? [Buffer.from('/'), part] : [part])));
}

/** A path given by its key as the events name it: its text, or git's quoted form and its bytes (FileChange.pathBase64). */
export function eventPath(key: string): { path: string; pathBase64?: string } {
  if (!key.includes(NOT_UTF8)) return { path: key };
  const name = fileName(pathBytes(key));
  return { path: name.name, pathBase64: name.base64 };
}

/** The key of a path an event names. */
export const keyOfChange = (change: Pick<FileChange, 'path' | 'pathBase64'>): string => (change.pathBase64 !== undefined ? pathKey(Buffer.from(change.pathBase64, 'base64')) : change.path);

/** Reads one store's objects; `borrow` lists other stores whose objects it may read too. */
export class SnapshotReader {
  private instance: SimpleGit | undefined;

  constructor(
    readonly storeDir: string,
    private readonly borrow: string[] = [],
  ) {}

  private get environment(): Record<string, string> {
    return {
      GIT_DIR: this.storeDir,
      // An index file that never exists: reading objects needs none.
      GIT_INDEX_FILE: path.join(this.storeDir, 'apollo-index', 'none'),
      ...(this.borrow.length ? { GIT_ALTERNATE_OBJECT_DIRECTORIES: this.borrow.map((dir) => path.join(dir, 'objects')).join(path.delimiter) } : {}),
    };
  }

  private get git(): SimpleGit {
    this.instance ??= hardenedGit({ baseDir: this.storeDir, trimmed: false }, this.environment);
    return this.instance;
  }

  /**
   * A git command's output as bytes, file names that are not UTF-8 kept whole. Through
   * child_process: simple-git gives text only. The environment is the same hardened one.
   */
  private rawBytes(args: string[]): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      execFile('git', args, { cwd: this.storeDir, env: gitEnvironment(this.environment), encoding: 'buffer', maxBuffer: 1 << 30 }, (error, stdout, stderr) =>
        error ? reject(new Error(`git ${args[0]} failed: ${stderr.toString('utf8').trim() || error.message}`)) : resolve(stdout),
      );
    });
  }

  /** The commit a snapshot id or ref names in this store, or undefined when the store lacks it. */
  async resolve(revision: string): Promise<string | undefined> {
    if (!revision || revision.startsWith('-') || !existsSync(path.join(this.storeDir, 'HEAD'))) return undefined;
    const commit = (await this.git.raw(['rev-parse', '--verify', '--quiet', `${revision}^{commit}`]).catch(() => '')).trim();
    if (!commit) return undefined;
    // rev-parse answers for an id whose object is gone; the tree must really be readable.
    const readable = await this.git.raw(['cat-file', '-e', `${commit}^{tree}`]).then(
      () => true,
      () => false,
    );
    return readable ? commit : undefined;
  }

  /** Every file of a snapshot, with its mode and object id; names read as bytes (see pathKey). */
  async list(snapshot: string): Promise<TreeListing> {
    const listing: TreeListing = new Map();
    const output = await this.rawBytes(['ls-tree', '-r', '-z', '--full-tree', snapshot]);
    // "<mode> <type> <id>\t<path>\0" per entry.
    for (let at = 0; at < output.length;) {
      const nul = output.indexOf(0, at);
      const end = nul < 0 ? output.length : nul;
      const tab = output.indexOf(0x09, at);
      const [mode, , id] = output.subarray(at, tab).toString('latin1').split(' ');
      listing.set(pathKey(output.subarray(tab + 1, end)), { mode, id });
      at = end + 1;
    }
    return listing;
  }

  /** An object's content: a file's bytes, or a symbolic link's target. */
  async read(id: string): Promise<Buffer> {
    return (await this.git.binaryCatFile(['blob', id])) as Buffer;
  }

  /**
   * Line counts per path between two snapshots (both readable by this reader); empty when git
   * cannot tell, so a caller's own listing stays the authority on what changed.
   */
  async lineCounts(before: string, after: string): Promise<Map<string, Pick<FileChange, 'additions' | 'deletions' | 'binary'>>> {
    const counts = new Map<string, Pick<FileChange, 'additions' | 'deletions' | 'binary'>>();
    try {
      const output = await this.rawBytes(['diff-tree', '-r', '--no-renames', '--raw', '--numstat', '-z', '--no-color', '--no-ext-diff', before, after]);
      for (const file of parseChanges(output).files) counts.set(keyOfChange(file), { additions: file.additions, deletions: file.deletions, binary: file.binary });
    } catch {
      // Counts are a courtesy; the listing decides what changed.
    }
    return counts;
  }
}

/** The id git gives a blob of this content. */
export function blobId(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

/**
 * What changed between two listings, by path: added, deleted, modified (content or exec bit) or
 * typechange (a file became a symbolic link or the other way round). Sorted by path; a path
 * that is not UTF-8 is named as the events name it (`eventPath`).
 */
export function compareListings(before: TreeListing, after: TreeListing): FileChange[] {
  const changes: FileChange[] = [];
  for (const file of new Set([...before.keys(), ...after.keys()])) {
    const old = before.get(file);
    const now = after.get(file);
    if (old && now && old.mode === now.mode && old.id === now.id) continue;
    const status = !old ? 'added' : !now ? 'deleted' : (old.mode === MODE_SYMLINK) !== (now.mode === MODE_SYMLINK) ? 'typechange' : 'modified';
    changes.push({ ...eventPath(file), status, additions: 0, deletions: 0, binary: false });
  }
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
