/** A run is a tree once it has been rewound: which steps make up the branch it is on now. */
import type { DatasetEvent, StepEvent } from '../dataset/events';

/** The steps of the branch the run is on now, in order, and the last snapshot it recorded. */
export function currentPath(events: readonly DatasetEvent[]): { steps: StepEvent[]; lastSnapshot?: string; branch?: string } {
  let steps: StepEvent[] = [];
  let lastSnapshot: string | undefined;
  let branch: string | undefined;
  for (const event of events) {
    if (event.type === 'step') {
      steps.push(event);
      lastSnapshot = event.grounding.after;
    } else if (event.type === 'external_change') {
      lastSnapshot = event.grounding.after;
    } else if (event.type === 'rewind') {
      steps = steps.filter((step) => step.step < event.toStep);
      lastSnapshot = event.snapshot;
      branch = event.branch;
    }
  }
  return { steps, lastSnapshot, branch };
}

/** The index of the last event that matches, or -1. */
export function lastIndexOf(events: readonly DatasetEvent[], matches: (event: DatasetEvent) => boolean): number {
  for (let i = events.length - 1; i >= 0; i--) if (matches(events[i])) return i;
  return -1;
}
