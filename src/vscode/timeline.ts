/**
 * Turns dataset events into the panel's view model (src/protocol.ts). Pure: the host and the
 * unit tests use it alike.
 */
import type { DatasetEvent, LabelEvent, StepEvent } from '../core/dataset/events';
import type { LabelBadge, RunView, TimelineHint, TimelineStep } from '../protocol';

const ARGS_LENGTH = 80;
const OBSERVATION_LENGTH = 200;

function oneLine(text: string, length: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}

/** The argument a person recognises the action by: the path, the command, the summary. */
export function summarizeArguments(raw: string): string {
  let args: unknown;
  try {
    args = JSON.parse(raw);
  } catch {
    return oneLine(`(invalid JSON) ${raw}`, ARGS_LENGTH);
  }
  if (typeof args !== 'object' || args === null) return oneLine(String(raw), ARGS_LENGTH);
  const record = args as Record<string, unknown>;
  for (const key of ['path', 'command', 'summary']) {
    if (typeof record[key] === 'string') return oneLine(record[key] as string, ARGS_LENGTH);
  }
  return oneLine(raw === '{}' ? '' : raw, ARGS_LENGTH);
}

export function labelBadge(event: LabelEvent): LabelBadge {
  return { label: event.label, source: event.source, ...(event.axis ? { axis: event.axis } : {}), ...(event.reason ? { reason: event.reason } : {}) };
}

export function toTimelineStep(event: StepEvent): TimelineStep {
  const files = event.grounding.files;
  return {
    step: event.step,
    tool: event.action?.name ?? null,
    args: event.action ? summarizeArguments(event.action.arguments) : oneLine(event.assistant.content ?? '', ARGS_LENGTH),
    observation: oneLine(event.observation, OBSERVATION_LENGTH),
    isError: event.isError,
    diff: {
      files: files.length,
      additions: files.reduce((sum, file) => sum + file.additions, 0),
      deletions: files.reduce((sum, file) => sum + file.deletions, 0),
    },
    labels: [],
  };
}

/** The whole view of a run, for the panel's first message after it (re)connects. */
export function buildTimeline(events: readonly DatasetEvent[]): { run: RunView | null; steps: TimelineStep[]; hints: TimelineHint[] } {
  let run: RunView | null = null;
  const steps: TimelineStep[] = [];
  const byNumber = new Map<number, TimelineStep>();
  const hints = new Map<string, TimelineHint>();
  for (const event of events) {
    switch (event.type) {
      case 'run_started':
        run = { runId: event.runId, task: event.task, status: 'running', steps: 0, model: event.model };
        break;
      case 'step': {
        const item = toTimelineStep(event);
        steps.push(item);
        byNumber.set(item.step, item);
        if (run) run.steps = event.step;
        break;
      }
      case 'hint_queued':
        hints.set(event.hintId, { hintId: event.hintId, text: event.text, kind: event.kind });
        break;
      case 'hint_delivered': {
        const hint = hints.get(event.hintId);
        if (hint) hint.deliveredAtStep = event.step;
        break;
      }
      case 'label':
        byNumber.get(event.step)?.labels.push(labelBadge(event));
        break;
      case 'run_state':
        if (run) run.status = event.state === 'paused' ? 'paused' : 'running';
        break;
      case 'run_ended':
        if (run) {
          run.status = event.status;
          if (event.error) run.error = event.error;
        }
        break;
    }
  }
  return { run, steps, hints: [...hints.values()] };
}
