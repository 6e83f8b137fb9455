/** Apollo: Export Dataset… — format, branches and target picked in VS Code, a cancellable progress bar while it runs. */
import * as vscode from 'vscode';
import path from 'node:path';
import { DatasetStore } from '../core/dataset/store';
import { EXPORT_FORMATS, type ExportFormat, type ExportSummary, exportDataset, FORMAT_DESCRIPTIONS } from '../core/export/exportDataset';
import { exportReport, exportTarget, type ExportRequest, settleExport } from '../core/export/request';
import type { MaskPolicy } from '../core/supervision/labels';

export type { ExportRequest };

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
  const target = exportTarget(format);
  if (target.folder) {
    const [parent] =
      (await vscode.window.showOpenDialog({
        title: `Apollo: Export Dataset (3/3): the folder "${target.name}" is created in the folder you choose`,
        canSelectFolders: true,
        canSelectFiles: false,
        openLabel: 'Export Here',
        defaultUri: vscode.Uri.file(workspace),
      })) ?? [];
    return parent && path.join(parent.fsPath, target.name);
  }
  const file = await vscode.window.showSaveDialog({
    title: 'Apollo: Export Dataset (3/3): save as',
    defaultUri: vscode.Uri.file(path.join(workspace, `${target.name}.${target.extension}`)),
    filters: { 'JSON Lines': [target.extension] },
  });
  return file?.fsPath;
}

/**
 * Runs an export with a progress notification that can cancel it. Returns the summary, or
 * undefined when the user cancelled a picker; a failure is shown and rethrown.
 */
export async function runExportCommand(options: { datasetDir: string; workspace: string; policy: MaskPolicy; request?: ExportRequest }): Promise<ExportSummary | undefined> {
  const settled = settleExport(options.request, options.workspace);
  const format = settled.format ?? (await pickFormat());
  if (!format) return undefined;
  const branches = settled.branches ?? (await pickBranches());
  if (!branches) return undefined;
  const out = settled.out ?? (await pickTarget(format, options.workspace));
  if (!out) return undefined;
  const store = new DatasetStore(options.datasetDir);
  const summary = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Apollo: exporting ${format}`, cancellable: true }, async (progress, token) => {
    const controller = new AbortController();
    const cancel = token.onCancellationRequested(() => controller.abort());
    let reported = 0;
    try {
      return await exportDataset(store, {
        format,
        out,
        branches,
        policy: options.policy,
        minQuality: settled.minQuality,
        hints: settled.hints,
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
  });
  const report = exportReport(summary, format);
  void (report.warning ? vscode.window.showWarningMessage(report.message, 'Reveal') : vscode.window.showInformationMessage(report.message, 'Reveal')).then((choice) => {
    if (choice === 'Reveal') void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(out));
  });
  return summary;
}
