/**
 * VS Code's own language models (`vscode.lm`, whatever the installed extensions serve) as a model
 * of the agent loop. The loop speaks OpenAI-shaped messages; this maps them to
 * LanguageModelChatMessages and puts the response stream back together as one turn.
 *
 * What the API does not give, the turn does not claim: no token usage (left undefined, never
 * estimated) and no reasoning (the stable API streams text and tool calls only).
 */
import * as vscode from 'vscode';
import { type ChatMessage, type ChatModelClient, type ChatTool, type CompletionRequest, ModelError, type ModelTurn } from '../core/agent/modelClient';
import type { ToolCallRecord } from '../core/dataset/events';

export const VSCODE_LM_PROVIDER = 'vscode-lm';

/** The part classes the mapping builds and recognises: VS Code's own, or a test's stand-ins. */
export type LanguageModelParts = Pick<typeof vscode, 'LanguageModelChatMessage' | 'LanguageModelTextPart' | 'LanguageModelToolCallPart' | 'LanguageModelToolResultPart'>;

const JUSTIFICATION = 'Apollo runs the coding agent you started on your task and records its steps in a local dataset.';

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

/** OpenAI-shaped messages as VS Code chat messages, in the same order. */
export function toLanguageModelMessages(messages: readonly ChatMessage[], parts: LanguageModelParts = vscode): vscode.LanguageModelChatMessage[] {
  const { LanguageModelChatMessage, LanguageModelTextPart, LanguageModelToolCallPart, LanguageModelToolResultPart } = parts;
  const out: vscode.LanguageModelChatMessage[] = [];
  // The results of one assistant turn's calls go back together, in one user message.
  let results: vscode.LanguageModelToolResultPart[] | undefined;
  for (const message of messages) {
    if (message.role !== 'tool') results = undefined;
    switch (message.role) {
      // The 1.100 API has no system role: instructions go as a user message in the same place.
      case 'system':
      case 'developer':
      case 'user':
        out.push(LanguageModelChatMessage.User(textOf(message.content)));
        break;
      case 'assistant': {
        const content: Array<vscode.LanguageModelTextPart | vscode.LanguageModelToolCallPart> = [];
        const text = textOf(message.content);
        if (text) content.push(new LanguageModelTextPart(text));
        for (const call of message.tool_calls ?? []) {
          if (call.type === 'function') content.push(new LanguageModelToolCallPart(call.id, call.function.name, inputOf(call.function.arguments)));
        }
        out.push(LanguageModelChatMessage.Assistant(content.length ? content : ''));
        break;
      }
      case 'tool': {
        const part = new LanguageModelToolResultPart(message.tool_call_id, [new LanguageModelTextPart(textOf(message.content))]);
        if (results) results.push(part);
        else {
          results = [part];
          out.push(LanguageModelChatMessage.User(results));
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

/** OpenAI function tools as the API's tools: name, description, JSON schema of the input. */
export function toLanguageModelTools(tools: readonly ChatTool[] | undefined): vscode.LanguageModelChatTool[] {
  return (tools ?? []).flatMap((tool) =>
    tool.type === 'function' ? [{ name: tool.function.name, description: tool.function.description ?? '', ...(tool.function.parameters ? { inputSchema: tool.function.parameters } : {}) }] : [],
  );
}

/** One turn from the response stream: text parts joined, tool calls with their input as JSON. Other parts are skipped. */
export async function readResponseStream(stream: AsyncIterable<unknown>, parts: Pick<LanguageModelParts, 'LanguageModelTextPart' | 'LanguageModelToolCallPart'> = vscode): Promise<ModelTurn> {
  let text = '';
  const toolCalls: ToolCallRecord[] = [];
  for await (const part of stream) {
    if (part instanceof parts.LanguageModelTextPart) text += part.value;
    else if (part instanceof parts.LanguageModelToolCallPart) {
      toolCalls.push({ id: part.callId || `call_${toolCalls.length + 1}`, name: part.name, arguments: JSON.stringify(part.input ?? {}) });
    }
  }
  return { content: text === '' ? null : text, toolCalls, finishReason: toolCalls.length ? 'tool_calls' : 'stop' };
}

/** A failure of the API as a ModelError that says what to do. */
export function toModelError(error: unknown, model: string, stage: 'request' | 'stream', aborted: boolean): ModelError {
  if (error instanceof ModelError) return error;
  if (aborted || error instanceof vscode.CancellationError) return new ModelError('The model request was aborted.', 'aborted');
  const detail = error instanceof Error ? error.message : String(error);
  const code = error instanceof vscode.LanguageModelError ? error.code : undefined;
  const name = `VS Code's language model "${model}"`;
  if (code === vscode.LanguageModelError.NoPermissions.name) {
    return new ModelError(
      `${name} refused the request: Apollo may not use it yet (${detail}). Allow Apollo when VS Code asks, or under Manage Language Model Access in the Accounts menu, then resume the run.`,
      'auth',
    );
  }
  if (code === vscode.LanguageModelError.Blocked.name) {
    return new ModelError(
      `${name} is blocked for Apollo, e.g. its quota is used up (${detail}). Wait and resume the run, pick another model, or set apollo.provider back to openai-compatible.`,
      'http',
    );
  }
  if (code === vscode.LanguageModelError.NotFound.name) {
    return new ModelError(`${name} is no longer available (${detail}). Start the run again to pick one of the models VS Code has, or set apollo.model to one of them.`, 'http');
  }
  if (/context (window|length)|token limit|too many tokens|prompt is too long/i.test(detail)) {
    return new ModelError(`${name} did not take the prompt: it is larger than its context window (${detail}).`, 'context');
  }
  if (stage === 'stream') return new ModelError(`The reply of ${name} broke off: ${detail}`, 'protocol');
  return new ModelError(`${name} could not be reached: ${detail}`, 'unreachable');
}

export class LanguageModelClient implements ChatModelClient {
  readonly provider = VSCODE_LM_PROVIDER;

  constructor(private readonly chat: vscode.LanguageModelChat) {}

  get model(): string {
    return this.chat.id;
  }

  /**
   * `modelOptions` mean something different to every model behind the API and none is documented
   * as harmless, so the request's sampling is recorded in the run but not sent.
   */
  async complete(request: CompletionRequest): Promise<ModelTurn> {
    if (request.signal?.aborted) throw new ModelError('The model request was aborted.', 'aborted');
    const source = new vscode.CancellationTokenSource();
    const cancel = () => source.cancel();
    request.signal?.addEventListener('abort', cancel, { once: true });
    let stage: 'request' | 'stream' = 'request';
    try {
      const tools = toLanguageModelTools(request.tools);
      const response = await this.chat.sendRequest(
        toLanguageModelMessages(request.messages),
        { justification: JUSTIFICATION, ...(tools.length ? { tools, toolMode: vscode.LanguageModelChatToolMode.Auto } : {}) },
        source.token,
      );
      stage = 'stream';
      const turn = await readResponseStream(response.stream);
      if (request.signal?.aborted) throw new ModelError('The model request was aborted.', 'aborted');
      return turn;
    } catch (error) {
      throw toModelError(error, this.chat.id, stage, request.signal?.aborted ?? false);
    } finally {
      request.signal?.removeEventListener('abort', cancel);
      source.dispose();
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
