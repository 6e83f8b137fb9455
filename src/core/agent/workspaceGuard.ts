/**
 * Keeps every file tool inside the workspace and out of the dataset folder.
 *
 * A path is judged by where it really leads: every symlink on the way is followed — also a
 * dangling one, whose target does not exist yet (writing through it would create the target) — and
 * the result must lie inside the workspace and outside the forbidden folders (dataset, shadow store)
 * and, for writes, outside the repository's .git folder. A write to a file with more than one hard
 * link is refused too: the other link may be outside the workspace (`ln ~/.bashrc x`). The tools
 * write with O_NOFOLLOW, so a symlink swapped in after the check is not followed either.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isInside } from '../paths';

export class PathRefusedError extends Error {}

/** Symlinks followed before a path counts as a loop (Linux's own limit). */
const MAX_SYMLINKS = 40;

/**
 * The real path of `target`: of its nearest existing ancestor joined with the rest — and when a
 * component on the way is a dangling symlink, of the place that symlink points to.
 */
async function realPathOfNearest(target: string, depth = 0): Promise<string> {
  if (depth > MAX_SYMLINKS) throw new PathRefusedError(`Refused: too many levels of symbolic links in "${target}".`);
  const missing: string[] = [];
  let current = target;
  for (;;) {
    try {
      const real = await fs.realpath(current);
      return path.join(real, ...missing.reverse());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new PathRefusedError(`Refused: too many levels of symbolic links in "${target}".`);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      const link = await fs.readlink(current).catch(() => undefined);
      if (link !== undefined) {
        // A dangling symlink: what matters is where it leads.
        // Relative targets start from the link's real folder (`..` included).
        const folder = await realPathOfNearest(path.dirname(current), depth + 1);
        return realPathOfNearest(path.join(path.resolve(folder, link), ...missing.reverse()), depth + 1);
      }
      const parent = path.dirname(current);
      if (parent === current) return target;
      missing.push(path.basename(current));
      current = parent;
    }
  }
}

export class WorkspaceGuard {
  private realWorkspace: string | undefined;
  private realForbidden: string[] | undefined;

  constructor(
    readonly workspace: string,
    private readonly forbidden: string[] = [],
  ) {}

  /** The folders no tool may read or write (dataset, shadow store), as given; the sandbox hides them. */
  get forbiddenPaths(): string[] {
    return [...this.forbidden];
  }

  private async roots(): Promise<{ workspace: string; forbidden: string[] }> {
    this.realWorkspace ??= await fs.realpath(this.workspace);
    this.realForbidden ??= await Promise.all(this.forbidden.map((dir) => realPathOfNearest(path.resolve(dir))));
    return { workspace: this.realWorkspace, forbidden: this.realForbidden };
  }

  /**
   * Resolves a path the agent gave (relative to the workspace, or absolute) to its real path,
   * following symlinks, and refuses it when it leaves the workspace or enters a forbidden folder.
   */
  async resolve(userPath: string, purpose: 'read' | 'write'): Promise<string> {
    if (typeof userPath !== 'string' || userPath.trim() === '') throw new PathRefusedError('The path is empty.');
    if (userPath.includes('\0')) throw new PathRefusedError('The path contains a NUL character.');
    const roots = await this.roots();
    const requested = path.resolve(roots.workspace, userPath);
    const real = await realPathOfNearest(requested);
    if (!isInside(real, roots.workspace)) {
      throw new PathRefusedError(`Refused: "${userPath}" is outside the workspace; only files inside ${roots.workspace} can be used.`);
    }
    for (const dir of roots.forbidden) {
      if (isInside(real, dir)) {
        throw new PathRefusedError(`Refused: "${userPath}" is inside Apollo's dataset folder, which the agent may not ${purpose}.`);
      }
    }
    if (purpose === 'write' && isInside(real, path.join(roots.workspace, '.git'))) {
      throw new PathRefusedError(`Refused: "${userPath}" is inside the repository's .git folder.`);
    }
    if (purpose === 'write') {
      const stat = await fs.lstat(real).catch(() => undefined);
      if (stat?.isFile() && stat.nlink > 1) {
        throw new PathRefusedError(`Refused: "${userPath}" has ${stat.nlink} hard links; another one may lie outside the workspace. Write a new file instead (delete it first, then write it).`);
      }
    }
    return real;
  }

  /** True for folders a listing should not show: the dataset (and the `.apollo` folder holding it), .git. */
  async isHidden(realPath: string): Promise<boolean> {
    const roots = await this.roots();
    const holdsDataset = (dir: string) => path.basename(realPath) === '.apollo' && isInside(dir, realPath);
    return roots.forbidden.some((dir) => isInside(realPath, dir) || holdsDataset(dir)) || realPath === path.join(roots.workspace, '.git');
  }
}
