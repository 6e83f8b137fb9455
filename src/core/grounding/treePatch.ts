/**
 * Builds the next snapshot's tree from the last one when the watcher names a few changed files:
 * only the changed files are hashed and only the folders above them get new tree objects, so the
 * cost does not depend on the size of the workspace (no index of every file is read). Anything
 * it does not handle (new folders, symlinks, .gitignore edits) is left to the index. Git hashes
 * the files and writes (and orders) the trees; this only decides which entries change.
 */
import type { Stats } from 'node:fs';
import type { TreeEntry } from './storeProcesses';

export type { TreeEntry };

/** What the patch needs of the object store: reading a tree, writing blobs and trees, checking ignores. */
export interface ObjectAccess {
  listTree(id: string): Promise<TreeEntry[]>;
  /**
   * Hashes and stores workspace files (with the same filters as `git add`); ids in order.
   * `attributes`: a .gitattributes file lies in a folder above one of them.
   */
  writeBlobs(relativePaths: string[], attributes: boolean): Promise<string[]>;
  /** Stores a tree object of these entries; its id. */
  writeTree(entries: TreeEntry[]): Promise<string>;
  /** Which of these new paths .gitignore, the store's excludes or the user's excludes leave out. */
  ignored(relativePaths: string[]): Promise<Set<string>>;
  /** Keeps the listing of a tree just built, so the next patch need not read it back. */
  remember(id: string, entries: TreeEntry[]): void;
}

export type PathState = { kind: 'file'; stat: Stats } | { kind: 'missing' };

const TREE_MODE = '40000';

/** The mode git records for a regular file; where the file system has no executable bit, a file keeps the mode it had. */
export function fileMode(stat: Stats, previous: string | undefined, executableBit: boolean): '100755' | '100644' {
  const executable = executableBit ? (stat.mode & 0o111) !== 0 : previous === '100755';
  return executable ? '100755' : '100644';
}

export interface PatchResult {
  tree: string;
  /** Files left out for their size now, and files no longer left out. */
  oversized: string[];
  fitting: string[];
}

/**
 * The tree `base` with `changes` applied, or undefined when a change is not a plain file edit,
 * creation or deletion inside folders the tree already has.
 */
export async function patchTree(base: string, changes: Map<string, PathState>, access: ObjectAccess, maxFileBytes: number, executableBit: boolean): Promise<PatchResult | undefined> {
  if (changes.size === 0) return { tree: base, oversized: [], fitting: [] };
  // Listings of the folders on the changed paths, read from the base tree.
  const listings = new Map<string, TreeEntry[]>([['', await access.listTree(base)]]);
  const listing = async (dir: string): Promise<TreeEntry[] | undefined> => {
    const known = listings.get(dir);
    if (known) return known;
    const slash = dir.lastIndexOf('/');
    const parent = await listing(slash < 0 ? '' : dir.slice(0, slash));
    const entry = parent?.find((candidate) => candidate.name === dir.slice(slash + 1));
    if (!entry || entry.mode !== TREE_MODE) return undefined;
    const entries = await access.listTree(entry.id);
    listings.set(dir, entries);
    return entries;
  };

  const writes: { dir: string; name: string; mode: string; path: string }[] = [];
  const removals: { dir: string; name: string }[] = [];
  const oversized: string[] = [];
  const fitting: string[] = [];
  const fresh: string[] = [];
  for (const [relative, state] of changes) {
    if (relative.split('/').some((part) => part === '.gitignore' || part === '.gitattributes' || part === '.git' || part === '')) return undefined;
    const slash = relative.lastIndexOf('/');
    const dir = slash < 0 ? '' : relative.slice(0, slash);
    const name = relative.slice(slash + 1);
    const entries = await listing(dir);
    if (!entries) {
      // A path in a folder the tree does not have: gone now, or new with its folder.
      if (state.kind === 'missing') continue;
      return undefined;
    }
    const existing = entries.find((entry) => entry.name === name);
    if (state.kind === 'missing') {
      if (existing) removals.push({ dir, name });
      continue;
    }
    if (existing && existing.mode === TREE_MODE) return undefined; // a folder became a file
    if (existing && existing.mode !== '100644' && existing.mode !== '100755') return undefined; // a symlink or a link
    if (state.stat.size > maxFileBytes) {
      oversized.push(relative);
      if (existing) removals.push({ dir, name });
      continue;
    }
    fitting.push(relative);
    const mode = fileMode(state.stat, existing?.mode, executableBit);
    if (!existing) fresh.push(relative);
    writes.push({ dir, name, mode, path: relative });
  }

  // New files follow the ignore rules; files the tree already has stay, as in git.
  const ignored = fresh.length ? await access.ignored(fresh) : new Set<string>();
  const kept = writes.filter((write) => !ignored.has(write.path));
  // A .gitattributes file the tree holds above a file could filter its content.
  const attributes = kept.some((write) => {
    for (let dir = write.dir; ; dir = dir.includes('/') ? dir.slice(0, dir.lastIndexOf('/')) : '') {
      if (listings.get(dir)?.some((entry) => entry.name === '.gitattributes')) return true;
      if (dir === '') return false;
    }
  });
  const ids = kept.length
    ? await access.writeBlobs(
        kept.map((write) => write.path),
        attributes,
      )
    : [];

  // Apply the changes to the listings, then rebuild trees from the deepest folder up.
  const changed = new Set<string>();
  const touch = (dir: string) => {
    for (let current = dir; ; current = current.includes('/') ? current.slice(0, current.lastIndexOf('/')) : '') {
      changed.add(current);
      if (current === '') break;
    }
  };
  // Folders removed whole: nothing below them is rebuilt.
  const removedFolders: string[] = [];
  for (const { dir, name } of removals) {
    const entries = listings.get(dir)!;
    if (entries.some((entry) => entry.name === name && entry.mode === TREE_MODE)) removedFolders.push(dir ? `${dir}/${name}` : name);
    listings.set(
      dir,
      entries.filter((entry) => entry.name !== name),
    );
    touch(dir);
  }
  const underRemoved = (dir: string) => removedFolders.some((folder) => dir === folder || dir.startsWith(`${folder}/`));
  kept.forEach((write, index) => {
    const current = listings.get(write.dir)!.find((entry) => entry.name === write.name);
    // Content and mode as they were: the folder stays as it is.
    if (current && current.id === ids[index] && current.mode === write.mode) return;
    const entries = listings.get(write.dir)!.filter((entry) => entry.name !== write.name);
    entries.push({ mode: write.mode, id: ids[index], name: write.name });
    listings.set(write.dir, entries);
    touch(write.dir);
  });
  if (changed.size === 0) return { tree: base, oversized, fitting };

  const order = [...changed].filter((dir) => !underRemoved(dir)).sort((a, b) => b.split('/').length - a.split('/').length || b.length - a.length);
  const built = new Map<string, string>();
  // Deepest first: a folder's id goes into its parent's entries.
  for (const dir of order) {
    const entries = listings.get(dir)!;
    const id = await access.writeTree(entries);
    built.set(dir, id);
    access.remember(id, entries);
    if (dir === '') continue;
    const slash = dir.lastIndexOf('/');
    const parentDir = slash < 0 ? '' : dir.slice(0, slash);
    const name = dir.slice(slash + 1);
    // A folder left empty disappears from its parent, as git never records empty folders.
    const parent = listings.get(parentDir)!.filter((entry) => entry.name !== name);
    if (entries.length) parent.push({ mode: TREE_MODE, id, name });
    listings.set(parentDir, parent);
  }
  return { tree: built.get('')!, oversized, fitting };
}
