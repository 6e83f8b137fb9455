/** Which of the editor's language models a run uses, and the walkthrough's switch to them. */
import type { Notifications, Prompts } from '../ui';
import { ConfigError, USE_ENDPOINT } from './errors';

/** What is shown of a chat model (VS Code's LanguageModelChat fits). */
export interface ChatModelInfo {
  readonly id: string;
  readonly name: string;
  readonly vendor: string;
  readonly family: string;
  readonly maxInputTokens: number;
}

/** The message that says no models are there; its error offers to switch back to an endpoint. */
export const NO_CHAT_MODELS =
  'VS Code has no language models to run with: install and sign in to an extension that provides them (e.g. GitHub Copilot Chat), or set apollo.provider back to openai-compatible and use an endpoint.';

export function describeModel(model: ChatModelInfo): string {
  return `${model.vendor} · ${model.family} · ${model.maxInputTokens.toLocaleString('en-US')} input tokens`;
}

/**
 * The model a run uses: the one apollo.model (`setting`) names, by id, else by family; else the
 * one the user picks. Undefined when the pick is dismissed; a ConfigError when there are none.
 */
export async function chooseChatModel<M extends ChatModelInfo>(models: readonly M[], setting: string, title: string, ui: Pick<Prompts, 'showQuickPick'>): Promise<M | undefined> {
  if (!models.length) throw new ConfigError(NO_CHAT_MODELS, USE_ENDPOINT);
  const wanted = setting.trim();
  if (wanted) {
    const named = models.find((model) => model.id === wanted) ?? models.find((model) => model.family === wanted);
    if (named) return named;
  }
  const picked = await ui.showQuickPick(
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

/**
 * The walkthrough's "use the models VS Code has": switches apollo.provider (`useThem`) when there
 * are some and says which; says what to install when there are none. The number of models.
 */
export async function useEditorModels(models: readonly Pick<ChatModelInfo, 'name'>[], useThem: () => PromiseLike<void>, ui: Notifications): Promise<number> {
  if (!models.length) {
    void ui.showWarningMessage('Apollo: VS Code has no language models yet. Install and sign in to an extension that provides them (e.g. GitHub Copilot Chat), or use an OpenAI-compatible endpoint.');
    return 0;
  }
  await useThem();
  const names =
    models
      .slice(0, 5)
      .map((model) => model.name)
      .join(', ') + (models.length > 5 ? `, and ${models.length - 5} more` : '');
  void ui.showInformationMessage(`Apollo: runs now use VS Code's language models (${models.length} found: ${names}). A run asks which one, unless apollo.model names one by id or family.`);
  return models.length;
}
