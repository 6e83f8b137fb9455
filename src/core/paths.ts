/** Path questions asked across the core. */
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

/**
 * True when `child` is `parent` or lies below it (lexically: resolve real paths first). A name that
 * only begins with two dots (`..notes`) is inside; only a `..` component leads out.
 */
export function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}

/**
 * Apollo's own folder for the user: datasets (`datasets/<workspace key>`) and workspace claims
 * (`claims/<workspace key>.json`). `APOLLO_HOME`, else `~/.apollo`; the CLI and the extension
 * use the same one, so each sees the other's claims.
 */
export function apolloHome(env: NodeJS.ProcessEnv = process.env): string {
  const set = env.APOLLO_HOME?.trim();
  return set ? path.resolve(set) : path.join(os.homedir(), '.apollo');
}

/**
 * A readable, stable name for a workspace (pass its real path): its folder name and the first
 * 12 hex digits of the SHA-256 of the path, e.g. `my-app-3f2a9c01b7de`.
 */
export function workspaceKey(realWorkspace: string): string {
  const base =
    path
      .basename(realWorkspace)
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^\.+/, '')
      .slice(0, 60) || 'root';
  return `${base}-${createHash('sha256').update(realWorkspace).digest('hex').slice(0, 12)}`;
}

/** Where a workspace's dataset lives by default: `<APOLLO_HOME>/datasets/<workspace key>`. */
export function defaultDatasetDir(realWorkspace: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(apolloHome(env), 'datasets', workspaceKey(realWorkspace));
}

/** The dataset folder older versions kept inside the workspace. */
export const LEGACY_DATASET_RELATIVE = path.join('.apollo', 'dataset');
