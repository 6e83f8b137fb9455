/**
 * "Export Dataset…" in the editor: what the request (request.ts) does not settle is asked through
 * the editor's UI (format, branches, target), the export runs under a progress notification that
 * can cancel it, and the result is said, with a button to reveal what was written.
 */
import path from 'node:path';
import { DatasetStore } from '../dataset/store';
import type { MaskPolicy } from '../supervision/labels';
import type { EditorUi, Log } from '../ui';
import { EXPORT_FORMATS, ExportCancelled, type ExportFormat, type ExportSummary, exportDataset, FORMAT_DESCRIPTIONS } from './exportDataset';
import { exportReport, exportTarget, settleExport } from './request';

export type ExportUi = Pick<EditorUi, 'showQuickPick' | 'showFolderDialog' | 'showSaveDialog' | 'withCancellableProgress' | 'showInformationMessage' | 'showWarningMessage' | 'showErrorMessage'> & {
  /** Shows a file or folder in the system's file manager. */
  revealFile(file: string): PromiseLike<unknown>;
};

async function pickFormat(ui: ExportUi): Promise<ExportFormat | undefined> {
  const picked = await ui.showQuickPick(
    EXPORT_FORMATS.map((format) => ({ label: format, detail: FORMAT_DESCRIPTIONS[format], format })),
    { title: 'Apollo: Export Dataset (1/3): format', matchOnDetail: true },
  );
  return picked?.format;
}

async function pickBranches(ui: ExportUi): Promise<'main' | 'all' | undefined> {
  const picked = await ui.showQuickPick(
    [
      { label: 'Main line only', detail: 'each run as it ended', branches: 'main' as const },
      { label: 'Main line and abandoned branches', detail: 'every branch a rewind left, as its own trajectory', branches: 'all' as const },
    ],
    { title: 'Apollo: Export Dataset (2/3): which branches' },
  );
  return picked?.branches;
}

async function pickTarget(ui: ExportUi, format: ExportFormat, workspace: string): Promise<string | undefined> {
  const target = exportTarget(format);
  if (target.folder) {
    const parent = await ui.showFolderDialog(`Apollo: Export Dataset (3/3): the folder "${target.name}" is created in the folder you choose`, 'Export Here', workspace);
    return parent && path.join(parent, target.name);
  }
  return ui.showSaveDialog('Apollo: Export Dataset (3/3): save as', path.join(workspace, `${target.name}.${target.extension}`), { 'JSON Lines': [target.extension] });
}

export interface ExportCommandOptions {
  datasetDir: string;
  workspace: string;
  policy: MaskPolicy;
  /** A caller's request (a test, a keybinding's arguments), unchecked. */
  request?: unknown;
}

/** Asks what is left, exports, and says what came of it. The summary; undefined when a question was dismissed, the export cancelled or failed (said and logged). */
export async function runExportCommand(ui: ExportUi, log: Log, options: ExportCommandOptions): Promise<ExportSummary | undefined> {
  try {
    const settled = settleExport(typeof options.request === 'object' && options.request ? options.request : undefined, options.workspace);
    const format = settled.format ?? (await pickFormat(ui));
    if (!format) return undefined;
    const branches = settled.branches ?? (await pickBranches(ui));
    if (!branches) return undefined;
    const out = settled.out ?? (await pickTarget(ui, format, options.workspace));
    if (!out) return undefined;
    const store = new DatasetStore(options.datasetDir);
    const summary = await ui.withCancellableProgress(`Apollo: exporting ${format}`, (report, onCancel) => {
      const controller = new AbortController();
      onCancel(() => controller.abort());
      let reported = 0;
      return exportDataset(store, {
        format,
        out,
        branches,
        policy: options.policy,
        minQuality: settled.minQuality,
        hints: settled.hints,
        signal: controller.signal,
        onProgress: ({ runsDone, runsTotal, records }) => {
          const percent = (runsDone / runsTotal) * 100;
          report(`${runsDone} of ${runsTotal} run(s), ${records} record(s)`, percent - reported);
          reported = percent;
        },
      });
    });
    const said = exportReport(summary, format);
    void (said.warning ? ui.showWarningMessage(said.message, 'Reveal') : ui.showInformationMessage(said.message, 'Reveal')).then((choice) => {
      if (choice === 'Reveal') void ui.revealFile(out);
    });
    for (const skipped of summary.skipped) log.warn(`Export left out ${skipped.id}: ${skipped.problems.join('; ')}`);
    for (const warning of summary.warnings) log.warn(`Export: ${warning}`);
    return summary;
  } catch (error) {
    if (error instanceof ExportCancelled) {
      void ui.showInformationMessage(`Apollo: ${error.message}`);
      return undefined;
    }
    log.error(`Export failed: ${(error as Error).message}`);
    void ui.showErrorMessage(`Apollo: ${(error as Error).message}`);
    return undefined;
  }
}
