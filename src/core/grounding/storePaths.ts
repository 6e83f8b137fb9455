/**
 * Where shadow stores and their snapshots live, and path questions about workspace-relative
 * names. A name may begin with ".." (`..notes`) and still lie inside: only a whole ".." part
 * leads out, so these checks go part by part.
 */
import { realpathSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';

/** The dataset's subfolder that holds the shadow stores. */
export const SHADOW_FOLDER = 'shadow';

/** Each run's snapshots hang off a ref of its own, so a deleted run's snapshots can be collected. */
export const RUN_REF_PREFIX = 'refs/apollo/runs/';
/** The ref a run's snapshots hang off: it names the run's last snapshot. */
export const runSnapshotRef = (runId: string) => `${RUN_REF_PREFIX}${runId}`;

/** True when `child` is `parent` or lies below it, lexically; `..notes` is a name like any other. */
export function below(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  if (relative === '') return true;
  if (path.isAbsolute(relative)) return false;
  return relative.split(path.sep)[0] !== '..';
}

/** A path as git names it inside a tree: no empty, "." or ".." part, nothing absolute. */
export function isTreePath(relative: string): boolean {
  return relative !== '' && !relative.startsWith('/') && relative.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** One store per workspace inside the dataset folder, so all runs of a workspace share objects. */
export function shadowStoreDir(datasetRoot: string, workspace: string): string {
  let real = path.resolve(workspace);
  try {
    real = realpathSync(real);
  } catch {
    // A workspace that does not exist yet still gets a stable key.
  }
  const key = createHash('sha1').update(real).digest('hex').slice(0, 16);
  return path.join(datasetRoot, SHADOW_FOLDER, `${key}.git`);
}

/** The dataset folder, workspace-relative, when it lies inside the workspace: never snapshotted. */
export function datasetExclusions(workspace: string, datasetRoot: string): string[] {
  return below(path.resolve(datasetRoot), path.resolve(workspace)) ? [path.relative(workspace, datasetRoot)] : [];
}

/** Removes folders left empty by a restore, up to the workspace. */
export async function removeEmptyFolders(dir: string, workspace: string): Promise<void> {
  while (dir !== workspace && below(dir, workspace)) {
    const entries = await fs.readdir(dir).catch(() => undefined);
    if (!entries || entries.length) return;
    await fs.rmdir(dir).catch(() => undefined);
    dir = path.dirname(dir);
  }
}
