/** Which of the editor's language models a run uses, and the walkthrough's switch to them; the editor's UI is fakes. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { type ChatModelInfo, chooseChatModel, describeModel, NO_CHAT_MODELS, useEditorModels } from '../../src/core/session/chatModels';
import { ConfigError, USE_ENDPOINT } from '../../src/core/session/errors';
import type { PickItem, PickOptions } from '../../src/core/ui';

const model = (id: string, family: string, name = id): ChatModelInfo => ({ id, name, vendor: 'copilot', family, maxInputTokens: 128_000 });
const models = [model('gpt-4o-2024', 'gpt-4o', 'GPT-4o'), model('claude-3.5', 'claude', 'Claude'), model('gpt-4o-mini', 'gpt-4o', 'GPT-4o mini')];

/** A pick list that records what it was shown and picks with `choose`. */
function picker(choose: <T>(items: readonly T[]) => T | undefined = () => undefined) {
  const shown: { items: PickItem[]; options: PickOptions }[] = [];
  return {
    shown,
    ui: {
      showQuickPick: async <T extends PickItem>(items: readonly T[], options: PickOptions) => {
        shown.push({ items: [...items], options });
        return choose(items);
      },
    },
  };
}

test('apollo.model names the model by id, else by family; nothing is asked then', async () => {
  const { ui, shown } = picker();
  assert.equal(await chooseChatModel(models, ' claude-3.5 ', 'Apollo: Start Run', ui), models[1]);
  assert.equal(await chooseChatModel(models, 'gpt-4o', 'Apollo: Start Run', ui), models[0], 'the first of the family');
  assert.deepEqual(shown, []);
});

test('otherwise the user picks, told why; a dismissed pick is no model, and no models at all offers the endpoint', async () => {
  const { ui, shown } = picker((items) => items[2]);
  assert.equal(await chooseChatModel(models, '', 'Apollo: Sample Runs', ui), models[2]);
  assert.deepEqual(shown[0].items[0], { label: 'GPT-4o', description: 'gpt-4o-2024', detail: 'copilot · gpt-4o · 128,000 input tokens', model: models[0] });
  assert.deepEqual(shown[0].options, {
    title: 'Apollo: Sample Runs',
    placeHolder: 'Pick the language model the agent runs on (set apollo.model to its id to skip this question)',
    matchOnDescription: true,
    matchOnDetail: true,
    ignoreFocusOut: true,
  });
  const dismissed = picker();
  assert.equal(await chooseChatModel(models, 'llama', 'Apollo: Start Run', dismissed.ui), undefined);
  assert.equal(dismissed.shown[0].options.placeHolder, 'No language model has the id or family "llama" (apollo.model): pick one');
  await assert.rejects(chooseChatModel([], 'gpt-4o', 'Apollo: Start Run', ui), (error: unknown) => error instanceof ConfigError && error.message === NO_CHAT_MODELS && error.action === USE_ENDPOINT);
  assert.equal(describeModel({ ...models[0], maxInputTokens: 1_000_000 }), 'copilot · gpt-4o · 1,000,000 input tokens');
});

test("the walkthrough's switch: with models it sets the provider and names at most five, without it says what to install", async () => {
  const said: [string, string][] = [];
  const ui = {
    showInformationMessage: async (message: string) => void said.push(['info', message]),
    showWarningMessage: async (message: string) => void said.push(['warning', message]),
    showErrorMessage: async (message: string) => void said.push(['error', message]),
  };
  let switched = 0;
  const useThem = async () => void switched++;
  assert.equal(await useEditorModels([], useThem, ui), 0);
  assert.equal(switched, 0);
  assert.match(said[0][1], /^Apollo: VS Code has no language models yet\. Install and sign in/);
  assert.equal(said[0][0], 'warning');
  const seven = ['A', 'B', 'C', 'D', 'E', 'F', 'G'].map((name) => ({ name }));
  assert.equal(await useEditorModels(seven, useThem, ui), 7);
  assert.equal(switched, 1);
  assert.deepEqual(said[1], ['info', "Apollo: runs now use VS Code's language models (7 found: A, B, C, D, E, and 2 more). A run asks which one, unless apollo.model names one by id or family."]);
  await useEditorModels(seven.slice(0, 2), useThem, ui);
  assert.match(said[2][1], /\(2 found: A, B\)\./);
});
