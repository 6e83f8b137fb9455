/**
 * What the window's commands say and offer, as data: the items of each pick, the checks of what
 * is typed, the lines of notifications and notices, the runs list as the panel gets it. Pure
 * functions of what the controller (controller.ts) knows; the editor only shows them.
 */
import { HINT_KINDS, HINT_URGENCIES, type HintKind, type HintUrgency, type LabelAxis, type LabelValue, type RunAdoptedEvent, type RunManifest, type StepEvent } from '../dataset/events';
import { firstLine, plural } from '../text';
import type { CommandApprovalRequest } from '../agent/tools';
import type { AttentionFlag } from '../supervision/attention';
import { ConfigError, openSetting } from './errors';
import type { HintInput } from './hintInput';
import type { RunListItem } from './panelViews';
import { listPaths } from './registry';
import { toTimelineStep } from './timeline';

/** More runs of one task than this is a batch job for the CLI, not a window's worth to supervise. */
export const MAX_SAMPLES = 20;

/** The runs list holds at most this many runs of the dataset, newest first. */
export const MAX_LISTED_RUNS = 200;

/** A suite run's task and verdict, as its manifest keeps them, for the runs list. */
function suiteTaskOf(run: RunManifest): Pick<RunListItem, 'suiteTask'> {
  if (!run.taskSource) return {};
  const reward = run.reward && { rewards: {}, ...(run.reward.value !== undefined ? { value: run.reward.value } : {}), ...(run.reward.error ? { error: run.reward.error } : {}) };
  return { suiteTask: { name: run.taskSource.name, ...(reward ? { reward } : {}) } };
}

/** The runs of the dataset (newest first, as listed) for the panel's runs list. */
export function runListItems(runs: readonly RunManifest[]): RunListItem[] {
  return runs.slice(0, MAX_LISTED_RUNS).map((run) => ({ runId: run.id, task: run.task, status: run.status, steps: run.steps, createdAt: run.createdAt, ...suiteTaskOf(run) }));
}

/** What the count box says of a typed count, undefined when it is one. */
export function sampleCountProblem(value: string): string | undefined {
  return /^\d+$/.test(value.trim()) && Number(value) >= 1 && Number(value) <= MAX_SAMPLES ? undefined : `A whole number from 1 to ${MAX_SAMPLES}`;
}

/** Refuses a count of runs no window should sample (given by a caller, or typed). */
export function checkSampleCount(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_SAMPLES) throw new ConfigError(`The number of runs must be a whole number from 1 to ${MAX_SAMPLES}.`, openSetting('apollo.sample.count'));
}

export const sampleCountPrompt = (concurrency: number) => `How many runs of this task? At most ${concurrency} go at once (apollo.sample.concurrency); the others wait their turn.`;

/** The closing notification of a sampling. */
export function samplingEndedMessage(total: number, task: string, failed: number): string {
  const notStarted = failed ? ` (${failed} could not start; see the log)` : '';
  return `Apollo: the ${total} runs of "${firstLine(task, 80)}" have ended${notStarted}. Review them in the panel and adopt the best.`;
}

/** The interrupted runs to resume, to pick from. */
export function resumeItems(runs: readonly RunManifest[]): { label: string; description: string; id: string }[] {
  return runs.map((run) => ({ label: run.task.split('\n')[0].slice(0, 80), description: `${run.steps} steps · ${run.id}`, id: run.id }));
}

/** The sampled runs waiting to be adopted, to pick from. */
export function adoptItems(runs: readonly RunManifest[]): { label: string; description: string; detail: string | undefined; id: string }[] {
  return runs.map((run) => ({ label: firstLine(run.task, 80), description: `${run.status} · ${run.steps} steps · ${run.id}`, detail: run.taskId ? `task ${run.taskId}` : undefined, id: run.id }));
}

/** What an adoption did, for the log, the panel and a notification. */
export function adoptedSummary(runId: string, event: RunAdoptedEvent): string {
  return `Adopted run ${runId}: ${plural(event.files.length, 'file')} changed in your workspace${event.overwritten.length ? `, overwriting your changes to ${listPaths(event.overwritten)}` : ''}.`;
}

/** The steps of a run to pick from, newest first; `withDetail`: each with its arguments. */
export function stepItems(steps: readonly StepEvent[], withDetail: boolean): { label: string; description: string; detail?: string; step: number }[] {
  return steps
    .map((event) => ({ label: `Step ${event.step}`, description: event.action?.name ?? '(no tool call)', ...(withDetail ? { detail: toTimelineStep(event).args } : {}), step: event.step }))
    .reverse();
}

export const LABEL_ITEMS: readonly { label: string; description: string; value: LabelValue }[] = [
  { label: 'good', description: 'train on it', value: 'good' },
  { label: 'bad', description: 'keep it as context only: masked out of the training loss', value: 'bad' },
  { label: 'neutral', description: 'no verdict', value: 'neutral' },
];

export const AXIS_ITEMS: readonly { label: string; description: string; value: LabelAxis | undefined }[] = [
  { label: 'Both', description: 'the step as a whole', value: undefined },
  { label: 'Decision', description: 'was this the right thing to do?', value: 'decision' },
  { label: 'Execution', description: 'was it done right?', value: 'execution' },
];

/** The detail of the question a flagged command asks the annotator. */
export function approvalDetail(request: CommandApprovalRequest): string {
  return `${request.command}\n\n${request.reason}\n\nAlways Allow adds "${request.suggestedAllow}" to apollo.sandbox.allow in your user settings.`;
}

/** What the panel and a notification say once the workspace is rewound. */
export function rewoundTexts(step: number, files: number): { notice: string; message: string } {
  return {
    notice: `Rewound to before step ${step}: ${files} file(s) restored. Resume to go on from there.`,
    message: `Apollo: workspace rewound to before step ${step} (${files} file(s) restored). Resume the run to go on from there; a hint sent after resuming reaches its next step.`,
  };
}

/** The tooltip of the view's badge. */
export function attentionTooltip(unseen: number): string {
  return `${unseen} step${unseen === 1 ? '' : 's'} need${unseen === 1 ? 's' : ''} your attention`;
}

/** The notification of a flag; the run is named when several are in the window. */
export function attentionMessage(flag: AttentionFlag, name: string, severalRuns: boolean): string {
  return `Apollo: step ${flag.step}${severalRuns ? ` of ${name}` : ''} needs attention: ${flag.message}`;
}

/** A hint as a caller gave it (scripts, keybindings: anything): an unknown kind or urgency is the default one. */
export function hintFromArguments(text: string, kind: unknown, urgency: unknown): HintInput {
  return { text, kind: HINT_KINDS.includes(kind as HintKind) ? (kind as HintKind) : 'knowledge', urgency: HINT_URGENCIES.includes(urgency as HintUrgency) ? (urgency as HintUrgency) : 'next' };
}
