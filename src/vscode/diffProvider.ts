/** Serves files of shadow-store snapshots to VS Code's diff editor, read-only, and opens the diffs core/session/diffView.ts describes. */
import * as vscode from 'vscode';
import type { Grounding } from '../core/dataset/events';
import type { AdoptPreview } from '../core/session/adopt';
import { adoptPreviewDiff, type DiffSide, type DiffView, SNAPSHOT_SCHEME, SnapshotFiles, stepDiff } from '../core/session/diffView';
import * as window from './vscodeApis/window';

export { SNAPSHOT_SCHEME };

export class SnapshotContentProvider implements vscode.TextDocumentContentProvider {
  private readonly files = new SnapshotFiles();

  provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    return this.files.read({ path: uri.path, query: uri.query });
  }
}

const uriOf = (side: DiffSide) => ('file' in side ? vscode.Uri.file(side.file) : vscode.Uri.from({ scheme: SNAPSHOT_SCHEME, path: side.path, query: side.query }));

async function show(view: DiffView | undefined): Promise<void> {
  if (view?.kind === 'changes')
    await vscode.commands.executeCommand(
      'vscode.changes',
      view.title,
      view.resources.map(([file, left, right]) => [vscode.Uri.file(file), uriOf(left), uriOf(right)]),
    );
  else if (view) await vscode.commands.executeCommand('vscode.diff', uriOf(view.left), uriOf(view.right), view.title, { preview: true });
}

/** Opens the diff of one step: one file directly, several through a pick list. */
export async function openStepDiff(step: number, grounding: Grounding, shadow: { workspace: string; storeDir: string }): Promise<void> {
  await show(await stepDiff(step, grounding, shadow, window));
}

/** A run's net change in VS Code's multi-diff editor: your file as it is now, against the run's. */
export async function openAdoptPreview(preview: AdoptPreview): Promise<void> {
  await show(await adoptPreviewDiff(preview));
}
