/** Every model call goes through the `openai` package: any OpenAI-compatible endpoint works. */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import type { SamplingOptions, TokenUsage, ToolCallRecord } from '../dataset/events';

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
  complete(request: CompletionRequest): Promise<ModelTurn>;
  /** The model's context window in tokens, where the provider says; undefined when it does not. */
  contextWindow?(signal?: AbortSignal): Promise<number | undefined>;
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
    });
  }

  /** One streamed model turn: text deltas and tool-call deltas are put back together. */
  get model(): string {
    return this.options.model;
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
          model: this.options.model,
          messages: request.messages,
          ...(request.tools?.length ? { tools: request.tools } : {}),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: controller.signal },
      );
      let content = '';
      let sawContent = false;
      let finishReason: string | undefined;
      let usage: TokenUsage | undefined;
      const calls: { id: string; name: string; arguments: string }[] = [];
      for await (const chunk of stream) {
        if (chunk.usage) {
          usage = { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens };
        }
        const choice = chunk.choices?.[0];
        if (!choice) continue;
        if (choice.finish_reason) finishReason = choice.finish_reason;
        const delta = choice.delta;
        if (delta?.content) {
          content += delta.content;
          sawContent = true;
        }
        for (const part of delta?.tool_calls ?? []) {
          const slot = (calls[part.index] ??= { id: '', name: '', arguments: '' });
          if (part.id) slot.id = part.id;
          if (part.function?.name) slot.name += part.function.name;
          if (part.function?.arguments) slot.arguments += part.function.arguments;
        }
      }
      const toolCalls = calls
        .filter((call) => call && call.name)
        .map((call, index) => ({ id: call.id || `call_${index}`, name: call.name, arguments: call.arguments }));
      return { content: sawContent ? content : null, toolCalls, usage, finishReason };
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
      return new ModelError(
        `Cannot reach the model endpoint ${this.options.baseUrl}: ${error.message}. Check the base URL and that the server is running.`,
        'unreachable',
      );
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
        return new ModelError(
          `The model endpoint ${this.options.baseUrl} answered 404 for model "${this.options.model}": check the model id and that the base URL ends with /v1.`,
          'http',
          404,
        );
      }
      if (error.status === undefined) {
        // An error event inside the stream, or a stream that ended early.
        return new ModelError(`The model's reply broke off: ${error.message}`, 'protocol');
      }
      return new ModelError(`The model endpoint answered HTTP ${error.status}: ${error.message}`, 'http', error.status, retryAfterMs(error.headers as Headers | undefined));
    }
    return new ModelError(`The model's reply could not be read: ${(error as Error)?.message ?? String(error)}`, 'protocol');
  }
}
