/**
 * Turns dataset events into the panel's view model (src/protocol.ts). Pure: the host and the
 * unit tests use it alike.
 */
import { mixedFiles, primaryReward, stepGrounding, type DatasetEvent, type ExternalChangeEvent, type LabelEvent, type RewardEvent, type StepEvent } from '../dataset/events';
import { type AttentionFlag, AttentionTracker } from '../supervision/attention';
import { DEFAULT_MASK_POLICY, LabelBook, type MaskPolicy, maskOf } from '../supervision/labels';
import type { HostToWebview, LabelBadge, RewardView, RunView, StepDetail, TimelineHint, TimelineNote, TimelineStep } from './panelViews';

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
    if (typeof record[key] === 'string') return oneLine(record[key], ARGS_LENGTH);
  }
  return oneLine(raw === '{}' ? '' : raw, ARGS_LENGTH);
}

/** A reward event as the panel shows it: the primary reward, or a short reason there is none. */
export function rewardView(event: RewardEvent): RewardView {
  const value = event.error ? undefined : primaryReward(event.rewards);
  if (value !== undefined) return { value, rewards: { ...event.rewards } };
  const detail = event.error ?? 'the verifier gave no reward.';
  const short = event.timedOut
    ? 'timed out'
    : /wrote no reward/.test(detail)
      ? 'no reward file'
      : /could not start/.test(detail)
        ? 'could not start'
        : /was stopped/.test(detail)
          ? 'stopped'
          : /exited with/.test(detail)
            ? 'verifier failed'
            : 'error';
  return { rewards: { ...event.rewards }, error: short, detail };
}

export function labelBadge(event: LabelEvent): LabelBadge {
  return { label: event.label, source: event.source, ...(event.axis ? { axis: event.axis } : {}), ...(event.reason ? { reason: event.reason } : {}) };
}

export function toTimelineStep(event: StepEvent): TimelineStep {
  const files = event.grounding.files;
  const mixed = mixedFiles(event);
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
    ...(mixed.length ? { mixed } : {}),
  };
}

const MAX_DETAIL_PATCH = 200_000;

function prettyArguments(raw: string): string {
  try {
    return JSON.stringify(JSON.parse(raw), null, 2);
  } catch {
    return raw;
  }
}

/**
 * Everything about one step for the panel's detail view: its thought and reasoning, each call it
 * ran with what it returned, the calls it did not run with why, and what they all changed.
 */
export function stepDetail(event: StepEvent): StepDetail {
  const grounding = stepGrounding(event);
  const patch = grounding.patch;
  const names = new Map(event.assistant.toolCalls.map((call) => [call.id, call.name]));
  return {
    step: event.step,
    thought: event.assistant.content ?? '',
    reasoning: event.assistant.reasoning ?? '',
    truncated: !!event.assistant.truncated,
    tool: event.action?.name ?? null,
    arguments: event.action ? prettyArguments(event.action.arguments) : '',
    observation: event.observation,
    isError: event.isError,
    hasFullOutput: !!event.fullOutput,
    moreActions: (event.moreActions ?? []).map((part) => ({ tool: part.action.name, arguments: prettyArguments(part.action.arguments), observation: part.observation, isError: part.isError })),
    skipped: (event.skippedToolCalls ?? []).map((call) => ({ tool: names.get(call.id) ?? call.id, reason: call.content })),
    files: grounding.files.map(({ path: file, status, additions, deletions, binary }) => ({ path: file, status, additions, deletions, binary })),
    patch: patch.length > MAX_DETAIL_PATCH ? patch.slice(0, MAX_DETAIL_PATCH) : patch,
    patchTruncated: !!grounding.patchTruncated || patch.length > MAX_DETAIL_PATCH,
    ...(grounding.mixed ? { mixed: grounding.mixed.files } : {}),
  };
}

const LISTED_FILES = 5;

/** "a.ts, b.ts and 3 more": the first few paths of a change, for a one-line note. */
export function fileList(files: readonly string[]): string {
  const shown = files.slice(0, LISTED_FILES).join(', ');
  return files.length > LISTED_FILES ? `${shown} and ${files.length - LISTED_FILES} more` : shown;
}

/** The words of an external change's timeline line: which files, and when they were found. */
function externalNote(event: ExternalChangeEvent): { text: string; title: string } {
  const files = event.grounding.files.map((file) => file.path);
  const text = `Changed outside the agent: ${fileList(files)}`;
  const when =
    event.phase === 'during_request'
      ? `while the model was answering step ${event.step}'s request`
      : event.phase === 'before_rewind'
        ? `after step ${event.step}, overwritten by a rewind (kept in the dataset)`
        : `before step ${event.step}'s request`;
  return { text, title: `Changed outside the agent ${when}, not part of any action's diff: ${files.join(', ')}` };
}

type InitMessage = Extract<HostToWebview, { type: 'init' }>;

const NOTE_TEXT_LENGTH = 160;

/**
 * The timeline line of an event that is not a step, or undefined for events that have none: a
 * notice, a prompt refused as too long (the other context_window sources are the run's setup,
 * not news), a hint the run ended without delivering. `lastStep`: the step before the event.
 */
export function timelineNote(event: DatasetEvent, lastStep: number, hints: ReadonlyMap<string, TimelineHint> = new Map()): TimelineNote | undefined {
  const at = Math.max(1, lastStep);
  switch (event.type) {
    case 'notice': {
      const text = `Notice: ${event.message}`;
      return { kind: 'notice', step: event.step ?? at, text: oneLine(text, NOTE_TEXT_LENGTH), title: text };
    }
    case 'context_window': {
      if (event.source !== 'refusal') return undefined;
      const window = event.windowTokens ? ` (window ${event.windowTokens.toLocaleString('en-US')} tokens)` : '';
      const text = `The server refused a prompt as too long${window}: the prompt budget is now ${event.budgetTokens.toLocaleString('en-US')} tokens`;
      const title = event.detail ? `${text}. ${event.detail}` : text;
      return { kind: 'context', step: at, text: oneLine(text, NOTE_TEXT_LENGTH), title };
    }
    case 'external_change': {
      if (!event.grounding.files.length) return undefined;
      const { text, title } = externalNote(event);
      return { kind: 'external', step: event.step, text: oneLine(text, NOTE_TEXT_LENGTH), title };
    }
    case 'hint_undelivered': {
      const text = `Hint not delivered: ${event.reason}`;
      const hint = hints.get(event.hintId);
      return { kind: 'undelivered', step: at, text: oneLine(text, NOTE_TEXT_LENGTH), title: hint ? `${text}. The hint (${hint.kind}): ${hint.text}` : text };
    }
    default:
      return undefined;
  }
}

const REDACTION_MARK = /\[REDACTED:[a-z0-9-]+\]/g;

/** How many secrets the recorded event had replaced, in the texts that can hold them. */
export function countRedactions(event: DatasetEvent): number {
  const count = (text: string | null | undefined) => (text ? (text.match(REDACTION_MARK)?.length ?? 0) : 0);
  switch (event.type) {
    case 'step':
      return (
        count(event.observation) +
        count(event.assistant.content) +
        count(event.assistant.reasoning) +
        count(event.action?.arguments) +
        count(event.grounding.patch) +
        (event.moreActions ?? []).reduce((sum, part) => sum + count(part.observation) + count(part.action.arguments) + count(part.grounding.patch), 0)
      );
    case 'hint_queued':
    case 'summary':
      return count(event.text);
    case 'notice':
      return count(event.message);
    case 'external_change':
      return count(event.grounding.patch);
    default:
      return 0;
  }
}

/**
 * The panel's view of one run, kept current event by event. `observe` returns only the
 * messages an event changes (a step, a label, a hint), so the panel never gets the whole state
 * again except through `init` (when it connects, or after a rewind reshapes the timeline).
 */
export class TimelineModel {
  private run: RunView | null = null;
  private readonly steps: TimelineStep[] = [];
  private readonly byNumber = new Map<number, TimelineStep>();
  private readonly hints = new Map<string, TimelineHint>();
  private readonly notes: TimelineNote[] = [];
  private lastStep = 0;
  private readonly labels = new LabelBook();
  private readonly masks = new Map<number, 0 | 1>();
  private masked = 0;
  private readonly attention = new AttentionTracker();
  private unseen = 0;
  private pendingSummary: TimelineStep['summaryBefore'];
  private branchStart: { branch: string; parentStep: number } | undefined;

  constructor(private readonly options: { policy: MaskPolicy; readOnly: boolean }) {}

  /** Feeds one event; returns the messages that tell the panel what changed. */
  observe(event: DatasetEvent): HostToWebview[] {
    const messages: HostToWebview[] = [];
    const run = this.run;
    switch (event.type) {
      case 'run_started':
        this.run = {
          runId: event.runId,
          task: event.task,
          status: 'running',
          steps: 0,
          model: event.model,
          startedAt: event.time,
          tokens: 0,
          hints: 0,
          maskedShare: 0,
          redactions: 0,
          readOnly: this.options.readOnly,
          live: !this.options.readOnly,
          ...(event.taskId ? { taskId: event.taskId } : {}),
          ...(event.origin ? { originWorkspace: event.origin.workspace } : {}),
          ...(event.taskSource ? { suiteTask: event.taskSource.name } : {}),
        };
        break;
      case 'reward':
        // The latest verdict counts (`apollo verify` runs it again).
        if (run && event.source === 'verifier') run.reward = rewardView(event);
        break;
      case 'step': {
        const item = toTimelineStep(event);
        if (event.branch) item.branch = event.branch;
        if (this.branchStart && event.branch === this.branchStart.branch) {
          item.branchFrom = this.branchStart.parentStep;
          this.branchStart = undefined;
        }
        if (this.pendingSummary) {
          item.summaryBefore = this.pendingSummary;
          this.pendingSummary = undefined;
        }
        item.labels = this.labels.labelsOf(event.step).map(labelBadge);
        this.steps.push(item);
        this.byNumber.set(item.step, item);
        this.lastStep = event.step;
        this.updateMask(event.step);
        if (run) {
          run.steps = Math.max(run.steps, event.step);
          run.tokens += (event.usage?.promptTokens ?? 0) + (event.usage?.completionTokens ?? 0);
        }
        messages.push({ type: 'stepAdded', step: item });
        break;
      }
      case 'hint_queued': {
        const hint: TimelineHint = { hintId: event.hintId, text: event.text, kind: event.kind, ...(event.urgency ? { urgency: event.urgency } : {}) };
        this.hints.set(event.hintId, hint);
        if (run) run.hints++;
        messages.push({ type: 'hintQueued', hint });
        break;
      }
      case 'hint_delivered': {
        const hint = this.hints.get(event.hintId);
        if (hint) hint.deliveredAtStep = event.step;
        messages.push({ type: 'hintDelivered', hintId: event.hintId, step: event.step });
        break;
      }
      case 'hint_undelivered': {
        const hint = this.hints.get(event.hintId);
        if (hint) hint.undelivered = event.reason;
        messages.push({ type: 'hintUndelivered', hintId: event.hintId, reason: event.reason });
        break;
      }
      case 'label': {
        this.labels.add(event);
        const badge = labelBadge(event);
        this.byNumber.get(event.step)?.labels.push(badge);
        this.updateMask(event.step);
        messages.push({ type: 'labelAdded', step: event.step, badge });
        break;
      }
      case 'summary':
        this.pendingSummary = { tokensBefore: event.tokensBefore, tokensAfter: event.tokensAfter };
        if (run) run.tokens += (event.usage?.promptTokens ?? 0) + (event.usage?.completionTokens ?? 0);
        messages.push({ type: 'summaryAdded', step: event.step, tokensBefore: event.tokensBefore, tokensAfter: event.tokensAfter });
        break;
      case 'rewind':
        // Steps from the rewound one on leave the run's line; the timeline is reshaped, so it is sent whole.
        // Steps not yet abandoned are the run's current line.
        for (const item of this.steps) if (item.step >= event.toStep) item.abandoned = true;
        this.branchStart = { branch: event.branch, parentStep: event.parentStep };
        if (run) {
          // Waits to be resumed: nothing runs until then.
          run.status = 'paused';
          run.live = false;
          delete run.endedAt;
          delete run.error;
        }
        messages.push(this.init());
        break;
      case 'run_state':
        if (run) {
          run.status = event.state === 'paused' ? 'paused' : 'running';
          // A run resumed (after a crash or a rewind) is live again in the window that resumed it.
          if (event.state === 'resumed') run.live = !this.options.readOnly;
          if (event.state === 'paused' && event.reason) run.pausedReason = event.reason;
          else delete run.pausedReason;
        }
        break;
      case 'run_ended':
        if (run) {
          run.status = event.status;
          run.live = false;
          run.endedAt = event.time;
          delete run.pausedReason;
          if (event.error) run.error = event.error;
          if (event.status === 'budget' && event.summary) run.stopReason = event.summary;
        }
        break;
      case 'run_adopted':
        if (run) run.adoptedAt = event.time;
        break;
      default:
        // The other events do not show in the timeline.
        break;
    }
    const note = timelineNote(event, this.lastStep, this.hints);
    if (note) {
      this.notes.push(note);
      messages.push({ type: 'timelineNote', note });
    }
    if (run) run.redactions += countRedactions(event);
    const flag = this.attention.observe(event);
    if (flag) {
      this.unseen++;
      messages.push({ type: 'attention', flag, unseen: this.unseen });
    }
    if (
      run &&
      (event.type === 'step' ||
        event.type === 'label' ||
        event.type === 'run_state' ||
        event.type === 'run_ended' ||
        event.type === 'run_adopted' ||
        event.type === 'hint_queued' ||
        event.type === 'summary' ||
        event.type === 'reward')
    ) {
      run.maskedShare = this.steps.length ? this.masked / this.steps.length : 0;
      messages.push({ type: 'runUpdated', run: { ...run } });
    }
    return messages;
  }

  /** The whole view, for a panel that (re)connects. */
  init(): InitMessage {
    return {
      type: 'init',
      run: this.run && { ...this.run, maskedShare: this.steps.length ? this.masked / this.steps.length : 0 },
      steps: this.steps,
      hints: [...this.hints.values()],
      notes: this.notes,
      attention: [...this.attention.flags()],
      unseen: this.unseen,
    };
  }

  get runView(): RunView | null {
    return this.run;
  }

  /** Flags raised since the annotator last looked (jumped to one, or intervened). */
  get unseenFlags(): number {
    return this.unseen;
  }

  markSeen(): void {
    this.unseen = 0;
  }

  /** The flags raised since the annotator last looked, oldest first. */
  unseenFlagList(): AttentionFlag[] {
    const flags = this.attention.flags();
    return this.unseen ? flags.slice(flags.length - this.unseen) : [];
  }

  /** The steps raised flags are about, in order. */
  flaggedSteps(): number[] {
    return [...new Set(this.attention.flags().map((flag) => flag.step))].sort((a, b) => a - b);
  }

  private updateMask(step: number): void {
    if (!this.byNumber.has(step)) return;
    const before = this.masks.get(step);
    const mask = maskOf(this.labels.effective(step), this.options.policy);
    this.masks.set(step, mask);
    if (before === 0) this.masked--;
    if (mask === 0) this.masked++;
  }
}

/** The whole view of a run, for the panel's first message after it (re)connects. */
export function buildTimeline(events: readonly DatasetEvent[], options: { policy?: MaskPolicy; readOnly?: boolean } = {}): InitMessage {
  const model = new TimelineModel({ policy: options.policy ?? DEFAULT_MASK_POLICY, readOnly: options.readOnly ?? false });
  for (const event of events) model.observe(event);
  return model.init();
}
