import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { DatasetEvent, LabelEvent, RunEndStatus } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { exportDataset } from '../../src/core/export/exportDataset';
import { type ChatMessage, validateChat } from '../../src/core/export/chat';
import { datasetStats, formatStats } from '../../src/core/session/stats';
import { label, runStarted, step, tick, writeRun } from '../fixtures/trajectories';
import { harborAtifErrors } from '../fixtures/atifValidator';

const schema = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'schemas', 'openai-chat-finetune.schema.json'), 'utf8'));
const validateOpenAiLine = new Ajv2020().compile<any>(schema);

let dir: string;
let store: DatasetStore;

/** A run of two steps, sampled under `taskId` (none: a run on its own), labelled and ended as given. */
async function sampled(target: DatasetStore, runId: string, taskId: string | undefined, labels: (LabelEvent['label'] | null)[], status: RunEndStatus, task = 'Make the tests pass'): Promise<void> {
  const events: DatasetEvent[] = [
    { ...runStarted(runId, task), ...(taskId ? { taskId, origin: { workspace: '/workspace', snapshot: 'base' } } : {}), workspace: `/copies/${runId}` },
    step(1, { tool: 'write_file', args: { path: 'a.txt', content: runId }, thought: `${runId} writes a.txt` }),
    step(2, { tool: 'run_command', args: { command: 'npm test' } }),
  ];
  labels.forEach((value, index) => value && events.push(label(index + 1, value)));
  events.push({ type: 'run_ended', time: tick(), status, steps: 2 });
  await writeRun(target, runId, events);
}

/**
 * Task A: three runs ranked by their labels and ends (a1 finished, both steps good: 4;
 * a2 finished, one bad step: 2.5; a3 failed, both good: 1). Task B: two runs with equal scores.
 * Task C: one run. And a run on its own.
 */
before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-tasks-'));
  store = new DatasetStore(dir);
  await sampled(store, 'run-a1', 'task-a', ['good', 'good'], 'finished');
  await sampled(store, 'run-a2', 'task-a', [null, 'bad'], 'finished');
  await sampled(store, 'run-a3', 'task-a', ['good', 'good'], 'failed');
  await sampled(store, 'run-b1', 'task-b', ['good', null], 'finished');
  await sampled(store, 'run-b2', 'task-b', [null, 'good'], 'finished');
  await sampled(store, 'run-c1', 'task-c', ['good', 'good'], 'finished');
  await sampled(store, 'run-solo', undefined, ['bad', 'bad'], 'failed');
});

after(() => rmSync(dir, { recursive: true, force: true }));

const readJsonl = (file: string): any[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));

test('pairs across runs: where two runs of one task part, the better turn is chosen, by labels then by outcome; a tie never pairs', async () => {
  const file = path.join(dir, 'pairs.jsonl');
  const summary = await exportDataset(store, { format: 'pairs', out: file });
  assert.deepEqual(summary.skipped, []);
  const pairs = readJsonl(file);
  assert.deepEqual(
    pairs.map((pair) => [pair.metadata.task_id, pair.metadata.chosen_run, pair.metadata.rejected_run, pair.metadata.chosen_score, pair.metadata.rejected_score, pair.metadata.decided_by]),
    [
      // Step 1 parts them: a1's turn is good, a2's unlabelled.
      ['task-a', 'run-a1', 'run-a2', 4, 2.5, 'labels'],
      // Both turns good: a1 finished, a3 failed.
      ['task-a', 'run-a1', 'run-a3', 4, 1, 'outcome'],
      // a3's turn is good, a2's unlabelled: the turn's label comes before the run's outcome.
      ['task-a', 'run-a3', 'run-a2', 1, 2.5, 'labels'],
      // Task B: b1's first turn is good, b2's unlabelled, though their runs score the same.
      ['task-b', 'run-b1', 'run-b2', 3.5, 3.5, 'labels'],
    ],
  );
  assert.equal(summary.records, 4);
  for (const pair of pairs) {
    assert.equal(pair.metadata.kind, 'across_runs');
    assert.deepEqual(pair.prompt, [
      { role: 'system', content: 'You are a careful software engineer.' },
      { role: 'user', content: 'Make the tests pass' },
    ]);
    assert.deepEqual(
      pair.chosen.map((message: ChatMessage) => message.role),
      ['assistant'],
      'the first differing turn only, no tool result',
    );
    assert.deepEqual(
      pair.rejected.map((message: ChatMessage) => message.role),
      ['assistant'],
    );
    assert.deepEqual([pair.metadata.chosen_step, pair.metadata.rejected_step], [1, 1]);
    assert.equal(pair.chosen[0].content, `${pair.metadata.chosen_run} writes a.txt`);
    assert.equal(pair.rejected[0].content, `${pair.metadata.rejected_run} writes a.txt`);
    assert.equal(
      pair.chosen.some((message: object) => 'weight' in message),
      false,
    );
    assert.deepEqual(validateChat([...pair.prompt, ...pair.chosen], { completion: true }), []);
    assert.deepEqual(validateChat([...pair.prompt, ...pair.rejected], { completion: true }), []);
    // Every pair has the same metadata keys, whatever its kind.
    assert.deepEqual(Object.keys(pair.metadata).sort(), [
      'branch',
      'chosen_reward',
      'chosen_run',
      'chosen_score',
      'chosen_step',
      'correction',
      'decided_by',
      'kind',
      'rejected_reward',
      'rejected_run',
      'rejected_score',
      'rejected_step',
      'run_id',
      'task_id',
    ]);
  }
});

test('pairs across runs follow the labels: a human relabel that changes the ranking changes the pair', async () => {
  const copy = mkdtempSync(path.join(os.tmpdir(), 'apollo-tasks-relabel-'));
  try {
    const other = new DatasetStore(copy);
    await sampled(other, 'run-x1', 'task-x', ['good', null], 'finished');
    await sampled(other, 'run-x2', 'task-x', [null, null], 'finished');
    const first = path.join(copy, 'first.jsonl');
    await exportDataset(other, { format: 'pairs', out: first });
    assert.deepEqual(
      readJsonl(first).map((pair) => [pair.metadata.chosen_run, pair.metadata.rejected_run]),
      [['run-x1', 'run-x2']],
    );
    await other.appendEvent('run-x1', label(1, 'bad'));
    const second = path.join(copy, 'second.jsonl');
    await exportDataset(other, { format: 'pairs', out: second });
    assert.deepEqual(
      readJsonl(second).map((pair) => [pair.metadata.chosen_run, pair.metadata.rejected_run, pair.metadata.chosen_score, pair.metadata.rejected_score]),
      [['run-x2', 'run-x1', 3, 2.5]],
    );
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test('two runs under one task id but with different tasks are not paired; the export says why', async () => {
  const other = mkdtempSync(path.join(os.tmpdir(), 'apollo-tasks-mixed-'));
  try {
    const mixed = new DatasetStore(other);
    await sampled(mixed, 'run-m1', 'task-m', ['good', 'good'], 'finished', 'Fix the parser');
    await sampled(mixed, 'run-m2', 'task-m', [null, null], 'finished', 'Fix the printer');
    const file = path.join(other, 'pairs.jsonl');
    const summary = await exportDataset(mixed, { format: 'pairs', out: file, allowEmpty: true });
    assert.equal(summary.records, 0);
    assert.deepEqual(summary.skipped, [{ id: 'task task-m: run run-m1 over run-m2', problems: ['the two runs share a task id but not their task'] }]);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test('each format with room for it carries the task id (hf, atif, sharegpt); openai lines keep only messages and tools', async () => {
  const openai = path.join(dir, 'openai.jsonl');
  await exportDataset(store, { format: 'openai', out: openai });
  const lines = readJsonl(openai);
  assert.equal(lines.length, 7);
  for (const line of lines) assert.ok(validateOpenAiLine(line), JSON.stringify(validateOpenAiLine.errors));
  // The upload checks reject keys they do not know: the task id travels in the other formats.
  for (const line of lines) assert.deepEqual(Object.keys(line).sort(), ['messages', 'tools']);

  const hf = path.join(dir, 'hf');
  await exportDataset(store, { format: 'hf', out: hf });
  const rows = readJsonl(path.join(hf, 'data', 'train.jsonl'));
  assert.deepEqual(
    rows.map((row) => [row.run_id, row.task_id]),
    [
      ['run-a1', 'task-a'],
      ['run-a2', 'task-a'],
      ['run-a3', 'task-a'],
      ['run-b1', 'task-b'],
      ['run-b2', 'task-b'],
      ['run-c1', 'task-c'],
      ['run-solo', null],
    ],
  );
  assert.equal(new Set(rows.map((row) => Object.keys(row).sort().join(','))).size, 1, 'every row has the same columns');
  assert.match(readFileSync(path.join(hf, 'README.md'), 'utf8'), /`task_id`/);

  const atif = path.join(dir, 'atif');
  await exportDataset(store, { format: 'atif', out: atif });
  assert.equal(readdirSync(atif).length, 7);
  for (const file of readdirSync(atif)) assert.deepEqual(harborAtifErrors(JSON.parse(readFileSync(path.join(atif, file), 'utf8'))), [], file);
  assert.equal(JSON.parse(readFileSync(path.join(atif, 'run-a2.json'), 'utf8')).extra.apollo.task_id, 'task-a');
  assert.equal(JSON.parse(readFileSync(path.join(atif, 'run-solo.json'), 'utf8')).extra.apollo.task_id, null);

  const sharegpt = path.join(dir, 'sharegpt.jsonl');
  await exportDataset(store, { format: 'sharegpt', out: sharegpt });
  assert.deepEqual(
    readJsonl(sharegpt).map((record) => record.task_id),
    ['task-a', 'task-a', 'task-a', 'task-b', 'task-b', 'task-c', null],
  );
});

test('stats count the tasks and the sampled runs', async () => {
  const stats = await datasetStats(store);
  assert.deepEqual([stats.runs, stats.sampledRuns, stats.tasks, stats.adoptedRuns], [7, 6, 3, 0]);
  assert.equal(stats.perRun.find((run) => run.id === 'run-b2')?.taskId, 'task-b');
  assert.match(formatStats(stats), /^sampled: 6 run\(s\) of 3 task\(s\), 0 adopted$/m);
});
