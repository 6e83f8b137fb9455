/**
 * The LLM judge: scores each step of a run on two axes, decision (was this the right thing to do
 * at this point of the task?) and execution (was it done right?), as good, bad or neutral with a
 * short reason. It works beside the run, never in its way: steps are queued and sent in batches,
 * one request at a time, and every failure is recorded and logged, never thrown.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import type { ChatCompletionMessage, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import type { JudgeUsageEvent, LabelAxis, LabelEvent, LabelValue, StepEvent, TokenUsage } from '../dataset/events';
import { LABEL_VALUES } from '../dataset/events';
import { capText } from '../agent/tools';

export interface JudgeOptions {
  baseUrl: string;
  apiKey: string;
  model: string;
  /** Steps per request; default 8. */
  batchSize?: number;
  /** A partial batch is sent after this long without new steps; default 20000. */
  idleFlushMs?: number;
  /** Per request; default 120000. */
  timeoutMs?: number;
  /** Passed to the openai client; default 2. */
  maxRetries?: number;
}

export interface JudgeHost {
  task: string;
  record: (event: LabelEvent | JudgeUsageEvent) => Promise<void>;
  log: (line: string) => void;
  /** Applied to every text sent to the judge and to the reasons it gives back. */
  redact?: (text: string) => string;
}

export const DEFAULT_JUDGE_BATCH_SIZE = 8;
export const DEFAULT_JUDGE_IDLE_FLUSH_MS = 20_000;
export const DEFAULT_JUDGE_TIMEOUT_MS = 120_000;
export const DEFAULT_JUDGE_MAX_RETRIES = 2;

const VERDICT_TOOL_NAME = 'record_verdicts';

/** How much of each text the judge is shown. */
const LIMITS = { task: 4000, thought: 2000, arguments: 2000, observation: 3000, patch: 4000, reason: 500, contextArguments: 160 };
/** Earlier steps shown (one line each) so the decision can be judged in context. */
const CONTEXT_STEPS = 8;
/** Changed files listed per step; the patch shows the rest. */
const MAX_FILES_SHOWN = 40;

export const JUDGE_SYSTEM_PROMPT = `You review the steps of a coding agent working on a task in a repository. Each step is one model turn: the agent's thought, one tool call (the action), what the tool returned (the observation) and what the action really changed on disk (the grounded diff).

Score every step under "Steps to judge" on two separate axes, each good, bad or neutral:

decision: was this the right thing to do at this point of the task?
- good: a sensible next move toward the task (gathering information that is needed, making the needed change, checking it, finishing once the task is done).
- bad: irrelevant to the task, redundant (repeats what was already done or known), premature (finishing or claiming success before the task is done), risky or destructive, or against the task's instructions.
- neutral: harmless but of little value, or it cannot be told from what is shown.

execution: was it done right?
- good: valid arguments, and the command or edit worked as intended (the observation and the diff show the intended effect).
- bad: malformed or wrong arguments, the tool reported an error, the command failed, or the edit changed the wrong thing, nothing at all, or broke the code.
- neutral: nothing was executed, or the outcome cannot be judged from what is shown.

Judge the axes independently: a right decision can be badly executed, and a flawless action can be the wrong move. Earlier steps are context only; do not judge them.

Call ${VERDICT_TOOL_NAME} once, with one verdict per step: the step number as shown, decision, execution, and a short reason (one sentence, under 30 words) naming the evidence. If you cannot call tools, reply with only the JSON object {"verdicts": [{"step": 1, "decision": "good", "execution": "good", "reason": "..."}]}.`;

const VALUE_SCHEMA = { type: 'string', enum: [...LABEL_VALUES] };

export const VERDICT_TOOL: ChatCompletionTool = {
  type: 'function',
  function: {
    name: VERDICT_TOOL_NAME,
    description: 'Record one verdict for each step to judge.',
    parameters: {
      type: 'object',
      properties: {
        verdicts: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              step: { type: 'integer', description: 'The step number as shown.' },
              decision: { ...VALUE_SCHEMA, description: 'Was this the right thing to do at this point of the task?' },
              execution: { ...VALUE_SCHEMA, description: 'Was it done right: valid arguments, the command or edit worked as intended?' },
              reason: { type: 'string', description: 'One short sentence naming the evidence.' },
            },
            required: ['step', 'decision', 'execution', 'reason'],
          },
        },
      },
      required: ['verdicts'],
    },
  },
};

/** An error message naming the setting to fix, or undefined when the options can be used. */
export function validateJudgeOptions(options: Partial<JudgeOptions>): string | undefined {
  const baseUrl = (options.baseUrl ?? '').trim();
  if (!baseUrl) return 'The judge has no baseUrl: set it to the http(s) URL of an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.';
  let url: URL | undefined;
  try {
    url = new URL(baseUrl);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    return `The judge's baseUrl "${baseUrl}" is not an http(s) URL: set it to e.g. https://api.openai.com/v1 or http://localhost:8000/v1.`;
  }
  if (!(options.model ?? '').trim()) return "The judge's model is empty: set it to the model id the judge should use.";
  const wholeNumber = (value: number | undefined, minimum: number) => value === undefined || (Number.isInteger(value) && value >= minimum);
  if (!wholeNumber(options.batchSize, 1)) return `The judge's batchSize must be a whole number of steps, at least 1 (got ${options.batchSize}).`;
  if (options.idleFlushMs !== undefined && !(Number.isFinite(options.idleFlushMs) && options.idleFlushMs >= 0)) {
    return `The judge's idleFlushMs must be a number of milliseconds, at least 0 (got ${options.idleFlushMs}).`;
  }
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
    return `The judge's timeoutMs must be a number of milliseconds above 0 (got ${options.timeoutMs}).`;
  }
  if (!wholeNumber(options.maxRetries, 0)) return `The judge's maxRetries must be a whole number, at least 0 (got ${options.maxRetries}).`;
  return undefined;
}

interface Verdict {
  step: number;
  decision: LabelValue;
  execution: LabelValue;
  reason: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The verdict list a parsed reply holds: `{verdicts: [...]}`, a bare array, or a tool-call wrapper. */
function verdictList(value: unknown, depth = 0): unknown[] | undefined {
  if (Array.isArray(value)) return value;
  if (!isObject(value) || depth > 2) return undefined;
  if (Array.isArray(value.verdicts)) return value.verdicts;
  // Some servers echo the call itself as text: {"name": "record_verdicts", "arguments": {...}}.
  for (const key of ['arguments', 'parameters']) {
    const inner = value[key];
    const parsed = typeof inner === 'string' ? parseJson(inner) : inner;
    const list = parsed === undefined ? undefined : verdictList(parsed, depth + 1);
    if (list) return list;
  }
  if ('step' in value && ('decision' in value || 'execution' in value)) return [value];
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Finds the verdicts in free text: the whole text, a ```json fence, or the outermost {…} / […]. */
function verdictsInText(text: string): unknown[] | undefined {
  const cleaned = text.replace(/<think>[\s\S]*?<\/think>/gi, '').trim();
  const candidates: string[] = [cleaned];
  for (const fence of cleaned.matchAll(/```[a-zA-Z]*\s*\n?([\s\S]*?)```/g)) candidates.push(fence[1].trim());
  for (const [open, close] of [
    ['{', '}'],
    ['[', ']'],
  ]) {
    const start = cleaned.indexOf(open);
    const end = cleaned.lastIndexOf(close);
    if (start >= 0 && end > start) candidates.push(cleaned.slice(start, end + 1));
  }
  for (const candidate of candidates) {
    const parsed = parseJson(candidate);
    const list = parsed === undefined ? undefined : verdictList(parsed);
    if (list) return list;
  }
  return undefined;
}

/** The verdicts of a reply: from the record_verdicts call, else from any tool call, else from the text. */
function verdictsOf(message: ChatCompletionMessage | undefined): unknown[] | undefined {
  if (!message) return undefined;
  const calls = (message.tool_calls ?? []).flatMap((call) => (call.type === 'function' && call.function ? [call.function] : []));
  const ordered = [...calls.filter((call) => call.name === VERDICT_TOOL_NAME), ...calls.filter((call) => call.name !== VERDICT_TOOL_NAME)];
  for (const call of ordered) {
    const parsed = parseJson(call.arguments ?? '');
    const list = parsed === undefined ? verdictsInText(call.arguments ?? '') : verdictList(parsed);
    if (list) return list;
  }
  return typeof message.content === 'string' ? verdictsInText(message.content) : undefined;
}

function labelValue(value: unknown): LabelValue | undefined {
  const text = typeof value === 'string' ? value.trim().toLowerCase() : '';
  return LABEL_VALUES.find((candidate) => candidate === text);
}

function stepNumber(value: unknown): number | undefined {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof number === 'number' && Number.isInteger(number) ? number : undefined;
}

function describeError(error: unknown, baseUrl: string): string {
  if (error instanceof APIConnectionTimeoutError) return `the judge endpoint ${baseUrl} did not answer in time`;
  if (error instanceof APIConnectionError) return `cannot reach the judge endpoint ${baseUrl}: ${error.message}`;
  if (error instanceof APIError && error.status !== undefined) return `the judge endpoint answered HTTP ${error.status}: ${error.message}`;
  return `the judge request failed: ${(error as Error)?.message ?? String(error)}`;
}

class ClientSetupError extends Error {}

function changeLine(file: StepEvent['grounding']['files'][number]): string {
  const name = file.oldPath && file.oldPath !== file.path ? `${file.oldPath} → ${file.path}` : file.path;
  const counts = file.binary ? 'binary' : `+${file.additions} −${file.deletions}`;
  return `  ${file.status} ${name} (${counts})`;
}

export class Judge {
  readonly source: string;
  private readonly batchSize: number;
  private readonly idleFlushMs: number;
  private readonly client: OpenAI | undefined;
  private readonly clientError: string | undefined;
  private queue: StepEvent[] = [];
  private inFlight: Promise<void> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** The idle timer fired: send what is queued, even a partial batch, as soon as nothing is in flight. */
  private flushWanted = false;
  private disposed = false;
  /** One line per step seen, by step number (a later branch's step replaces an abandoned one). */
  private readonly history = new Map<number, string>();

  constructor(
    private readonly options: JudgeOptions,
    private readonly host: JudgeHost,
  ) {
    this.source = `judge:${options.model}`;
    this.batchSize = Math.max(1, Math.floor(options.batchSize ?? DEFAULT_JUDGE_BATCH_SIZE) || DEFAULT_JUDGE_BATCH_SIZE);
    this.idleFlushMs = Math.max(0, options.idleFlushMs ?? DEFAULT_JUDGE_IDLE_FLUSH_MS);
    let client: OpenAI | undefined;
    let clientError: string | undefined;
    try {
      client = new OpenAI({
        baseURL: options.baseUrl,
        apiKey: options.apiKey,
        timeout: options.timeoutMs ?? DEFAULT_JUDGE_TIMEOUT_MS,
        maxRetries: options.maxRetries ?? DEFAULT_JUDGE_MAX_RETRIES,
      });
    } catch (error) {
      // A missing key, say: every batch records the failure instead of the run breaking.
      clientError = `the judge client could not be set up: ${(error as Error)?.message ?? String(error)}`;
    }
    this.client = client;
    this.clientError = clientError;
  }

  /** Queues a step; sends a batch when enough are queued. Never throws, never waits for the network. */
  enqueue(step: StepEvent): void {
    try {
      if (this.disposed) {
        this.log(`step ${step?.step} was not judged: the judge was disposed.`);
        return;
      }
      this.queue.push(step);
      this.flushWanted = false;
      this.pump(false);
      this.armIdleTimer();
    } catch (error) {
      this.log(`could not queue step ${step?.step}: ${(error as Error)?.message ?? String(error)}`);
    }
  }

  /** Sends everything queued and waits for every request in flight. Never rejects. */
  async drain(): Promise<void> {
    this.clearIdleTimer();
    try {
      while (this.inFlight || this.queue.length) {
        if (this.inFlight) await this.inFlight;
        else this.pump(true);
      }
    } catch (error) {
      this.log(`draining failed: ${(error as Error)?.message ?? String(error)}`);
    }
  }

  /** Clears timers. Steps queued later are not judged; drain() still sends what is queued. */
  dispose(): void {
    this.disposed = true;
    this.clearIdleTimer();
  }

  private log(line: string): void {
    try {
      this.host.log(`Judge: ${line}`);
    } catch {
      // Logging must not break the run either.
    }
  }

  private redact(text: string): string {
    if (!this.host.redact) return text;
    try {
      return this.host.redact(text);
    } catch {
      // Never send what could not be checked for secrets.
      return '[text withheld: redaction failed]';
    }
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private armIdleTimer(): void {
    this.clearIdleTimer();
    if (!this.queue.length || this.disposed) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.flushWanted = true;
      this.pump(false);
    }, this.idleFlushMs);
  }

  /** Sends the next batch when nothing is in flight and a full batch (or a flush) is due. */
  private pump(force: boolean): void {
    if (this.inFlight || !this.queue.length) return;
    if (!force && !this.flushWanted && this.queue.length < this.batchSize) return;
    const batch = this.takeBatch();
    if (!this.queue.length) {
      this.flushWanted = false;
      this.clearIdleTimer();
    }
    this.inFlight = this.send(batch).finally(() => {
      this.inFlight = undefined;
      this.pump(false);
    });
  }

  /** Up to batchSize steps; a step number already in the batch (from another branch) waits for the next one. */
  private takeBatch(): StepEvent[] {
    const batch: StepEvent[] = [];
    const numbers = new Set<number>();
    while (this.queue.length && batch.length < this.batchSize && !numbers.has(this.queue[0].step)) {
      const step = this.queue.shift()!;
      numbers.add(step.step);
      batch.push(step);
    }
    return batch;
  }

  private async send(batch: StepEvent[]): Promise<void> {
    const steps = batch.map((step) => step.step);
    let usage: TokenUsage | undefined;
    let error: string | undefined;
    const verdicts: Verdict[] = [];
    try {
      const messages = this.messages(batch);
      for (const step of batch) this.remember(step);
      if (!this.client) throw new ClientSetupError(this.clientError ?? 'the judge client could not be set up');
      const response = await this.client.chat.completions.create({
        model: this.options.model,
        messages,
        tools: [VERDICT_TOOL],
        tool_choice: { type: 'function', function: { name: VERDICT_TOOL_NAME } },
      });
      if (response?.usage) usage = { promptTokens: response.usage.prompt_tokens, completionTokens: response.usage.completion_tokens };
      const message = response?.choices?.[0]?.message;
      const list = verdictsOf(message);
      if (!list) {
        const shown = message?.tool_calls?.length ? JSON.stringify(message.tool_calls) : typeof message?.content === 'string' ? message.content : JSON.stringify(response ?? null);
        error = `the judge's reply could not be parsed as verdicts: ${JSON.stringify(capText(this.redact(shown ?? ''), 300))}`;
      } else {
        verdicts.push(...this.check(list, new Set(steps)));
      }
    } catch (caught) {
      error = caught instanceof ClientSetupError ? caught.message : describeError(caught, this.options.baseUrl);
    }

    const time = new Date().toISOString();
    for (const verdict of verdicts) {
      for (const axis of ['decision', 'execution'] as LabelAxis[]) {
        await this.record({ type: 'label', time, step: verdict.step, label: verdict[axis], axis, source: this.source, reason: verdict.reason });
      }
    }
    await this.record({ type: 'judge_usage', time, model: this.options.model, steps, ...(usage ? { usage } : {}), ...(error ? { error } : {}) });

    if (error) {
      this.log(`steps ${steps.join(', ')} stay unjudged: ${error}`);
    } else {
      const judged = new Set(verdicts.map((verdict) => verdict.step));
      const missing = steps.filter((step) => !judged.has(step));
      if (missing.length) this.log(`the judge returned no usable verdict for step${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; ${missing.length > 1 ? 'they stay' : 'it stays'} unjudged.`);
    }
  }

  /** Keeps the verdicts for steps of the batch with known values; logs the others. */
  private check(list: unknown[], batch: Set<number>): Verdict[] {
    const kept = new Map<number, Verdict>();
    for (const item of list) {
      const shown = JSON.stringify(item)?.slice(0, 200);
      if (!isObject(item)) {
        this.log(`ignored a verdict that is not an object: ${shown}`);
        continue;
      }
      const step = stepNumber(item.step);
      if (step === undefined || !batch.has(step)) {
        this.log(`ignored a verdict for step ${String(item.step)}, which was not in the batch (${[...batch].join(', ')}).`);
        continue;
      }
      const decision = labelValue(item.decision);
      const execution = labelValue(item.execution);
      if (!decision || !execution) {
        this.log(`ignored the verdict for step ${step}: decision and execution must each be one of ${LABEL_VALUES.join(', ')} (got ${shown}).`);
        continue;
      }
      if (kept.has(step)) {
        this.log(`ignored a second verdict for step ${step}.`);
        continue;
      }
      const reason = typeof item.reason === 'string' ? capText(this.redact(item.reason.trim()), LIMITS.reason) : '';
      kept.set(step, { step, decision, execution, reason });
    }
    return [...kept.values()];
  }

  private async record(event: LabelEvent | JudgeUsageEvent): Promise<void> {
    try {
      await this.host.record(event);
    } catch (error) {
      const what = event.type === 'label' ? `the ${event.axis} label of step ${event.step}` : `the judge usage of steps ${event.steps.join(', ')}`;
      this.log(`could not record ${what}: ${(error as Error)?.message ?? String(error)}`);
    }
  }

  private text(text: string | null | undefined, limit: number): string {
    return capText(this.redact(text ?? ''), limit);
  }

  private remember(step: StepEvent): void {
    const action = step.action ? `${step.action.name} ${this.text(step.action.arguments, LIMITS.contextArguments)}` : '(no tool call)';
    this.history.set(step.step, `step ${step.step}: ${action.replace(/\s+/g, ' ')}${step.isError ? ' → error' : ''}`);
  }

  private messages(batch: StepEvent[]): ChatCompletionMessageParam[] {
    const first = Math.min(...batch.map((step) => step.step));
    const earlier = [...this.history.entries()]
      .filter(([number]) => number < first)
      .sort(([a], [b]) => a - b)
      .slice(-CONTEXT_STEPS)
      .map(([, line]) => `- ${line}`);
    const parts = [`Task:\n${this.text(this.host.task, LIMITS.task)}`];
    if (earlier.length) parts.push(`Earlier steps (context only, do not judge):\n${earlier.join('\n')}`);
    parts.push(`Steps to judge: ${batch.map((step) => step.step).join(', ')}`);
    for (const step of batch) parts.push(this.describeStep(step));
    return [
      { role: 'system', content: JUDGE_SYSTEM_PROMPT },
      { role: 'user', content: parts.join('\n\n') },
    ];
  }

  private describeStep(step: StepEvent): string {
    const lines = [`### Step ${step.step}`];
    const thought = step.assistant?.content?.trim();
    lines.push(`Thought:\n${thought ? this.text(thought, LIMITS.thought) : '(none)'}`);
    if (step.action) lines.push(`Action: ${this.text(step.action.name, 200)}\nArguments:\n${this.text(step.action.arguments, LIMITS.arguments)}`);
    else lines.push('Action: none (the agent answered without a tool call)');
    for (const part of step.moreActions ?? []) {
      lines.push(
        `Then: ${this.text(part.action.name, 200)} ${this.text(part.action.arguments, LIMITS.arguments / 2)} → ${part.isError ? 'error: ' : ''}${this.text(part.observation, LIMITS.observation / 4)}`,
      );
    }
    if (step.skippedToolCalls?.length) lines.push(`(${step.skippedToolCalls.length} tool call(s) of this turn were not executed: ${this.text(step.skippedToolCalls[0].content, 200)})`);
    lines.push(`Tool reported an error: ${step.isError ? 'yes' : 'no'}`);
    lines.push(`Observation:\n${step.observation ? this.text(step.observation, LIMITS.observation) : '(empty)'}`);
    const files = step.grounding?.files ?? [];
    if (!files.length) {
      lines.push('Changes on disk: none');
    } else {
      const shown = files.slice(0, MAX_FILES_SHOWN).map((file) => this.redact(changeLine(file)));
      if (files.length > MAX_FILES_SHOWN) shown.push(`  … and ${files.length - MAX_FILES_SHOWN} more files`);
      lines.push(`Changes on disk (${files.length} file${files.length > 1 ? 's' : ''}):\n${shown.join('\n')}`);
      const patch = step.grounding.patch ?? '';
      if (patch) lines.push(`Patch${step.grounding.patchTruncated ? ' (truncated)' : ''}:\n${this.text(patch, LIMITS.patch)}`);
      const saved = step.grounding.mixed?.files ?? [];
      if (saved.length) lines.push(`Mixed: the user saved ${this.text(saved.join(', '), 500)} in an editor while this action ran; these changes may be theirs, not the agent's.`);
    }
    return lines.join('\n');
  }
}
