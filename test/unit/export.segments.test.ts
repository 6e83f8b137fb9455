import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { DatasetEvent } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { exportDataset } from '../../src/core/export/exportDataset';
import { ExportError } from '../../src/core/export/output';
import { buildRunTree, segmentsOf, trajectoriesOf } from '../../src/core/export/trajectory';
import { hintMessage, NO_TOOL_CALL_NUDGE } from '../../src/core/agent/prompt';
import { type CliIo, main } from '../../src/cli/main';
import { compactedRun, rewind, runStarted, step, summary, SUMMARY_BEFORE_4, SUMMARY_BEFORE_7, tick, writeRun } from '../fixtures/trajectories';

const schema = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'schemas', 'openai-chat-finetune.schema.json'), 'utf8'));
const validateOpenAiLine = new Ajv2020().compile<any>(schema);

const SYSTEM = 'You are a careful software engineer.';
const TASK = 'Fix the failing test';
const S4 = SUMMARY_BEFORE_4;
const S7 = SUMMARY_BEFORE_7;

/**
 * Compacted before step 4 (keeping 3), rewound to before step 4, then steps 6 and 7 on the new
 * branch with a compaction before step 7 (keeping 6): only that one is on the final line.
 */
function rewoundRun(runId: string): DatasetEvent[] {
  return [
    runStarted(runId),
    step(1),
    step(2),
    step(3),
    summary(4, 3, S4),
    step(4, { tool: 'run_command', args: { command: 'rm -rf src' } }),
    step(5),
    rewind(4, 'b1', 3),
    step(6, { branch: 'b1', parentStep: 3, tool: 'read_file', args: { path: 'src/a.js' } }),
    summary(7, 6, S7),
    step(7, { branch: 'b1', parentStep: 6, tool: 'finish', args: { summary: 'done' } }),
    { type: 'run_ended', time: tick(), status: 'finished', steps: 7 },
  ];
}

let dir: string;
let store: DatasetStore;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-segments-'));
  store = new DatasetStore(dir);
  await writeRun(store, 'run-long', compactedRun('run-long'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

const readJsonl = (file: string): any[] => {
  const text = readFileSync(file, 'utf8').trim();
  return text ? text.split('\n').map((line) => JSON.parse(line)) : [];
};
type Message = { role: string; content: string; weight?: number; tool_calls?: { id: string; function: { name: string; arguments: unknown } }[]; tool_call_id?: string };
/** The step an assistant message is, by its first call id (`call_N`) or its text. */
const stepOf = (message: Message): number =>
  Number((message.tool_calls?.[0]?.id ?? '').match(/^call_(\d+)/)?.[1] ?? message.content.match(/step (\d+)/)?.[1] ?? (message.content === 'I think it is done.' ? 5 : NaN));
const hintText = (text: string, kind = 'strategy') => hintMessage(kind as 'strategy', text);

test('segments: a run compacted twice is three contexts; each step is the own step of exactly one', () => {
  const tree = buildRunTree(compactedRun('r'))!;
  const [trajectory] = trajectoriesOf(tree, { branches: 'main', policy: 'not-bad' });
  const segments = segmentsOf(trajectory);
  assert.deepEqual(
    segments.map((segment) => [segment.summary?.step ?? null, segment.carried.map((entry) => entry.event.step), segment.steps.map((entry) => entry.event.step)]),
    [
      [null, [], [1, 2, 3]],
      [4, [3], [4, 5, 6]],
      [7, [6], [7]],
    ],
  );
  assert.deepEqual(
    segmentsOf(trajectory, { whole: true }).map((segment) => segment.steps.length),
    [7],
  );
});

test('openai: one line per context, each starting with system, task (and the summary); carried-over steps weight 0; hints in place; no turn lost', async () => {
  const file = path.join(dir, 'openai.jsonl');
  const result = await exportDataset(store, { format: 'openai', out: file });
  assert.deepEqual(result.skipped, []);
  const lines = readJsonl(file);
  assert.equal(lines.length, 3);
  for (const line of lines) assert.ok(validateOpenAiLine(line), JSON.stringify(validateOpenAiLine.errors));
  const [first, second, third] = lines.map((line) => line.messages as Message[]);
  assert.deepEqual(
    first.slice(0, 3).map((message) => [message.role, message.content]),
    [
      ['system', SYSTEM],
      ['user', TASK],
      ['user', hintText('Start with the README.')],
    ],
  );
  assert.deepEqual(
    second.slice(0, 3).map((message) => [message.role, message.content]),
    [
      ['system', SYSTEM],
      ['user', TASK],
      ['user', S4],
    ],
  );
  assert.deepEqual(
    third.slice(0, 3).map((message) => [message.role, message.content]),
    [
      ['system', SYSTEM],
      ['user', TASK],
      ['user', S7],
    ],
  );
  const assistants = (messages: Message[]) => messages.filter((message) => message.role === 'assistant').map((message) => [stepOf(message), message.weight]);
  // Step 3 was trained in the first line; in the second it is context only. Step 6 is masked.
  assert.deepEqual(assistants(first), [
    [1, 1],
    [2, 1],
    [3, 1],
  ]);
  assert.deepEqual(assistants(second), [
    [3, 0],
    [4, 1],
    [5, 1],
    [6, 0],
  ]);
  assert.deepEqual(assistants(third), [
    [6, 0],
    [7, 1],
  ]);
  // Every step is trained (or masked) in exactly one line: its own.
  const own = [first, second, third].flatMap((messages, index) =>
    assistants(messages)
      .filter(([number]) => (index === 0 ? true : number !== [3, 6][index - 1]))
      .map(([number]) => number),
  );
  assert.deepEqual(own, [1, 2, 3, 4, 5, 6, 7]);
  // Hints where they were delivered: before the assistant turn of their step, also when carried over.
  const before = (messages: Message[], number: number) => messages[messages.findIndex((message) => message.role === 'assistant' && stepOf(message) === number) - 1];
  assert.equal(before(first, 3).content, hintText('Look at the tests.'));
  assert.equal(before(second, 3).content, hintText('Look at the tests.'));
  assert.equal(before(second, 4).content, hintText('The fix is in src/a.js.'));
  // Step 4's two calls each have their result; step 5 is followed by the nudge.
  const step4 = second.findIndex((message) => message.role === 'assistant' && stepOf(message) === 4);
  assert.deepEqual(
    second.slice(step4 + 1, step4 + 3).map((message) => message.tool_call_id),
    ['call_4', 'call_4_extra0'],
  );
  assert.equal(second[second.findIndex((message) => message.role === 'assistant' && stepOf(message) === 5) + 1].content, NO_TOOL_CALL_NUDGE);
  // content is a string, "" for a turn that only calls tools; arguments are JSON strings here.
  const step2 = first.find((message) => message.role === 'assistant' && stepOf(message) === 2)!;
  assert.equal(step2.content, '');
  assert.ok(lines.flatMap((line) => line.messages).every((message: Message) => typeof message.content === 'string'));
  assert.ok(
    lines
      .flatMap((line) => line.messages)
      .flatMap((message: Message) => message.tool_calls ?? [])
      .every((call: { function: { arguments: unknown } }) => typeof call.function.arguments === 'string'),
  );
});

test('whole trajectories: one line with every step, no summary, weights as the masks', async () => {
  const file = path.join(dir, 'openai-whole.jsonl');
  await exportDataset(store, { format: 'openai', out: file, wholeTrajectories: true });
  const [line, ...rest] = readJsonl(file);
  assert.equal(rest.length, 0);
  assert.doesNotMatch(JSON.stringify(line), /Summary made before/);
  const assistants = (line.messages as Message[]).filter((message) => message.role === 'assistant');
  assert.deepEqual(
    assistants.map((message) => [stepOf(message), message.weight]),
    [
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
      [5, 1],
      [6, 0],
      [7, 1],
    ],
  );

  const hf = path.join(dir, 'hf-whole');
  await exportDataset(store, { format: 'hf', out: hf, wholeTrajectories: true });
  assert.equal(readJsonl(path.join(hf, 'data', 'train.jsonl')).length, 1);
});

test('hf: one row per context; arguments are objects, content a string, weight and training on assistant messages only', async () => {
  const folder = path.join(dir, 'hf');
  await exportDataset(store, { format: 'hf', out: folder });
  const rows = readJsonl(path.join(folder, 'data', 'train.jsonl'));
  assert.deepEqual(
    rows.map((row) => [row.id, row.segment]),
    [
      ['run-long', 0],
      ['run-long#1', 1],
      ['run-long#2', 2],
    ],
  );
  assert.deepEqual(
    rows[1].steps.map((entry: { step: number; mask: number; carried: boolean }) => [entry.step, entry.mask, entry.carried]),
    [
      [3, 0, true],
      [4, 1, false],
      [5, 1, false],
      [6, 0, false],
    ],
  );
  const messages = rows.flatMap((row) => row.messages);
  assert.ok(messages.every((message: { content: unknown }) => typeof message.content === 'string'));
  const calls = messages.flatMap((message: { tool_calls: { function: { name: string; arguments: unknown } }[] }) => message.tool_calls);
  assert.ok(calls.length > 0 && calls.every((call: { function: { arguments: unknown } }) => call.function.arguments !== null && typeof call.function.arguments === 'object'));
  assert.deepEqual(calls.find((call: { function: { name: string } }) => call.function.name === 'edit_file')!.function.arguments, { path: 'src/a.js', old: 'x', new: 'y' });
  for (const message of messages) {
    if (message.role === 'assistant') assert.equal(message.training, message.weight === 1);
    else assert.deepEqual([message.weight, message.training], [null, null]);
  }
  const card = readFileSync(path.join(folder, 'README.md'), 'utf8');
  assert.match(card, /message_field_training: training/);
  assert.match(card, /type: chat_template/);
});

test('trl: one prompt-completion row per unmasked step; the completion is exactly that turn, the prompt its context', async () => {
  const folder = path.join(dir, 'trl');
  const result = await exportDataset(store, { format: 'trl', out: folder });
  assert.deepEqual(result.skipped, []);
  const rows = readJsonl(path.join(folder, 'data', 'train.jsonl'));
  const hf = readJsonl(path.join(dir, 'hf', 'data', 'train.jsonl'));
  // Step 6 is masked: no row; every other step has one.
  assert.deepEqual(
    rows.map((row) => stepOf(row.completion[0])),
    [1, 2, 3, 4, 5, 7],
  );
  for (const row of rows) {
    assert.deepEqual(Object.keys(row).sort(), ['completion', 'prompt', 'reward', 'tools']);
    assert.equal(row.completion.length, 1);
    assert.equal(row.completion[0].role, 'assistant');
    const number = stepOf(row.completion[0]);
    // The context it was sent in: the hf row of its segment, up to that turn, without weights.
    const segment = hf.find((candidate) => candidate.steps.some((entry: { step: number; carried: boolean }) => entry.step === number && !entry.carried));
    const index = segment.messages.findIndex((message: Message) => message.role === 'assistant' && stepOf(message) === number);
    const strip = ({ weight: _weight, training: _training, ...rest }: Record<string, unknown>) => rest;
    assert.deepEqual(row.prompt, segment.messages.slice(0, index).map(strip));
    assert.deepEqual(row.completion, [strip(segment.messages[index])]);
    assert.ok(row.tools.every((tool: { type: string; function: { name: string; parameters: object } }) => tool.type === 'function' && tool.function.name && tool.function.parameters));
    for (const message of [...row.prompt, ...row.completion]) {
      assert.deepEqual(Object.keys(message).sort(), ['content', 'reasoning_content', 'role', 'tool_call_id', 'tool_calls']);
      assert.equal(typeof message.content, 'string');
      for (const call of message.tool_calls) assert.equal(typeof call.function.arguments, 'object');
    }
  }
  const step4 = rows.find((row) => stepOf(row.completion[0]) === 4);
  assert.deepEqual(
    step4.prompt.slice(0, 3).map((message: Message) => message.content),
    [SYSTEM, TASK, S4],
  );
  assert.equal(step4.prompt[step4.prompt.length - 1].content, hintText('The fix is in src/a.js.'));
  assert.equal(rows.find((row) => stepOf(row.completion[0]) === 2).completion[0].content, '');
  const card = readFileSync(path.join(folder, 'README.md'), 'utf8');
  assert.match(card, /^---\nconfigs:\n- config_name: default\n {2}data_files:\n {2}- split: train\n {4}path: data\/train\.jsonl\n/);
  assert.match(card, /completion_only_loss/);
});

test('a rewound run uses only the compactions of its own branch', async () => {
  const other = mkdtempSync(path.join(os.tmpdir(), 'apollo-segments-rewound-'));
  try {
    const rewound = new DatasetStore(other);
    await writeRun(rewound, 'run-rw', rewoundRun('run-rw'));
    const tree = buildRunTree(rewoundRun('run-rw'))!;
    const [main, abandoned] = trajectoriesOf(tree, { branches: 'all', policy: 'not-bad' });
    assert.deepEqual(
      main.summaries?.map((entry) => entry.step),
      [7],
    );
    assert.deepEqual(
      abandoned.summaries?.map((entry) => entry.step),
      [4],
    );
    const shape = (trajectory: typeof main) =>
      segmentsOf(trajectory).map((segment) => [segment.summary?.text ?? null, segment.carried.map((entry) => entry.event.step), segment.steps.map((entry) => entry.event.step)]);
    assert.deepEqual(shape(main), [
      [null, [], [1, 2, 3, 6]],
      [S7, [6], [7]],
    ]);
    assert.deepEqual(shape(abandoned), [
      [null, [], [1, 2, 3]],
      [S4, [3], [4, 5]],
    ]);
    const file = path.join(other, 'openai.jsonl');
    await exportDataset(rewound, { format: 'openai', out: file });
    const lines = readJsonl(file);
    assert.equal(lines.length, 2);
    assert.doesNotMatch(JSON.stringify(lines), /Summary made before step 4/);

    // The rewind pair: the abandoned step against the one that replaced it, one assistant turn each.
    const pairsFile = path.join(other, 'pairs.jsonl');
    await exportDataset(rewound, { format: 'pairs', out: pairsFile });
    const [pair, ...more] = readJsonl(pairsFile);
    assert.equal(more.length, 0);
    assert.deepEqual([pair.metadata.rejected_step, pair.metadata.chosen_step], [4, 6]);
    assert.deepEqual([pair.chosen.map((message: Message) => message.role), pair.rejected.map((message: Message) => message.role)], [['assistant'], ['assistant']]);
    assert.deepEqual(
      pair.prompt.map((message: Message) => message.role),
      ['system', 'user', 'assistant', 'tool', 'assistant', 'tool', 'assistant', 'tool'],
    );
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test('pairs: sampled runs part at their first different turn; the prompt holds what they share, the sides one turn each; identical sides are left out', async () => {
  const other = mkdtempSync(path.join(os.tmpdir(), 'apollo-segments-pairs-'));
  try {
    const sampledStore = new DatasetStore(other);
    const sampled = (runId: string, second: string, status: 'finished' | 'failed'): DatasetEvent[] => [
      { ...runStarted(runId), taskId: 'task-s', origin: { workspace: '/workspace', snapshot: 'base' } },
      step(1, { tool: 'read_file', args: { path: 'README.md' }, thought: 'Read first.', observation: 'same readme' }),
      step(2, { tool: 'run_command', args: { command: second }, thought: `Now ${second}.` }),
      step(3, { tool: 'finish', args: { summary: 'done' } }),
      { type: 'run_ended', time: tick(), status, steps: 3 },
    ];
    await writeRun(sampledStore, 'run-s1', sampled('run-s1', 'npm test', 'finished'));
    await writeRun(sampledStore, 'run-s2', sampled('run-s2', 'rm -rf .', 'failed'));
    // Rewound, then the model took the very same turn again: no pair from it.
    await writeRun(sampledStore, 'run-same', [
      runStarted('run-same'),
      step(1),
      rewind(1, 'b1', 0),
      step(2, { branch: 'b1', parentStep: 0, thought: 'Thinking about step 1.', args: { path: 'README.md' } }),
      { type: 'run_ended', time: tick(), status: 'finished', steps: 2 },
    ]);
    const file = path.join(other, 'pairs.jsonl');
    const result = await exportDataset(sampledStore, { format: 'pairs', out: file });
    assert.deepEqual(result.skipped, []);
    const pairs = readJsonl(file);
    assert.equal(pairs.length, 1, 'the rewind that changed nothing gives no pair');
    const [pair] = pairs;
    assert.deepEqual(
      [pair.metadata.kind, pair.metadata.chosen_run, pair.metadata.rejected_run, pair.metadata.decided_by, pair.metadata.chosen_step],
      ['across_runs', 'run-s1', 'run-s2', 'outcome', 2],
    );
    assert.deepEqual(
      pair.prompt.map((message: Message) => message.role),
      ['system', 'user', 'assistant', 'tool'],
    );
    assert.equal(pair.prompt[3].content, 'same readme');
    assert.deepEqual(
      pair.chosen.map((message: Message) => [message.role, message.content]),
      [['assistant', 'Now npm test.']],
    );
    assert.deepEqual(
      pair.rejected.map((message: Message) => [message.role, message.content]),
      [['assistant', 'Now rm -rf ..']],
    );
    for (const side of [pair.chosen, pair.rejected])
      assert.equal(
        side.some((message: Message) => message.role === 'tool'),
        false,
      );
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test('an export with nothing to write is refused with why, and writes nothing; allowed, it writes the empty output', async () => {
  const pairsFile = path.join(dir, 'no-pairs.jsonl');
  await assert.rejects(
    exportDataset(store, { format: 'pairs', out: pairsFile }),
    (error: Error) => error instanceof ExportError && /pairs: the dataset has no rewinds or sampled tasks/.test(error.message),
  );
  assert.equal(existsSync(pairsFile), false);
  const allowed = await exportDataset(store, { format: 'pairs', out: pairsFile, allowEmpty: true });
  assert.equal(allowed.records, 0);
  assert.equal(readFileSync(pairsFile, 'utf8'), '');

  // Nothing is labelled good: under good-only no turn is trained, so trl and llamafactory have no row.
  for (const format of ['trl', 'llamafactory'] as const) {
    const folder = path.join(dir, `empty-${format}`);
    await assert.rejects(
      exportDataset(store, { format, out: folder, policy: 'good-only' }),
      (error: Error) => error instanceof ExportError && new RegExp(`${format}: no step is trained on under the mask policy good-only`).test(error.message),
    );
    assert.equal(existsSync(folder), false);
    await exportDataset(store, { format, out: folder, policy: 'good-only', allowEmpty: true });
    assert.equal(readFileSync(path.join(folder, 'data', 'train.jsonl'), 'utf8'), '');
  }
});

test('apollo export exits non-zero on an empty export unless --allow-empty', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env: {}, cwd: dir };
  const file = path.join(dir, 'cli-pairs.jsonl');
  assert.equal(await main(['export', '--dataset', dir, '--format', 'pairs', '--out', file], io), 1);
  assert.match(err.join(''), /Nothing to export as pairs: the dataset has no rewinds or sampled tasks/);
  assert.equal(existsSync(file), false);
  assert.equal(await main(['export', '--dataset', dir, '--format', 'pairs', '--out', file, '--allow-empty'], io), 0);
  assert.equal(existsSync(file), true);
  const whole = path.join(dir, 'cli-whole.jsonl');
  assert.equal(await main(['export', '--dataset', dir, '--format', 'openai', '--out', whole, '--whole-trajectories'], io), 0);
  assert.equal(readJsonl(whole).length, 1);
});
