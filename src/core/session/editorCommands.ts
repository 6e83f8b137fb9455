/**
 * The editor's palette commands that are not a run's: what they make of their arguments (from a
 * keybinding, a test or another extension), what they ask and what they say. Each asks through the
 * editor's UI shapes; the extension registers them under their command ids.
 */
import { promises as fs } from 'node:fs';
import { LABEL_AXES, LABEL_VALUES, type LabelAxis, type LabelValue } from '../dataset/events';
import { DatasetStore } from '../dataset/store';
import type { Notifications, Progress, Prompts } from '../ui';
import { collectGarbage, formatGarbageReport, type GarbageReport } from './gc';
import { API_KEY_SECRET, JUDGE_API_KEY_SECRET } from './settings';

/** A command's argument, kept when it has the type wanted. */
export const stringArg = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
export const numberArg = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);
/** A step number: a whole number from 1. */
export const stepArg = (value: unknown): number | undefined => (typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : undefined);

/** Label Step's arguments: what is given and right is settled, the rest is asked. */
export function labelArgs(step: unknown, label: unknown, axis: unknown, reason: unknown): { step?: number; label?: LabelValue; axis?: LabelAxis; reason?: string } {
  return {
    step: stepArg(step),
    label: LABEL_VALUES.includes(label as LabelValue) ? (label as LabelValue) : undefined,
    axis: LABEL_AXES.includes(axis as LabelAxis) ? (axis as LabelAxis) : undefined,
    reason: stringArg(reason),
  };
}

/** Start Run's task: the one given, else asked; undefined when dismissed. */
export async function askTask(ui: Pick<Prompts, 'showInputBox'>, given: unknown): Promise<string | undefined> {
  if (typeof given === 'string') return given;
  return ui.showInputBox({
    title: 'Apollo: Start Run',
    prompt: 'What should the agent do in this workspace?',
    placeHolder: 'e.g. Make the failing test in tests/ pass',
    ignoreFocusOut: true,
    validateInput: (value) => (value.trim() ? undefined : 'Describe the task.'),
  });
}

const KEYS = {
  agent: { secret: API_KEY_SECRET, title: 'Apollo: Set API Key', what: 'API key' },
  judge: { secret: JUDGE_API_KEY_SECRET, title: 'Apollo: Set Judge API Key', what: 'judge API key' },
};

/** Asks for a key and keeps it in the editor's secret storage (never in settings or the dataset). */
export async function storeKey(ui: Pick<Prompts, 'showInputBox'> & Notifications, secrets: { store(name: string, value: string): PromiseLike<void> }, which: keyof typeof KEYS): Promise<void> {
  const { secret, title, what } = KEYS[which];
  const key = await ui.showInputBox({
    title,
    prompt: "Stored in VS Code's secret storage, never in settings or the dataset.",
    password: true,
    ignoreFocusOut: true,
    validateInput: (value) => (value.trim() ? undefined : 'The key is empty.'),
  });
  if (key === undefined) return;
  await secrets.store(secret, key.trim());
  void ui.showInformationMessage(`Apollo: ${what} saved.`);
}

/** Open Run without a run id: one of the dataset's runs, picked; undefined (said when there are none) otherwise. */
export async function pickRecordedRun(datasetDir: string, ui: Pick<Prompts, 'showQuickPick'> & Notifications): Promise<string | undefined> {
  const runs = await new DatasetStore(datasetDir).listRuns();
  if (!runs.length) {
    void ui.showInformationMessage('Apollo: no runs recorded yet in this workspace.');
    return undefined;
  }
  const picked = await ui.showQuickPick(
    runs.map((run) => ({
      label: run.task.split('\n')[0].slice(0, 80),
      description: `${run.status} · ${run.steps} steps`,
      detail: `${run.id} · ${run.createdAt.slice(0, 16).replace('T', ' ')}`,
      id: run.id,
    })),
    { title: 'Apollo: Open Run', matchOnDescription: true, matchOnDetail: true },
  );
  return picked?.id;
}

/** Open Dataset: the folder in the system's file manager, or, before the first run, where it will be. */
export async function revealDataset(datasetDir: string, ui: Notifications & { revealFile(file: string): PromiseLike<unknown> }): Promise<void> {
  const exists = await fs.stat(datasetDir).then(
    (stat) => stat.isDirectory(),
    () => false,
  );
  if (!exists) {
    void ui.showInformationMessage(`No dataset yet: the first run creates ${datasetDir}.`);
    return;
  }
  await ui.revealFile(datasetDir);
}

/** Collect Garbage: the snapshot space of deleted runs reclaimed under a progress notification, and what it came to. Undefined when it failed (said). */
export async function collectGarbageCommand(datasetDir: string, ui: Notifications & Pick<Progress, 'withNotificationProgress'>): Promise<GarbageReport | undefined> {
  try {
    const report = await ui.withNotificationProgress('Apollo: reclaiming the snapshot space of deleted runs…', () => collectGarbage(datasetDir));
    void ui.showInformationMessage(`Apollo: ${formatGarbageReport(report).trim().replace(/\n/g, ' ')}`);
    return report;
  } catch (error) {
    void ui.showErrorMessage(`Apollo: ${(error as Error).message}`);
    return undefined;
  }
}
