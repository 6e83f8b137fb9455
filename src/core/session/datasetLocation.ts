/**
 * Where a run's dataset may live. By default outside the workspace (`<APOLLO_HOME>/datasets/<key>`);
 * a dataset the user keeps inside it anyway is hidden from the sandbox with the folders leading to
 * it pinned (sandbox.ts), and is refused when the path to it passes through a symbolic link inside
 * the workspace: the agent can make such a link, and would decide where the record goes.
 */
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import path from 'node:path';
import { isInside, LEGACY_DATASET_RELATIVE } from '../paths';
import { ConfigError } from './errors';

/**
 * Throws when the configured dataset path (absolute) reaches its folder through a symbolic link
 * that lies inside the workspace (give its real path). Checked before anything is created there.
 */
export async function checkDatasetLocation(workspace: string, configured: string): Promise<void> {
  const parts = path.resolve(configured).split(path.sep).filter(Boolean);
  let lexical = path.parse(path.resolve(configured)).root;
  for (const part of parts) {
    lexical = path.join(lexical, part);
    let link: string | undefined;
    try {
      if ((await fs.lstat(lexical)).isSymbolicLink()) link = await fs.readlink(lexical);
    } catch {
      return; // the rest does not exist yet: it will be created as folders
    }
    if (link === undefined) continue;
    const where = path.join(await fs.realpath(path.dirname(lexical)), path.basename(lexical));
    if (isInside(where, workspace) && where !== workspace) {
      throw new ConfigError(
        `The dataset folder ${configured} is reached through the symbolic link ${where} (to ${link}), which lies inside the workspace: ` +
          `commands run there could have made it. Remove the link (or check where it points and move that folder back in its place), ` +
          `or give the dataset's real path with --dataset (apollo.datasetPath) — best outside the workspace. Nothing was recorded.`,
      );
    }
  }
}

/**
 * The runs an older version recorded in `<workspace>/.apollo/dataset` that `dataset` (the one in
 * use) does not hold: never lost, never silently ignored — the caller says how to bring them over.
 */
export function legacyRunsLeft(workspace: string, dataset: string): { dir: string; runs: string[] } | undefined {
  const dir = path.join(workspace, LEGACY_DATASET_RELATIVE);
  if (path.resolve(dataset) === dir) return undefined;
  let names: string[];
  try {
    names = readdirSync(path.join(dir, 'runs'));
  } catch {
    return undefined;
  }
  const runs = names.filter((name) => existsSync(path.join(dir, 'runs', name, 'run.json')) && !existsSync(path.join(dataset, 'runs', name, 'run.json')));
  return runs.length ? { dir, runs } : undefined;
}
