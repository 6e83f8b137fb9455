/** Serves files of shadow-store snapshots to VS Code's diff editor, read-only. */
import * as vscode from 'vscode';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FileChange, Grounding } from '../core/dataset/events';
import type { AdoptPreview } from '../core/session/adopt';
import { ShadowStore } from '../core/grounding/shadowStore';

export const SNAPSHOT_SCHEME = 'apollo-snapshot';

interface SnapshotQuery {
  workspace: string;
  store: string;
  snapshot: string;
}

export class SnapshotContentProvider implements vscode.TextDocumentContentProvider {
  private readonly stores = new Map<string, ShadowStore>();

  static uri(query: SnapshotQuery, filePath: string, side: 'before' | 'after'): vscode.Uri {
    return vscode.Uri.from({
      scheme: SNAPSHOT_SCHEME,
      path: `/${filePath}`,
      query: new URLSearchParams({ ...query, side }).toString(),
    });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const params = new URLSearchParams(uri.query);
    const workspace = params.get('workspace') ?? '';
    const storeDir = params.get('store') ?? '';
    const snapshot = params.get('snapshot') ?? '';
    if (!/^[0-9a-f]{40,64}$/.test(snapshot)) return '';
    let store = this.stores.get(storeDir);
    if (!store) {
      store = new ShadowStore({ workspace, storeDir });
      this.stores.set(storeDir, store);
    }
    const content = await store.readFile(snapshot, uri.path.replace(/^\//, ''));
    return content?.toString('utf8') ?? '';
  }
}

/** Opens the diff of one step: one file directly, several through a pick list. */
export async function openStepDiff(step: number, grounding: Grounding, shadow: { workspace: string; storeDir: string }): Promise<void> {
  if (grounding.files.length === 0) {
    void vscode.window.showInformationMessage(`Step ${step} changed no files.`);
    return;
  }
  const base = { workspace: shadow.workspace, store: shadow.storeDir };
  const sides = (change: FileChange) => ({
    left: SnapshotContentProvider.uri({ ...base, snapshot: grounding.before }, change.oldPath ?? change.path, 'before'),
    right: SnapshotContentProvider.uri({ ...base, snapshot: grounding.after }, change.path, 'after'),
  });
  let file: FileChange | undefined = grounding.files[0];
  if (grounding.files.length > 1) {
    const all = { label: `$(diff-multiple) All ${grounding.files.length} files`, description: 'in one multi-file diff editor', change: undefined };
    const picked = await vscode.window.showQuickPick(
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
    if (picked === all) {
      const resources = grounding.files.map((change) => {
        const { left, right } = sides(change);
        return [vscode.Uri.file(`${shadow.workspace}/${change.path}`), left, right];
      });
      // VS Code adds the file count to the title.
      await vscode.commands.executeCommand('vscode.changes', `Step ${step}`, resources);
      return;
    }
    file = picked?.change;
  }
  if (!file) return;
  const { left, right } = sides(file);
  await vscode.commands.executeCommand('vscode.diff', left, right, `${file.path} (step ${step})`, { preview: true });
}

/** A run's net change in VS Code's multi-diff editor: your file as it is now, against the run's. */
export async function openAdoptPreview(preview: AdoptPreview): Promise<void> {
  const base = { workspace: preview.workspace, store: preview.originStore, snapshot: preview.base };
  const result = { workspace: preview.workspace, store: preview.runStore, snapshot: preview.final };
  const resources = await Promise.all(
    preview.files.map(async (change) => {
      const target = vscode.Uri.file(path.join(preview.workspace, change.path));
      const exists = await fs.lstat(target.fsPath).then(
        () => true,
        () => false,
      );
      // A file not on disk shows as empty: the base snapshot has no such path.
      const current = exists ? target : SnapshotContentProvider.uri(base, change.path, 'before');
      return [target, current, SnapshotContentProvider.uri(result, change.path, 'after')];
    }),
  );
  await vscode.commands.executeCommand('vscode.changes', `Adopt run ${preview.runId}`, resources);
}
