/** VS Code's own language models (`vscode.lm`) as a model of the agent loop: the API's classes for core/agent/languageModelChat.ts. */
import * as vscode from 'vscode';
import type { ChatMessage } from '../core/agent/modelClient';
import { LmChatClient, type LmErrorKind, type LmParts, type LmStreamPart, readLmStream, toLmMessages } from '../core/agent/languageModelChat';

export { VSCODE_LM_PROVIDER } from '../core/agent/languageModelChat';

const JUSTIFICATION = 'Apollo runs the coding agent you started on your task and records its steps in a local dataset.';

type Part = vscode.LanguageModelTextPart | vscode.LanguageModelToolCallPart | vscode.LanguageModelToolResultPart;

const parts: LmParts<vscode.LanguageModelChatMessage, Part> = {
  user: (content) => vscode.LanguageModelChatMessage.User(content as string | Array<vscode.LanguageModelTextPart | vscode.LanguageModelToolResultPart>),
  assistant: (content) => vscode.LanguageModelChatMessage.Assistant(content as string | Array<vscode.LanguageModelTextPart | vscode.LanguageModelToolCallPart>),
  text: (value) => new vscode.LanguageModelTextPart(value),
  toolCall: (callId, name, input) => new vscode.LanguageModelToolCallPart(callId, name, input),
  toolResult: (callId, content) => new vscode.LanguageModelToolResultPart(callId, content),
};

/** OpenAI-shaped messages as VS Code chat messages, in the same order. */
export const toLanguageModelMessages = (messages: readonly ChatMessage[]) => toLmMessages(messages, parts);

function classify(part: unknown): LmStreamPart | undefined {
  if (part instanceof vscode.LanguageModelTextPart) return { text: part.value };
  return part instanceof vscode.LanguageModelToolCallPart ? { callId: part.callId, name: part.name, input: part.input } : undefined;
}

/** One turn from the response stream: text parts joined, tool calls with their input as JSON. Other parts are skipped. */
export const readResponseStream = (stream: AsyncIterable<unknown>) => readLmStream(stream, classify);

function errorKind(error: unknown): LmErrorKind | undefined {
  if (error instanceof vscode.CancellationError) return 'cancelled';
  if (!(error instanceof vscode.LanguageModelError)) return undefined;
  const { NoPermissions, Blocked, NotFound } = vscode.LanguageModelError;
  return new Map<string, LmErrorKind>([
    [NoPermissions.name, 'NoPermissions'],
    [Blocked.name, 'Blocked'],
    [NotFound.name, 'NotFound'],
  ]).get(error.code);
}

export class LanguageModelClient extends LmChatClient {
  constructor(chat: vscode.LanguageModelChat) {
    const request = () => {
      const source = new vscode.CancellationTokenSource();
      const send = async (messages: readonly ChatMessage[], tools: vscode.LanguageModelChatTool[]) =>
        (await chat.sendRequest(toLanguageModelMessages(messages), { justification: JUSTIFICATION, ...(tools.length ? { tools, toolMode: vscode.LanguageModelChatToolMode.Auto } : {}) }, source.token))
          .stream;
      return { send, cancel: () => source.cancel(), dispose: () => source.dispose() };
    };
    super(chat, { request, classify, errorKind });
  }
}
