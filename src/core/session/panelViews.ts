/**
 * What the panel shows and what it sends, as data: the view model the session builds from the
 * dataset (timeline.ts, registry.ts) and the messages between the extension host and the webview.
 * Types only. The webview reaches them through src/protocol.ts, which re-exports them with the
 * vocabulary and validates every message that claims to come from the webview.
 */
import type { HintKind, HintUrgency, LabelAxis, LabelValue, RunStatus } from '../dataset/events';
import type { AttentionKind, NeedKind } from '../supervision/attention';

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
  /** The branch a rewind started, for steps on it. */
  branch?: string;
  /** On a branch a later rewind left: kept in the dataset, no longer the run's line. */
  abandoned?: boolean;
  /** The first step of a branch: it follows this step (0: the run's start). */
  branchFrom?: number;
  /** The model's context was summarized just before this step. */
  summaryBefore?: { tokensBefore: number; tokensAfter: number };
  /** Files someone else saved (in an editor) while the step's action ran: its diff is not the agent's alone. */
  mixed?: string[];
}

export interface TimelineHint {
  hintId: string;
  text: string;
  kind: HintKind;
  urgency?: HintUrgency;
  /** The step whose model request carried the hint; undefined while still queued. */
  deliveredAtStep?: number;
  /** Why the hint never reached the model (the run ended first); set instead of deliveredAtStep. */
  undelivered?: string;
}

/**
 * A line in the timeline about something other than a step, shown above the item of `step`:
 * an engine notice, a prompt the server refused as too long, a hint the run ended without
 * delivering, files changed outside the agent (`external`: before the step's request or while
 * the model thought; never part of the step's diff). Its step is the one it is about, else the
 * last step before it (1 before any).
 */
export interface TimelineNote {
  kind: 'notice' | 'context' | 'undelivered' | 'external';
  step: number;
  text: string;
  /** The longer form, shown on hover. */
  title: string;
}

export interface RunView {
  runId: string;
  task: string;
  status: RunStatus;
  steps: number;
  model: string;
  error?: string;
  /** Why the run stopped before the agent finished, e.g. a budget it reached. */
  stopReason?: string;
  /** Why the run paused itself (e.g. repeated model errors); it waits for the annotator. */
  pausedReason?: string;
  startedAt: string;
  endedAt?: string;
  /** Prompt and completion tokens of the agent so far. */
  tokens: number;
  hints: number;
  /** Share of steps masked out of training under the mask policy (0–1). */
  maskedShare: number;
  /** Secrets replaced by [REDACTED:…] in what the run recorded. */
  redactions: number;
  /** A past run opened for reading: no controls act on it, labels still can. */
  readOnly: boolean;
  /** The agent is running or paused in this window now (a rewound run waits to be resumed: not live). */
  live: boolean;
  /** A sampled run: the task id its sampling shares, and the user's workspace its working copy came from. */
  taskId?: string;
  originWorkspace?: string;
  /** When its result was applied to the origin workspace. */
  adoptedAt?: string;
  /** A run of a task of a suite (Harbor's layout): the task's name. */
  suiteTask?: string;
  /** What the task's verifier said of the run, once it ran (the latest reward event). */
  reward?: RewardView;
}

/** A task verifier's outcome: the primary reward and the named ones, or why there is none. */
export interface RewardView {
  /** The primary reward (`reward`, else the mean of the named ones); absent when none came out. */
  value?: number;
  rewards: Record<string, number>;
  /** Why no reward came out, short ("timed out"); the whole reason is in `detail`. */
  error?: string;
  detail?: string;
}

export interface AttentionFlagView {
  step: number;
  kind: AttentionKind;
  message: string;
}

/** A run of the dataset, for the runs list. */
export interface RunListItem {
  runId: string;
  task: string;
  status: RunStatus;
  steps: number;
  createdAt: string;
  /** A run of a task of a suite: the task's name, and its verifier's latest verdict once it ran. */
  suiteTask?: { name: string; reward?: RewardView };
}

/** A run going on (or ended) in this window, for the live runs list: most in need first. */
export interface LiveRunItem {
  runId: string;
  task: string;
  status: RunStatus;
  steps: number;
  /** A sampled run: its place among the runs of its task ("2 of 3"). */
  sample?: { taskId: string; index: number; count: number };
  /** Why the annotator should look, in words, and of which kind. */
  need: { kind: NeedKind; message: string };
  /** Flags not yet seen. */
  unseen: number;
  /** Ended, sampled and not yet adopted: its result can be applied to the workspace. */
  adoptable: boolean;
  /**
   * A run of a task of a suite: the task's name and its verifier's outcome (`verifying` while the
   * verifier runs; neither when it has not run, e.g. the run still goes or was stopped).
   */
  suiteTask?: { name: string; reward?: RewardView; verifying?: boolean };
}

/** A further tool call a step's turn ran after its first, with what it returned. */
export interface StepDetailAction {
  tool: string;
  /** The arguments, pretty-printed when they are JSON. */
  arguments: string;
  observation: string;
  isError: boolean;
}

/** Everything about one step, sent when the annotator opens it. */
export interface StepDetail {
  step: number;
  thought: string;
  /** The model's reasoning for the turn, apart from its visible text; empty when it gave none. */
  reasoning: string;
  /** The reply was cut by the output limit while a tool call was being written. */
  truncated: boolean;
  tool: string | null;
  /** The arguments, pretty-printed when they are JSON. */
  arguments: string;
  observation: string;
  isError: boolean;
  /** The full output was kept beside the run (the observation shows head and tail). */
  hasFullOutput: boolean;
  /** The turn's further calls, run in order after the first. */
  moreActions: StepDetailAction[];
  /** Calls of the turn that were not run, with the reason the model was given. */
  skipped: { tool: string; reason: string }[];
  /** What all the step's calls changed together. */
  files: { path: string; status: string; additions: number; deletions: number; binary: boolean }[];
  patch: string;
  patchTruncated: boolean;
  /** Files someone else saved while the step's actions ran; absent: the diff is the agent's alone. */
  mixed?: string[];
}

/** What "Rewind to here" would do, shown for confirmation before anything is written. */
export interface RewindPreviewView {
  step: number;
  /** Files written back to how they were before the step. */
  written: string[];
  /** Files the run created since, removed. */
  removed: string[];
  /** The annotator's own edits since the last step, overwritten (they stay recorded). */
  userEdits: string[];
  /** The run is live and stops first. */
  stopsRun: boolean;
}

/** What adopting a sampled run would write into the workspace, shown for confirmation. */
export interface AdoptPreviewView {
  runId: string;
  /** "Run 2 of 3", or "Run <id>". */
  name: string;
  written: string[];
  removed: string[];
  /** Files the user changed too: adopting overwrites them, only when confirmed as such. */
  conflicts: string[];
}

export type HostToWebview =
  | { type: 'init'; run: RunView | null; steps: TimelineStep[]; hints: TimelineHint[]; notes: TimelineNote[]; attention: AttentionFlagView[]; unseen: number }
  | { type: 'runUpdated'; run: RunView }
  | { type: 'stepAdded'; step: TimelineStep }
  | { type: 'hintQueued'; hint: TimelineHint }
  | { type: 'hintDelivered'; hintId: string; step: number }
  /** The run ended before the hint could reach the model. */
  | { type: 'hintUndelivered'; hintId: string; reason: string }
  | { type: 'timelineNote'; note: TimelineNote }
  | { type: 'labelAdded'; step: number; badge: LabelBadge }
  | { type: 'summaryAdded'; step: number; tokensBefore: number; tokensAfter: number }
  | { type: 'attention'; flag: AttentionFlagView; unseen: number }
  | { type: 'runs'; runs: RunListItem[]; liveRunId?: string }
  /** The window's live runs (and sampled runs that ended), most in need of the annotator first. */
  | { type: 'liveRuns'; runs: LiveRunItem[] }
  | { type: 'stepDetail'; detail: StepDetail }
  | { type: 'stepDetailFailed'; step: number; message: string }
  | { type: 'focusNextFlag' }
  | { type: 'rewindPreview'; preview: RewindPreviewView }
  | { type: 'adoptPreview'; preview: AdoptPreviewView }
  | { type: 'notice'; level: 'info' | 'error'; message: string };

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'startRun'; task: string }
  /** N runs of the task, each in its own working copy; the host asks how many. */
  | { type: 'sampleRuns'; task: string }
  /** `runId`: the run the panel shows; a hint goes to that run only. */
  | { type: 'sendHint'; text: string; kind: HintKind; urgency: HintUrgency; runId?: string }
  | { type: 'pauseRun'; runId?: string }
  | { type: 'resumeRun'; runId?: string }
  | { type: 'stopRun'; runId?: string }
  /** Asks what adopting the run would write; the host opens the multi-diff editor and answers `adoptPreview`. */
  | { type: 'previewAdopt'; runId: string }
  /** Adopts, after the annotator confirmed the preview; `overwrite` when it listed conflicts. */
  | { type: 'adoptRun'; runId: string; overwrite: boolean }
  | { type: 'labelStep'; step: number; label: 'good' | 'bad'; axis?: LabelAxis; reason?: string }
  | { type: 'openDiff'; step: number }
  /** Asks what a rewind would change on disk; the host answers `rewindPreview`. */
  | { type: 'previewRewind'; step: number }
  /** Rewinds, after the annotator confirmed the preview. */
  | { type: 'rewind'; step: number }
  | { type: 'showStep'; step: number }
  | { type: 'openFullOutput'; step: number }
  | { type: 'openRun'; runId: string }
  | { type: 'attentionSeen' };
