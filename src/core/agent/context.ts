/**
 * The model's context for long runs. Messages are kept in groups, one per step (the hints
 * delivered at that step, the assistant turn, the tool results), so a summary can replace whole
 * steps without ever separating a tool call from its result. When the next prompt would pass
 * the budget, the older steps are replaced by a structured state snapshot; every hint the
 * annotator ever gave is carried verbatim in that snapshot, so none is lost however many
 * summaries happen. The dataset keeps the full trajectory; this is only what the model sees.
 */
import type { HintKind } from '../dataset/events';
import type { ChatMessage } from './modelClient';

export interface StepGroup {
  step: number;
  messages: ChatMessage[];
  /** Estimated tokens of the group's messages before calibration. */
  rawTokens: number;
}

export interface DeliveredHintRecord {
  step: number;
  kind: HintKind;
  text: string;
}

export interface Compaction {
  /** The state snapshot text now standing for steps before `keptFromStep`. */
  text: string;
  keptFromStep: number;
  summarizedThroughStep: number;
  tokensBefore: number;
  tokensAfter: number;
}

/** Roughly four characters a token for English and code; calibrated against reported usage. */
const CHARS_PER_TOKEN = 4;
const MESSAGE_OVERHEAD_TOKENS = 4;

export function estimateTokens(message: ChatMessage): number {
  let chars = 0;
  const content = (message as { content?: unknown }).content;
  if (typeof content === 'string') chars += content.length;
  else if (Array.isArray(content)) chars += JSON.stringify(content).length;
  const calls = (message as { tool_calls?: { function: { name: string; arguments: string } }[] }).tool_calls;
  for (const call of calls ?? []) chars += call.function.name.length + call.function.arguments.length + 16;
  return Math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS;
}

/**
 * The window assumed when neither the server nor the user says: small enough for the servers that
 * serve least (Ollama's default num_ctx is a few thousand tokens, many local servers 32k), so a run
 * compacts early rather than being refused.
 */
export const DEFAULT_CONTEXT_WINDOW = 32_768;
/** Share of the window a prompt may use, leaving room for the reply. */
export const PROMPT_SHARE = 0.8;

/** The budget a prompt may use: most of the window, and never the room a set output limit needs. */
export function defaultContextBudget(window = DEFAULT_CONTEXT_WINDOW, maxOutputTokens?: number): number {
  const share = Math.floor(window * PROMPT_SHARE);
  return maxOutputTokens !== undefined ? Math.max(1000, Math.min(share, window - maxOutputTokens - 256)) : share;
}

export class ContextManager {
  private readonly groups: StepGroup[] = [];
  private summary: ChatMessage | undefined;
  private summaryTokens = 0;
  private readonly hints: DeliveredHintRecord[] = [];
  private readonly fixedTokens: number;
  private groupTokens = 0;
  /** Reported prompt tokens / estimated prompt tokens, smoothed. */
  private calibration = 1;

  constructor(
    private readonly system: ChatMessage,
    private readonly task: ChatMessage,
    readonly budgetTokens: number,
  ) {
    this.fixedTokens = estimateTokens(system) + estimateTokens(task);
  }

  /** Adds a message to the group of `step` (groups arrive in step order). */
  add(step: number, message: ChatMessage): void {
    let group = this.groups[this.groups.length - 1];
    if (!group || group.step !== step) {
      group = { step, messages: [], rawTokens: 0 };
      this.groups.push(group);
    }
    const tokens = estimateTokens(message);
    group.messages.push(message);
    group.rawTokens += tokens;
    this.groupTokens += tokens;
  }

  noteHint(hint: DeliveredHintRecord): void {
    this.hints.push(hint);
  }

  /** Drops the messages of an unfinished step (a request that was interrupted before its turn). */
  dropStep(step: number): void {
    while (this.groups.length && this.groups[this.groups.length - 1].step === step) {
      const group = this.groups.pop()!;
      this.groupTokens -= group.rawTokens;
    }
  }

  /** The prompt for the next request; `extra` messages are sent once and not kept. */
  prompt(extra: ChatMessage[] = []): ChatMessage[] {
    const messages: ChatMessage[] = [this.system, this.task];
    if (this.summary) messages.push(this.summary);
    for (const group of this.groups) messages.push(...group.messages);
    messages.push(...extra);
    return messages;
  }

  /** Estimated prompt tokens, calibrated. */
  estimatedPromptTokens(extraTokens = 0): number {
    return Math.ceil((this.fixedTokens + this.summaryTokens + this.groupTokens + extraTokens) * this.calibration);
  }

  /** Learns the endpoint's real token count for the last prompt. */
  calibrate(reportedPromptTokens: number, estimatedRawTokens: number): void {
    if (reportedPromptTokens <= 0 || estimatedRawTokens <= 0) return;
    const ratio = Math.min(4, Math.max(0.25, reportedPromptTokens / estimatedRawTokens));
    this.calibration = this.calibration * 0.7 + ratio * 0.3;
  }

  /** Raw (uncalibrated) estimate of the current prompt, for calibration. */
  rawPromptTokens(extraTokens = 0): number {
    return this.fixedTokens + this.summaryTokens + this.groupTokens + extraTokens;
  }

  needsCompaction(extraTokens = 0): boolean {
    return this.groups.length > 1 && this.estimatedPromptTokens(extraTokens) > this.budgetTokens;
  }

  /** The groups a compaction would summarize: all but a recent tail that fits half the budget. */
  planCompaction(): { summarized: StepGroup[]; keptFromStep: number } | undefined {
    if (this.groups.length < 2) return undefined;
    const tailBudget = this.budgetTokens / 2 / this.calibration;
    // Always keep the latest step, always summarize at least the oldest one.
    let firstKept = this.groups.length - 1;
    let tail = this.groups[firstKept].rawTokens;
    while (firstKept > 1 && tail + this.groups[firstKept - 1].rawTokens <= tailBudget) {
      firstKept--;
      tail += this.groups[firstKept].rawTokens;
    }
    return { summarized: this.groups.slice(0, firstKept), keptFromStep: this.groups[firstKept].step };
  }

  /** The summary's text as the model will see it: the snapshot plus every hint, verbatim. */
  composeSummary(snapshot: string, throughStep: number): string {
    const hints = this.hints.length
      ? this.hints.map((hint) => `- [step ${hint.step}, ${hint.kind}] ${hint.text}`).join('\n')
      : '- (none yet)';
    return [
      `[State snapshot: steps 1-${throughStep} are summarized here to fit the context.]`,
      snapshot.trim(),
      '',
      'Hints from the annotator so far, verbatim (all of them still apply unless a later one says otherwise):',
      hints,
    ].join('\n');
  }

  /** Replaces the groups before `keptFromStep` by the summary text (already composed). */
  applyCompaction(text: string, keptFromStep: number): Compaction {
    const tokensBefore = this.estimatedPromptTokens();
    let summarizedThroughStep = 0;
    while (this.groups.length && this.groups[0].step < keptFromStep) {
      const group = this.groups.shift()!;
      summarizedThroughStep = group.step;
      this.groupTokens -= group.rawTokens;
    }
    this.summary = { role: 'user', content: text };
    this.summaryTokens = estimateTokens(this.summary);
    return { text, keptFromStep, summarizedThroughStep, tokensBefore, tokensAfter: this.estimatedPromptTokens() };
  }

  /** The current summary message's text, if any (included in the next summary's input). */
  get summaryText(): string | undefined {
    return this.summary?.content as string | undefined;
  }

  get hintCount(): number {
    return this.hints.length;
  }
}

/** A transcript of summarized steps for the summarizing model, each message cut to keep it small. */
export function transcript(groups: StepGroup[], previousSummary: string | undefined, maxCharsPerMessage = 1500): string {
  const lines: string[] = [];
  if (previousSummary) lines.push('Earlier state snapshot:', previousSummary, '');
  for (const group of groups) {
    lines.push(`--- step ${group.step} ---`);
    for (const message of group.messages) {
      const role = message.role;
      const content = typeof message.content === 'string' ? message.content : '';
      const calls = (message as { tool_calls?: { function: { name: string; arguments: string } }[] }).tool_calls ?? [];
      const text = [content, ...calls.map((call) => `CALL ${call.function.name} ${call.function.arguments}`)].filter(Boolean).join('\n');
      const cut = text.length > maxCharsPerMessage ? `${text.slice(0, maxCharsPerMessage)} […]` : text;
      lines.push(`${role}: ${cut}`);
    }
  }
  return lines.join('\n');
}

export const SUMMARY_INSTRUCTIONS = `You compress the working history of a coding agent into a state snapshot it will continue from.
Write these sections, each short and concrete (paths, commands, numbers):
## Task state — what is done, what remains
## Hypotheses — what the agent currently believes about the problem
## Key knowledge — facts learned (APIs, file layout, commands that work)
## Reflections — mistakes made and what to avoid
## File state — files created or changed and how
## Recent actions — the last few actions and their results
## Running jobs — background jobs and their state
Do not invent anything that is not in the history.`;
