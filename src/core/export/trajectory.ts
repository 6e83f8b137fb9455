/**
 * Reads one run's events into trajectories: the path of steps from the start to a leaf, with the
 * hints delivered along it and each step's labels and mask. A run that was never rewound is one
 * trajectory; each rewind leaves an abandoned branch that can be exported as its own.
 */
import type { DatasetEvent, ExternalChangeEvent, HintKind, LabelEvent, RewardEvent, RewindEvent, RunEndedEvent, RunStartedEvent, StepEvent, SummaryEvent } from '../dataset/events';
import { type EffectiveLabel, LabelBook, type MaskPolicy, maskOf } from '../supervision/labels';

export interface TrajectoryHint {
  hintId: string;
  kind: HintKind;
  text: string;
}

export interface TrajectoryStep {
  event: StepEvent;
  /** Hints delivered in this step's model request, in the order they were given. */
  hints: TrajectoryHint[];
  labels: LabelEvent[];
  effective?: EffectiveLabel;
  mask: 0 | 1;
  /**
   * Changes made outside the agent recorded at this step (before its request, or while the model
   * thought). Context for a reader, never the agent's: the model was not told of them, so the chat
   * formats leave them out, and ATIF keeps them apart from the step's diff.
   */
  externalChanges?: ExternalChangeEvent[];
}

export interface Trajectory {
  runId: string;
  /** `<run id>` for the run's final line, `<run id>--<last step>` for an abandoned branch. */
  id: string;
  /** False for the line the run ended on; true for a branch left by a rewind. */
  abandoned: boolean;
  started: RunStartedEvent;
  steps: TrajectoryStep[];
  /**
   * The compactions the model's context went through on this trajectory's path, in order: each
   * replaced the steps before its `keptFromStep` by a user message. Absent: none.
   */
  summaries?: SummaryEvent[];
  ended?: RunEndedEvent;
  /** The verifier's latest rewards for the workspace this line ended in (a task of a suite); the main line only. */
  rewards?: Readonly<Record<string, number>>;
}

export interface RunTree {
  started: RunStartedEvent;
  ended?: RunEndedEvent;
  steps: Map<number, StepEvent>;
  rewinds: RewindEvent[];
  /** Every compaction of the run, on any branch, in the order recorded. */
  summaries: SummaryEvent[];
  labels: LabelBook;
  hintsByStep: Map<number, TrajectoryHint[]>;
  /** External changes by the step they were recorded at (a rewind's record of overwritten edits included). */
  externalByStep: Map<number, ExternalChangeEvent[]>;
  /** The steps of the line the run is on now, in order. */
  mainLine: number[];
  /** The latest verifier outcome of the line the run is on (none after a rewind until verified again). */
  reward?: RewardEvent;
}

/** The step a step follows: given on rewound branches, else the one numbered before it. */
export function parentOf(step: StepEvent): number {
  return step.parentStep ?? step.step - 1;
}

export function buildRunTree(events: readonly DatasetEvent[]): RunTree | undefined {
  const started = events.find((event): event is RunStartedEvent => event.type === 'run_started');
  if (!started) return undefined;
  const steps = new Map<number, StepEvent>();
  const rewinds: RewindEvent[] = [];
  const summaries: SummaryEvent[] = [];
  const labels = new LabelBook();
  const queued = new Map<string, TrajectoryHint>();
  const hintsByStep = new Map<number, TrajectoryHint[]>();
  const externalByStep = new Map<number, ExternalChangeEvent[]>();
  let ended: RunEndedEvent | undefined;
  let reward: RewardEvent | undefined;
  let tip = 0;
  for (const event of events) {
    switch (event.type) {
      case 'step':
        steps.set(event.step, event);
        tip = event.step;
        break;
      case 'rewind':
        rewinds.push(event);
        tip = event.parentStep;
        ended = undefined; // the end recorded before it belongs to the abandoned line
        reward = undefined; // and so does the verifier's verdict on it
        break;
      case 'reward':
        reward = event;
        break;
      case 'summary':
        summaries.push(event);
        break;
      case 'label':
        labels.add(event);
        break;
      case 'hint_queued':
        queued.set(event.hintId, { hintId: event.hintId, kind: event.kind, text: event.text });
        break;
      case 'hint_delivered': {
        const hint = queued.get(event.hintId);
        if (!hint) break;
        const list = hintsByStep.get(event.step);
        if (list) list.push(hint);
        else hintsByStep.set(event.step, [hint]);
        break;
      }
      case 'external_change': {
        const list = externalByStep.get(event.step);
        if (list) list.push(event);
        else externalByStep.set(event.step, [event]);
        break;
      }
      case 'run_ended':
        ended = event;
        break;
      default:
        // The other events are not part of a trajectory.
        break;
    }
  }
  return { started, ended, steps, rewinds, summaries, labels, hintsByStep, externalByStep, mainLine: pathTo(steps, tip), ...(reward ? { reward } : {}) };
}

/** The steps from the run's start to `last`, in order. */
export function pathTo(steps: ReadonlyMap<number, StepEvent>, last: number): number[] {
  const path: number[] = [];
  const seen = new Set<number>();
  for (let current = steps.get(last); current && !seen.has(current.step); current = steps.get(parentOf(current))) {
    seen.add(current.step);
    path.push(current.step);
  }
  return path.reverse();
}

/** Steps no other step follows, other than the main line's end: where abandoned branches stop. */
export function abandonedLeaves(tree: RunTree): number[] {
  const parents = new Set<number>();
  for (const step of tree.steps.values()) parents.add(parentOf(step));
  const onMain = new Set(tree.mainLine);
  return [...tree.steps.keys()].filter((step) => !parents.has(step) && !onMain.has(step)).sort((a, b) => a - b);
}

export function trajectoryStep(tree: RunTree, step: number, policy: MaskPolicy): TrajectoryStep {
  const effective = tree.labels.effective(step);
  const external = tree.externalByStep?.get(step);
  return {
    event: tree.steps.get(step)!,
    hints: tree.hintsByStep.get(step) ?? [],
    labels: tree.labels.labelsOf(step),
    ...(effective ? { effective } : {}),
    mask: maskOf(effective, policy),
    ...(external?.length ? { externalChanges: external } : {}),
  };
}

export interface TrajectoryOptions {
  /** `main`: the line each run ended on; `all`: abandoned branches too, each as its own trajectory. */
  branches: 'main' | 'all';
  policy: MaskPolicy;
}

export function trajectoriesOf(tree: RunTree, options: TrajectoryOptions): Trajectory[] {
  const runId = tree.started.runId;
  const make = (steps: number[], abandoned: boolean, id: string): Trajectory => {
    const summaries = summariesOnPath(tree, steps);
    return {
      runId,
      id,
      abandoned,
      started: tree.started,
      steps: steps.map((step) => trajectoryStep(tree, step, options.policy)),
      ...(summaries.length ? { summaries } : {}),
      ...(abandoned || !tree.ended ? {} : { ended: tree.ended }),
      ...(abandoned || !tree.reward || !Object.keys(tree.reward.rewards).length ? {} : { rewards: tree.reward.rewards }),
    };
  };
  const result = [make(tree.mainLine, false, runId)];
  if (options.branches === 'all') {
    for (const leaf of abandonedLeaves(tree)) result.push(make(pathTo(tree.steps, leaf), true, `${runId}--${leaf}`));
  }
  return result;
}

/** The share of a trajectory's steps whose effective label is not bad (1 for an empty one). */
export function qualityOf(trajectory: Trajectory): number {
  if (!trajectory.steps.length) return 1;
  return trajectory.steps.filter((step) => step.effective?.label !== 'bad').length / trajectory.steps.length;
}

/**
 * The compactions that shaped the context along a path: those made before the request of a step
 * on it (as a resumed run rebuilds its context after a rewind), ordered by that step. A summary
 * made on a branch the run later left belongs to that branch only.
 */
export function summariesOnPath(tree: Pick<RunTree, 'summaries'>, path: readonly number[]): SummaryEvent[] {
  const onPath = new Set(path);
  const latest = new Map<number, SummaryEvent>();
  // Two summaries before one request cannot happen; if a dataset holds them, the later one stood.
  for (const summary of tree.summaries) if (onPath.has(summary.step)) latest.set(summary.step, summary);
  return [...latest.values()].sort((a, b) => a.step - b.step);
}

/**
 * One context the model really saw, between two compactions: the summary that opened it (none for
 * the first), the steps carried over from before it (trained in an earlier segment, context here)
 * and its own steps, up to the next compaction.
 */
export interface TrajectorySegment {
  /** 0 for the run's start, k for the context opened by the trajectory's k-th summary. */
  index: number;
  summary?: SummaryEvent;
  /** Steps from the summary's `keptFromStep` up to its step: context only in this segment. */
  carried: TrajectoryStep[];
  /** The steps whose request was sent in this context; each is in exactly one segment. */
  steps: TrajectoryStep[];
}

/**
 * The trajectory cut at each compaction. Every step is the own step of exactly one segment;
 * `whole` gives one segment holding them all (for long-context training).
 */
export function segmentsOf(trajectory: Pick<Trajectory, 'steps' | 'summaries'>, options: { whole?: boolean } = {}): TrajectorySegment[] {
  const summaries = options.whole ? [] : (trajectory.summaries ?? []);
  const segments: TrajectorySegment[] = [{ index: 0, carried: [], steps: [] }];
  let next = 0;
  for (const step of trajectory.steps) {
    while (next < summaries.length && summaries[next].step <= step.event.step) {
      const summary = summaries[next++];
      const carried = trajectory.steps.filter((candidate) => candidate.event.step >= summary.keptFromStep && candidate.event.step < summary.step);
      segments.push({ index: segments.length, summary, carried, steps: [] });
    }
    segments[segments.length - 1].steps.push(step);
  }
  // A segment with no step of its own (a run with no step, a compaction right before the run
  // stopped) holds no assistant turn: it is no row.
  return segments.filter((segment) => segment.steps.length);
}
