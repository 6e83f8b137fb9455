/**
 * Messages between the extension host and the sidebar webview. Both sides import this file;
 * nothing else crosses the boundary. The host sends only what changed (one step, one hint),
 * never the whole state, except `init` when the view (re)connects.
 */
import type { HintKind, HintUrgency, LabelAxis, LabelValue, RunStatus } from './core/dataset/events';

export interface DiffStat {
  files: number;
  additions: number;
  deletions: number;
}

export interface LabelBadge {
  label: LabelValue;
  source: string;
  axis?: LabelAxis;
  reason?: string;
}

/** One timeline item: a step in the compact form the panel shows. */
export interface TimelineStep {
  step: number;
  /** Tool name, or null when the model answered without a tool call. */
  tool: string | null;
  /** Short form of the arguments, e.g. the path or the command. */
  args: string;
  /** First characters of the observation. */
  observation: string;
  isError: boolean;
  diff: DiffStat;
  labels: LabelBadge[];
}

export interface TimelineHint {
  hintId: string;
  text: string;
  kind: HintKind;
  /** The step whose model request carried the hint; undefined while still queued. */
  deliveredAtStep?: number;
}

export interface RunView {
  runId: string;
  task: string;
  status: RunStatus;
  steps: number;
  model: string;
  error?: string;
  /** Why the run paused itself (e.g. repeated model errors); it waits for the annotator. */
  pausedReason?: string;
}

export type HostToWebview =
  | { type: 'init'; run: RunView | null; steps: TimelineStep[]; hints: TimelineHint[] }
  | { type: 'runUpdated'; run: RunView }
  | { type: 'stepAdded'; step: TimelineStep }
  | { type: 'hintQueued'; hint: TimelineHint }
  | { type: 'hintDelivered'; hintId: string; step: number }
  | { type: 'labelAdded'; step: number; badge: LabelBadge }
  | { type: 'notice'; level: 'info' | 'error'; message: string };

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'startRun'; task: string }
  | { type: 'sendHint'; text: string; kind: HintKind; urgency: HintUrgency }
  | { type: 'pauseRun' }
  | { type: 'resumeRun' }
  | { type: 'stopRun' }
  | { type: 'labelStep'; step: number; label: 'good' | 'bad'; axis?: LabelAxis; reason?: string }
  | { type: 'openDiff'; step: number }
  | { type: 'rewind'; step: number };

const MAX_TEXT = 100_000;
const MAX_REASON = 2_000;

function isText(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_TEXT;
}

function isStep(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

/**
 * Validates a message that claims to come from the webview. Returns undefined for anything
 * that is not exactly one of the WebviewToHost shapes; the host drops (and logs) those.
 */
export function parseWebviewMessage(raw: unknown): WebviewToHost | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const message = raw as Record<string, unknown>;
  switch (message.type) {
    case 'ready':
    case 'pauseRun':
    case 'resumeRun':
    case 'stopRun':
      return { type: message.type };
    case 'startRun':
      return isText(message.task) ? { type: 'startRun', task: message.task } : undefined;
    case 'sendHint':
      if (!isText(message.text)) return undefined;
      if (message.kind !== 'knowledge' && message.kind !== 'strategy' && message.kind !== 'correction') return undefined;
      if (message.urgency !== undefined && message.urgency !== 'next' && message.urgency !== 'now') return undefined;
      return { type: 'sendHint', text: message.text, kind: message.kind, urgency: message.urgency ?? 'next' };
    case 'labelStep': {
      if (!isStep(message.step) || (message.label !== 'good' && message.label !== 'bad')) return undefined;
      if (message.axis !== undefined && message.axis !== 'decision' && message.axis !== 'execution') return undefined;
      if (message.reason !== undefined && !(typeof message.reason === 'string' && message.reason.length <= MAX_REASON)) return undefined;
      const reason = message.reason?.trim();
      return { type: 'labelStep', step: message.step, label: message.label, ...(message.axis ? { axis: message.axis } : {}), ...(reason ? { reason } : {}) };
    }
    case 'openDiff':
    case 'rewind':
      return isStep(message.step) ? { type: message.type, step: message.step } : undefined;
    default:
      return undefined;
  }
}
