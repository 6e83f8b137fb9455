/** Which of VS Code's language models a run uses (core/session/chatModels.ts), and whether there are any (for the walkthrough). */
import * as vscode from 'vscode';
import { chooseChatModel } from '../core/session/chatModels';
import * as window from './vscodeApis/window';

/** Context key: VS Code has at least one chat model (the walkthrough offers them). */
export const HAS_CHAT_MODELS_KEY = 'apollo.hasChatModels';

/** Every chat model VS Code has now; none (not an error) where the API is missing or fails. */
export async function availableChatModels(): Promise<vscode.LanguageModelChat[]> {
  try {
    return (await vscode.lm?.selectChatModels()) ?? [];
  } catch {
    return [];
  }
}

/** The model a run uses: the one apollo.model names, else the one the user picks (undefined when dismissed). */
export async function pickChatModel(setting: string, title: string): Promise<vscode.LanguageModelChat | undefined> {
  return chooseChatModel(await availableChatModels(), setting, title, window);
}

/** Keeps the context key current: set now and whenever the models change. */
export function trackChatModels(): vscode.Disposable {
  const update = async () => {
    const count = (await availableChatModels()).length;
    await vscode.commands.executeCommand('setContext', HAS_CHAT_MODELS_KEY, count > 0);
  };
  void update();
  return vscode.lm?.onDidChangeChatModels?.(() => void update()) ?? { dispose() {} };
}
