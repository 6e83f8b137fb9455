import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DatasetEvent } from '../../src/core/dataset/events';
import { asksQuestion, AttentionTracker, orderByNeed } from '../../src/core/supervision/attention';
import { filePatch, label, runStarted, step } from '../fixtures/trajectories';

function flagsOf(events: DatasetEvent[], options = {}) {
  const tracker = new AttentionTracker(options);
  return events.map((event) => tracker.observe(event)).filter(Boolean);
}

test('failures in a row raise one flag per streak', () => {
  const failed = (n: number) => step(n, { tool: 'run_command', args: { command: 'make' }, observation: 'x\n[exit code 2]', isError: true });
  const flags = flagsOf([runStarted('r'), failed(1), failed(2), failed(3), failed(4), step(5), failed(6), failed(7), failed(8)]);
  assert.deepEqual(
    flags.map((flag) => [flag!.step, flag!.kind]),
    [
      [3, 'failures'],
      [8, 'failures'],
    ],
  );
});

test('a loop found by the rules, a question, and a run paused on errors are flagged', () => {
  const flags = flagsOf([
    runStarted('r'),
    step(1),
    label(1, 'bad', 'rule:loop', { reason: 'repeats step 0' }),
    label(1, 'bad', 'rule:tool_error'),
    step(2, { tool: null, thought: 'Which database should I use?\n' }),
    step(3, { tool: null, thought: 'I am done thinking.' }),
    { type: 'run_state', time: '2026-01-01T01:00:00Z', state: 'paused', reason: 'the model failed 5 times in a row' },
    { type: 'run_state', time: '2026-01-01T01:00:00Z', state: 'paused' },
  ]);
  assert.deepEqual(
    flags.map((flag) => [flag!.step, flag!.kind, flag!.message]),
    [
      [1, 'loop', 'repeats step 0'],
      [2, 'question', 'the agent asks: Which database should I use?'],
      [3, 'paused', 'paused: the model failed 5 times in a row'],
    ],
  );
});

test('a long stretch without any change on disk is flagged once, and a change resets it', () => {
  const write = (n: number) => step(n, { tool: 'write_file', args: { path: 'a' }, ...filePatch('a', [], ['x']) });
  const events: DatasetEvent[] = [runStarted('r'), write(1)];
  for (let n = 2; n <= 8; n++) events.push(step(n));
  events.push(write(9), step(10), step(11), step(12), step(13));
  const flags = flagsOf(events, { stepsWithoutDiff: 3, minutesWithoutDiff: 1000 });
  assert.deepEqual(
    flags.map((flag) => [flag!.step, flag!.kind, flag!.message]),
    [
      [4, 'no_progress', 'no change on disk for 3 steps'],
      [12, 'no_progress', 'no change on disk for 3 steps'],
    ],
  );
});

test('time without a diff counts too', () => {
  const early = { ...step(1), time: '2026-01-01T00:00:00.000Z' };
  const late = { ...step(2), time: '2026-01-01T00:30:00.000Z' };
  const flags = flagsOf([{ ...runStarted('r'), time: '2026-01-01T00:00:00.000Z' }, early, late], { stepsWithoutDiff: 100, minutesWithoutDiff: 20 });
  assert.deepEqual(
    flags.map((flag) => flag!.message),
    ['no change on disk for 30 minutes'],
  );
});

test('asksQuestion reads the end of the turn', () => {
  assert.equal(asksQuestion('Should I delete the cache?'), true);
  assert.equal(asksQuestion('I looked.\nShall I go on?  '), true);
  assert.equal(asksQuestion('Done. No questions.'), false);
  assert.equal(asksQuestion(null), false);
});

test('runs are ordered by how much they need the annotator', () => {
  const flag = (step: number, kind: 'failures' | 'loop' | 'no_progress' | 'question') => ({ step, kind, message: kind });
  const base = { startedAt: '2026-01-01T00:00:00Z' };
  const ordered = orderByNeed([
    { ...base, runId: 'fine', status: 'running', unseen: [] },
    { ...base, runId: 'done', status: 'finished', unseen: [flag(2, 'failures')] },
    { ...base, runId: 'looping', status: 'running', unseen: [flag(4, 'failures'), flag(5, 'loop')] },
    { ...base, runId: 'stuck', status: 'paused', pausedReason: 'the model failed 5 times in a row', unseen: [] },
    { ...base, runId: 'asks', status: 'running', unseen: [flag(7, 'question')] },
    { ...base, runId: 'held', status: 'paused', unseen: [] },
    { ...base, runId: 'broke', status: 'failed', unseen: [] },
    { ...base, runId: 'dry', status: 'running', unseen: [flag(9, 'no_progress')] },
  ]);
  assert.deepEqual(
    ordered.map((run) => [run.runId, run.kind]),
    [
      ['stuck', 'paused'],
      ['asks', 'question'],
      ['looping', 'loop'],
      ['dry', 'no_progress'],
      ['held', 'paused_by_you'],
      ['broke', 'failed'],
      ['fine', 'running'],
      // Flags of an ended run no longer call for a hint: it waits for review last.
      ['done', 'ended'],
    ],
  );
  assert.match(ordered[2].message, /step 5: loop/);
});

test('among runs with the same need, the one with more unseen flags and then the earlier one comes first', () => {
  const failures = (step: number) => ({ step, kind: 'failures' as const, message: 'failed' });
  const ordered = orderByNeed([
    { runId: 'b', status: 'running', unseen: [failures(3)], startedAt: '2026-01-01T00:00:02Z' },
    { runId: 'a', status: 'running', unseen: [failures(3)], startedAt: '2026-01-01T00:00:01Z' },
    { runId: 'c', status: 'running', unseen: [failures(3), failures(6)], startedAt: '2026-01-01T00:00:03Z' },
  ]);
  assert.deepEqual(
    ordered.map((run) => run.runId),
    ['c', 'a', 'b'],
  );
});

test('suite runs whose verifier failed come after failed runs by default, and first of all when asked', () => {
  const base = { startedAt: '2026-01-01T00:00:00Z', unseen: [] };
  const runs = [
    { ...base, runId: 'fine', status: 'running' as const },
    { ...base, runId: 'solved', status: 'finished' as const, verifier: { reward: 1 } },
    { ...base, runId: 'wrong', status: 'finished' as const, verifier: { reward: 0 } },
    { ...base, runId: 'partial', status: 'max_steps' as const, verifier: { reward: 0.5 } },
    { ...base, runId: 'timeout', status: 'finished' as const, verifier: { error: 'timed out' } },
    { ...base, runId: 'stuck', status: 'paused' as const, pausedReason: 'the model failed 5 times in a row' },
    { ...base, runId: 'broke', status: 'failed' as const },
    // Still going: the verifier's last verdict (an earlier attempt) does not make it a failure to review.
    { ...base, runId: 'going', status: 'running' as const, verifier: { reward: 0 } },
    { ...base, runId: 'plain', status: 'finished' as const },
  ];
  assert.deepEqual(
    orderByNeed(runs).map((run) => [run.runId, run.kind]),
    [
      ['stuck', 'paused'],
      ['broke', 'failed'],
      ['partial', 'verifier_failed'],
      ['timeout', 'verifier_failed'],
      ['wrong', 'verifier_failed'],
      ['fine', 'running'],
      ['going', 'running'],
      ['plain', 'ended'],
      ['solved', 'ended'],
    ],
  );
  const first = orderByNeed(runs, { verifierFailuresFirst: true });
  assert.deepEqual(
    first.slice(0, 4).map((run) => run.runId),
    ['partial', 'timeout', 'wrong', 'stuck'],
  );
  assert.equal(first.find((run) => run.runId === 'solved')?.kind, 'ended', 'a reward of 1 is no failure');
  assert.equal(first.find((run) => run.runId === 'wrong')?.message, 'verifier: reward 0');
  assert.equal(first.find((run) => run.runId === 'partial')?.message, 'verifier: reward 0.500');
  assert.equal(first.find((run) => run.runId === 'timeout')?.message, 'verifier: no reward (timed out)');
});
