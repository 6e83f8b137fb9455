/** Apollo: Export Dataset… — format, branches and target picked in VS Code, a cancellable progress bar while it runs. */
import * as vscode from 'vscode';
import path from 'node:path';
import { DatasetStore } from '../core/dataset/store';
import { EXPORT_FORMATS, ExportFormat, ExportSummary, exportDataset, FOLDER_FORMATS, FORMAT_DESCRIPTIONS } from '../core/export/exportDataset';
import type { MaskPolicy } from '../core/supervision/labels';

/** What a caller (a test, a keybinding, another extension) may hand the command to skip the pickers. */
export interface ExportRequest {
  format?: unknown;
  out?: unknown;
  branches?: unknown;
  minQuality?: unknown;
  hints?: unknown;
}

const FILE_EXTENSIONS: Partial<Record<ExportFormat, string>> = { openai: 'jsonl', sharegpt: 'jsonl', pairs: 'jsonl' };

function stamp(): string {
  return new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
}

async function pickFormat(): Promise<ExportFormat | undefined> {
  const picked = await vscode.window.showQuickPick(
    EXPORT_FORMATS.map((format) => ({ label: format, detail: FORMAT_DESCRIPTIONS[format], format })),
    { title: 'Apollo: Export Dataset (1/3): format', matchOnDetail: true },
  );
  return picked?.format;
}

async function pickBranches(): Promise<'main' | 'all' | undefined> {
  const picked = await vscode.window.showQuickPick(
    [
      { label: 'Main line only', detail: 'each run as it ended', branches: 'main' as const },
      { label: 'Main line and abandoned branches', detail: 'every branch a rewind left, as its own trajectory', branches: 'all' as const },
    ],
    { title: 'Apollo: Export Dataset (2/3): which branches' },
  );
  return picked?.branches;
}

async function pickTarget(format: ExportFormat, workspace: string): Promise<string | undefined> {
  const name = `apollo-${format}-${stamp()}`;
  if (FOLDER_FORMATS.includes(format)) {
    const [parent] =
      (await vscode.window.showOpenDialog({
        title: `Apollo: Export Dataset (3/3): the folder "${name}" is created in the folder you choose`,
        canSelectFolders: true,
        canSelectFiles: false,
        openLabel: 'Export Here',
        defaultUri: vscode.Uri.file(workspace),
      })) ?? [];
    return parent && path.join(parent.fsPath, name);
  }
  const extension = FILE_EXTENSIONS[format] ?? 'jsonl';
  const target = await vscode.window.showSaveDialog({
    title: 'Apollo: Export Dataset (3/3): save as',
    defaultUri: vscode.Uri.file(path.join(workspace, `${name}.${extension}`)),
    filters: { 'JSON Lines': [extension] },
  });
  return target?.fsPath;
}

/**
 * Runs an export with a progress notification that can cancel it. Returns the summary, or
 * undefined when the user cancelled a picker; a failure is shown and rethrown.
 */
export async function runExportCommand(options: { datasetDir: string; workspace: string; policy: MaskPolicy; request?: ExportRequest }): Promise<ExportSummary | undefined> {
  const request = options.request ?? {};
  const format = EXPORT_FORMATS.includes(request.format as ExportFormat) ? (request.format as ExportFormat) : await pickFormat();
  if (!format) return undefined;
  const branches = request.branches === 'main' || request.branches === 'all' ? request.branches : request.out === undefined ? await pickBranches() : 'main';
  if (!branches) return undefined;
  const out = typeof request.out === 'string' ? path.resolve(options.workspace, request.out) : await pickTarget(format, options.workspace);
  if (!out) return undefined;
  const store = new DatasetStore(options.datasetDir);
  const summary = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Apollo: exporting ${format}`, cancellable: true },
    async (progress, token) => {
      const controller = new AbortController();
      const cancel = token.onCancellationRequested(() => controller.abort());
      let reported = 0;
      try {
        return await exportDataset(store, {
          format,
          out,
          branches,
          policy: options.policy,
          minQuality: typeof request.minQuality === 'number' ? request.minQuality : undefined,
          hints: request.hints === false ? false : undefined,
          signal: controller.signal,
          onProgress: ({ runsDone, runsTotal, records }) => {
            const percent = (runsDone / runsTotal) * 100;
            progress.report({ increment: percent - reported, message: `${runsDone} of ${runsTotal} run(s), ${records} record(s)` });
            reported = percent;
          },
        });
      } finally {
        cancel.dispose();
      }
    },
  );
  const skipped = summary.skipped.length ? ` ${summary.skipped.length} left out because they failed validation (see the Apollo log).` : '';
  const message = `Apollo: exported ${summary.records} ${format} record(s) from ${summary.runs} run(s): ${summary.trainedSteps} step(s) trained, ${summary.maskedSteps} masked (${summary.policy}).${skipped}`;
  void (summary.skipped.length ? vscode.window.showWarningMessage(message, 'Reveal') : vscode.window.showInformationMessage(message, 'Reveal')).then((choice) => {
    if (choice === 'Reveal') void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(out));
  });
  return summary;
}
