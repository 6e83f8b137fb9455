/**
 * Copy-on-write working copies on Linux, where the file system cannot reflink (ext4): one base
 * folder per sampling, made once, and each run's copy an overlay mount over it. A run's copy then
 * costs a mount, and on disk only what its run changes (the overlay's upper layer).
 *
 * Layout, beside the copies of a sampling (`<runsDir>/<taskId>/`):
 *
 *   .overlay/base           the lower layer: the snapshot's files (and the copy's `.git`), never
 *                           written once a copy is mounted over it
 *   .overlay/<n>/upper      what run n changed (overlayfs's upper layer; whiteouts for deletions)
 *   .overlay/<n>/work       overlayfs's scratch folder
 *   <n>                     the mount point: the run's workspace
 *
 * Mounting needs the right to mount: root on the host, or — the usual case — a private mount
 * namespace inside a user namespace of the user's own (unprivileged overlayfs, Linux 5.11+), which
 * the CLI enters for the commands that make or mount copies. A mount made in such a namespace is
 * seen by that process and its children only (the agent's file tools, git, the sandbox, the
 * verifier: all of the run's work) and goes away with it; the layers stay, and `remountCopy` mounts
 * them again for a resume or a later verify. Elsewhere the copies are plain copies.
 *
 * The layers are always mounted with `userxattr` (overlayfs's bookkeeping in `user.overlay.*`
 * attributes, the only kind an unprivileged mount may write), so a copy made by root can be
 * mounted again in a user namespace and the other way round.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isValidRunId } from '../dataset/ids';

const run = promisify(execFile);

/** The folder of a sampling's overlay layers, beside its copies. */
export function layersRoot(copiesDir: string): string {
  return path.join(copiesDir, '.overlay');
}

/** The lower layer every copy of a sampling is mounted over. */
export function baseDir(copiesDir: string): string {
  return path.join(layersRoot(copiesDir), 'base');
}

/** The layers of the copy mounted at `dir` (`<copiesDir>/<n>`). */
export function copyLayers(dir: string): { base: string; upper: string; work: string } {
  const copiesDir = path.dirname(dir);
  const own = path.join(layersRoot(copiesDir), path.basename(dir));
  return { base: baseDir(copiesDir), upper: path.join(own, 'upper'), work: path.join(own, 'work') };
}

// overlayfs's option string separates options with commas and lower layers with colons; the
// kernel reads a backslash as an escape. A path holding any of them (or a newline) is not passed.
const UNSAFE_IN_OPTIONS = /[,:\\\n]/;

function mountOptions(layers: { base: string; upper: string; work: string }): string {
  for (const folder of Object.values(layers)) {
    if (UNSAFE_IN_OPTIONS.test(folder)) throw new Error(`the path ${folder} holds a comma, colon, backslash or newline, which overlayfs's mount options cannot carry`);
  }
  return `lowerdir=${layers.base},upperdir=${layers.upper},workdir=${layers.work},userxattr`;
}

async function mountOverlay(layers: { base: string; upper: string; work: string }, target: string): Promise<void> {
  const options = mountOptions(layers);
  await run('mount', ['-t', 'overlay', 'overlay', '-o', options, '--', target], { timeout: 30_000 });
}

/** Whether `dir` is a mount point (its device differs from its parent's). */
export async function isMounted(dir: string): Promise<boolean> {
  const [own, parent] = await Promise.all([fs.stat(dir).catch(() => undefined), fs.stat(path.dirname(dir)).catch(() => undefined)]);
  return !!own && !!parent && own.dev !== parent.dev;
}

/**
 * Whether `dir` is (or was) an overlay copy: it is laid out as one (`<taskId>/<n>`) and its layers
 * are there, beside it. A path recorded in a dataset is never mounted over otherwise.
 */
export async function isOverlayCopy(dir: string): Promise<boolean> {
  if (!/^\d+$/.test(path.basename(dir)) || !isValidRunId(path.basename(path.dirname(dir)))) return false;
  const { upper, base } = copyLayers(dir);
  const [a, b] = await Promise.all([fs.stat(upper).catch(() => undefined), fs.stat(base).catch(() => undefined)]);
  return !!a?.isDirectory() && !!b?.isDirectory();
}

const support = new Map<string, Promise<string | undefined>>();

/**
 * Whether this process may mount overlay copies in `near` (the folder the copies go in, which need
 * not exist yet): undefined when it may, else why not. Found out once per folder and process by
 * mounting a tiny overlay in a scratch folder there and unmounting it.
 */
export function overlaySupport(near: string = os.tmpdir()): Promise<string | undefined> {
  const key = path.resolve(near);
  let found = support.get(key);
  if (!found) support.set(key, (found = probe(key)));
  return found;
}

/**
 * Refuses (with the reason) a folder of copies whose layer paths overlayfs's mount options cannot
 * carry.
 */
export function checkOverlayPaths(copiesDir: string): void {
  mountOptions(copyLayers(path.join(copiesDir, '1')));
}

async function probe(near: string): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'overlay mounts are Linux only';
  await fs.mkdir(near, { recursive: true }).catch(() => undefined);
  const scratch = await fs.mkdtemp(path.join(near, '.apollo-overlay-probe-')).catch(() => undefined);
  if (!scratch) return `cannot write in ${near}`;
  const layers = { base: path.join(scratch, 'base'), upper: path.join(scratch, 'upper'), work: path.join(scratch, 'work') };
  const target = path.join(scratch, 'copy');
  try {
    for (const folder of [...Object.values(layers), target]) await fs.mkdir(folder);
    await fs.writeFile(path.join(layers.base, 'probe'), 'lower\n');
    await mountOverlay(layers, target);
    try {
      await fs.appendFile(path.join(target, 'probe'), 'upper\n');
      const lower = await fs.readFile(path.join(layers.base, 'probe'), 'utf8');
      if (lower !== 'lower\n') return 'a write through the overlay reached its lower layer';
    } finally {
      await unmount(target);
    }
    return undefined;
  } catch (error) {
    const message = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
    return `cannot mount an overlay here (${message.split('\n')[0]})`;
  } finally {
    await fs.rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Unmounts `dir` lazily: at once for every new lookup, and for good once the last process that
 * still has something open in it (a git process of the run's shadow store closing down, a job the
 * agent left behind) lets go; what such a process writes still lands in the upper layer.
 */
async function unmount(dir: string): Promise<void> {
  await run('umount', ['--lazy', '--', dir], { timeout: 30_000 });
}

/**
 * Mounts a new copy at `dir` (an empty folder) over the sampling's base, with empty upper and work
 * layers of its own.
 */
export async function mountCopy(dir: string): Promise<void> {
  const layers = copyLayers(dir);
  await fs.mkdir(layers.upper, { recursive: true });
  await fs.mkdir(layers.work, { recursive: true });
  await fs.mkdir(dir, { recursive: true });
  await mountOverlay(layers, dir);
}

/**
 * Mounts an overlay copy's layers again at `dir` when they are not mounted (a resumed run, a
 * later verify). Returns false when `dir` is not an overlay copy; throws with the reason when it
 * is one and this process may not mount it.
 */
export async function remountCopy(dir: string): Promise<boolean> {
  if (!(await isOverlayCopy(dir))) return false;
  if (await isMounted(dir)) return true;
  const refused = await overlaySupport(path.dirname(dir));
  if (refused) throw new Error(`${dir} is an overlay working copy and is not mounted: ${refused}`);
  await fs.mkdir(dir, { recursive: true });
  await mountOverlay(copyLayers(dir), dir);
  return true;
}

/** Unmounts the overlay copies mounted among `dirs` (those not mounted are left as they are). */
export async function unmountCopies(dirs: string[]): Promise<void> {
  for (const dir of dirs) if ((await isOverlayCopy(dir)) && (await isMounted(dir))) await unmount(dir);
}
