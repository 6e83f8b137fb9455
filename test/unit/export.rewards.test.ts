/**
 * Rewards in the data: every export carries a task run's verifier rewards (ATIF final_metrics,
 * a reward column in the HF-family formats), --min-reward filters on them, and pairs across the
 * runs of a task rank by reward before labels.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DatasetEvent, LabelEvent, RewardEvent } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { exportDataset } from '../../src/core/export/exportDataset';
import { harborAtifErrors } from '../fixtures/atifValidator';
import { label, runStarted, step, tick, writeRun } from '../fixtures/trajectories';

let dir: string;
let store: DatasetStore;

function reward(rewards: Record<string, number>, extra: Partial<RewardEvent> = {}): RewardEvent {
  return { type: 'reward', time: tick(), source: 'verifier', rewards, task: 'fix-bug', exitCode: 0, durationMs: 120, ...extra };
}

/** A two-step run of task `fix-bug`, sampled as `taskId`, with the labels and verifier events given. */
async function taskRun(runId: string, labels: (LabelEvent['label'] | null)[], after: DatasetEvent[]): Promise<void> {
  const events: DatasetEvent[] = [
    {
      ...runStarted(runId, 'Fix the bug'),
      taskId: 'suite-fix-bug',
      origin: { workspace: '/workspace', snapshot: 'base' },
      workspace: `/copies/${runId}`,
      taskSource: { format: 'harbor', name: 'fix-bug', dir: '/tasks/fix-bug' },
    },
    step(1, { tool: 'write_file', args: { path: 'fix.py', content: runId }, thought: `${runId} writes the fix` }),
    step(2, { tool: 'run_command', args: { command: 'pytest' } }),
  ];
  labels.forEach((value, index) => value && events.push(label(index + 1, value)));
  events.push({ type: 'run_ended', time: tick(), status: 'finished', steps: 2 }, ...after);
  await writeRun(store, runId, events);
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-rewards-'));
  store = new DatasetStore(dir);
  // r1 solved the task but its first step is labelled bad; r2 failed the verifier with good labels.
  await taskRun('run-r1', ['bad', null], [reward({ reward: 1, tests_passed: 4 })]);
  await taskRun('run-r2', ['good', 'good'], [reward({ reward: 0, tests_passed: 1 })]);
  // Verified twice: the later verdict counts.
  await taskRun('run-r3', [null, null], [reward({ reward: 0 }), reward({ reward: 0.5 })]);
  // The verifier timed out: no reward.
  await taskRun('run-r4', [null, null], [reward({}, { timedOut: true, exitCode: null, error: 'ran past its timeout' })]);
});

after(() => rmSync(dir, { recursive: true, force: true }));

const readJsonl = (file: string): any[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));

test('the HF-family formats carry the reward as a column, the latest verdict, null when there is none', async () => {
  const hf = path.join(dir, 'hf');
  await exportDataset(store, { format: 'hf', out: hf });
  const rows = readJsonl(path.join(hf, 'data', 'train.jsonl'));
  const byRun = Object.fromEntries(rows.map((row) => [row.run_id, [row.reward, row.rewards && JSON.parse(row.rewards)]]));
  assert.deepEqual(byRun, { 'run-r1': [1, { reward: 1, tests_passed: 4 }], 'run-r2': [0, { reward: 0, tests_passed: 1 }], 'run-r3': [0.5, { reward: 0.5 }], 'run-r4': [null, null] });

  const trl = path.join(dir, 'trl');
  await exportDataset(store, { format: 'trl', out: trl });
  const trlRewards = readJsonl(path.join(trl, 'data', 'train.jsonl')).map((row) => row.reward);
  assert.ok(trlRewards.includes(1) && trlRewards.includes(null), JSON.stringify(trlRewards));

  const lf = path.join(dir, 'lf');
  await exportDataset(store, { format: 'llamafactory', out: lf });
  const lfRows = readdirSync(path.join(lf, 'data')).flatMap((name) => readJsonl(path.join(lf, 'data', name)));
  assert.ok(lfRows.length && lfRows.every((row) => row.reward === null || typeof row.reward === 'number'));
  assert.ok(
    lfRows.some((row) => row.reward === 1),
    JSON.stringify(lfRows.map((row) => row.reward)),
  );
});

test("ATIF puts the rewards in final_metrics and stays valid under Harbor's rules", async () => {
  const out = path.join(dir, 'atif');
  await exportDataset(store, { format: 'atif', out });
  const files = readdirSync(out).filter((name) => name.endsWith('.json'));
  const byRun = new Map(
    files.map((name) => {
      const doc = JSON.parse(readFileSync(path.join(out, name), 'utf8'));
      return [doc.extra?.apollo?.run_id ?? doc.session_id, doc];
    }),
  );
  const solved = [...byRun.values()].find((doc) => JSON.stringify(doc).includes('run-r1'));
  assert.ok(solved);
  assert.deepEqual(solved.final_metrics.extra.rewards, { reward: 1, tests_passed: 4 });
  for (const doc of byRun.values()) assert.deepEqual(harborAtifErrors(doc), []);
  const timedOut = [...byRun.values()].find((doc) => JSON.stringify(doc).includes('run-r4'));
  assert.equal(timedOut.final_metrics?.extra?.rewards, undefined);
});

test('--min-reward keeps only trajectories verified at or above it, and says how many it left out', async () => {
  const out = path.join(dir, 'solved.jsonl');
  const summary = await exportDataset(store, { format: 'openai', out, minReward: 1 });
  assert.equal(summary.trajectories, 1);
  assert.equal(summary.belowReward, 3);
  const halfway = await exportDataset(store, { format: 'openai', out: path.join(dir, 'half.jsonl'), minReward: 0.5 });
  assert.equal(halfway.trajectories, 2);
  await assert.rejects(exportDataset(store, { format: 'openai', out: path.join(dir, 'none.jsonl'), minReward: 2 }), /no trajectory has a verifier reward of at least 2/);
  await assert.rejects(exportDataset(store, { format: 'openai', out: path.join(dir, 'nan.jsonl'), minReward: Number.NaN }), /minimum reward is a number/);
});

test('pairs across the runs of a task rank by reward first: the solved run is chosen over better-labelled failures', async () => {
  const file = path.join(dir, 'pairs.jsonl');
  await exportDataset(store, { format: 'pairs', out: file });
  const pairs = readJsonl(file).map((pair) => [pair.metadata.chosen_run, pair.metadata.rejected_run, pair.metadata.decided_by, pair.metadata.chosen_reward, pair.metadata.rejected_reward]);
  assert.deepEqual(pairs, [
    // Both verified: the reward decides, though r2's labels are better than r1's.
    ['run-r1', 'run-r3', 'reward', 1, 0.5],
    ['run-r1', 'run-r2', 'reward', 1, 0],
    // r4 was never verified (its verifier timed out): the turns' labels decide.
    ['run-r4', 'run-r1', 'labels', null, 1],
    ['run-r3', 'run-r2', 'reward', 0.5, 0],
    ['run-r2', 'run-r4', 'labels', 0, null],
  ]);
});
