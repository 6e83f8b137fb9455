import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DatasetEvent } from '../../src/core/dataset/events';
import { asksQuestion, AttentionTracker } from '../../src/core/supervision/attention';
import { filePatch, label, runStarted, step } from '../fixtures/trajectories';

function flagsOf(events: DatasetEvent[], options = {}) {
  const tracker = new AttentionTracker(options);
  return events.map((event) => tracker.observe(event)).filter(Boolean);
}

test('failures in a row raise one flag per streak', () => {
  const failed = (n: number) => step(n, { tool: 'run_command', args: { command: 'make' }, observation: 'x\n[exit code 2]', isError: true });
  const flags = flagsOf([runStarted('r'), failed(1), failed(2), failed(3), failed(4), step(5), failed(6), failed(7), failed(8)]);
  assert.deepEqual(flags.map((flag) => [flag!.step, flag!.kind]), [
    [3, 'failures'],
    [8, 'failures'],
  ]);
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
  assert.deepEqual(flags.map((flag) => [flag!.step, flag!.kind, flag!.message]), [
    [1, 'loop', 'repeats step 0'],
    [2, 'question', 'the agent asks: Which database should I use?'],
    [3, 'paused', 'paused: the model failed 5 times in a row'],
  ]);
});

test('a long stretch without any change on disk is flagged once, and a change resets it', () => {
  const write = (n: number) => step(n, { tool: 'write_file', args: { path: 'a' }, ...filePatch('a', [], ['x']) });
  const events: DatasetEvent[] = [runStarted('r'), write(1)];
  for (let n = 2; n <= 8; n++) events.push(step(n));
  events.push(write(9), step(10), step(11), step(12), step(13));
  const flags = flagsOf(events, { stepsWithoutDiff: 3, minutesWithoutDiff: 1000 });
  assert.deepEqual(flags.map((flag) => [flag!.step, flag!.kind, flag!.message]), [
    [4, 'no_progress', 'no change on disk for 3 steps'],
    [12, 'no_progress', 'no change on disk for 3 steps'],
  ]);
});

test('time without a diff counts too', () => {
  const early = { ...step(1), time: '2026-01-01T00:00:00.000Z' };
  const late = { ...step(2), time: '2026-01-01T00:30:00.000Z' };
  const flags = flagsOf([{ ...runStarted('r'), time: '2026-01-01T00:00:00.000Z' }, early, late], { stepsWithoutDiff: 100, minutesWithoutDiff: 20 });
  assert.deepEqual(flags.map((flag) => flag!.message), ['no change on disk for 30 minutes']);
});

test('asksQuestion reads the end of the turn', () => {
  assert.equal(asksQuestion('Should I delete the cache?'), true);
  assert.equal(asksQuestion('I looked.\nShall I go on?  '), true);
  assert.equal(asksQuestion('Done. No questions.'), false);
  assert.equal(asksQuestion(null), false);
});
