/**
 * Attention: an annotator glances rather than shadows every step, so the run says when it
 * drifts — failures in a row, a loop, a long stretch without any change on disk, the agent
 * asking a question, a run that paused itself on errors. Fed the run's events in order.
 */
import type { DatasetEvent, RunStatus } from '../dataset/events';

export type AttentionKind = 'failures' | 'loop' | 'no_progress' | 'question' | 'paused';

export interface AttentionFlag {
  step: number;
  kind: AttentionKind;
  message: string;
}

export interface AttentionOptions {
  /** Steps in a row whose tool reported an error. */
  failuresInARow?: number;
  /** Steps in a row that changed nothing on disk. */
  stepsWithoutDiff?: number;
  /** Minutes without a change on disk (counted at each step). */
  minutesWithoutDiff?: number;
}

export const DEFAULT_ATTENTION: Required<AttentionOptions> = { failuresInARow: 3, stepsWithoutDiff: 15, minutesWithoutDiff: 20 };

/** A turn without a tool call whose text ends in a question, or whose last line asks one. */
export function asksQuestion(content: string | null): boolean {
  const text = (content ?? '').trim();
  if (!text) return false;
  const lastLine =
    text
      .split('\n')
      .filter((line) => line.trim())
      .pop() ?? '';
  return /\?\s*$/.test(text) || /\?\s*$/.test(lastLine);
}

export class AttentionTracker {
  private readonly options: Required<AttentionOptions>;
  private readonly raised: AttentionFlag[] = [];
  private failures = 0;
  private stepsSinceDiff = 0;
  private lastDiffAt: number | undefined;
  private droughtFlagged = false;
  private lastStep = 0;

  constructor(options: AttentionOptions = {}) {
    this.options = { ...DEFAULT_ATTENTION, ...options };
  }

  /** Every flag raised so far, in the order raised. */
  flags(): readonly AttentionFlag[] {
    return this.raised;
  }

  /** The flag this event raises, if any. */
  observe(event: DatasetEvent): AttentionFlag | undefined {
    switch (event.type) {
      case 'run_started':
        this.lastDiffAt = Date.parse(event.time);
        return undefined;
      case 'step': {
        this.lastStep = event.step;
        const at = Date.parse(event.time);
        this.lastDiffAt ??= at;
        if (event.isError) this.failures++;
        else this.failures = 0;
        if (event.grounding.files.length) {
          this.stepsSinceDiff = 0;
          this.lastDiffAt = at;
          this.droughtFlagged = false;
        } else {
          this.stepsSinceDiff++;
        }
        if (this.failures === this.options.failuresInARow) {
          return this.raise(event.step, 'failures', `${this.failures} failed actions in a row`);
        }
        if (!event.action && asksQuestion(event.assistant.content)) {
          return this.raise(event.step, 'question', `the agent asks: ${oneLine(event.assistant.content ?? '')}`);
        }
        const minutes = (at - this.lastDiffAt) / 60_000;
        if (!this.droughtFlagged && (this.stepsSinceDiff >= this.options.stepsWithoutDiff || (minutes >= this.options.minutesWithoutDiff && this.stepsSinceDiff > 0))) {
          this.droughtFlagged = true;
          const what = this.stepsSinceDiff >= this.options.stepsWithoutDiff ? `${this.stepsSinceDiff} steps` : `${Math.round(minutes)} minutes`;
          return this.raise(event.step, 'no_progress', `no change on disk for ${what}`);
        }
        return undefined;
      }
      case 'label':
        if (event.source === 'rule:loop' && event.label === 'bad') return this.raise(event.step, 'loop', event.reason ?? 'the agent repeats itself');
        return undefined;
      case 'run_state':
        if (event.state === 'paused' && event.reason) return this.raise(Math.max(this.lastStep, 1), 'paused', `paused: ${event.reason}`);
        return undefined;
      case 'rewind':
        // The branch starts afresh.
        this.failures = 0;
        this.stepsSinceDiff = 0;
        this.droughtFlagged = false;
        this.lastDiffAt = Date.parse(event.time);
        return undefined;
      default:
        return undefined;
    }
  }

  private raise(step: number, kind: AttentionKind, message: string): AttentionFlag {
    const flag = { step, kind, message };
    this.raised.push(flag);
    return flag;
  }
}

function oneLine(text: string, length = 120): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}

/** What the annotator needs to know to decide which of several runs to look at first. */
export interface RunNeedInput {
  runId: string;
  status: RunStatus;
  /** The run paused itself (repeated errors) and waits. */
  pausedReason?: string;
  /** Flags raised since the annotator last looked at this run, oldest first. */
  unseen: readonly AttentionFlag[];
  startedAt: string;
  /** A run of a task of a suite whose verifier ran: its primary reward, or why it gave none. */
  verifier?: { reward?: number; error?: string };
}

export type NeedKind = AttentionKind | 'paused_by_you' | 'failed' | 'verifier_failed' | 'ended' | 'running';

export interface NeedOrderOptions {
  /**
   * Runs whose verifier failed (a reward below 1, or none because of an error) before every
   * other run, even one that waits: for reviewing a suite's failures as they come. By default
   * they come right after failed runs, before the runs going fine.
   */
  verifierFailuresFirst?: boolean;
}

export interface RunNeed extends RunNeedInput {
  kind: NeedKind;
  message: string;
  /** Lower is more urgent; runs are shown in this order. */
  rank: number;
}

/**
 * Most urgent first: a run that stopped itself and waits, a question, a loop, a drought, failures
 * in a row, a run the annotator paused, a failed run, then runs going fine, then ended ones (to
 * review or adopt). A run stuck waiting costs the most, a run going wrong costs steps; a run
 * going fine costs nothing yet.
 */
const NEED_ORDER: readonly NeedKind[] = ['paused', 'question', 'loop', 'no_progress', 'failures', 'paused_by_you', 'failed', 'verifier_failed', 'running', 'ended'];

/** Whether a verifier's outcome is a failure: no reward (an error), or a reward below 1. */
export function verifierFailed(verifier: RunNeedInput['verifier']): boolean {
  return !!verifier && (verifier.error !== undefined || verifier.reward === undefined || verifier.reward < 1);
}

export function needOf(run: RunNeedInput, options: NeedOrderOptions = {}): RunNeed {
  const rankOf = (kind: NeedKind) => (kind === 'verifier_failed' && options.verifierFailuresFirst ? -1 : NEED_ORDER.indexOf(kind));
  let kind: NeedKind;
  let message: string;
  const live = run.status === 'running' || run.status === 'paused';
  if (run.status === 'paused' && run.pausedReason) {
    kind = 'paused';
    message = `paused: ${run.pausedReason}`;
  } else if (live && run.unseen.length) {
    // The most urgent of the flags not yet seen.
    const flag = [...run.unseen].sort((a, b) => rankOf(a.kind) - rankOf(b.kind))[0];
    kind = flag.kind;
    message = `step ${flag.step}: ${flag.message}`;
  } else if (run.status === 'paused') {
    kind = 'paused_by_you';
    message = 'paused: waits for you to resume';
  } else if (run.status === 'running') {
    kind = 'running';
    message = 'running';
  } else if (!live && verifierFailed(run.verifier)) {
    kind = 'verifier_failed';
    const verifier = run.verifier!;
    message = verifier.error !== undefined || verifier.reward === undefined ? `verifier: no reward (${verifier.error ?? 'none given'})` : `verifier: reward ${formatReward(verifier.reward)}`;
  } else if (run.status === 'failed') {
    kind = 'failed';
    message = 'failed';
  } else {
    kind = 'ended';
    message = run.status === 'finished' ? 'finished' : `ended: ${run.status.replace('_', ' ')}`;
  }
  return { ...run, kind, message, rank: rankOf(kind) };
}

/** A reward as the lists show it: whole numbers as they are, others to three places. */
export function formatReward(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(3);
}

/** The runs in the order the annotator should look at them; ties keep the order the runs started in. */
export function orderByNeed(runs: readonly RunNeedInput[], options: NeedOrderOptions = {}): RunNeed[] {
  // Among runs with the same need, more unseen flags first.
  return runs.map((run) => needOf(run, options)).sort((a, b) => a.rank - b.rank || b.unseen.length - a.unseen.length || a.startedAt.localeCompare(b.startedAt) || a.runId.localeCompare(b.runId));
}
