/** Every model call goes through the `openai` package: any OpenAI-compatible endpoint works. */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import type { SamplingOptions, TokenUsage, ToolCallRecord } from '../dataset/events';
import { discoverContextWindow, type ContextWindow } from './contextWindow';

export type ChatMessage = ChatCompletionMessageParam;
export type ChatTool = ChatCompletionTool;

export interface ModelTurn {
  content: string | null;
  toolCalls: ToolCallRecord[];
  /** Reasoning text of the turn, apart from the visible content (absent: the server sent none). */
  reasoning?: string;
  /** The reply was cut by the output limit (`finish_reason: "length"`) while a tool call was being written. */
  truncated?: boolean;
  usage?: TokenUsage;
  finishReason?: string;
}

/**
 * `context`: the request did not fit the model's context window (HTTP 400 "maximum context
 * length"); sending it again unchanged cannot succeed, a smaller prompt can.
 */
export type ModelErrorKind = 'auth' | 'unreachable' | 'timeout' | 'http' | 'aborted' | 'protocol' | 'context';

export class ModelError extends Error {
  constructor(
    message: string,
    readonly kind: ModelErrorKind,
    readonly status?: number,
    /** How long the server asked us to wait (Retry-After), in milliseconds. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  /** Worth trying again: rate limits, server errors, timeouts, cut streams, empty replies. */
  get retryable(): boolean {
    if (this.kind === 'unreachable' || this.kind === 'timeout' || this.kind === 'protocol') return true;
    if (this.kind !== 'http' || this.status === undefined) return false;
    return this.status === 408 || this.status === 409 || this.status === 429 || this.status >= 500;
  }
}

/** Reads Retry-After (seconds or an HTTP date) and the retry-after-ms extension. */
export function retryAfterMs(headers: Headers | Record<string, string | null | undefined> | undefined): number | undefined {
  if (!headers) return undefined;
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : (headers[name] ?? undefined)) ?? undefined;
  const ms = Number(get('retry-after-ms'));
  if (Number.isFinite(ms) && ms >= 0 && get('retry-after-ms') !== undefined) return ms;
  const value = get('retry-after');
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

export interface ModelClientOptions {
  baseUrl: string;
  apiKey: string;
  model: string;
  timeoutMs?: number;
  maxRetries?: number;
}

export interface CompletionRequest {
  messages: ChatMessage[];
  tools?: ChatTool[];
  signal?: AbortSignal;
  sampling?: SamplingOptions;
}

/**
 * What the agent loop needs of a model: an OpenAI-compatible endpoint (`ModelClient`) or another
 * provider handed in by the host (VS Code's language models), never imported by the core.
 */
export interface ChatModelClient {
  readonly model: string;
  /** Recorded in run_started: `openai-compatible` when absent, `vscode-lm` for VS Code's models. */
  readonly provider?: string;
  complete(request: CompletionRequest): Promise<ModelTurn>;
  /** The model's context window in tokens, where the provider says; undefined when it does not. */
  contextWindow?(signal?: AbortSignal): Promise<number | undefined>;
  /** The window with where it was learned, in words ("vLLM: max_model_len from GET /v1/models"). */
  contextWindowDetail?(signal?: AbortSignal): Promise<{ tokens: number; detail: string } | undefined>;
}

export class ModelClient implements ChatModelClient {
  private readonly client: OpenAI;

  constructor(private readonly options: ModelClientOptions) {
    this.client = new OpenAI({
      baseURL: options.baseUrl,
      apiKey: options.apiKey,
      timeout: options.timeoutMs ?? 10 * 60_000,
      // Retries belong to the agent loop: it records them, honours Retry-After and pauses the
      // run after too many failures in a row instead of burning budget.
      maxRetries: options.maxRetries ?? 0,
      fetch: fetchWithErrorBodies,
    });
  }

  /** One streamed model turn: text deltas and tool-call deltas are put back together. */
  get model(): string {
    return this.options.model;
  }

  /** The window the server serves this model with, where it says (see contextWindow.ts); never throws. */
  async contextWindow(signal?: AbortSignal): Promise<number | undefined> {
    return (await this.contextWindowDetail(signal))?.tokens;
  }

  /** The same, with where the figure came from, for the user. */
  contextWindowDetail(signal?: AbortSignal): Promise<ContextWindow | undefined> {
    return discoverContextWindow({ baseUrl: this.options.baseUrl, apiKey: this.options.apiKey, model: this.options.model, signal });
  }

  async complete(request: CompletionRequest): Promise<ModelTurn> {
    // The client never removes the abort listener it adds to the signal it is given, so a
    // long-lived signal (a run's stop) would gather one per request: hand it a fresh one.
    const controller = new AbortController();
    const forwardAbort = () => controller.abort(request.signal?.reason);
    if (request.signal?.aborted) forwardAbort();
    else request.signal?.addEventListener('abort', forwardAbort, { once: true });
    try {
      const stream = await this.client.chat.completions.create(
        {
          // First, so that extra request fields cannot replace the model, messages or stream.
          ...samplingFields(request.sampling),
          model: this.options.model,
          messages: request.messages,
          ...(request.tools?.length ? { tools: request.tools } : {}),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: controller.signal },
      );
      const text = new ThinkSplitter();
      let reasoning = '';
      let sawContent = false;
      let finishReason: string | undefined;
      let usage: TokenUsage | undefined;
      const calls = new ToolCallSlots();
      for await (const chunk of stream) {
        if (chunk.usage) {
          usage = { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens };
        }
        const choice = chunk.choices?.[0];
        if (!choice) continue;
        if (choice.finish_reason) finishReason = choice.finish_reason;
        const delta = choice.delta as (typeof choice.delta & { reasoning?: unknown; reasoning_content?: unknown }) | undefined;
        // vLLM (since it renamed the field) sends `reasoning`; DeepSeek, llama.cpp, OpenRouter
        // and older vLLM send `reasoning_content`.
        for (const field of [delta?.reasoning, delta?.reasoning_content]) {
          if (typeof field === 'string') reasoning += field;
        }
        if (delta?.content) {
          text.push(delta.content);
          sawContent = true;
        }
        for (const part of delta?.tool_calls ?? []) calls.add(part);
      }
      text.end();
      reasoning += text.reasoning;
      // Qwen3 and the like put a blank line after `</think>`: it is not part of what was said.
      const content = sawContent ? (text.reasoning ? text.content.replace(/^\s+/, '') : text.content) : null;
      const toolCalls = calls.records();
      const truncated = finishReason === 'length' && toolCalls.length > 0;
      return {
        content: content === '' && text.reasoning ? null : content,
        toolCalls,
        ...(reasoning ? { reasoning } : {}),
        ...(truncated ? { truncated } : {}),
        usage,
        finishReason,
      };
    } catch (error) {
      throw this.describe(error);
    } finally {
      request.signal?.removeEventListener('abort', forwardAbort);
    }
  }

  private describe(error: unknown): ModelError {
    if (error instanceof ModelError) return error;
    if (error instanceof APIUserAbortError || (error as Error)?.name === 'AbortError') {
      return new ModelError('The model request was aborted.', 'aborted');
    }
    if (error instanceof APIConnectionTimeoutError) {
      return new ModelError(`The model endpoint ${this.options.baseUrl} did not answer in time.`, 'timeout');
    }
    if (error instanceof APIConnectionError) {
      return new ModelError(`Cannot reach the model endpoint ${this.options.baseUrl}: ${error.message}. Check the base URL and that the server is running.`, 'unreachable');
    }
    if (error instanceof APIError) {
      if (error.status === 401 || error.status === 403) {
        return new ModelError(
          `The model endpoint ${this.options.baseUrl} refused the API key (HTTP ${error.status}). Check the key: run "Apollo: Set API Key" or set OPENAI_API_KEY.`,
          'auth',
          error.status,
        );
      }
      if (error.status === 404) {
        return new ModelError(`The model endpoint ${this.options.baseUrl} answered 404 for model "${this.options.model}": check the model id and that the base URL ends with /v1.`, 'http', 404);
      }
      if (error.status === undefined) {
        // An error event inside the stream, or a stream that ended early.
        return new ModelError(`The model's reply broke off: ${error.message}`, 'protocol');
      }
      const said = serverMessage(error);
      if (error.status === 400 && CONTEXT_REFUSAL.test(said)) {
        return new ModelError(`The prompt did not fit the model's context window: ${said}`, 'context', 400);
      }
      return new ModelError(`The model endpoint answered HTTP ${error.status}: ${said}${whatToDo(error.status)}`, 'http', error.status, retryAfterMs(error.headers as Headers | undefined));
    }
    return new ModelError(`The model's reply could not be read: ${(error as Error)?.message ?? String(error)}`, 'protocol');
  }
}

/** What the user can do about a refusal, by status (retried ones say so). */
function whatToDo(status: number): string {
  if (status === 429) return ' (rate limited: retried after the wait the server asks for).';
  if (status >= 500) return ' (a server-side failure: retried).';
  if (status === 400 || status === 422) {
    return '. The server refused the request itself: check the model id and the request fields you set (apollo.request.*, CLI --temperature, --request-extra and the like).';
  }
  return '.';
}

/** How servers word a prompt over the window: OpenAI and vLLM, llama.cpp, Ollama, OpenRouter. */
const CONTEXT_REFUSAL = /maximum context length|context length exceeded|context_length_exceeded|exceeds the available context size|prompt is too long|too many tokens|context window/i;

/**
 * The server's own words: OpenAI's `{error: {message}}`, vLLM's `{object: "error", message}`,
 * Ollama's `{error: "…"}`, OpenRouter's `{error: {message, metadata: {raw}}}`.
 */
export function serverMessage(error: APIError): string {
  const body = error.error as unknown;
  const pick = (value: unknown): string | undefined => {
    if (typeof value === 'string' && value.trim()) return value.trim();
    if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      const raw = (record.metadata as Record<string, unknown> | undefined)?.raw;
      const said = pick(record.message) ?? pick(record.error) ?? pick(record.detail);
      // OpenRouter puts the upstream provider's own words in metadata.raw.
      const upstream = typeof raw === 'string' && raw.trim() ? raw.trim().slice(0, 1000) : undefined;
      return said && upstream && !said.includes(upstream) ? `${said}: ${upstream}` : (said ?? upstream);
    }
    return undefined;
  };
  return pick(body) ?? error.message;
}

/** The request fields for a run's sampling options; unset options are left to the server. */
export function samplingFields(sampling: SamplingOptions | undefined): Record<string, unknown> {
  if (!sampling) return {};
  return {
    ...(sampling.extra ?? {}),
    ...(sampling.temperature !== undefined ? { temperature: sampling.temperature } : {}),
    ...(sampling.topP !== undefined ? { top_p: sampling.topP } : {}),
    ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
    ...(sampling.maxOutputTokens !== undefined ? { max_tokens: sampling.maxOutputTokens } : {}),
  };
}

/**
 * Tool-call deltas put back together. Most servers number each call with `index`; Google's
 * OpenAI-compatible endpoint and some proxies send each call whole, without `index`: such a part
 * continues the call with the same id, or else opens a new slot.
 */
class ToolCallSlots {
  private readonly slots: { id: string; name: string; arguments: string; extra?: Record<string, unknown> }[] = [];
  private readonly byIndex = new Map<number, number>();

  add(part: { index?: number; id?: string; function?: { name?: string; arguments?: string }; extra_content?: unknown }): void {
    let at: number | undefined;
    if (typeof part.index === 'number') at = this.byIndex.get(part.index);
    if (at === undefined && part.id) {
      const same = this.slots.findIndex((slot) => slot.id === part.id);
      if (same >= 0) at = same;
    }
    if (at === undefined) {
      at = this.slots.push({ id: '', name: '', arguments: '' }) - 1;
      if (typeof part.index === 'number') this.byIndex.set(part.index, at);
    }
    const slot = this.slots[at];
    if (part.id) slot.id = part.id;
    if (part.function?.name) slot.name += part.function.name;
    if (part.function?.arguments) slot.arguments += part.function.arguments;
    // Provider fields to hand back on the next request (Google's thought signature).
    if (part.extra_content && typeof part.extra_content === 'object') slot.extra = { ...slot.extra, extra_content: part.extra_content };
  }

  records(): ToolCallRecord[] {
    return this.slots.filter((slot) => slot.name).map((slot, index) => ({ id: slot.id || `call_${index}`, name: slot.name, arguments: slot.arguments, ...(slot.extra ? { extra: slot.extra } : {}) }));
  }
}

/**
 * Splits `<think>…</think>` out of streamed text (servers without a reasoning parser send the
 * thoughts inline), also when a tag is cut across chunks.
 */
export class ThinkSplitter {
  content = '';
  reasoning = '';
  private inThink = false;
  private pending = '';

  push(chunk: string): void {
    let text = this.pending + chunk;
    this.pending = '';
    for (;;) {
      const tag = this.inThink ? '</think>' : '<think>';
      const at = text.indexOf(tag);
      if (at >= 0) {
        this.emit(text.slice(0, at));
        text = text.slice(at + tag.length);
        this.inThink = !this.inThink;
        continue;
      }
      // Keep back a tail that could be the start of the tag.
      let keep = 0;
      for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) {
        if (tag.startsWith(text.slice(text.length - n))) {
          keep = n;
          break;
        }
      }
      this.emit(text.slice(0, text.length - keep));
      this.pending = text.slice(text.length - keep);
      return;
    }
  }

  end(): void {
    this.emit(this.pending);
    this.pending = '';
  }

  private emit(text: string): void {
    if (!text) return;
    if (this.inThink) this.reasoning += text;
    else this.content += text;
  }
}

/**
 * The `openai` package reads a refusal's reason only from `{error: …}`; vLLM answers
 * `{"object":"error","message":…}` and would show as "400 status code (no body)". Such bodies
 * are wrapped as `{error: body}` so the server's own words reach the user.
 */
async function fetchWithErrorBodies(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const response = await fetch(input, init);
  if (response.ok) return response;
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const wrapped =
    body && typeof body === 'object' && !('error' in body)
      ? JSON.stringify({ error: body })
      : body === undefined && text.trim()
        ? JSON.stringify({ error: { message: text.trim().slice(0, 2000) } })
        : text;
  const headers = new Headers(response.headers);
  headers.delete('content-encoding');
  headers.delete('content-length');
  return new Response(wrapped, { status: response.status, statusText: response.statusText, headers });
}
