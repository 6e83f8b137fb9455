/**
 * Snapshots read straight from a shadow store, with no work tree: a snapshot's full listing
 * (mode and object id per path), the objects' content, and the object id a file on disk would
 * get. Snapshots of two stores can be compared this way even when neither borrows the other's
 * objects (a sampled run's store and the store of the workspace it was copied from).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { SimpleGit } from 'simple-git';
import type { FileChange } from '../dataset/events';
import { hardenedGit } from './gitEnvironment';
import { parseChanges } from './changeParsing';

/** Git's modes for what a snapshot can hold. */
export const MODE_FILE = '100644';
export const MODE_EXECUTABLE = '100755';
export const MODE_SYMLINK = '120000';

export interface TreeItem {
  mode: string;
  /** The object id (a blob: the file's content, or a symbolic link's target). */
  id: string;
}

/** Every file of a snapshot by its slash-separated path. */
export type TreeListing = Map<string, TreeItem>;

const splitNul = (output: string) => output.split('\0').filter(Boolean);

/** Reads one store's objects; `borrow` lists other stores whose objects it may read too. */
export class SnapshotReader {
  private instance: SimpleGit | undefined;

  constructor(
    readonly storeDir: string,
    private readonly borrow: string[] = [],
  ) {}

  private get git(): SimpleGit {
    this.instance ??= hardenedGit(
      { baseDir: this.storeDir, trimmed: false },
      {
        GIT_DIR: this.storeDir,
        // An index file that never exists: reading objects needs none.
        GIT_INDEX_FILE: path.join(this.storeDir, 'apollo-index', 'none'),
        ...(this.borrow.length ? { GIT_ALTERNATE_OBJECT_DIRECTORIES: this.borrow.map((dir) => path.join(dir, 'objects')).join(path.delimiter) } : {}),
      },
    );
    return this.instance;
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

  /** Every file of a snapshot, with its mode and object id. */
  async list(snapshot: string): Promise<TreeListing> {
    const listing: TreeListing = new Map();
    for (const line of splitNul(await this.git.raw(['ls-tree', '-r', '-z', '--full-tree', snapshot]))) {
      const tab = line.indexOf('\t');
      const [mode, , id] = line.slice(0, tab).split(' ');
      listing.set(line.slice(tab + 1), { mode, id });
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
      const output = await this.git.raw(['diff-tree', '-r', '--no-renames', '--raw', '--numstat', '-z', '--no-color', '--no-ext-diff', before, after]);
      for (const file of parseChanges(output).files) counts.set(file.path, { additions: file.additions, deletions: file.deletions, binary: file.binary });
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
 * typechange (a file became a symbolic link or the other way round). Sorted by path.
 */
export function compareListings(before: TreeListing, after: TreeListing): FileChange[] {
  const changes: FileChange[] = [];
  for (const file of new Set([...before.keys(), ...after.keys()])) {
    const old = before.get(file);
    const now = after.get(file);
    if (old && now && old.mode === now.mode && old.id === now.id) continue;
    const status = !old ? 'added' : !now ? 'deleted' : (old.mode === MODE_SYMLINK) !== (now.mode === MODE_SYMLINK) ? 'typechange' : 'modified';
    changes.push({ path: file, status, additions: 0, deletions: 0, binary: false });
  }
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
