/** Keeps every file tool inside the workspace and out of the dataset folder. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isInside } from '../paths';

export class PathRefusedError extends Error {}

/** The real path of `target`, or of its nearest existing ancestor joined with the rest. */
async function realPathOfNearest(target: string): Promise<string> {
  const missing: string[] = [];
  let current = target;
  for (;;) {
    try {
      const real = await fs.realpath(current);
      return path.join(real, ...missing.reverse());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
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
    return real;
  }

  /** True for folders a listing should not show: the dataset (and the `.apollo` folder holding it), .git. */
  async isHidden(realPath: string): Promise<boolean> {
    const roots = await this.roots();
    const holdsDataset = (dir: string) => path.basename(realPath) === '.apollo' && isInside(dir, realPath);
    return roots.forbidden.some((dir) => isInside(realPath, dir) || holdsDataset(dir)) || realPath === path.join(roots.workspace, '.git');
  }
}
