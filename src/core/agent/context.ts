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
const MIN_BUDGET_TOKENS = 1000;
/** Tokenizers give 1 to 5 characters a token for code, prose and CJK text; outside this a count is not believed. */
const MIN_CHARS_PER_TOKEN = 0.5;
const MAX_CHARS_PER_TOKEN = 10;
/** Share of the window a prompt may use, leaving room for the reply. */
export const PROMPT_SHARE = 0.8;

/** The budget a prompt may use: most of the window, and never the room a set output limit needs. */
export function defaultContextBudget(window = DEFAULT_CONTEXT_WINDOW, maxOutputTokens?: number): number {
  const share = Math.floor(window * PROMPT_SHARE);
  return maxOutputTokens !== undefined ? Math.max(1000, Math.min(share, window - maxOutputTokens - 256)) : share;
}

/**
 * What a "prompt too long" refusal says, where it says it: the window and how many tokens the
 * prompt really had. vLLM and OpenAI: "maximum context length is 32768 tokens. However, you
 * requested 33000 tokens (31000 in the messages, 2000 in the completion)" or "your request has
 * 5000 input tokens" / "your messages resulted in 130000 tokens"; llama.cpp: "request (5000
 * tokens) exceeds the available context size (4096 tokens)".
 */
export function readContextRefusal(message: string): { windowTokens?: number; promptTokens?: number } {
  const number = (pattern: RegExp) => {
    const match = pattern.exec(message);
    const value = match ? Number(match[1].replace(/,/g, '')) : NaN;
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  };
  return {
    windowTokens: number(/maximum context length is ([\d,]+)/i) ?? number(/context size \(([\d,]+) tokens\)/i),
    promptTokens: number(/([\d,]+) in the messages/i) ?? number(/request has ([\d,]+) input tokens/i) ?? number(/messages resulted in ([\d,]+) tokens/i) ?? number(/request \(([\d,]+) tokens\)/i),
  };
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
  private budget: number;

  constructor(
    private readonly system: ChatMessage,
    private readonly task: ChatMessage,
    budgetTokens: number,
  ) {
    this.fixedTokens = estimateTokens(system) + estimateTokens(task);
    this.budget = budgetTokens;
  }

  /** Tokens the prompt may use before older steps are summarized. */
  get budgetTokens(): number {
    return this.budget;
  }

  setBudget(tokens: number): void {
    this.budget = Math.max(MIN_BUDGET_TOKENS, Math.floor(tokens));
  }

  /**
   * After the server refused a prompt as too long: a budget well under what was sent (and under
   * the window the refusal named, if it did), so the next request is compacted harder.
   */
  shrinkAfterRefusal(windowTokens?: number, maxOutputTokens?: number): number {
    let next = Math.min(this.budget, this.estimatedPromptTokens()) * 0.7;
    if (windowTokens) next = Math.min(next, defaultContextBudget(windowTokens, maxOutputTokens));
    this.setBudget(next);
    return this.budget;
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

  /**
   * Learns the endpoint's real token count for the last prompt. A count that would mean fewer
   * than half a character or more than ten characters a token is not believed (a proxy that
   * reports made-up usage would otherwise let the context grow until the server refuses it):
   * it is ignored, and false is returned so the run can say so.
   */
  calibrate(reportedPromptTokens: number, estimatedRawTokens: number): boolean {
    if (!(reportedPromptTokens > 0) || !(estimatedRawTokens > 0)) return true;
    const ratio = reportedPromptTokens / estimatedRawTokens;
    const charsPerToken = CHARS_PER_TOKEN / ratio;
    if (charsPerToken < MIN_CHARS_PER_TOKEN || charsPerToken > MAX_CHARS_PER_TOKEN) return false;
    this.calibration = this.calibration * 0.7 + ratio * 0.3;
    return true;
  }

  /** Raw (uncalibrated) estimate of the current prompt, for calibration. */
  rawPromptTokens(extraTokens = 0): number {
    return this.fixedTokens + this.summaryTokens + this.groupTokens + extraTokens;
  }

  needsCompaction(extraTokens = 0): boolean {
    return this.groups.length > 1 && this.estimatedPromptTokens(extraTokens) > this.budget;
  }

  /** The groups a compaction would summarize: all but a recent tail that fits half the budget. */
  planCompaction(): { summarized: StepGroup[]; keptFromStep: number } | undefined {
    if (this.groups.length < 2) return undefined;
    const tailBudget = this.budget / 2 / this.calibration;
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
    const hints = this.hints.length ? this.hints.map((hint) => `- [step ${hint.step}, ${hint.kind}] ${hint.text}`).join('\n') : '- (none yet)';
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
