/**
 * Where the CLI finds a dataset when `--dataset` is not given. Datasets live outside the
 * workspace, in `<APOLLO_HOME>/datasets/<workspace key>` (APOLLO_HOME defaults to ~/.apollo): the
 * agent's commands can neither read nor replace them. A command naming a run (`--run ID`,
 * `--resume ID`) finds it in any of those datasets; other commands use the dataset of the
 * workspace they are run in (the current folder or one above it).
 */
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { DatasetError } from '../core/dataset/store';
import { apolloHome, defaultDatasetDir, LEGACY_DATASET_RELATIVE } from '../core/paths';
import { legacyRunsLeft } from '../core/session/datasetLocation';

/** APOLLO_HOME from the variables given, else the process's: the claims the engine takes use the same. */
function homeEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { APOLLO_HOME: env.APOLLO_HOME ?? process.env.APOLLO_HOME };
}

export function cliApolloHome(env: NodeJS.ProcessEnv): string {
  return apolloHome(homeEnv(env));
}

function real(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}

/** The default dataset of a workspace. */
export function workspaceDataset(workspace: string, env: NodeJS.ProcessEnv): string {
  return defaultDatasetDir(real(workspace), homeEnv(env));
}

const hasRun = (dataset: string, runId: string) => existsSync(path.join(dataset, 'runs', runId, 'run.json'));

/**
 * A line for stderr when the workspace still has runs in the folder earlier versions used
 * (`<workspace>/.apollo/dataset`) that the dataset in use does not hold: they are not lost, and
 * this says how to bring them over.
 */
export function legacyNotice(workspace: string, dataset: string): string | undefined {
  const left = legacyRunsLeft(real(workspace), dataset);
  if (!left) return undefined;
  return (
    `note: ${left.runs.length} run(s) of this workspace are in ${left.dir}, where earlier versions kept the dataset; ` +
    `datasets now live outside the workspace, this one in ${dataset}. Bring them over (nothing is removed): apollo merge ${left.dir} --into ${dataset}\n`
  );
}

export interface DatasetQuery {
  /** --dataset, as given. */
  dataset?: string;
  /** The run the command is about (--run, --resume): looked for in every dataset. */
  runId?: string;
  /** --workspace, when the command takes it. */
  workspace?: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Where the legacy-location note goes. */
  note?: (line: string) => void;
}

/** The dataset folder a command works on (see the module comment). */
export function resolveDataset(query: DatasetQuery): string {
  if (query.dataset) return path.resolve(query.cwd, query.dataset);
  const home = cliApolloHome(query.env);
  const start = path.resolve(query.cwd, query.workspace ?? '.');
  // The workspace the command runs in: the folder given, or the nearest one above with a dataset.
  let workspace = start;
  if (!query.workspace) {
    for (let dir = start; ; dir = path.dirname(dir)) {
      if (existsSync(workspaceDataset(dir, query.env))) {
        workspace = dir;
        break;
      }
      if (path.dirname(dir) === dir) break;
    }
  }
  const own = workspaceDataset(workspace, query.env);
  if (query.runId) {
    const datasets = path.join(home, 'datasets');
    let others: string[] = [];
    try {
      others = readdirSync(datasets).map((name) => path.join(datasets, name));
    } catch {
      // no datasets yet
    }
    const legacy = path.join(real(workspace), LEGACY_DATASET_RELATIVE);
    const found = [own, ...others, legacy].find((dataset) => hasRun(dataset, query.runId!));
    if (found) return found;
    throw new DatasetError(`No run "${query.runId}" in the datasets under ${datasets} (nor in ${legacy}). Give the dataset it was recorded in with --dataset DIR.`);
  }
  const notice = legacyNotice(workspace, own);
  if (notice) query.note?.(notice);
  return own;
}
