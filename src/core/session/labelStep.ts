/**
 * One way to label a step, for every caller: a live session, the panel on a past run, the palette
 * and the CLI. The event recorded is the same whichever way it came.
 */
import { LABEL_AXES, LABEL_VALUES, type DatasetEvent, type LabelAxis, type LabelEvent, type LabelValue } from '../dataset/events';
import type { DatasetStore } from '../dataset/store';
import { ConfigError } from './errors';

export interface LabelRequest {
  step: number;
  label: LabelValue;
  axis?: LabelAxis;
  reason?: string;
  /** `human` unless another source is given (`rule:<name>`, `judge:<model>`). */
  source?: string;
}

/** Where a label goes: the run's id, its last step number, and how an event is appended to it. */
export interface LabelTarget {
  runId: string;
  lastStep(): number | Promise<number>;
  append(event: LabelEvent): Promise<void>;
}

/** The last step number among recorded events (steps are numbered in the order they happened). */
export function lastStepOf(events: readonly DatasetEvent[]): number {
  return events.reduce((last, event) => (event.type === 'step' && event.step > last ? event.step : last), 0);
}

/** A run recorded in the dataset and not executed here (ended, or run by another process). */
export function recordedRun(store: DatasetStore, runId: string): LabelTarget {
  return {
    runId,
    lastStep: async () => lastStepOf((await store.readEvents(runId)).events),
    append: (event) => store.appendEvent(runId, event),
  };
}

/** Checks the label, appends its event and returns it; a ConfigError says what is wrong. */
export async function labelStep(target: LabelTarget, request: LabelRequest): Promise<LabelEvent> {
  const { step, label, axis, reason } = request;
  if (!LABEL_VALUES.includes(label)) throw new ConfigError(`Unknown label "${label}": use ${LABEL_VALUES.join(', ')}.`);
  if (axis !== undefined && !LABEL_AXES.includes(axis)) throw new ConfigError(`Unknown axis "${axis}": use ${LABEL_AXES.join(', ')}.`);
  const last = await target.lastStep();
  if (!Number.isInteger(step) || step < 1 || step > last) throw new ConfigError(`Run ${target.runId} has no step ${step} yet (it has ${last}).`);
  // The key order is the one every recorded label has.
  const event: LabelEvent = {
    type: 'label',
    time: new Date().toISOString(),
    step,
    label,
    source: request.source ?? 'human',
    ...(axis ? { axis } : {}),
    ...(reason ? { reason } : {}),
  };
  await target.append(event);
  return event;
}
