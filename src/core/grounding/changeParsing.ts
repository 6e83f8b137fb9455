/**
 * Change parsing: what git prints about changed paths (`diff-tree --raw --numstat -p -z`,
 * `status --porcelain=v1 -z`), read into Apollo's records. Entries are counted, not searched
 * for, so no file name can be taken for the next field.
 */
import type { FileChange, FileChangeStatus } from '../dataset/events';

export function statusFromLetter(letter: string): FileChangeStatus {
  switch (letter[0]) {
    case 'A':
      return 'added';
    case 'D':
      return 'deleted';
    case 'R':
      return 'renamed';
    case 'T':
      return 'typechange';
    default:
      return 'modified';
  }
}

export const splitNul = (output: string) => output.split('\0').filter(Boolean);

/**
 * Reads `diff-tree --raw --numstat -p -z`: the raw entries (":modes ids status", then the path,
 * or the old and new path of a rename or copy) come first, then one numstat entry per file
 * ("added<TAB>deleted<TAB>path", or "added<TAB>deleted<TAB>" then old and new path), then the
 * patch text.
 */
export function parseChanges(output: string): { files: FileChange[]; patch: string } {
  const fields = output.split('\0');
  const files: FileChange[] = [];
  let i = 0;
  while (i < fields.length && fields[i].startsWith(':')) {
    const letter = fields[i].split(' ')[4] ?? 'M';
    if (letter.startsWith('R') || letter.startsWith('C')) {
      files.push({ path: fields[i + 2], oldPath: fields[i + 1], status: statusFromLetter(letter), additions: 0, deletions: 0, binary: false });
      i += 3;
    } else {
      files.push({ path: fields[i + 1], status: statusFromLetter(letter), additions: 0, deletions: 0, binary: false });
      i += 2;
    }
  }
  for (const change of files) {
    const [added, deleted, ...rest] = (fields[i] ?? '').split('\t');
    // A rename's entry has an empty path, followed by the old and the new path.
    i += rest.join('\t') === '' ? 3 : 1;
    change.binary = added === '-' && deleted === '-';
    change.additions = change.binary ? 0 : Number(added) || 0;
    change.deletions = change.binary ? 0 : Number(deleted) || 0;
  }
  // An empty field separates the summary from the patch.
  if (fields[i] === '') i++;
  return { files, patch: fields.slice(i).join('\0') };
}

/**
 * Reads `status --porcelain=v1 --branch -z`: the paths that differ from the index (work tree
 * side, or untracked), untracked ones also into `untracked`. Folders lose their trailing slash.
 */
export function parseStatus(output: string, untracked: Set<string>): string[] {
  const paths: string[] = [];
  for (const entry of splitNul(output)) {
    if (entry.startsWith('## ')) continue;
    const [index, worktree, relative] = [entry[0], entry[1], entry.slice(3)];
    const name = relative.replace(/\/$/, '');
    if (index === '?' || worktree !== ' ') paths.push(name);
    if (index === '?') untracked.add(name);
  }
  return paths;
}
