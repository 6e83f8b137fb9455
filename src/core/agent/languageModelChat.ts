/**
 * An editor's chat models (VS Code's `vscode.lm`, whatever the installed extensions serve) as a
 * model of the agent loop. The loop speaks OpenAI-shaped messages; this maps them to the API's
 * messages (built by the editor's part classes, through `LmParts`) and puts the response stream
 * back together as one turn. The editor side only sends the request and tells its parts apart.
 *
 * What the API does not give, the turn does not claim: no token usage (left undefined, never
 * estimated) and no reasoning (the stable API streams text and tool calls only).
 */
import type { ToolCallRecord } from '../dataset/events';
import { type ChatMessage, type ChatModelClient, type ChatTool, type CompletionRequest, ModelError, type ModelTurn } from './modelClient';

export const VSCODE_LM_PROVIDER = 'vscode-lm';

/** The API's message and part constructors (VS Code's classes, or a test's). */
export interface LmParts<Message, Part> {
  user(content: string | Part[]): Message;
  assistant(content: string | Part[]): Message;
  text(value: string): Part;
  toolCall(callId: string, name: string, input: object): Part;
  toolResult(callId: string, content: Part[]): Part;
}

/** A streamed part as the turn needs it: text, or a tool call. */
export type LmStreamPart = { text: string } | { callId: string; name: string; input: unknown };

/** How a failure of the API is known: by the code of its error, or as a cancellation. */
export type LmErrorKind = 'NoPermissions' | 'Blocked' | 'NotFound' | 'cancelled';

/** A tool as the API takes it: name, description, JSON schema of the input. */
export interface LmTool {
  name: string;
  description: string;
  inputSchema?: object;
}

/** The text of an OpenAI message's content: a string, or the text of its parts. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : '')).join('');
}

/** A call's JSON arguments as the object the API wants; a call the model wrote badly becomes `{}`. */
function inputOf(argumentsJson: string): object {
  try {
    const value: unknown = JSON.parse(argumentsJson);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

/** OpenAI-shaped messages as the API's messages, in the same order. */
export function toLmMessages<Message, Part>(messages: readonly ChatMessage[], parts: LmParts<Message, Part>): Message[] {
  const out: Message[] = [];
  // The results of one assistant turn's calls go back together, in one user message.
  let results: Part[] | undefined;
  for (const message of messages) {
    if (message.role !== 'tool') results = undefined;
    switch (message.role) {
      // The 1.100 API has no system role: instructions go as a user message in the same place.
      case 'system':
      case 'developer':
      case 'user':
        out.push(parts.user(textOf(message.content)));
        break;
      case 'assistant': {
        const content: Part[] = [];
        const text = textOf(message.content);
        if (text) content.push(parts.text(text));
        for (const call of message.tool_calls ?? []) {
          if (call.type === 'function') content.push(parts.toolCall(call.id, call.function.name, inputOf(call.function.arguments)));
        }
        out.push(parts.assistant(content.length ? content : ''));
        break;
      }
      case 'tool': {
        const part = parts.toolResult(message.tool_call_id, [parts.text(textOf(message.content))]);
        if (results) results.push(part);
        else {
          results = [part];
          out.push(parts.user(results));
        }
        break;
      }
      default:
        // Legacy `function` messages are never produced by the loop.
        break;
    }
  }
  return out;
}

/** OpenAI function tools as the API's tools. */
export function toLmTools(tools: readonly ChatTool[] | undefined): LmTool[] {
  return (tools ?? []).flatMap((tool) =>
    tool.type === 'function' ? [{ name: tool.function.name, description: tool.function.description ?? '', ...(tool.function.parameters ? { inputSchema: tool.function.parameters } : {}) }] : [],
  );
}

/** One turn from the response stream: text parts joined, tool calls with their input as JSON. Parts `classify` does not know are skipped. */
export async function readLmStream(stream: AsyncIterable<unknown>, classify: (part: unknown) => LmStreamPart | undefined): Promise<ModelTurn> {
  let text = '';
  const toolCalls: ToolCallRecord[] = [];
  for await (const raw of stream) {
    const part = classify(raw);
    if (part && 'text' in part) text += part.text;
    else if (part) toolCalls.push({ id: part.callId || `call_${toolCalls.length + 1}`, name: part.name, arguments: JSON.stringify(part.input ?? {}) });
  }
  return { content: text === '' ? null : text, toolCalls, finishReason: toolCalls.length ? 'tool_calls' : 'stop' };
}

/** A failure of the API as a ModelError that says what to do. */
export function lmModelError(error: unknown, kind: LmErrorKind | undefined, model: string, stage: 'request' | 'stream', aborted: boolean): ModelError {
  if (error instanceof ModelError) return error;
  if (aborted || kind === 'cancelled') return new ModelError('The model request was aborted.', 'aborted');
  const detail = error instanceof Error ? error.message : String(error);
  const name = `VS Code's language model "${model}"`;
  if (kind === 'NoPermissions') {
    return new ModelError(
      `${name} refused the request: Apollo may not use it yet (${detail}). Allow Apollo when VS Code asks, or under Manage Language Model Access in the Accounts menu, then resume the run.`,
      'auth',
    );
  }
  if (kind === 'Blocked') {
    return new ModelError(
      `${name} is blocked for Apollo, e.g. its quota is used up (${detail}). Wait and resume the run, pick another model, or set apollo.provider back to openai-compatible.`,
      'http',
    );
  }
  if (kind === 'NotFound') {
    return new ModelError(`${name} is no longer available (${detail}). Start the run again to pick one of the models VS Code has, or set apollo.model to one of them.`, 'http');
  }
  if (/context (window|length)|token limit|too many tokens|prompt is too long/i.test(detail)) {
    return new ModelError(`${name} did not take the prompt: it is larger than its context window (${detail}).`, 'context');
  }
  if (stage === 'stream') return new ModelError(`The reply of ${name} broke off: ${detail}`, 'protocol');
  return new ModelError(`${name} could not be reached: ${detail}`, 'unreachable');
}

/** What the client knows of a chat model (VS Code's LanguageModelChat fits). */
export interface LmModelInfo {
  readonly id: string;
  readonly name: string;
  readonly vendor: string;
  readonly maxInputTokens: number;
}

/** One request to the API: sent once, cancelled when the run aborts it, disposed when its stream is read. */
export interface LmRequest {
  send(messages: readonly ChatMessage[], tools: LmTool[]): PromiseLike<AsyncIterable<unknown>>;
  cancel(): void;
  dispose(): void;
}

/** The editor's side of a chat model: its requests, its stream parts and its errors. */
export interface LmApi {
  request(): LmRequest;
  classify(part: unknown): LmStreamPart | undefined;
  errorKind(error: unknown): LmErrorKind | undefined;
}

export class LmChatClient implements ChatModelClient {
  readonly provider = VSCODE_LM_PROVIDER;

  constructor(
    private readonly chat: LmModelInfo,
    private readonly api: LmApi,
  ) {}

  get model(): string {
    return this.chat.id;
  }

  /**
   * Model options mean something different to every model behind the API and none is documented
   * as harmless, so the request's sampling is recorded in the run but not sent.
   */
  async complete(request: CompletionRequest): Promise<ModelTurn> {
    if (request.signal?.aborted) throw new ModelError('The model request was aborted.', 'aborted');
    const sent = this.api.request();
    const cancel = () => sent.cancel();
    request.signal?.addEventListener('abort', cancel, { once: true });
    let stage: 'request' | 'stream' = 'request';
    try {
      const stream = await sent.send(request.messages, toLmTools(request.tools));
      stage = 'stream';
      const turn = await readLmStream(stream, (part) => this.api.classify(part));
      if (request.signal?.aborted) throw new ModelError('The model request was aborted.', 'aborted');
      return turn;
    } catch (error) {
      throw lmModelError(error, this.api.errorKind(error), this.chat.id, stage, request.signal?.aborted ?? false);
    } finally {
      request.signal?.removeEventListener('abort', cancel);
      sent.dispose();
    }
  }

  async contextWindow(): Promise<number | undefined> {
    const tokens = this.chat.maxInputTokens;
    return Number.isFinite(tokens) && tokens > 0 ? tokens : undefined;
  }

  async contextWindowDetail(): Promise<{ tokens: number; detail: string } | undefined> {
    const tokens = await this.contextWindow();
    return tokens ? { tokens, detail: `VS Code: the input limit of ${this.chat.name} (${this.chat.vendor})` } : undefined;
  }
}
