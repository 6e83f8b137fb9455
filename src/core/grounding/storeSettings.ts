/**
 * Git settings of a shadow store: the environment its git processes run with, the config a new
 * store is given, and the one question about the user's config that decides how a file may be
 * hashed (whether an attributes file outside the workspace could apply).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type Driver, gitEnvironment } from './gitEnvironment';

export const IDENTITY = { name: 'Apollo', email: 'apollo@localhost' };

export function storeEnvironment(indexFile: string, drivers: readonly Driver[] = []): Record<string, string> {
  return gitEnvironment(
    {
      // The system's attributes file, like its config, has no say over what a snapshot holds.
      GIT_ATTR_NOSYSTEM: '1',
      GIT_INDEX_FILE: indexFile,
      GIT_AUTHOR_NAME: IDENTITY.name,
      GIT_AUTHOR_EMAIL: IDENTITY.email,
      GIT_COMMITTER_NAME: IDENTITY.name,
      GIT_COMMITTER_EMAIL: IDENTITY.email,
    },
    drivers,
  );
}

/** Written into a new store's config. */
export const STORE_CONFIG: readonly [string, string][] = [
  ['gc.auto', '0'],
  ['core.bare', 'false'],
  // Unchanged folders are not read again, and an index write costs what changed.
  ['core.untrackedCache', 'true'],
  ['core.splitIndex', 'true'],
  ['index.version', '4'],
  // No reflogs: they would keep a deleted run's snapshots from being collected.
  ['core.logAllRefUpdates', 'false'],
  ['core.fsmonitor', 'false'],
];

/** Options every store command that touches the work tree runs with. */
export const WORK_TREE_CONFIG = ['-c', 'core.autocrlf=false', '-c', 'core.safecrlf=false', '-c', 'advice.addEmbeddedRepo=false', '-c', 'advice.addIgnoredFile=false'];

/**
 * Whether an attributes file outside the workspace could apply (the user's `core.attributesFile`
 * or its default place, the store's `info/attributes`): then git hashes every file with its
 * filters, through the index. `listing` is `git config --list -z` of the store.
 */
export async function outsideAttributes(listing: string, storeDir: string, workspace: string): Promise<boolean> {
  const home = process.env.HOME ?? '';
  const xdg = process.env.XDG_CONFIG_HOME;
  let attributesFile: string | undefined = xdg ? path.join(xdg, 'git', 'attributes') : home ? path.join(home, '.config', 'git', 'attributes') : undefined;
  for (const entry of listing.split('\0')) {
    const newline = entry.indexOf('\n');
    const key = (newline < 0 ? entry : entry.slice(0, newline)).toLowerCase();
    if (key !== 'core.attributesfile') continue;
    const value = newline < 0 ? undefined : entry.slice(newline + 1);
    if (value === undefined || (value.startsWith('~') && !value.startsWith('~/'))) return true;
    attributesFile = value.startsWith('~/') ? path.join(home, value.slice(2)) : path.resolve(workspace, value);
  }
  const exists = (file: string) =>
    fs.access(file).then(
      () => true,
      () => false,
    );
  if (attributesFile && (await exists(attributesFile))) return true;
  return exists(path.join(storeDir, 'info', 'attributes'));
}
