/**
 * Quality rules: cheap checks that label a step as soon as it lands (and again over a finished
 * run with `apollo relabel`). Each rule flags what it recognises as bad on one axis, with the
 * reason; a rule that stops flagging a step (after a change of rules) says so with `neutral`.
 *
 * The rules that read a step's diff (no_op, destructive, reverted) read only diffs that are the
 * agent's alone: a step whose grounding is mixed (someone else saved files while its action ran)
 * gets no diff-based label, and its diff neither undoes an earlier step nor can be undone.
 * Telling the agent's hunks from the other saver's is not possible from the diff, so the rules
 * do not guess. External changes are never a step's diff, so no rule reads them.
 */
import { mixedFiles, type DatasetEvent, type LabelAxis, type LabelEvent, type LabelValue, type StepEvent } from '../dataset/events';
import { firstLine } from '../text';
import { LabelBook } from './labels';

export type RuleName = 'command_failed' | 'tool_error' | 'no_op' | 'loop' | 'reverted' | 'destructive';
export const RULE_NAMES: readonly RuleName[] = ['command_failed', 'tool_error', 'no_op', 'loop', 'reverted', 'destructive'];

export interface RuleLabel {
  step: number;
  rule: RuleName;
  label: LabelValue;
  axis: LabelAxis;
  reason: string;
}

export interface RuleOptions {
  /** A call repeated with the same observation within this many steps is a loop. */
  loopWindow?: number;
  /** How many steps back a step's diff is checked for being undone. */
  revertWindow?: number;
  /** A step that deletes at least this many files is destructive. */
  destructiveFiles?: number;
  /** A step that removes at least this many lines is destructive. */
  destructiveLines?: number;
}

export const DEFAULT_RULE_OPTIONS: Required<RuleOptions> = { loopWindow: 5, revertWindow: 20, destructiveFiles: 3, destructiveLines: 200 };

/** Tools whose purpose is to change files: an empty diff means they did nothing. */
const WRITING_TOOLS = new Set(['write_file', 'edit_file']);
const COMMAND_TOOLS = new Set(['run_command']);
/** Polling a background job repeats by design while it runs. */
const REPEATABLE_TOOLS = new Set(['job_read']);

/** The note the command tool adds when it keeps a long output beside the run; it names the step, so it is left out of comparisons. */
const KEPT_OUTPUT_NOTE = /\n\[Full output \(\d+ characters\) kept in the dataset: [^\]\n]*\]\s*$/;

/** The observation without the kept-output note. */
function resultText(observation: string): string {
  return observation.replace(KEPT_OUTPUT_NOTE, '');
}

/**
 * Why a command failed, from the status line the command tool ends its observation with;
 * undefined when there is none: the command never ran (its arguments were refused).
 */
function commandFailure(observation: string): string | undefined {
  const text = resultText(observation);
  if (/\[Timed out after [^\]]*\]\s*$/.test(text)) return 'the command timed out and was killed';
  if (/\[The command was stopped\.\]\s*$/.test(text)) return 'the command was stopped before it ended';
  const status = /\[(exit code -?\d+|killed by [^\]]+)\]\s*$/.exec(text);
  if (status) return `the command failed (${status[1]})`;
  if (text.startsWith('The command could not start')) return 'the command could not start';
  return undefined;
}

/** A call as the model would repeat it: tool name plus its arguments with keys in a fixed order. */
function callKey(step: StepEvent): string | undefined {
  if (!step.action) return undefined;
  let args: unknown;
  try {
    args = JSON.parse(step.action.arguments);
  } catch {
    return `${step.action.name}\u0000${step.action.arguments}`;
  }
  return `${step.action.name}\u0000${stableJson(args)}`;
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${stableJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A diff reduced to what it does to each file: the file's paths, then its removed and added
 * lines, sorted. Two diffs undo each other when one's sections are the other's with the paths
 * and the removed and added lines swapped.
 * Undefined when that cannot be told from the text (binary files, mode-only changes, a cut patch).
 */
export function diffSignature(step: StepEvent): string[] | undefined {
  const { grounding } = step;
  if (!grounding.files.length || grounding.patchTruncated || grounding.files.some((file) => file.binary)) return undefined;
  const sections = grounding.patch.split(/^diff --git /m).slice(1);
  if (!sections.length) return undefined;
  const signatures: string[] = [];
  for (const section of sections) {
    const lines = section.split('\n');
    const firstHunk = lines.findIndex((line) => line.startsWith('@@'));
    if (firstHunk < 0) return undefined;
    const changed = lines.slice(firstHunk).filter((line) => line.startsWith('+') || line.startsWith('-'));
    if (!changed.length) return undefined;
    // The header names the paths before and after: "a/old b/new".
    signatures.push([lines[0], ...changed.sort()].join('\n'));
  }
  return signatures.sort();
}

/** The header of the diff that undoes a file's change: "a/old b/new" becomes "a/new b/old". */
function invertHeader(header: string): string {
  const paths = /^a\/(.*) b\/(.*)$/.exec(header);
  return paths ? `a/${paths[2]} b/${paths[1]}` : header;
}

function invertSignature(signature: string[]): string[] {
  return signature
    .map((section) => {
      const [header, ...lines] = section.split('\n');
      const swapped = lines.map((line) => (line.startsWith('+') ? `-${line.slice(1)}` : `+${line.slice(1)}`)).sort();
      return [invertHeader(header), ...swapped].join('\n');
    })
    .sort();
}

/** Takes every section of `wanted` out of `available` (a multiset) when all are there; false, taking nothing, when not. */
function takeAll(available: Map<string, number>, wanted: string[]): boolean {
  const needed = new Map<string, number>();
  for (const section of wanted) needed.set(section, (needed.get(section) ?? 0) + 1);
  for (const [section, count] of needed) if ((available.get(section) ?? 0) < count) return false;
  for (const [section, count] of needed) available.set(section, available.get(section)! - count);
  return true;
}

interface RecentStep {
  step: number;
  call?: string;
  observation: string;
  /** The diff that would undo this step, when it can be told. */
  inverse?: string[];
  reverted?: boolean;
}

/**
 * Runs the rules over a run's events as they come, keeping only a short window of recent steps
 * of the branch the run is on (a rewind drops the abandoned ones).
 */
export class RuleEngine {
  private readonly options: Required<RuleOptions>;
  private recent: RecentStep[] = [];

  constructor(options: RuleOptions = {}) {
    this.options = { ...DEFAULT_RULE_OPTIONS, ...options };
  }

  /** The labels the rules give because of this event (possibly to earlier steps). */
  observe(event: DatasetEvent): RuleLabel[] {
    if (event.type === 'rewind') {
      this.recent = this.recent.filter((entry) => entry.step < event.toStep);
      return [];
    }
    if (event.type !== 'step') return [];
    const labels: RuleLabel[] = [];
    const flag = (step: number, rule: RuleName, axis: LabelAxis, reason: string) => labels.push({ step, rule, label: 'bad', axis, reason });
    const { step, action } = event;
    const files = event.grounding.files;
    /** Someone else saved files while the action ran: the diff is not the agent's alone. */
    const mixed = mixedFiles(event).length > 0;

    if (action && event.isError) {
      const failure = COMMAND_TOOLS.has(action.name) ? commandFailure(event.observation) : undefined;
      if (failure) flag(step, 'command_failed', 'execution', failure);
      else flag(step, 'tool_error', 'execution', `${action.name} was refused: ${firstLine(event.observation, 160)}`);
    }
    if (action && !mixed && !event.isError && WRITING_TOOLS.has(action.name) && files.length === 0) {
      flag(step, 'no_op', 'decision', `${action.name} changed nothing on disk`);
    }

    const call = callKey(event);
    if (call && action && !REPEATABLE_TOOLS.has(action.name)) {
      const window = this.recent.slice(-this.options.loopWindow);
      const observation = resultText(event.observation);
      const repeated = window.find((entry) => entry.call === call && entry.observation === observation);
      if (repeated) flag(step, 'loop', 'decision', `repeats step ${repeated.step}: the same ${action.name} call with the same result`);
    }

    const deleted = files.filter((file) => file.status === 'deleted').length;
    const removedLines = files.reduce((sum, file) => sum + file.deletions, 0);
    if (!mixed && (deleted >= this.options.destructiveFiles || removedLines >= this.options.destructiveLines)) {
      const what = [deleted ? `deleted ${deleted} file(s)` : '', removedLines ? `removed ${removedLines} line(s)` : ''].filter(Boolean).join(' and ');
      flag(step, 'destructive', 'decision', `${what} in one action`);
    }

    const signature = mixed ? undefined : diffSignature(event);
    if (signature) {
      // Each part of this diff undoes at most one earlier step: the most recent that it matches.
      const available = new Map<string, number>();
      for (const section of signature) available.set(section, (available.get(section) ?? 0) + 1);
      for (const earlier of this.recent.slice(-this.options.revertWindow).reverse()) {
        if (earlier.reverted || !earlier.inverse || !takeAll(available, earlier.inverse)) continue;
        earlier.reverted = true;
        flag(earlier.step, 'reverted', 'decision', `its changes were undone by step ${step}`);
      }
    }

    this.recent.push({ step, call, observation: resultText(event.observation), inverse: signature && invertSignature(signature) });
    const keep = Math.max(this.options.loopWindow, this.options.revertWindow);
    if (this.recent.length > keep) this.recent.splice(0, this.recent.length - keep);
    return labels;
  }
}

export function ruleSource(rule: string): string {
  return `rule:${rule}`;
}

export function toLabelEvent(label: RuleLabel, time: string): LabelEvent {
  return { type: 'label', time, step: label.step, label: label.label, axis: label.axis, source: ruleSource(label.rule), reason: label.reason };
}

/** Every label the rules give over a whole run's events. */
export function applyRules(events: readonly DatasetEvent[], options?: RuleOptions): RuleLabel[] {
  const engine = new RuleEngine(options);
  return events.flatMap((event) => engine.observe(event));
}

/**
 * The label events that bring a run's rule labels up to date with the rules as they are now:
 * new verdicts are added, and a verdict the rules no longer give is taken back with `neutral`.
 * Running it twice appends nothing the second time.
 */
export function relabelEvents(events: readonly DatasetEvent[], time: string, options?: RuleOptions): LabelEvent[] {
  const book = new LabelBook();
  for (const event of events) if (event.type === 'label') book.add(event);
  const wanted = new Map<string, RuleLabel>();
  for (const label of applyRules(events, options)) wanted.set(`${label.step}|${ruleSource(label.rule)}|${label.axis}`, label);
  const appended: LabelEvent[] = [];
  for (const label of wanted.values()) {
    const current = book.latestBySource(label.step).get(ruleSource(label.rule))?.get(label.axis);
    if (current !== label.label) appended.push(toLabelEvent(label, time));
  }
  for (const step of book.labelledSteps()) {
    for (const [source, axes] of book.latestBySource(step)) {
      if (!source.startsWith('rule:')) continue;
      for (const [axis, value] of axes) {
        if (value === 'neutral' || wanted.has(`${step}|${source}|${axis}`)) continue;
        appended.push({ type: 'label', time, step, label: 'neutral', axis, source, reason: `no longer flagged by ${source}` });
      }
    }
  }
  return appended.sort((a, b) => a.step - b.step);
}
