/**
 * `apollo stats --by hints`: verified task runs that received hints against those that did not,
 * per task and overall — success rate, mean reward, pass@k, annotator actions and minutes per
 * solved task. The expected figures are worked out by hand below from the runs as written.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CliIo, main } from '../../src/cli/main';
import type { DatasetEvent } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { compareByHints, datasetStats, passAtK } from '../../src/core/session/stats';
import { hint, label, runStarted, step, writeRun } from '../fixtures/trajectories';

let dir: string;

interface Spec {
  task: string;
  hints: number;
  humanLabels?: number;
  /** undefined: never verified. */
  reward?: number;
  minutes: number;
  disabled?: boolean;
}

const SPECS: Record<string, Spec> = {
  // Task A: two hinted runs (one solved), three without (one solved, one a deliberate control).
  'a-h1': { task: 'A', hints: 2, humanLabels: 1, reward: 1, minutes: 10 },
  'a-h2': { task: 'A', hints: 1, reward: 0, minutes: 20 },
  'a-n1': { task: 'A', hints: 0, reward: 1, minutes: 5 },
  'a-n2': { task: 'A', hints: 0, reward: 0, minutes: 5 },
  'a-n3': { task: 'A', hints: 0, reward: 0.5, minutes: 5, disabled: true },
  // Task B: one hinted run (solved), two without (neither solved).
  'b-h1': { task: 'B', hints: 3, reward: 1, minutes: 30 },
  'b-n1': { task: 'B', hints: 0, reward: 0, minutes: 4 },
  'b-n2': { task: 'B', hints: 0, reward: 0, minutes: 6 },
  // Task C: never verified.
  'c-n1': { task: 'C', hints: 0, minutes: 3 },
};

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-hintstats-'));
  const store = new DatasetStore(dir);
  let start = Date.parse('2026-03-01T00:00:00Z');
  for (const [runId, spec] of Object.entries(SPECS)) {
    const at = (minutes: number) => new Date(start + minutes * 60_000).toISOString();
    const events: DatasetEvent[] = [
      { ...runStarted(runId, `Task ${spec.task}`), time: at(0), taskSource: { format: 'harbor', name: spec.task, dir: `/tasks/${spec.task}` }, ...(spec.disabled ? { hintsDisabled: true } : {}) },
    ];
    for (let i = 0; i < spec.hints; i++) events.push(...hint(`h-${runId}-${i}`, 1, `hint ${i}`));
    events.push(step(1, { tool: 'write_file', args: { path: 'x', content: runId } }));
    for (let i = 0; i < (spec.humanLabels ?? 0); i++) events.push(label(1, 'good'));
    events.push({ type: 'run_ended', time: at(spec.minutes), status: 'finished', steps: 1 });
    if (spec.reward !== undefined) events.push({ type: 'reward', time: at(spec.minutes), source: 'verifier', rewards: { reward: spec.reward }, task: spec.task, exitCode: 0, durationMs: 50 });
    // Every event but the first and the end lies inside the run's minutes.
    for (const event of events.slice(1, -2)) event.time = at(spec.minutes / 2);
    if (spec.reward === undefined) events[events.length - 1].time = at(spec.minutes);
    await writeRun(store, runId, events);
    start += 3_600_000;
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('pass@k is the unbiased estimator: 1 − C(n−c, k) / C(n, k)', () => {
  assert.equal(passAtK(5, 0, 3), 0);
  assert.equal(passAtK(5, 5, 1), 1);
  assert.ok(Math.abs(passAtK(3, 1, 1) - 1 / 3) < 1e-12);
  assert.ok(Math.abs(passAtK(3, 1, 2) - 2 / 3) < 1e-12); // C(2,2)/C(3,2) = 1/3
  assert.equal(passAtK(4, 2, 3), 1); // fewer than 3 failures
  assert.throws(() => passAtK(2, 1, 3), /needs at least 3 runs/);
});

test("stats --by hints gives each group's success, mean reward, pass@k and annotator cost per solved task", async () => {
  const stats = await datasetStats(new DatasetStore(dir));
  const comparison = compareByHints(stats.perRun);
  const { withHints, withoutHints } = comparison.overall;
  // With hints: a-h1 (1), a-h2 (0), b-h1 (1).
  assert.equal(withHints.runs, 3);
  assert.equal(withHints.solved, 2);
  assert.equal(withHints.successRate, Math.round((2 / 3) * 10_000) / 10_000);
  assert.equal(withHints.meanReward, Math.round((2 / 3) * 10_000) / 10_000);
  // pass@1: task A 1/2, task B 1/1 → 0.75; pass@2: only task A has 2 runs: 1 − C(1,2)/C(2,2) = 1.
  assert.deepEqual(withHints.passAtK, { 1: 0.75, 2: 1 });
  // Actions: hints 2+1+3 and one human label = 7; minutes of the runs acted on: 10+20+30 = 60; both tasks solved.
  assert.equal(withHints.annotatorActions, 7);
  assert.equal(withHints.annotatorMinutes, 60);
  assert.equal(withHints.actionsPerSolvedTask, 3.5);
  assert.equal(withHints.minutesPerSolvedTask, 30);
  // Without hints: a-n1 (1), a-n2 (0), a-n3 (0.5, not solved at threshold 1), b-n1 (0), b-n2 (0).
  assert.equal(withoutHints.runs, 5);
  assert.equal(withoutHints.solved, 1);
  assert.equal(withoutHints.successRate, 0.2);
  assert.equal(withoutHints.meanReward, 0.3);
  // pass@1: A 1/3, B 0 → 1/6; pass@2: A 1 − C(2,2)/C(3,2) = 2/3, B 0 → 1/3; pass@3: only A has 3 runs → 1.
  assert.deepEqual(withoutHints.passAtK, { 1: Math.round((1 / 6) * 10_000) / 10_000, 2: Math.round((1 / 3) * 10_000) / 10_000, 3: 1 });
  assert.equal(withoutHints.annotatorActions, 0);
  assert.equal(withoutHints.actionsPerSolvedTask, 0);
  assert.equal(comparison.controlRuns, 1);
  assert.equal(comparison.unverifiedRuns, 1);
  assert.deepEqual(
    comparison.perTask.map((task) => [task.task, task.withHints.runs, task.withHints.solved, task.withoutHints.runs, task.withoutHints.solved]),
    [
      ['A', 2, 1, 3, 1],
      ['B', 1, 1, 2, 0],
    ],
  );
  // A lower bar counts a-n3 as solved.
  assert.equal(compareByHints(stats.perRun, 0.5).overall.withoutHints.solved, 2);
});

test('apollo stats --by hints prints the comparison, and --json gives the figures', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env: {}, cwd: dir };
  assert.equal(await main(['stats', '--dataset', dir, '--by', 'hints'], io), 0, err.join(''));
  const text = out.join('');
  assert.match(text, /with hints: 3 run\(s\), solved 2 \(66\.7%\), mean reward 0\.6667; pass@1 75\.0%, pass@2 100\.0%; annotator 7 action\(s\), 60 min; per solved task 3\.5 action\(s\), 30 min/);
  assert.match(text, /without hints: 5 run\(s\), solved 1 \(20\.0%\)/);
  assert.match(text, /1 run\(s\) without hints were started with hints disabled/);
  assert.match(text, /1 task run\(s\) left out: never verified/);
  out.length = 0;
  assert.equal(await main(['stats', '--dataset', dir, '--by', 'hints', '--json', '--success-threshold', '0.5'], io), 0);
  assert.equal(JSON.parse(out.join('')).overall.withoutHints.solved, 2);
  assert.equal(await main(['stats', '--dataset', dir, '--by', 'labels'], io), 2);
  assert.match(err.join(''), /--by takes hints/);
});
