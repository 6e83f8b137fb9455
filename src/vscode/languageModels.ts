/** Which of VS Code's language models a run uses, and whether there are any (for the walkthrough). */
import * as vscode from 'vscode';
import { ConfigError, USE_ENDPOINT } from '../core/session/errors';

/** Context key: VS Code has at least one chat model (the walkthrough offers them). */
export const HAS_CHAT_MODELS_KEY = 'apollo.hasChatModels';

/** The message that says no models are there; its error offers to switch back to an endpoint. */
export const NO_CHAT_MODELS =
  'VS Code has no language models to run with: install and sign in to an extension that provides them (e.g. GitHub Copilot Chat), or set apollo.provider back to openai-compatible and use an endpoint.';

/** Every chat model VS Code has now; none (not an error) where the API is missing or fails. */
export async function availableChatModels(): Promise<vscode.LanguageModelChat[]> {
  try {
    return (await vscode.lm?.selectChatModels()) ?? [];
  } catch {
    return [];
  }
}

export function describeModel(model: vscode.LanguageModelChat): string {
  return `${model.vendor} · ${model.family} · ${model.maxInputTokens.toLocaleString('en-US')} input tokens`;
}

/**
 * The model a run uses: the one apollo.model names (by id, else by family), else the one the user
 * picks. Undefined when the pick is dismissed; a ConfigError when there are none.
 */
export async function pickChatModel(setting: string, title: string): Promise<vscode.LanguageModelChat | undefined> {
  const models = await availableChatModels();
  if (!models.length) throw new ConfigError(NO_CHAT_MODELS, USE_ENDPOINT);
  const wanted = setting.trim();
  if (wanted) {
    const named = models.find((model) => model.id === wanted) ?? models.find((model) => model.family === wanted);
    if (named) return named;
  }
  const picked = await vscode.window.showQuickPick(
    models.map((model) => ({ label: model.name, description: model.id, detail: describeModel(model), model })),
    {
      title,
      placeHolder: wanted
        ? `No language model has the id or family "${wanted}" (apollo.model): pick one`
        : 'Pick the language model the agent runs on (set apollo.model to its id to skip this question)',
      matchOnDescription: true,
      matchOnDetail: true,
      ignoreFocusOut: true,
    },
  );
  return picked?.model;
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
