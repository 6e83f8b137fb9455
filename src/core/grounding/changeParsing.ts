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

const isUtf8 = (bytes: Buffer) => Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);

/** A name's bytes in git's quoted form: quotes, C escapes, and octal for control and non-ASCII bytes. */
export function quoteBytes(bytes: Buffer): string {
  let quoted = '"';
  for (const byte of bytes) {
    if (byte === 0x22 || byte === 0x5c) quoted += `\\${String.fromCharCode(byte)}`;
    else if (byte === 0x0a) quoted += '\\n';
    else if (byte === 0x09) quoted += '\\t';
    else if (byte < 0x20 || byte >= 0x7f) quoted += `\\${byte.toString(8).padStart(3, '0')}`;
    else quoted += String.fromCharCode(byte);
  }
  return `${quoted}"`;
}

/** A file name as the events carry it (see FileChange in dataset/events.ts). */
export function fileName(bytes: Buffer): { name: string; base64?: string } {
  return isUtf8(bytes) ? { name: bytes.toString('utf8') } : { name: quoteBytes(bytes), base64: bytes.toString('base64') };
}

function changeFor(letter: string, path: Buffer, oldPath?: Buffer): FileChange {
  const name = fileName(path);
  const old = oldPath && fileName(oldPath);
  return {
    path: name.name,
    ...(name.base64 !== undefined ? { pathBase64: name.base64 } : {}),
    ...(old ? { oldPath: old.name, ...(old.base64 !== undefined ? { oldPathBase64: old.base64 } : {}) } : {}),
    status: statusFromLetter(letter),
    additions: 0,
    deletions: 0,
    binary: false,
  };
}

function splitBuffer(buffer: Buffer): Buffer[] {
  const fields: Buffer[] = [];
  let at = 0;
  for (let nul = buffer.indexOf(0); nul >= 0; nul = buffer.indexOf(0, at)) {
    fields.push(buffer.subarray(at, nul));
    at = nul + 1;
  }
  fields.push(buffer.subarray(at));
  return fields;
}

/**
 * Reads `diff-tree --raw --numstat -p -z`: the raw entries (":modes ids status", then the path,
 * or the old and new path of a rename or copy) come first, then one numstat entry per file
 * ("added<TAB>deleted<TAB>path", or "added<TAB>deleted<TAB>" then old and new path), then the
 * patch text. Given bytes, names that are not UTF-8 keep their bytes (FileChange.pathBase64).
 */
export function parseChanges(output: string | Buffer): { files: FileChange[]; patch: string } {
  const fields = splitBuffer(typeof output === 'string' ? Buffer.from(output, 'utf8') : output);
  const text = (index: number) => fields[index]?.toString('utf8');
  const files: FileChange[] = [];
  let i = 0;
  while (i < fields.length && fields[i][0] === 0x3a /* : */) {
    const letter = text(i).split(' ')[4] ?? 'M';
    if (letter.startsWith('R') || letter.startsWith('C')) {
      files.push(changeFor(letter, fields[i + 2], fields[i + 1]));
      i += 3;
    } else {
      files.push(changeFor(letter, fields[i + 1]));
      i += 2;
    }
  }
  for (const change of files) {
    const entry = fields[i] ?? Buffer.alloc(0);
    const [added, deleted, ...rest] = entry.toString('latin1').split('\t');
    // A rename's entry has an empty path, followed by the old and the new path.
    i += rest.join('\t') === '' ? 3 : 1;
    change.binary = added === '-' && deleted === '-';
    change.additions = change.binary ? 0 : Number(added) || 0;
    change.deletions = change.binary ? 0 : Number(deleted) || 0;
  }
  // An empty field separates the summary from the patch.
  if (fields[i]?.length === 0) i++;
  return { files, patch: i < fields.length ? Buffer.concat(fields.slice(i).flatMap((field, index) => (index ? [Buffer.from([0]), field] : [field]))).toString('utf8') : '' };
}

/**
 * A name decoded from git's output that lost bytes (not UTF-8): its nearest folder whose name
 * came through whole, which git then walks itself, bytes and all ('.' for the top).
 */
export function wholeName(relative: string): string {
  if (!relative.includes('\uFFFD')) return relative;
  const parts = relative.split('/');
  const clean = parts.slice(
    0,
    parts.findIndex((part) => part.includes('\uFFFD')),
  );
  return clean.length ? clean.join('/') : '.';
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
    const name = wholeName(relative.replace(/\/$/, ''));
    if (index === '?' || worktree !== ' ') paths.push(name);
    if (index === '?') untracked.add(name);
  }
  return paths;
}
