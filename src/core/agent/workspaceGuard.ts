/**
 * Keeps every file tool inside the workspace and out of the dataset folder.
 *
 * The file operations themselves live in workspaceFs.ts: where the kernel allows (Linux), they walk
 * the path fd-relatively and never follow a symlink, so nothing a background job does to the
 * workspace meanwhile can lead them outside. `resolve` is the check by real path: every symlink on
 * the way is followed — also a dangling one, whose target does not exist yet (writing through it
 * would create the target) — and the result must lie inside the workspace and outside the
 * forbidden folders (dataset, shadow store) and, for writes, outside the repository's .git folder.
 * A write to a file with more than one hard link is refused too: the other link may be outside the
 * workspace (`ln ~/.bashrc x`).
 */
import { PathRefusedError, WorkspaceFs } from './workspaceFs';

export { PathRefusedError };

export class WorkspaceGuard {
  /** The file operations on paths the agent names. */
  readonly files: WorkspaceFs;

  constructor(
    readonly workspace: string,
    forbidden: string[] = [],
  ) {
    this.files = new WorkspaceFs(workspace, forbidden);
  }

  /** The folders no tool may read or write (dataset, shadow store), as given; the sandbox hides them. */
  get forbiddenPaths(): string[] {
    return this.files.forbiddenPaths;
  }

  /**
   * Resolves a path the agent gave (relative to the workspace, or absolute) to its real path,
   * following symlinks, and refuses it when it leaves the workspace or enters a forbidden folder.
   * A check, not an open: use `files` to read or write what it names.
   */
  resolve(userPath: string, purpose: 'read' | 'write'): Promise<string> {
    return this.files.resolve(userPath, purpose);
  }

  /** True for folders a listing should not show: the dataset (and the `.apollo` folder holding it), .git. */
  isHidden(realPath: string): Promise<boolean> {
    return this.files.isHidden(realPath);
  }
}
