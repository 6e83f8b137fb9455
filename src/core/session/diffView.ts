/**
 * What the diff editor shows of a step or of a run to adopt: the two sides of each file (a file
 * of a shadow-store snapshot, or the file on disk), and the snapshot files' contents, read-only.
 * The editor turns the sides into its URIs (scheme SNAPSHOT_SCHEME, this path and query).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FileChange, Grounding } from '../dataset/events';
import { ShadowStore } from '../grounding/shadowStore';
import type { EditorUi } from '../ui';
import type { AdoptPreview } from './adopt';

export const SNAPSHOT_SCHEME = 'apollo-snapshot';

/** A file of a snapshot, as the URI path (`/src/a.ts`) and query that name it. */
export interface SnapshotRef {
  path: string;
  query: string;
}

/** One side of a diff: a file on disk, or a file of a snapshot. */
export type DiffSide = { file: string } | SnapshotRef;

/** Several files in a multi-file diff (each: the file, its left and its right side), or one file's diff. */
export type DiffView = { kind: 'changes'; title: string; resources: [string, DiffSide, DiffSide][] } | { kind: 'diff'; title: string; left: DiffSide; right: DiffSide };

interface SnapshotQuery {
  workspace: string;
  store: string;
  snapshot: string;
}

export function snapshotRef(query: SnapshotQuery, filePath: string, side: 'before' | 'after'): SnapshotRef {
  return { path: `/${filePath}`, query: new URLSearchParams({ ...query, side }).toString() };
}

/** Reads the files snapshotRef names, one shadow store a store folder; '' for what is not there (or not a snapshot id). */
export class SnapshotFiles {
  private readonly stores = new Map<string, ShadowStore>();

  async read(ref: SnapshotRef): Promise<string> {
    const params = new URLSearchParams(ref.query);
    const workspace = params.get('workspace') ?? '';
    const storeDir = params.get('store') ?? '';
    const snapshot = params.get('snapshot') ?? '';
    if (!/^[0-9a-f]{40,64}$/.test(snapshot)) return '';
    let store = this.stores.get(storeDir);
    if (!store) {
      store = new ShadowStore({ workspace, storeDir });
      this.stores.set(storeDir, store);
    }
    const content = await store.readFile(snapshot, ref.path.replace(/^\//, ''));
    return content?.toString('utf8') ?? '';
  }
}

/** The diff of one step: one file directly, several through a pick list (one of them, or all). Undefined when there is nothing to show. */
export async function stepDiff(
  step: number,
  grounding: Grounding,
  shadow: { workspace: string; storeDir: string },
  ui: Pick<EditorUi, 'showQuickPick' | 'showInformationMessage'>,
): Promise<DiffView | undefined> {
  if (grounding.files.length === 0) {
    void ui.showInformationMessage(`Step ${step} changed no files.`);
    return undefined;
  }
  const base = { workspace: shadow.workspace, store: shadow.storeDir };
  const sides = (change: FileChange) => ({
    left: snapshotRef({ ...base, snapshot: grounding.before }, change.oldPath ?? change.path, 'before'),
    right: snapshotRef({ ...base, snapshot: grounding.after }, change.path, 'after'),
  });
  let file: FileChange | undefined = grounding.files[0];
  if (grounding.files.length > 1) {
    const all = { label: `$(diff-multiple) All ${grounding.files.length} files`, description: 'in one multi-file diff editor', change: undefined };
    const picked = await ui.showQuickPick(
      [
        all,
        ...grounding.files.map((change) => ({
          label: change.path,
          description: change.binary ? `${change.status}, binary` : `${change.status}  +${change.additions} −${change.deletions}`,
          change,
        })),
      ],
      { title: `Files changed by step ${step}`, placeHolder: 'Pick a file to compare, or all of them' },
    );
    // The editor adds the file count to the title.
    if (picked === all) return { kind: 'changes', title: `Step ${step}`, resources: grounding.files.map((change) => [`${shadow.workspace}/${change.path}`, sides(change).left, sides(change).right]) };
    file = picked?.change;
  }
  return file && { kind: 'diff', ...sides(file), title: `${file.path} (step ${step})` };
}

/** A run's net change in a multi-file diff: your file as it is now (empty when it is not on disk), against the run's. */
export async function adoptPreviewDiff(preview: AdoptPreview): Promise<DiffView> {
  const base = { workspace: preview.workspace, store: preview.originStore, snapshot: preview.base };
  const result = { workspace: preview.workspace, store: preview.runStore, snapshot: preview.final };
  const resources = await Promise.all(
    preview.files.map(async (change): Promise<[string, DiffSide, DiffSide]> => {
      const target = path.join(preview.workspace, change.path);
      const exists = await fs.lstat(target).then(
        () => true,
        () => false,
      );
      // A file not on disk shows as empty: the base snapshot has no such path.
      return [target, exists ? { file: target } : snapshotRef(base, change.path, 'before'), snapshotRef(result, change.path, 'after')];
    }),
  );
  return { kind: 'changes', title: `Adopt run ${preview.runId}`, resources };
}
