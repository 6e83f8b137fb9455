/**
 * The editor's palette commands that are not a run's (editorCommands.ts): their arguments kept only
 * when of the right type, what they ask, store and say. The editor's UI and secret storage are fakes;
 * the datasets are real.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DatasetStore } from '../../src/core/dataset/store';
import { askTask, collectGarbageCommand, labelArgs, numberArg, pickRecordedRun, revealDataset, stepArg, storeKey, stringArg } from '../../src/core/session/editorCommands';
import { API_KEY_SECRET, JUDGE_API_KEY_SECRET } from '../../src/core/session/settings';
import type { InputOptions, PickItem, PickOptions } from '../../src/core/ui';
import { runStarted, step, writeRun } from '../fixtures/trajectories';
import { tempDir } from '../fixtures/workspace';

/** The editor's UI: answers given up front, what it was asked and said recorded. */
function fakeUi(answers: { input?: string; pick?: (items: readonly PickItem[]) => PickItem | undefined } = {}) {
  const seen = { inputs: [] as InputOptions[], picks: [] as { items: PickItem[]; options: PickOptions }[], said: [] as string[], revealed: [] as string[], progress: [] as string[] };
  const say = (level: string) => async (message: string) => void seen.said.push(`${level}: ${message}`);
  const ui = {
    showInputBox: async (options: InputOptions) => (seen.inputs.push(options), answers.input),
    showQuickPick: async <T extends PickItem>(items: readonly T[], options: PickOptions) => (seen.picks.push({ items: [...items], options }), answers.pick?.(items) as T | undefined),
    showInformationMessage: say('info'),
    showWarningMessage: say('warning'),
    showErrorMessage: say('error'),
    revealFile: async (file: string) => void seen.revealed.push(file),
    withNotificationProgress: <T>(title: string, task: () => PromiseLike<T>) => (seen.progress.push(title), task()),
  };
  return { ui, seen };
}

test('arguments are kept only when they have the type wanted; a step is a whole number from 1', () => {
  assert.deepEqual([stringArg('run-1'), stringArg(3), numberArg(2), numberArg('2')], ['run-1', undefined, 2, undefined]);
  assert.deepEqual([stepArg(1), stepArg(0), stepArg(2.5), stepArg('3')], [1, undefined, undefined, undefined]);
  assert.deepEqual(labelArgs(4, 'bad', 'execution', 'ran the wrong test'), { step: 4, label: 'bad', axis: 'execution', reason: 'ran the wrong test' });
  assert.deepEqual(labelArgs(-1, 'awful', 'style', 7), { step: undefined, label: undefined, axis: undefined, reason: undefined });
});

test('Start Run takes the task given, else asks for one that is not blank', async () => {
  const { ui, seen } = fakeUi({ input: 'Fix the build' });
  assert.equal(await askTask(ui, 'Given task'), 'Given task');
  assert.equal(seen.inputs.length, 0);
  assert.equal(await askTask(ui, 42), 'Fix the build');
  const [asked] = seen.inputs;
  assert.deepEqual(
    [asked.title, asked.prompt, asked.placeHolder, asked.ignoreFocusOut],
    ['Apollo: Start Run', 'What should the agent do in this workspace?', 'e.g. Make the failing test in tests/ pass', true],
  );
  assert.deepEqual([asked.validateInput?.('  '), asked.validateInput?.('do it')], ['Describe the task.', undefined]);
  assert.equal(await askTask(fakeUi().ui, undefined), undefined);
});

test('Set API Key keeps the trimmed key in the secret storage and says so; a dismissed box stores nothing', async () => {
  const stored: [string, string][] = [];
  const secrets = { store: async (name: string, value: string) => void stored.push([name, value]) };
  const agent = fakeUi({ input: '  sk-abc123  ' });
  await storeKey(agent.ui, secrets, 'agent');
  const [asked] = agent.seen.inputs;
  assert.deepEqual([asked.title, asked.password, asked.prompt], ['Apollo: Set API Key', true, "Stored in VS Code's secret storage, never in settings or the dataset."]);
  assert.equal(asked.validateInput?.(' '), 'The key is empty.');
  assert.deepEqual(agent.seen.said, ['info: Apollo: API key saved.']);
  const judge = fakeUi({ input: 'sk-judge' });
  await storeKey(judge.ui, secrets, 'judge');
  assert.deepEqual(judge.seen.said, ['info: Apollo: judge API key saved.']);
  assert.equal(judge.seen.inputs[0].title, 'Apollo: Set Judge API Key');
  const dismissed = fakeUi();
  await storeKey(dismissed.ui, secrets, 'agent');
  assert.deepEqual(stored, [
    [API_KEY_SECRET, 'sk-abc123'],
    [JUDGE_API_KEY_SECRET, 'sk-judge'],
  ]);
  assert.deepEqual(dismissed.seen.said, []);
});

test("Open Run lists the dataset's runs by the first line of their task; an empty dataset says so", async (t) => {
  const root = tempDir('apollo-open-run-');
  t.after(root.cleanup);
  const empty = fakeUi();
  assert.equal(await pickRecordedRun(path.join(root.dir, 'none'), empty.ui), undefined);
  assert.deepEqual(empty.seen.said, ['info: Apollo: no runs recorded yet in this workspace.']);
  const store = new DatasetStore(path.join(root.dir, 'dataset'));
  const time = '2026-02-03T04:05:06.000Z';
  const task = `${'Make the parser accept trailing commas in every list it reads '.repeat(2)}\nand more`;
  await store.createRun({
    id: 'run-1',
    task,
    workspace: '/w',
    model: 'm',
    baseUrl: '',
    status: 'finished',
    steps: 2,
    createdAt: time,
    updatedAt: time,
    tokens: { promptTokens: 0, completionTokens: 0 },
  });
  const { ui, seen } = fakeUi({ pick: (items) => items[0] });
  assert.equal(await pickRecordedRun(store.root, ui), 'run-1');
  const [item] = seen.picks[0].items;
  assert.deepEqual(item, { label: task.slice(0, 80), description: 'finished · 2 steps', detail: 'run-1 · 2026-02-03 04:05', id: 'run-1' });
  assert.equal(item.label.length, 80);
  assert.deepEqual(seen.picks[0].options, { title: 'Apollo: Open Run', matchOnDescription: true, matchOnDetail: true });
  assert.equal(await pickRecordedRun(store.root, fakeUi().ui), undefined, 'a dismissed pick opens nothing');
});

test('Open Dataset reveals the folder, or says where the first run will make it; Collect Garbage says what it reclaimed or why it could not', async (t) => {
  const root = tempDir('apollo-dataset-commands-');
  t.after(root.cleanup);
  const missing = path.join(root.dir, 'dataset');
  const before = fakeUi();
  await revealDataset(missing, before.ui);
  assert.deepEqual([before.seen.said, before.seen.revealed], [[`info: No dataset yet: the first run creates ${missing}.`], []]);
  const failed = fakeUi();
  assert.equal(await collectGarbageCommand(missing, failed.ui), undefined);
  assert.deepEqual(failed.seen.said, [`error: Apollo: There is no dataset folder at ${missing}.`]);

  await writeRun(new DatasetStore(missing), 'run-1', [runStarted('run-1'), step(1)]);
  const after = fakeUi();
  await revealDataset(missing, after.ui);
  assert.deepEqual([after.seen.said, after.seen.revealed], [[], [missing]]);
  const collected = fakeUi();
  const report = await collectGarbageCommand(missing, collected.ui);
  assert.deepEqual(report?.runs, []);
  assert.deepEqual(collected.seen.progress, ['Apollo: reclaiming the snapshot space of deleted runs…']);
  assert.match(collected.seen.said[0], /^info: Apollo: Reclaimed 0\.00 MiB; the snapshots now take [\d.]+ MiB\. Every run with snapshots is still in the dataset\.$/);
});
