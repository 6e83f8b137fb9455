/**
 * The dataset's event vocabulary. Every line of `runs/<id>/events.jsonl` is one of these.
 * Lines are appended, never rewritten: labels, hints and endings are new events that refer
 * to step numbers. Exporters, the panel, the CLI and `stats` all read these same shapes.
 */

export const EVENTS_FORMAT_VERSION = 1;

export type HintKind = 'knowledge' | 'strategy' | 'correction';
export const HINT_KINDS: readonly HintKind[] = ['knowledge', 'strategy', 'correction'];

export type HintUrgency = 'next' | 'now';
export const HINT_URGENCIES: readonly HintUrgency[] = ['next', 'now'];

export type LabelValue = 'good' | 'bad' | 'neutral';
export const LABEL_VALUES: readonly LabelValue[] = ['good', 'bad', 'neutral'];

export type LabelAxis = 'decision' | 'execution';
export const LABEL_AXES: readonly LabelAxis[] = ['decision', 'execution'];

/** `budget`: the run reached its wall-time or token budget and stopped cleanly (steps have `max_steps`). */
export type RunStatus = 'running' | 'paused' | 'finished' | 'max_steps' | 'budget' | 'stopped' | 'failed';
/** Statuses a run can end with. */
export type RunEndStatus = Exclude<RunStatus, 'running' | 'paused'>;

/** One tool call as the model sent it; `arguments` is kept as the raw JSON string. */
export interface ToolCallRecord {
  id: string;
  name: string;
  arguments: string;
  /**
   * Provider fields the server attached to this call and wants back on the next request, kept
   * verbatim (Google's `extra_content.google.thought_signature`).
   */
  extra?: Record<string, unknown>;
}

/** The assistant turn of a step, exactly as it goes back into the model's context. */
export interface AssistantRecord {
  content: string | null;
  toolCalls: ToolCallRecord[];
  /**
   * The model's reasoning for this turn, kept apart from its visible text: `reasoning` or
   * `reasoning_content` deltas, or `<think>` blocks split out of the content.
   */
  reasoning?: string;
  /**
   * The reply was cut by the output limit (`finish_reason: "length"`) while its last tool call
   * was being written: that call was not run, and the model was told so.
   */
  truncated?: boolean;
}

/** Whether earlier turns' reasoning goes back to the model in later requests. */
export type ReasoningInContext = 'auto' | 'always' | 'never';
export const REASONING_IN_CONTEXT: readonly ReasoningInContext[] = ['auto', 'always', 'never'];

/** One executed tool call of a step after its first: a model may ask for several in one turn. */
export interface ActionResult {
  action: ToolCallRecord;
  observation: string;
  isError: boolean;
  /** What this call changed: from the snapshot after the call before it to the one after it. */
  grounding: Grounding;
  toolMs: number;
  fullOutput?: string;
}

/** How a run samples its model: recorded in `run_started` so a dataset says how it was made. */
export interface SamplingOptions {
  temperature?: number;
  topP?: number;
  seed?: number;
  maxOutputTokens?: number;
  /** Server-specific request fields merged into every request (vLLM's `chat_template_kwargs`, …). */
  extra?: Record<string, unknown>;
}

export type FileChangeStatus = 'added' | 'modified' | 'deleted' | 'renamed' | 'typechange';

/**
 * A file a step changed. File names are bytes; JSON carries text. A name that is valid UTF-8 is
 * `path` as it is. One that is not is `path` in git's quoted form (`"caf\351.txt"`: the quotes,
 * C escapes and octal bytes, as `git diff` prints it with core.quotePath) and the exact bytes in
 * `pathBase64` (likewise `oldPath` / `oldPathBase64`). Readers that need the file on disk use the
 * bytes; a name shown to people or to a model uses `path`.
 */
export interface FileChange {
  path: string;
  /** The name's bytes, base64, when they are not valid UTF-8 (`path` is then git's quoted form). */
  pathBase64?: string;
  /** Previous path, for renames. */
  oldPath?: string;
  oldPathBase64?: string;
  status: FileChangeStatus;
  additions: number;
  deletions: number;
  binary: boolean;
}

/** What an action really changed on disk: the diff between two snapshots of the shadow store. */
export interface Grounding {
  /**
   * Snapshot (shadow store commit) the diff starts from. For a step's first action: the one
   * taken when the model's reply arrived (runs recorded before replies were snapshotted: when
   * the request was sent); for each further action, the one after the action before it; for an
   * external change, the last snapshot before the change was found.
   */
  before: string;
  /** Snapshot taken after the action ran (for an external change: when it was found). */
  after: string;
  files: FileChange[];
  /** Unified diff, `git diff` format; empty when nothing changed. */
  patch: string;
  /** True when the patch was cut to keep events small; the full diff stays derivable from the store. */
  patchTruncated?: boolean;
  /**
   * Someone other than the agent saved files while the action ran (VS Code: a document saved in
   * an editor of the run's workspace). A diff cannot tell such a save from the agent's own write,
   * so the diff is not the agent's alone: the rules give it no diff-based label, and exports say
   * so. Absent: no other save was seen (the CLI sees none; there, edits made while an action runs
   * stay in its diff, unmarked).
   */
  mixed?: MixedGrounding;
}

export interface MixedGrounding {
  /** The diff's files (workspace-relative) that were saved outside the agent while the action ran, each once. */
  files: string[];
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

export interface RunStartedEvent {
  type: 'run_started';
  time: string;
  version: number;
  runId: string;
  task: string;
  workspace: string;
  model: string;
  baseUrl: string;
  maxSteps: number;
  systemPrompt: string;
  /** The tool schemas offered to the model (OpenAI function-tool format). */
  tools: unknown[];
  /** Shared by the runs of one sampling (`apollo sample`): N rollouts of one task. */
  taskId?: string;
  /**
   * A sampled run works in its own working copy (`workspace`), made from a snapshot of the user's
   * workspace: which workspace, and the snapshot (a commit in that workspace's shadow store).
   */
  origin?: RunOrigin;
  /** Limits besides maxSteps; reaching one ends the run with status `budget`. */
  budget?: RunBudget;
  /** The run is a task of a suite (Harbor's layout): which task; its verifier gives the reward. */
  taskSource?: TaskSource;
  /** Hints were disabled on purpose (`--no-hints`): the run belongs to the control group. */
  hintsDisabled?: boolean;
  /** A trajectory brought in by `apollo import` (no workspace: read, label and export only). */
  importedFrom?: { format: 'atif'; trajectoryId: string; agent: string };
  /**
   * What the run's snapshots leave out, as resolved when it started; resume and rewind snapshot
   * the workspace the same way. Absent on runs recorded before it was kept: the built-in
   * exclusions and size limit apply to those.
   */
  grounding?: RunGrounding;
  /** Sampling parameters sent with every request of the run; absent: the server's defaults. */
  sampling?: SamplingOptions;
  /** Where the model is served: `openai-compatible` (absent on older runs) or `vscode-lm`. */
  provider?: string;
  /** Whether earlier turns' reasoning was sent back to the model; absent: `auto`. */
  reasoningInContext?: ReasoningInContext;
}

export interface RunGrounding {
  /** Every gitignore-style pattern left out of snapshots (on top of .gitignore), the built-in ones included. */
  excludePatterns: string[];
  /** Files larger than this are left out of snapshots. */
  maxFileBytes: number;
}

export interface RunOrigin {
  workspace: string;
  snapshot: string;
}

export interface RunBudget {
  /** Wall time the run may take, in minutes, not counting time spent paused. */
  maxMinutes?: number;
  /** Prompt plus completion tokens the run may use. */
  maxTokens?: number;
}

export type BudgetKind = 'time' | 'tokens';

export interface StepEvent {
  type: 'step';
  time: string;
  step: number;
  assistant: AssistantRecord;
  /** The executed action; null when the model answered without a tool call. */
  action: ToolCallRecord | null;
  /** What the tool returned to the model (the tool message's content). */
  observation: string;
  /** True when the tool refused or failed (bad arguments, path outside the workspace, …). */
  isError: boolean;
  /**
   * Tool messages for tool calls of the turn that were not run, with the reason the model was
   * given: a call cut by the output limit, calls after `finish`, and (runs recorded before a step
   * could run several) every call after the first.
   */
  skippedToolCalls?: { id: string; content: string }[];
  /**
   * The step's action: from the snapshot when the model's reply arrived to the one after
   * `action` ran (runs recorded before replies were snapshotted: from when the request was sent).
   */
  grounding: Grounding;
  /**
   * The snapshot taken when the step's model request was sent ("before step N", what a rewind
   * restores), given only when it differs from `grounding.before`: files changed while the model
   * thought, recorded as this step's `external_change` with phase `during_request`.
   */
  requestSnapshot?: string;
  /** The turn's further tool calls, run in order after `action`, each with its own result and diff. */
  moreActions?: ActionResult[];
  usage?: TokenUsage;
  modelMs: number;
  toolMs: number;
  /** Time spent snapshotting and diffing. */
  groundingMs?: number;
  /** Where the full output of the action was kept when the observation shows only head and tail. */
  fullOutput?: string;
  /** The branch this step is on, after a rewind; absent on the run's first branch. */
  branch?: string;
  /** The step this one follows on its branch (0: the run's start); given on rewound branches. */
  parentStep?: number;
}

/** A hint reached the engine (from the panel, a command or `apollo hint`). */
export interface HintQueuedEvent {
  type: 'hint_queued';
  time: string;
  hintId: string;
  text: string;
  kind: HintKind;
  source: string;
  /** `now` interrupts the model request in flight; `next` (default) waits for the next step. */
  urgency?: HintUrgency;
}

/**
 * A queued hint could no longer reach the model: the run ended (finished, stopped, out of steps
 * or budget, failed) before its next request. Shown to the annotator.
 */
export interface HintUndeliveredEvent {
  type: 'hint_undelivered';
  time: string;
  hintId: string;
  reason: string;
}

/**
 * What the run learned of the model's context window, and the prompt budget it works to: at the
 * start, and again when the server refused a prompt as too long.
 */
export interface ContextWindowEvent {
  type: 'context_window';
  time: string;
  /** The window in tokens, when known. */
  windowTokens?: number;
  budgetTokens: number;
  /** `server` (it said, e.g. GET /v1/models), `setting`, `default`, or `refusal` (a too-long prompt). */
  source: 'server' | 'setting' | 'default' | 'refusal';
  detail?: string;
}

/** Something the engine noticed and decided about, said once (e.g. token counts it will not trust). */
export interface NoticeEvent {
  type: 'notice';
  time: string;
  step?: number;
  message: string;
}

/** A queued hint was put into the model request of `step` as a user message. */
export interface HintDeliveredEvent {
  type: 'hint_delivered';
  time: string;
  hintId: string;
  step: number;
}

export interface LabelEvent {
  type: 'label';
  time: string;
  step: number;
  label: LabelValue;
  axis?: LabelAxis;
  /** `human`, `rule:<name>` or `judge:<model>`. */
  source: string;
  reason?: string;
}

/** One request of the LLM judge: which steps it scored, what it cost, and why it failed if it did. */
export interface JudgeUsageEvent {
  type: 'judge_usage';
  time: string;
  model: string;
  steps: number[];
  usage?: TokenUsage;
  /** The judge's failure; the steps stay unjudged and the run goes on. */
  error?: string;
}

export interface RunStateEvent {
  type: 'run_state';
  time: string;
  state: 'paused' | 'resumed';
  /** Why, when not the annotator's own pause: e.g. repeated model errors, crash recovery. */
  reason?: string;
}

/** A model request failed and is retried (or the run pauses to ask the annotator). */
export interface ModelRetryEvent {
  type: 'model_retry';
  time: string;
  step: number;
  attempt: number;
  error: string;
  status?: number;
  /** How long the engine waits before the next attempt. */
  waitMs: number;
}

/** The model request of `step` was cut short by an urgent hint and sent again with it. */
export interface RequestInterruptedEvent {
  type: 'request_interrupted';
  time: string;
  step: number;
  hintIds: string[];
}

/** Older steps were replaced in the model's context by a state snapshot. The dataset keeps them all. */
export interface SummaryEvent {
  type: 'summary';
  time: string;
  /** The summary was made before the request of this step. */
  step: number;
  /** Steps before this one are now represented by the summary. */
  keptFromStep: number;
  text: string;
  tokensBefore: number;
  tokensAfter: number;
  usage?: TokenUsage;
}

/**
 * The workspace changed outside the agent's actions (the user, or another process). Never the
 * agent's: it is in no action's diff, no rule labels a step by it, and no export trains on it
 * (the model is not told of it, so the chat formats leave it out; ATIF keeps it in the step's
 * `extra.apollo.external_changes`, apart from the agent's `diff`).
 */
export interface ExternalChangeEvent {
  type: 'external_change';
  time: string;
  /** The step the change is recorded at (see `phase`); for a rewind's overwritten edits, the branch's last step. */
  step: number;
  /**
   * When it was found: `before_request` — between the previous step's action and this step's
   * request; `during_request` — between this step's request and the model's reply, while the
   * model thought (the action's diff starts after it); `before_rewind` — the user's edits a
   * rewind overwrote, recorded first. Absent on events recorded before phases were kept (the
   * engine's were `before_request`, a rewind's `before_rewind`).
   */
  phase?: ExternalChangePhase;
  grounding: Grounding;
}

export type ExternalChangePhase = 'before_request' | 'during_request' | 'before_rewind';
export const EXTERNAL_CHANGE_PHASES: readonly ExternalChangePhase[] = ['before_request', 'during_request', 'before_rewind'];

/**
 * The workspace was put back to how it stood before `toStep`, and the run goes on from there on a
 * new branch. The steps from `toStep` on stay in the dataset as an abandoned branch.
 */
export interface RewindEvent {
  type: 'rewind';
  time: string;
  toStep: number;
  /** The new branch's id; steps recorded after this event carry it. */
  branch: string;
  /** The last step kept (0 when rewinding to the first step). */
  parentStep: number;
  /** The snapshot restored: step toStep's "before". */
  snapshot: string;
  /** The files written or removed to get there. */
  files: FileChange[];
}

export interface RunEndedEvent {
  type: 'run_ended';
  time: string;
  status: RunEndStatus;
  steps: number;
  summary?: string;
  error?: string;
  /** With status `budget`: which budget was reached. */
  budget?: BudgetKind;
}

/** A sampled run's net change (origin snapshot to its last snapshot) was applied to the user's workspace. */
export interface RunAdoptedEvent {
  type: 'run_adopted';
  time: string;
  /** The workspace the changes were written to (the run's origin). */
  workspace: string;
  /** The run's snapshot that was adopted. */
  snapshot: string;
  files: FileChange[];
  /** Files the user had changed too, overwritten because the user confirmed. */
  overwritten: string[];
}

/** A task in Harbor's layout that a run was given. */
export interface TaskSource {
  format: 'harbor';
  /** `[task] name` of task.toml, else the folder's name. */
  name: string;
  /** The task folder, absolute. */
  dir: string;
}

/**
 * A task's verifier ran on the run's workspace (after the run ended, or again with `apollo
 * verify`): its rewards, or why it gave none. The latest one counts.
 */
export interface RewardEvent {
  type: 'reward';
  time: string;
  /** `verifier`: tests/test.sh on the run's workspace; `oracle`: the task's own solution, checked. */
  source: 'verifier' | 'oracle';
  /** Named rewards (`reward.txt` gives {"reward": n}); empty when the verifier gave none. */
  rewards: Record<string, number>;
  task: string;
  exitCode: number | null;
  timedOut?: boolean;
  durationMs: number;
  /** Why no reward came out (timeout, no reward file, a crash). */
  error?: string;
  /** The end of the verifier's output, redacted. */
  output?: string;
}

/** The one number a run is ranked and counted by: `reward` when named so, else the mean of all. */
export function primaryReward(rewards: Readonly<Record<string, number>> | undefined): number | undefined {
  if (!rewards) return undefined;
  if (typeof rewards.reward === 'number') return rewards.reward;
  const values = Object.values(rewards);
  return values.length ? values.reduce((sum, value) => sum + value, 0) / values.length : undefined;
}

export type DatasetEvent =
  | RunStartedEvent
  | RewardEvent
  | RewindEvent
  | StepEvent
  | HintQueuedEvent
  | HintDeliveredEvent
  | HintUndeliveredEvent
  | ContextWindowEvent
  | NoticeEvent
  | LabelEvent
  | JudgeUsageEvent
  | RunStateEvent
  | ModelRetryEvent
  | RequestInterruptedEvent
  | SummaryEvent
  | ExternalChangeEvent
  | RunEndedEvent
  | RunAdoptedEvent;

export type DatasetEventType = DatasetEvent['type'];

/**
 * What the model was told of each tool call of a step's turn, in call order: the result of each
 * call that ran, or why it did not. Empty when the turn called no tool.
 */
export function stepToolResults(step: StepEvent): { id: string; content: string }[] {
  const told = new Map<string, string>();
  for (const skipped of step.skippedToolCalls ?? []) told.set(skipped.id, skipped.content);
  if (step.action) told.set(step.action.id, step.observation);
  for (const part of step.moreActions ?? []) told.set(part.action.id, part.observation);
  return step.assistant.toolCalls.map((call) => ({ id: call.id, content: told.get(call.id) ?? '' }));
}

/** The workspace before step N as the contract means it: when the step's model request was sent. */
export function snapshotBeforeStep(step: StepEvent): string {
  return step.requestSnapshot ?? step.grounding.before;
}

/** The files someone other than the agent saved while any of the step's actions ran; empty when none. */
export function mixedFiles(step: StepEvent): string[] {
  const parts = [step.grounding, ...(step.moreActions ?? []).map((part) => part.grounding)];
  return [...new Set(parts.flatMap((part) => part.mixed?.files ?? []))];
}

/**
 * Everything a step's executed calls changed, in call order: `action`'s grounding, then each of
 * `moreActions`'. The patch is the calls' patches one after the other (they apply in that order);
 * a file changed by several calls is listed once, with the line counts of all its hunks, and is
 * `deleted` when its last call removed it (`added` stays `added` while the file still exists).
 */
export function stepGrounding(step: StepEvent): Grounding {
  const parts = [step.grounding, ...(step.moreActions ?? []).map((part) => part.grounding)];
  if (parts.length === 1) return step.grounding;
  const files = new Map<string, FileChange>();
  for (const part of parts) {
    for (const file of part.files) {
      const known = files.get(file.path);
      if (!known) {
        files.set(file.path, { ...file });
        continue;
      }
      known.additions += file.additions;
      known.deletions += file.deletions;
      known.binary = known.binary || file.binary;
      if (file.status === 'deleted') known.status = 'deleted';
      else if (known.status === 'deleted') known.status = file.status === 'added' ? 'modified' : file.status;
    }
  }
  const truncated = parts.some((part) => part.patchTruncated);
  const mixed = mixedFiles(step);
  return {
    before: parts[0].before,
    after: parts[parts.length - 1].after,
    files: [...files.values()],
    patch: parts
      .map((part) => part.patch)
      .filter((patch) => patch.length > 0)
      .map((patch) => (patch.endsWith('\n') ? patch : `${patch}\n`))
      .join(''),
    ...(truncated ? { patchTruncated: true } : {}),
    ...(mixed.length ? { mixed: { files: mixed } } : {}),
  };
}

/** `runs/<id>/run.json`: a summary kept current while the run goes on (derivable from the events). */
export interface RunManifest {
  id: string;
  task: string;
  workspace: string;
  model: string;
  baseUrl: string;
  status: RunStatus;
  steps: number;
  createdAt: string;
  updatedAt: string;
  endedAt?: string;
  error?: string;
  tokens: TokenUsage;
  /** Shared by the runs of one sampling. */
  taskId?: string;
  /** A sampled run: the user's workspace its working copy was made from. */
  originWorkspace?: string;
  /** When the run's result was applied to the origin workspace. */
  adoptedAt?: string;
  /** The task of a suite the run was given (Harbor's layout). */
  taskSource?: TaskSource;
  /** Stopped without ending (no run_ended): the disk filled up; it goes on with --resume once there is space. */
  resumable?: 'disk_full';
  /** The latest verdict of the task's verifier (its reward event holds the whole of it): the primary reward, or why there is none. */
  reward?: { value?: number; error?: string; time: string };
}

export class InvalidEventError extends Error {}

function fail(what: string): never {
  throw new InvalidEventError(what);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(event: Record<string, unknown>, key: string): void {
  if (typeof event[key] !== 'string') fail(`"${key}" must be a string`);
}

function requireStepNumber(event: Record<string, unknown>): void {
  const step = event.step;
  if (typeof step !== 'number' || !Number.isInteger(step) || step < 1) fail('"step" must be an integer >= 1');
}

function requireMixed(grounding: Record<string, unknown>): void {
  const mixed = grounding.mixed;
  if (mixed === undefined) return;
  if (!isObject(mixed) || !Array.isArray(mixed.files) || !mixed.files.every((file) => typeof file === 'string')) fail('"grounding.mixed" must hold files (strings)');
}

function requireOneOf<T extends string>(event: Record<string, unknown>, key: string, allowed: readonly T[]): void {
  if (!allowed.includes(event[key] as T)) fail(`"${key}" must be one of ${allowed.join(', ')}`);
}

/**
 * Checks the shape of one event before it is written or after it is read.
 * Throws InvalidEventError naming the first problem found.
 */
export function validateEvent(value: unknown): DatasetEvent {
  if (!isObject(value)) fail('an event must be a JSON object');
  requireString(value, 'type');
  requireString(value, 'time');
  switch (value.type) {
    case 'run_started':
      for (const key of ['runId', 'task', 'workspace', 'model', 'baseUrl', 'systemPrompt']) requireString(value, key);
      if (!Array.isArray(value.tools)) fail('"tools" must be an array');
      if (value.taskId !== undefined) requireString(value, 'taskId');
      if (value.origin !== undefined && (!isObject(value.origin) || typeof value.origin.workspace !== 'string' || typeof value.origin.snapshot !== 'string')) {
        fail('"origin" must hold workspace and snapshot');
      }
      if (
        value.grounding !== undefined &&
        (!isObject(value.grounding) ||
          !Array.isArray(value.grounding.excludePatterns) ||
          !value.grounding.excludePatterns.every((pattern) => typeof pattern === 'string') ||
          typeof value.grounding.maxFileBytes !== 'number' ||
          !(value.grounding.maxFileBytes > 0))
      ) {
        fail('"grounding" must hold excludePatterns (strings) and a positive maxFileBytes');
      }
      break;
    case 'step': {
      requireStepNumber(value);
      requireString(value, 'observation');
      if (!isObject(value.assistant) || !Array.isArray(value.assistant.toolCalls)) fail('"assistant" must hold toolCalls');
      if (value.action !== null && (!isObject(value.action) || typeof value.action.arguments !== 'string')) {
        fail('"action" must be null or a tool call with string arguments');
      }
      const grounding = value.grounding;
      if (!isObject(grounding) || !Array.isArray(grounding.files) || typeof grounding.patch !== 'string') {
        fail('"grounding" must hold files and patch');
      }
      requireMixed(grounding);
      if (value.requestSnapshot !== undefined) requireString(value, 'requestSnapshot');
      if (value.moreActions !== undefined) {
        if (!Array.isArray(value.moreActions)) fail('"moreActions" must be an array');
        for (const part of value.moreActions) {
          if (!isObject(part) || !isObject(part.action) || typeof part.action.arguments !== 'string' || typeof part.observation !== 'string' || !isObject(part.grounding)) {
            fail('each of "moreActions" must hold action, observation and grounding');
          }
          requireMixed(part.grounding);
        }
      }
      break;
    }
    case 'hint_queued':
      requireString(value, 'hintId');
      requireString(value, 'text');
      requireOneOf(value, 'kind', HINT_KINDS);
      if (value.urgency !== undefined) requireOneOf(value, 'urgency', HINT_URGENCIES);
      break;
    case 'hint_delivered':
      requireString(value, 'hintId');
      requireStepNumber(value);
      break;
    case 'hint_undelivered':
      requireString(value, 'hintId');
      requireString(value, 'reason');
      break;
    case 'context_window':
      if (typeof value.budgetTokens !== 'number' || !(value.budgetTokens > 0)) fail('"budgetTokens" must be a positive number');
      requireOneOf(value, 'source', ['server', 'setting', 'default', 'refusal']);
      break;
    case 'notice':
      requireString(value, 'message');
      break;
    case 'label':
      requireStepNumber(value);
      requireOneOf(value, 'label', LABEL_VALUES);
      if (value.axis !== undefined) requireOneOf(value, 'axis', LABEL_AXES);
      requireString(value, 'source');
      break;
    case 'judge_usage':
      requireString(value, 'model');
      if (!Array.isArray(value.steps) || !value.steps.every((step) => Number.isInteger(step) && (step as number) >= 1)) fail('"steps" must be an array of step numbers');
      break;
    case 'run_state':
      requireOneOf(value, 'state', ['paused', 'resumed']);
      break;
    case 'model_retry':
      requireStepNumber(value);
      requireString(value, 'error');
      break;
    case 'request_interrupted':
      requireStepNumber(value);
      if (!Array.isArray(value.hintIds)) fail('"hintIds" must be an array');
      break;
    case 'summary':
      requireStepNumber(value);
      requireString(value, 'text');
      if (typeof value.keptFromStep !== 'number') fail('"keptFromStep" must be a number');
      break;
    case 'external_change': {
      requireStepNumber(value);
      const grounding = value.grounding;
      if (!isObject(grounding) || !Array.isArray(grounding.files)) fail('"grounding" must hold files');
      if (value.phase !== undefined) requireOneOf(value, 'phase', EXTERNAL_CHANGE_PHASES);
      break;
    }
    case 'rewind':
      requireString(value, 'branch');
      requireString(value, 'snapshot');
      if (typeof value.toStep !== 'number' || !Number.isInteger(value.toStep) || value.toStep < 1) fail('"toStep" must be an integer >= 1');
      if (typeof value.parentStep !== 'number' || !Number.isInteger(value.parentStep) || value.parentStep < 0) fail('"parentStep" must be an integer >= 0');
      if (!Array.isArray(value.files)) fail('"files" must be an array');
      break;
    case 'run_ended':
      requireOneOf(value, 'status', ['finished', 'max_steps', 'budget', 'stopped', 'failed']);
      if (value.budget !== undefined) requireOneOf(value, 'budget', ['time', 'tokens']);
      break;
    case 'reward':
      requireOneOf(value, 'source', ['verifier', 'oracle']);
      requireString(value, 'task');
      if (!isObject(value.rewards) || !Object.values(value.rewards).every((reward) => typeof reward === 'number' && Number.isFinite(reward))) fail('"rewards" must be an object of numbers');
      if (typeof value.durationMs !== 'number') fail('"durationMs" must be a number');
      break;
    case 'run_adopted':
      requireString(value, 'workspace');
      requireString(value, 'snapshot');
      if (!Array.isArray(value.files) || !Array.isArray(value.overwritten)) fail('"files" and "overwritten" must be arrays');
      break;
    default:
      fail(`unknown event type "${String(value.type)}"`);
  }
  return value as unknown as DatasetEvent;
}
