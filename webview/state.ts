/**
 * Everything the panel keeps between messages, in one object: the run shown with its steps,
 * hints, notes and flags (TimelineData), the runs lists, the selection, the open reason form,
 * and the timers. The sections read it; they change it through the functions below (TimelineData
 * has its own methods). No other module of the panel keeps mutable state of its own.
 */
import type { LiveRunItem, RunListItem } from '../src/protocol';
import { type PanelState, saved } from './host';
import { TimelineData } from './timelineData';

export interface ViewState {
  /** The run on screen: its steps, hints, notes, labels and attention flags. */
  readonly data: TimelineData;
  /** The runs of the dataset (host-ordered). */
  runs: RunListItem[];
  /** The window's runs, most in need of the annotator first (host-ordered). */
  liveRuns: LiveRunItem[];
  /** The run going on the workspace, if any. */
  liveRunId: string | undefined;
  /** The runs list needs painting again when it opens. */
  runsStale: boolean;
  /** The run open when the runs list was last painted. */
  runsRenderedFor: string | undefined;
  selectedStep: number | undefined;
  /** The saved place in the timeline, until the host's first `init`. */
  pendingPosition: PanelState['position'];
  /** The step whose reason form is open, with the verdict given. */
  reason: { step: number; label: 'good' | 'bad' } | undefined;
  focusDetailWhenShown: boolean;
  lastFlagIndex: number | undefined;
  /** The hints sent on screen, by id: their row and the line saying where they reached. */
  readonly sentHints: Map<string, { item: HTMLLIElement; where: HTMLElement }>;
  /** What to save, set once by the panel's wiring. */
  saveSource: (() => PanelState) | undefined;
  saveTimer: number;
  firstPendingSave: number;
  /** The timer of the elapsed time while the run on screen goes. */
  ticker: number;
}

export const state: ViewState = {
  data: new TimelineData(),
  runs: [],
  liveRuns: [],
  liveRunId: undefined,
  runsStale: true,
  runsRenderedFor: undefined,
  selectedStep: saved.selectedStep,
  pendingPosition: saved.position,
  reason: undefined,
  focusDetailWhenShown: false,
  lastFlagIndex: undefined,
  sentHints: new Map(),
  saveSource: undefined,
  saveTimer: 0,
  firstPendingSave: 0,
  ticker: 0,
};

/** The run on screen goes on and can be acted on (not a past run opened for reading). */
export function viewedRunLive(): boolean {
  const run = state.data.run;
  return !!run && run.live && !run.readOnly && (run.status === 'running' || run.status === 'paused');
}

export function setRuns(runs: unknown, liveRunId: string | undefined): void {
  state.runs = Array.isArray(runs) ? (runs as RunListItem[]) : [];
  state.liveRunId = liveRunId;
  state.runsStale = true;
}

export function setLiveRuns(runs: unknown): void {
  state.liveRuns = Array.isArray(runs) ? (runs as LiveRunItem[]) : [];
}

export function runsRendered(): void {
  state.runsStale = false;
  state.runsRenderedFor = state.data.run?.runId;
}

export function markRunsStale(): void {
  state.runsStale = true;
}

/** Returns the step selected before (the same one when nothing changed). */
export function setSelectedStep(step: number | undefined): number | undefined {
  const previous = state.selectedStep;
  state.selectedStep = step;
  return previous;
}

export function dropPendingPosition(): void {
  state.pendingPosition = undefined;
}

export function setReason(reason: ViewState['reason']): void {
  state.reason = reason;
}

export function setFocusDetailWhenShown(focus: boolean): void {
  state.focusDetailWhenShown = focus;
}

export function setLastFlagIndex(index: number | undefined): void {
  state.lastFlagIndex = index;
}

export function setSaveSource(source: () => PanelState): void {
  state.saveSource = source;
}

export function setSaveTimer(timer: number, firstPending?: number): void {
  state.saveTimer = timer;
  if (firstPending !== undefined) state.firstPendingSave = firstPending;
}

export function setTicker(timer: number): void {
  state.ticker = timer;
}
