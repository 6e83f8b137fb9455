/**
 * The object id git gives a tree, worked out from its entries. Git still writes every tree (the
 * long-lived `mktree --batch`) and the id it answers is compared with this one; knowing a
 * folder's id before git answers only lets a snapshot send all its trees in one write instead of
 * one round trip per folder level, since a parent's entries hold its children's ids.
 *
 * Why it exists: on a 2,000-file tree a full stat pass is git status (~9 ms) plus round trips to
 * idle git processes, three of them for the trees alone (bench/RESULTS.md, "git does git's work":
 * 1.8–2.5x git status against a 2x target). Where git answers another id, the trees are written
 * again one level at a time, as before.
 *
 * The format (gitformat-tree): "tree <length>\0", then per entry "<mode in octal> <name>\0" and
 * the raw id (20 bytes for SHA-1, 32 for SHA-256), entries in git's order: names compared as
 * bytes, a folder's as if it ended in "/" (a submodule's gitlink sorts as a file).
 */
import { createHash } from 'node:crypto';

export interface TreeIdEntry {
  /** Octal, as git prints it ("100644", "40000"; "040000" is the same). */
  mode: string;
  /** Hex object id; its length tells the store's hash (40: SHA-1, 64: SHA-256). */
  id: string;
  /** A name that is not UTF-8 comes as its bytes. */
  name: string | Buffer;
}

const FOLDER = 0o40000;

/** The name's bytes as git compares them: a folder's with "/" after it. */
function sortKey(name: Buffer, mode: number): Buffer {
  return mode === FOLDER ? Buffer.concat([name, Buffer.from('/')]) : name;
}

/** The id of the tree these entries make, as `git mktree` would write it. `hexLength` is the store's (40 or 64) for an empty tree. */
export function treeObjectId(entries: readonly TreeIdEntry[], hexLength = entries[0]?.id.length ?? 40): string {
  const algorithm = hexLength === 64 ? 'sha256' : 'sha1';
  const parsed = entries.map((entry) => {
    const mode = parseInt(entry.mode, 8);
    const name = typeof entry.name === 'string' ? Buffer.from(entry.name, 'utf8') : entry.name;
    if (entry.id.length !== hexLength || !/^[0-9a-f]+$/.test(entry.id)) throw new Error(`Not an object id of this store: ${entry.id}`);
    return { key: sortKey(name, mode), head: Buffer.from(`${mode.toString(8)} `), name, id: Buffer.from(entry.id, 'hex') };
  });
  parsed.sort((a, b) => Buffer.compare(a.key, b.key));
  const body = Buffer.concat(parsed.flatMap((entry) => [entry.head, entry.name, Buffer.from([0]), entry.id]));
  return createHash(algorithm).update(`tree ${body.length}\0`).update(body).digest('hex');
}
