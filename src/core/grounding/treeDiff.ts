/**
 * A step's grounding worked out in-process for the common case: regular files modified, added or
 * deleted between two snapshot trees, with the same files, line counts and patch text that
 * `git diff-tree -r -M --numstat -p` gives. Anything else (a possible rename, symlinks, nested
 * links, attributes that could change the diff, objects not stored loose) is declined, and the
 * store asks git.
 */
import type { FileChange } from '../dataset/events';
import { unifiedDiff } from './lineDiff';
import { NULL_ID } from './looseObjects';
import type { TreeEntry } from './treePatch';

const TREE_MODE = '40000';
const REGULAR = new Set(['100644', '100755']);
/** Git looks for a NUL in this many first bytes to call a file binary. */
const BINARY_SNIFF_BYTES = 8000;
/** More changed files than this go to git: one process is then cheap next to the work. */
const MAX_FILES = 200;

export interface TreeDiffSource {
  /** A tree's entries, in any order, or undefined when it cannot be read in-process. */
  listTree(id: string): Promise<TreeEntry[] | undefined>;
  /** A blob's content, or undefined when it cannot be read in-process. */
  readBlob(id: string): Promise<Buffer | undefined>;
  abbreviate(id: string): Promise<string>;
  /** Whether the workspace has a .gitattributes file in any of these folders (workspace-relative). */
  attributesIn(folders: string[]): Promise<boolean>;
}

export interface PatchSettings {
  /** core.quotePath: bytes above 0x7f in names are written as octal escapes. */
  quotePath: boolean;
  indentHeuristic: boolean;
  suppressBlankEmpty: boolean;
  /** core.bigFileThreshold: larger files are binary. */
  bigFileThreshold: number;
}

interface Side {
  mode: string;
  id: string;
}

interface ChangedPath {
  path: string;
  old?: Side;
  new?: Side;
}

/** Git's tree order: names compared as bytes, a folder's as if it ended in "/". */
const orderKey = (entry: TreeEntry) => Buffer.from(entry.mode === TREE_MODE ? `${entry.name}/` : entry.name);
const inTreeOrder = (entries: TreeEntry[]) => entries.map((entry) => ({ entry, key: orderKey(entry) })).sort((a, b) => Buffer.compare(a.key, b.key));
type Ordered = ReturnType<typeof inTreeOrder>;

/**
 * Trees put in order lately, by id (an id always names the same entries): a step's "before"
 * trees are the last step's "after" trees.
 */
const ordered = new Map<string, Ordered | 'attributes'>();
const ORDERED_TREES = 4096;

class Declined extends Error {}
const decline = (): never => {
  throw new Declined();
};

/** The paths whose blobs differ between two trees, in the order git lists them. */
async function changedPaths(source: TreeDiffSource, before: string, after: string): Promise<ChangedPath[]> {
  const changes: ChangedPath[] = [];
  const list = async (id: string | undefined) => {
    if (id === undefined) return [];
    let known = ordered.get(id);
    if (!known) {
      const entries = (await source.listTree(id)) ?? decline();
      // Attributes could change how the files below are compared.
      known = entries.some((entry) => entry.name === '.gitattributes') ? 'attributes' : inTreeOrder(entries);
      if (ordered.size >= ORDERED_TREES) ordered.delete(ordered.keys().next().value!);
      ordered.set(id, known);
    }
    return known === 'attributes' ? decline() : known;
  };
  const visit = async (prefix: string, oldTree: string | undefined, newTree: string | undefined): Promise<void> => {
    const [olds, news] = await Promise.all([list(oldTree), list(newTree)]);
    let i = 0;
    let j = 0;
    while (i < olds.length || j < news.length) {
      const order = i >= olds.length ? 1 : j >= news.length ? -1 : Buffer.compare(olds[i].key, news[j].key);
      const oldEntry = order <= 0 ? olds[i++].entry : undefined;
      const newEntry = order >= 0 ? news[j++].entry : undefined;
      if (oldEntry && newEntry && oldEntry.id === newEntry.id && oldEntry.mode === newEntry.mode) continue;
      const name = (oldEntry ?? newEntry)!.name;
      const path = prefix ? `${prefix}/${name}` : name;
      const oldIsTree = oldEntry?.mode === TREE_MODE;
      const newIsTree = newEntry?.mode === TREE_MODE;
      if (oldIsTree || newIsTree) {
        await visit(path, oldIsTree ? oldEntry!.id : undefined, newIsTree ? newEntry!.id : undefined);
        continue;
      }
      // Symlinks and nested links are left to git.
      if ((oldEntry && !REGULAR.has(oldEntry.mode)) || (newEntry && !REGULAR.has(newEntry.mode))) decline();
      changes.push({ path, ...(oldEntry ? { old: { mode: oldEntry.mode, id: oldEntry.id } } : {}), ...(newEntry ? { new: { mode: newEntry.mode, id: newEntry.id } } : {}) });
      if (changes.length > MAX_FILES) decline();
    }
  };
  await visit('', before, after);
  return changes;
}

/** Bytes git writes as a backslash and a letter; the other control bytes become octal. */
const LETTER_ESCAPES: Record<number, string> = { 7: 'a', 8: 'b', 9: 't', 10: 'n', 11: 'v', 12: 'f', 13: 'r', 34: '"', 92: '\\' };

/** A path as git's patch headers write it: C-quoted, with the prefix inside the quotes, when needed. */
function quotedName(prefix: string, name: string, quotePath: boolean): Buffer {
  const bytes = Buffer.from(prefix + name);
  const needs = (byte: number) => byte < 0x20 || byte === 34 || byte === 92 || byte === 0x7f || (byte >= 0x80 && quotePath);
  if (!bytes.some(needs)) return bytes;
  const out: number[] = [34];
  for (const byte of bytes) {
    if (!needs(byte)) {
      out.push(byte);
    } else if (LETTER_ESCAPES[byte]) {
      out.push(92, LETTER_ESCAPES[byte].charCodeAt(0));
    } else {
      out.push(92, 48 + ((byte >> 6) & 3), 48 + ((byte >> 3) & 7), 48 + (byte & 7));
    }
  }
  out.push(34);
  return Buffer.from(out);
}

const isBinary = (content: Buffer, settings: PatchSettings) => content.length > settings.bigFileThreshold || content.subarray(0, BINARY_SNIFF_BYTES).includes(0);

export interface TreeGrounding {
  files: FileChange[];
  patch: string;
  patchTruncated?: boolean;
}

/**
 * The grounding between two trees, or undefined when git has to work it out. The patch is cut
 * to `maxPatchBytes` (UTF-8) as the store cuts git's.
 */
export async function groundTrees(source: TreeDiffSource, before: string, after: string, settings: PatchSettings, maxPatchBytes: number): Promise<TreeGrounding | undefined> {
  let changes: ChangedPath[];
  try {
    changes = await changedPaths(source, before, after);
  } catch (error) {
    if (error instanceof Declined) return undefined;
    throw error;
  }
  // Without both an added and a deleted file there is no rename for -M to find.
  if (changes.some((change) => !change.old) && changes.some((change) => !change.new)) return undefined;
  const folders = new Set<string>();
  for (const change of changes) {
    for (let dir = change.path; dir.includes('/'); ) {
      dir = dir.slice(0, dir.lastIndexOf('/'));
      folders.add(dir);
    }
    folders.add('');
  }
  if (await source.attributesIn([...folders])) return undefined;

  const contents = await Promise.all(
    changes.map(async (change) => {
      const read = async (side: Side | undefined) => (side ? await source.readBlob(side.id) : Buffer.alloc(0));
      return Promise.all([read(change.old), read(change.new)]);
    }),
  );
  if (contents.some(([oldContent, newContent]) => !oldContent || !newContent)) return undefined;

  const files: FileChange[] = [];
  const chunks: Buffer[] = [];
  let patchBytes = 0;
  // Past the cap (and a few bytes for a character cut in two) the rest of the patch is not needed.
  const patchFull = () => patchBytes > maxPatchBytes + 8;
  const push = (chunk: Buffer) => {
    if (patchFull()) return;
    chunks.push(chunk);
    patchBytes += chunk.length;
  };
  for (let k = 0; k < changes.length; k++) {
    const change = changes[k];
    const [oldContent, newContent] = contents[k] as [Buffer, Buffer];
    const binary = (!!change.old && isBinary(oldContent, settings)) || (!!change.new && isBinary(newContent, settings));
    const status = !change.old ? 'added' : !change.new ? 'deleted' : 'modified';
    const file: FileChange = { path: change.path, status, additions: 0, deletions: 0, binary };
    files.push(file);

    const a = quotedName('a/', change.path, settings.quotePath);
    const b = quotedName('b/', change.path, settings.quotePath);
    const oldLabel = change.old ? a : Buffer.from('/dev/null');
    const newLabel = change.new ? b : Buffer.from('/dev/null');
    const header: Buffer[] = [Buffer.from('diff --git '), a, Buffer.from(' '), b, Buffer.from('\n')];
    let showHeader = false;
    if (!change.old) {
      header.push(Buffer.from(`new file mode ${change.new!.mode}\n`));
      showHeader = true;
    } else if (!change.new) {
      header.push(Buffer.from(`deleted file mode ${change.old.mode}\n`));
      showHeader = true;
    } else if (change.old.mode !== change.new.mode) {
      header.push(Buffer.from(`old mode ${change.old.mode}\nnew mode ${change.new.mode}\n`));
      showHeader = true;
    }
    const oldId = change.old?.id ?? NULL_ID;
    const newId = change.new?.id ?? NULL_ID;
    const sameContent = oldId === newId;
    if (!sameContent) {
      const sameMode = change.old && change.new && change.old.mode === change.new.mode;
      header.push(Buffer.from(`index ${await source.abbreviate(oldId)}..${await source.abbreviate(newId)}${sameMode ? ` ${change.old!.mode}` : ''}\n`));
    }
    if (sameContent || binary) {
      // A mode change alone shows its header; a binary file, its header and one line.
      header.forEach(push);
      if (!sameContent) push(Buffer.concat([Buffer.from('Binary files '), oldLabel, Buffer.from(' and '), newLabel, Buffer.from(' differ\n')]));
      continue;
    }
    const diff = unifiedDiff(oldContent, newContent, { indentHeuristic: settings.indentHeuristic, suppressBlankEmpty: settings.suppressBlankEmpty, countOnly: patchFull() });
    file.additions = diff.additions;
    file.deletions = diff.deletions;
    if (showHeader || diff.chunks.length) header.forEach(push);
    if (diff.chunks.length) {
      const tab = (label: Buffer) => (label.includes(0x20) ? '\t' : '');
      push(Buffer.concat([Buffer.from('--- '), oldLabel, Buffer.from(`${tab(oldLabel)}\n+++ `), newLabel, Buffer.from(`${tab(newLabel)}\n`)]));
      diff.chunks.forEach(push);
    }
  }
  const decoded = Buffer.concat(chunks).toString('utf8');
  const truncated = patchFull() || Buffer.byteLength(decoded) > maxPatchBytes;
  const patch = truncated ? Buffer.from(decoded).subarray(0, maxPatchBytes).toString('utf8') : decoded;
  return { files, patch, ...(truncated ? { patchTruncated: true } : {}) };
}
