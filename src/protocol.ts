/**
 * Messages between the extension host and the sidebar webview. Both sides import this file;
 * nothing else crosses the boundary. The host sends only what changed (one step, one hint),
 * never the whole state, except `init` when the view (re)connects.
 *
 * The vocabulary (hint kinds, label axes, attention kinds, run states) is the core's, re-exported
 * here: the webview reaches the core only through this file, which is bundled into it, so what it
 * takes from the core must be types or pure values (no Node import).
 */
import { HINT_KINDS, HINT_URGENCIES, LABEL_AXES } from './core/dataset/events';
import type { WebviewToHost } from './core/session/panelViews';

export { HINT_KINDS, HINT_URGENCIES, LABEL_AXES, LABEL_VALUES } from './core/dataset/events';
export type { HintKind, HintUrgency, LabelAxis, LabelValue, RunStatus } from './core/dataset/events';
export type { AttentionKind, NeedKind } from './core/supervision/attention';
export { firstLine, plural } from './core/text';

/** True when `value` is one of `values` (a vocabulary list such as HINT_KINDS). */
export function oneOf<T extends string>(values: readonly T[], value: unknown): value is T {
  return typeof value === 'string' && (values as readonly string[]).includes(value);
}

/** The view model and the messages, defined with the session that builds them. */
export type * from './core/session/panelViews';

const MAX_TEXT = 100_000;
const MAX_REASON = 2_000;

function isText(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_TEXT;
}

function isRunId(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(value) && !value.includes('..');
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
    case 'attentionSeen':
      return { type: message.type };
    case 'pauseRun':
    case 'stopRun':
    case 'resumeRun':
      if (message.runId === undefined) return { type: message.type };
      return isRunId(message.runId) ? { type: message.type, runId: message.runId } : undefined;
    case 'openRun':
    case 'previewAdopt':
      return isRunId(message.runId) ? { type: message.type, runId: message.runId } : undefined;
    case 'adoptRun':
      return isRunId(message.runId) && typeof message.overwrite === 'boolean' ? { type: 'adoptRun', runId: message.runId, overwrite: message.overwrite } : undefined;
    case 'startRun':
    case 'sampleRuns':
      return isText(message.task) ? { type: message.type, task: message.task } : undefined;
    case 'sendHint':
      if (!isText(message.text)) return undefined;
      if (!oneOf(HINT_KINDS, message.kind)) return undefined;
      if (message.urgency !== undefined && !oneOf(HINT_URGENCIES, message.urgency)) return undefined;
      if (message.runId !== undefined && !isRunId(message.runId)) return undefined;
      return { type: 'sendHint', text: message.text, kind: message.kind, urgency: message.urgency ?? 'next', ...(message.runId !== undefined ? { runId: message.runId } : {}) };
    case 'labelStep': {
      if (!isStep(message.step) || (message.label !== 'good' && message.label !== 'bad')) return undefined;
      if (message.axis !== undefined && !oneOf(LABEL_AXES, message.axis)) return undefined;
      if (message.reason !== undefined && !(typeof message.reason === 'string' && message.reason.length <= MAX_REASON)) return undefined;
      const reason = message.reason?.trim();
      return { type: 'labelStep', step: message.step, label: message.label, ...(message.axis ? { axis: message.axis } : {}), ...(reason ? { reason } : {}) };
    }
    case 'openDiff':
    case 'rewind':
    case 'previewRewind':
    case 'showStep':
    case 'openFullOutput':
      return isStep(message.step) ? { type: message.type, step: message.step } : undefined;
    default:
      return undefined;
  }
}
