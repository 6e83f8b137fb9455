/** The quality rules over hand-built trajectories: each rule fires where it should, and not on its near-miss. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DatasetEvent, FileChange, LabelEvent, RewindEvent, RunEndedEvent } from '../../src/core/dataset/events';
import { applyRules, diffSignature, RuleEngine, type RuleLabel, type RuleName, relabelEvents } from '../../src/core/supervision/rules';
import { LabelBook } from '../../src/core/supervision/labels';
import { filePatch, label, runStarted, step, type StepSpec, tick } from '../fixtures/trajectories';

/** The labels a rule gave, as [step, rule] pairs in the order they were given. */
function pairs(labels: readonly RuleLabel[]): Array<[number, RuleName]> {
  return labels.map((item) => [item.step, item.rule]);
}

function only(labels: readonly RuleLabel[], rule: RuleName): RuleLabel[] {
  return labels.filter((item) => item.rule === rule);
}

function run(...steps: DatasetEvent[]): DatasetEvent[] {
  return [runStarted('run-rules'), ...steps];
}

function rewind(toStep: number, parentStep: number, branch = 'b1'): RewindEvent {
  return { type: 'rewind', time: tick(), toStep, branch, parentStep, snapshot: `before${toStep}`, files: [] };
}

function ended(steps: number): RunEndedEvent {
  return { type: 'run_ended', time: tick(), status: 'finished', steps };
}

/** `count` deleted text files of `linesEach` lines each (the patch is left out: it does not matter here). */
function deletedFiles(count: number, linesEach: number): FileChange[] {
  return Array.from({ length: count }, (_, index) => ({ path: `old/f${index}.ts`, status: 'deleted' as const, additions: 0, deletions: linesEach, binary: false }));
}

function modified(path: string, deletions: number, additions = 1): FileChange[] {
  return [{ path, status: 'modified', additions, deletions, binary: false }];
}

const command = (text: string) => ({ command: text });

// ---------------------------------------------------------------------------------------------
// command_failed

test('command_failed flags a non-zero exit, a timeout, a kill, a stop and a failed start on execution, saying why', () => {
  const labels = applyRules(
    run(
      step(1, { tool: 'run_command', args: command('npm test'), observation: 'FAIL test/a.test.ts\n1 failing\n[exit code 1]', isError: true }),
      step(2, { tool: 'run_command', args: command('npm run slow'), observation: 'still going...\n[Timed out after 30 s; the command was killed.]', isError: true }),
      step(3, { tool: 'run_command', args: command('./server'), observation: 'listening\n[killed by SIGTERM]', isError: true }),
      step(4, { tool: 'run_command', args: command('sleep 100'), observation: '\n[The command was stopped.]', isError: true }),
      step(5, { tool: 'run_command', args: command('make'), observation: 'The command could not start: spawn /bin/bash ENOENT', isError: true }),
      step(6, { tool: 'run_command', args: command('false'), observation: '[exit code 2]', isError: true }),
    ),
  );
  assert.deepEqual(labels, [
    { step: 1, rule: 'command_failed', label: 'bad', axis: 'execution', reason: 'the command failed (exit code 1)' },
    { step: 2, rule: 'command_failed', label: 'bad', axis: 'execution', reason: 'the command timed out and was killed' },
    { step: 3, rule: 'command_failed', label: 'bad', axis: 'execution', reason: 'the command failed (killed by SIGTERM)' },
    { step: 4, rule: 'command_failed', label: 'bad', axis: 'execution', reason: 'the command was stopped before it ended' },
    { step: 5, rule: 'command_failed', label: 'bad', axis: 'execution', reason: 'the command could not start' },
    { step: 6, rule: 'command_failed', label: 'bad', axis: 'execution', reason: 'the command failed (exit code 2)' },
  ]);
});

test('command_failed does not fire on a command that exited 0, even when its output mentions errors', () => {
  const labels = applyRules(
    run(
      step(1, { tool: 'run_command', args: command('npm test'), observation: '12 passing\n[exit code 0]', isError: false }),
      step(2, { tool: 'run_command', args: command('grep -c error log.txt'), observation: 'error: 3 matches\n[exit code 1] was printed by the script\n[exit code 0]', isError: false }),
    ),
  );
  assert.deepEqual(labels, []);
});

// ---------------------------------------------------------------------------------------------
// tool_error

test('tool_error flags an edit that did not apply and arguments that are not JSON, with the refusal as reason', () => {
  const notFound = 'old_text was not found in src/a.ts; nothing was changed. Read the file and copy the text exactly (whitespace included).';
  const badJson = 'The arguments of write_file are not a valid JSON object: {"path": "a.ts", "content": . Send them again as JSON.';
  const labels = applyRules(
    run(
      step(1, { tool: 'edit_file', args: { path: 'src/a.ts', old_text: 'x = 1', new_text: 'x = 2' }, observation: notFound, isError: true }),
      step(2, { tool: 'write_file', args: '{"path": "a.ts", "content": ', observation: badJson, isError: true }),
      step(3, { tool: 'read_file', args: { path: 'missing.ts' }, observation: 'No such file or folder: /workspace/missing.ts\nsecond line', isError: true }),
    ),
  );
  assert.deepEqual(labels, [
    { step: 1, rule: 'tool_error', label: 'bad', axis: 'execution', reason: `edit_file was refused: ${notFound}` },
    { step: 2, rule: 'tool_error', label: 'bad', axis: 'execution', reason: `write_file was refused: ${badJson}` },
    { step: 3, rule: 'tool_error', label: 'bad', axis: 'execution', reason: 'read_file was refused: No such file or folder: /workspace/missing.ts' },
  ]);
});

test('tool_error cuts a long refusal to its first line of at most 160 characters', () => {
  const long = `${'x'.repeat(300)}\nmore`;
  const [refused] = applyRules(run(step(1, { tool: 'edit_file', args: { path: 'a' }, observation: long, isError: true })));
  assert.equal(refused.rule, 'tool_error');
  assert.equal(refused.reason, `edit_file was refused: ${'x'.repeat(159)}…`);
});

test('tool_error does not fire on a failed run_command (that is command_failed) nor on an edit that applied', () => {
  const patch = filePatch('src/a.ts', ['const x = 1;'], ['const x = 2;']);
  const labels = applyRules(
    run(
      step(1, { tool: 'run_command', args: command('tsc'), observation: 'error TS2322\n[exit code 2]', isError: true }),
      step(2, { tool: 'edit_file', args: { path: 'src/a.ts', old_text: 'const x = 1;', new_text: 'const x = 2;' }, observation: 'Edited src/a.ts at line 1.', ...patch }),
    ),
  );
  assert.deepEqual(pairs(labels), [[1, 'command_failed']]);
  assert.deepEqual(only(labels, 'tool_error'), []);
});

// ---------------------------------------------------------------------------------------------
// no_op

test('no_op flags write_file and edit_file that changed nothing on disk, on the decision axis', () => {
  const labels = applyRules(
    run(
      step(1, { tool: 'write_file', args: { path: 'a.ts', content: 'same' }, observation: 'Wrote 4 bytes to a.ts.' }),
      step(2, { tool: 'edit_file', args: { path: 'a.ts', old_text: 'same', new_text: 'same' }, observation: 'Edited a.ts at line 1.' }),
    ),
  );
  assert.deepEqual(labels, [
    { step: 1, rule: 'no_op', label: 'bad', axis: 'decision', reason: 'write_file changed nothing on disk' },
    { step: 2, rule: 'no_op', label: 'bad', axis: 'decision', reason: 'edit_file changed nothing on disk' },
  ]);
});

test('no_op does not fire on reads, on a write that errored, on a write that changed a file, nor on a turn without a tool call', () => {
  const labels = applyRules(
    run(
      step(1, { tool: 'read_file', args: { path: 'a.ts' }, observation: 'const x = 1;' }),
      step(2, { tool: 'list_dir', args: { path: 'src' }, observation: 'a.ts\nb.ts' }),
      step(3, { tool: 'search', args: { pattern: 'x' }, observation: 'src/a.ts:1:const x = 1;' }),
      step(4, { tool: 'write_file', args: { path: '../etc/passwd', content: 'x' }, observation: 'The path ../etc/passwd is outside the workspace.', isError: true }),
      step(5, { tool: 'write_file', args: { path: 'b.ts', content: 'new' }, observation: 'Wrote 3 bytes to b.ts.', ...filePatch('b.ts', [], ['new']) }),
      step(6, { tool: null }),
    ),
  );
  assert.deepEqual(only(labels, 'no_op'), []);
  // The errored write is still flagged, as a refusal rather than as a no-op.
  assert.deepEqual(pairs(labels), [[4, 'tool_error']]);
});

// ---------------------------------------------------------------------------------------------
// loop

test('loop flags the same call with the same result, whatever the order of its argument keys', () => {
  const labels = applyRules(
    run(
      step(1, { tool: 'search', args: { pattern: 'foo', path: 'src', options: { a: 1, b: [1, { c: 2, d: 3 }] } }, observation: 'src/a.ts:1:foo' }),
      step(2, { tool: 'read_file', args: { path: 'src/a.ts' }, observation: 'foo' }),
      step(3, { tool: 'search', args: { options: { b: [1, { d: 3, c: 2 }], a: 1 }, path: 'src', pattern: 'foo' }, observation: 'src/a.ts:1:foo' }),
    ),
  );
  assert.deepEqual(labels, [{ step: 3, rule: 'loop', label: 'bad', axis: 'decision', reason: 'repeats step 1: the same search call with the same result' }]);
});

test('loop does not fire when the result differs, when the arguments differ, or on job_read polling', () => {
  const labels = applyRules(
    run(
      step(1, { tool: 'run_command', args: command('ls'), observation: 'a.ts\n[exit code 0]' }),
      step(2, { tool: 'run_command', args: command('ls'), observation: 'a.ts\nb.ts\n[exit code 0]' }),
      step(3, { tool: 'run_command', args: command('ls -a'), observation: 'a.ts\nb.ts\n[exit code 0]' }),
      step(4, { tool: 'job_read', args: { name: 'server' }, observation: '[job "server": running]\n' }),
      step(5, { tool: 'job_read', args: { name: 'server' }, observation: '[job "server": running]\n' }),
      step(6, { tool: 'job_read', args: { name: 'server' }, observation: '[job "server": running]\n' }),
    ),
  );
  assert.deepEqual(labels, []);
});

test('loop looks back 5 steps by default: a repeat 5 steps later is a loop, 6 steps later it is not', () => {
  const repeated = { tool: 'search', args: { pattern: 'TODO' }, observation: 'src/a.ts:3:// TODO' };
  const within = applyRules(run(step(1, repeated), step(2), step(3), step(4), step(5), step(6, repeated)));
  assert.deepEqual(within, [{ step: 6, rule: 'loop', label: 'bad', axis: 'decision', reason: 'repeats step 1: the same search call with the same result' }]);
  const beyond = applyRules(run(step(1, repeated), step(2), step(3), step(4), step(5), step(6), step(7, repeated)));
  assert.deepEqual(beyond, []);
});

test('rule options apply: loopWindow 2 no longer sees a repeat 3 steps back, destructiveFiles 2 flags two deletions', () => {
  const repeated = { tool: 'search', args: { pattern: 'TODO' }, observation: 'src/a.ts:3:// TODO' };
  const events = run(step(1, repeated), step(2), step(3), step(4, repeated), step(5, { tool: 'run_command', args: command('rm a b'), observation: '[exit code 0]', files: deletedFiles(2, 1) }));
  assert.deepEqual(pairs(applyRules(events)), [[4, 'loop']], 'by default a repeat 3 steps back is a loop, and two deletions are fine');
  assert.deepEqual(pairs(applyRules(events, { loopWindow: 2 })), []);
  assert.deepEqual(pairs(applyRules(events, { loopWindow: 3 })), [[4, 'loop']]);
  assert.deepEqual(pairs(applyRules(events, { destructiveFiles: 2 })), [
    [4, 'loop'],
    [5, 'destructive'],
  ]);
});

test('loop does not reach across a rewind into the abandoned branch', () => {
  const repeated = { tool: 'run_command', args: command('npm test'), observation: '1 failing\n[exit code 1]', isError: true };
  const straight = applyRules(run(step(1), step(2, repeated), step(3, repeated)));
  assert.deepEqual(
    pairs(straight),
    [
      [2, 'command_failed'],
      [3, 'command_failed'],
      [3, 'loop'],
    ],
    'the control: without the rewind it is a loop',
  );
  const labels = applyRules(run(step(1), step(2, repeated), rewind(2, 1), step(3, { ...repeated, branch: 'b1', parentStep: 1 })));
  assert.deepEqual(pairs(labels), [
    [2, 'command_failed'],
    [3, 'command_failed'],
  ]);
});

// ---------------------------------------------------------------------------------------------
// reverted

test('reverted labels the earlier step when a later step undoes its diff, and names the later step', () => {
  const engine = new RuleEngine();
  const forward = filePatch('src/a.ts', ['const x = 1;'], ['const x = 2;']);
  const back = filePatch('src/a.ts', ['const x = 2;'], ['const x = 1;']);
  assert.deepEqual(engine.observe(runStarted('run-revert')), []);
  assert.deepEqual(engine.observe(step(1, { tool: 'edit_file', args: { path: 'src/a.ts', old_text: '1', new_text: '2' }, observation: 'Edited src/a.ts at line 1.', ...forward })), []);
  assert.deepEqual(engine.observe(step(2, { tool: 'read_file', args: { path: 'src/a.ts' } })), []);
  // The verdict is given when step 3 lands, but it is about step 1.
  assert.deepEqual(engine.observe(step(3, { tool: 'edit_file', args: { path: 'src/a.ts', old_text: '2', new_text: '1' }, observation: 'Edited src/a.ts at line 1.', ...back })), [
    { step: 1, rule: 'reverted', label: 'bad', axis: 'decision', reason: 'its changes were undone by step 3' },
  ]);
});

test('reverted sees a file created and later deleted, across several files, whatever else the later step also did', () => {
  const create = filePatch('notes.md', [], ['# notes', 'draft']);
  const remove = filePatch('notes.md', ['# notes', 'draft'], []);
  const other = filePatch('src/b.ts', ['let y = 0;'], ['let y = 1;']);
  const labels = applyRules(
    run(
      step(1, { tool: 'write_file', args: { path: 'notes.md', content: '# notes\ndraft\n' }, observation: 'Wrote 14 bytes to notes.md.', ...create }),
      step(2, {
        tool: 'run_command',
        args: command('rm notes.md && sed -i s/0/1/ src/b.ts'),
        observation: '[exit code 0]',
        files: [...remove.files, ...other.files],
        patch: remove.patch + other.patch,
      }),
    ),
  );
  assert.deepEqual(labels, [{ step: 1, rule: 'reverted', label: 'bad', axis: 'decision', reason: 'its changes were undone by step 2' }]);
});

test('reverted does not fire when the later diff only partly undoes the earlier one, nor when it changes the same lines again', () => {
  const twoLines = filePatch('src/a.ts', ['a', 'b'], ['A', 'B']);
  const oneBack = filePatch('src/a.ts', ['A'], ['a']);
  const further = filePatch('src/a.ts', ['A', 'B'], ['AA', 'BB']);
  const labels = applyRules(
    run(
      step(1, { tool: 'write_file', args: { path: 'src/a.ts', content: 'A\nB\n' }, observation: 'Wrote 4 bytes.', ...twoLines }),
      step(2, { tool: 'edit_file', args: { path: 'src/a.ts', old_text: 'A', new_text: 'a' }, observation: 'Edited src/a.ts at line 1.', ...oneBack }),
      step(3, { tool: 'write_file', args: { path: 'src/a.ts', content: 'AA\nBB\n' }, observation: 'Wrote 6 bytes.', ...further }),
    ),
  );
  assert.deepEqual(only(labels, 'reverted'), []);
  assert.deepEqual(labels, []);
});

test('after a rewind, a step of the new branch undoing an abandoned step does not label it; undoing a kept step still does', () => {
  const a = filePatch('src/a.ts', ['const x = 1;'], ['const x = 2;']);
  const aBack = filePatch('src/a.ts', ['const x = 2;'], ['const x = 1;']);
  const b = filePatch('src/b.ts', ['let y = 1;'], ['let y = 2;']);
  const bBack = filePatch('src/b.ts', ['let y = 2;'], ['let y = 1;']);
  const edit = (n: number, patch: { files: FileChange[]; patch: string }, extra: StepSpec = {}) =>
    step(n, { tool: 'edit_file', args: { path: patch.files[0].path, n }, observation: `Edited ${patch.files[0].path} at line 1.`, ...patch, ...extra });

  // Without the rewind, step 4 would label step 2: the control for what the rewind changes.
  const straight = applyRules(run(edit(1, a), edit(2, b), step(3), edit(4, bBack)));
  assert.deepEqual(pairs(straight), [[2, 'reverted']]);

  const rewound = applyRules(run(edit(1, a), edit(2, b), step(3), rewind(2, 1), edit(4, bBack, { branch: 'b1', parentStep: 1 }), edit(5, aBack, { branch: 'b1', parentStep: 4 })));
  assert.deepEqual(rewound, [{ step: 1, rule: 'reverted', label: 'bad', axis: 'decision', reason: 'its changes were undone by step 5' }]);
});

test('a step is labelled reverted once, and a redo of an undone step labels the undo', () => {
  const forward = filePatch('a.txt', ['0'], ['1']);
  const back = filePatch('a.txt', ['1'], ['0']);
  const write = (n: number, patch: { files: FileChange[]; patch: string }) => step(n, { tool: 'write_file', args: { path: 'a.txt', n }, observation: 'Wrote 2 bytes to a.txt.', ...patch });
  const labels = applyRules(run(write(1, forward), write(2, back), write(3, forward), write(4, back)));
  assert.deepEqual(
    labels.map((item) => [item.step, item.rule, item.reason]),
    [
      [1, 'reverted', 'its changes were undone by step 2'],
      [2, 'reverted', 'its changes were undone by step 3'],
      [3, 'reverted', 'its changes were undone by step 4'],
    ],
  );
});

test('reverted looks back 20 steps by default, and revertWindow changes that', () => {
  const forward = filePatch('a.txt', ['0'], ['1']);
  const back = filePatch('a.txt', ['1'], ['0']);
  const fillers = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => step(from + index));
  const write = (n: number, patch: { files: FileChange[]; patch: string }) => step(n, { tool: 'write_file', args: { path: 'a.txt', n }, observation: 'Wrote 2 bytes to a.txt.', ...patch });

  const within = run(write(1, forward), ...fillers(2, 20), write(21, back));
  assert.deepEqual(applyRules(within), [{ step: 1, rule: 'reverted', label: 'bad', axis: 'decision', reason: 'its changes were undone by step 21' }]);
  assert.deepEqual(applyRules(within, { revertWindow: 19 }), []);
  assert.deepEqual(applyRules(within, { revertWindow: 19, loopWindow: 30 }), [], 'the revert window holds even when a longer loop window keeps more steps');

  const beyond = run(write(1, forward), ...fillers(2, 21), write(22, back));
  assert.deepEqual(applyRules(beyond), []);
  assert.deepEqual(pairs(applyRules(beyond, { revertWindow: 21 })), [[1, 'reverted']]);
});

test('diffSignature is undefined when the undo cannot be told from the text', () => {
  const patch = filePatch('a.txt', ['0'], ['1']);
  assert.deepEqual(diffSignature(step(1, patch)), ['a/a.txt b/a.txt\n+1\n-0']);
  assert.equal(diffSignature(step(2)), undefined, 'no files changed');
  assert.equal(diffSignature({ ...step(3), grounding: { before: 'x', after: 'y', ...patch, patchTruncated: true } }), undefined, 'a cut patch');
  assert.equal(diffSignature({ ...step(4), grounding: { before: 'x', after: 'y', patch: patch.patch, files: [{ ...patch.files[0], binary: true }] } }), undefined, 'a binary file');
  const modeOnly = 'diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n';
  assert.equal(diffSignature({ ...step(5), grounding: { before: 'x', after: 'y', patch: modeOnly, files: modified('run.sh', 0, 0) } }), undefined, 'a mode-only change');
});

// ---------------------------------------------------------------------------------------------
// destructive

test('destructive flags deleting 3 files or removing 200 lines in one action, saying how much', () => {
  const labels = applyRules(
    run(
      step(1, { tool: 'run_command', args: command('rm old/*'), observation: '[exit code 0]', files: deletedFiles(3, 4) }),
      step(2, { tool: 'write_file', args: { path: 'big.ts', content: 'x' }, observation: 'Wrote 1 bytes to big.ts.', files: modified('big.ts', 200) }),
      step(3, { tool: 'run_command', args: command('git clean -f'), observation: '[exit code 0]', files: deletedFiles(5, 0) }),
    ),
  );
  assert.deepEqual(labels, [
    { step: 1, rule: 'destructive', label: 'bad', axis: 'decision', reason: 'deleted 3 file(s) and removed 12 line(s) in one action' },
    { step: 2, rule: 'destructive', label: 'bad', axis: 'decision', reason: 'removed 200 line(s) in one action' },
    { step: 3, rule: 'destructive', label: 'bad', axis: 'decision', reason: 'deleted 5 file(s) in one action' },
  ]);
});

test('destructive does not fire below its thresholds: 2 files deleted, 199 lines removed', () => {
  const labels = applyRules(
    run(
      step(1, { tool: 'run_command', args: command('rm a b'), observation: '[exit code 0]', files: deletedFiles(2, 50) }),
      step(2, { tool: 'write_file', args: { path: 'big.ts', content: 'x' }, observation: 'Wrote 1 bytes to big.ts.', files: modified('big.ts', 199) }),
      step(3, { tool: 'write_file', args: { path: 'two.ts', content: 'x' }, observation: 'Wrote 1 bytes to two.ts.', files: [...modified('c.ts', 100), ...modified('d.ts', 99)] }),
    ),
  );
  assert.deepEqual(labels, []);
});

// ---------------------------------------------------------------------------------------------
// a whole run

/** A run with one of everything, and events the rules must pass over. */
function wholeRun(): DatasetEvent[] {
  const forward = filePatch('src/a.ts', ['const x = 1;'], ['const x = 2;']);
  const back = filePatch('src/a.ts', ['const x = 2;'], ['const x = 1;']);
  const failing = { tool: 'run_command', args: command('npm test'), observation: '1 failing\n[exit code 1]', isError: true };
  return [
    runStarted('run-whole'),
    step(1, { tool: 'read_file', args: { path: 'src/a.ts' }, observation: 'const x = 1;' }),
    step(2, { tool: 'edit_file', args: { path: 'src/a.ts', old_text: 'x = 3', new_text: 'x = 2' }, observation: 'old_text was not found in src/a.ts; nothing was changed.', isError: true }),
    step(3, { tool: 'edit_file', args: { path: 'src/a.ts', old_text: 'x = 1', new_text: 'x = 2' }, observation: 'Edited src/a.ts at line 1.', ...forward }),
    step(4, failing),
    { type: 'hint_queued', time: tick(), hintId: 'h1', text: 'Read the test first.', kind: 'strategy', source: 'panel' },
    { type: 'hint_delivered', time: tick(), hintId: 'h1', step: 5 },
    step(5, failing),
    label(5, 'good', 'human'),
    step(6, { tool: 'edit_file', args: { path: 'src/a.ts', old_text: 'x = 2', new_text: 'x = 1' }, observation: 'Edited src/a.ts at line 1.', ...back }),
    step(7, { tool: 'write_file', args: { path: 'src/b.ts', content: 'same' }, observation: 'Wrote 4 bytes to src/b.ts.' }),
    step(8, { tool: 'run_command', args: command('rm -r legacy'), observation: '[exit code 0]', files: deletedFiles(3, 4) }),
    step(9, { tool: 'finish', args: { summary: 'done' }, observation: 'Task finished.' }),
    ended(9),
  ];
}

test('applyRules over a whole run gives each rule its verdict on the right step, in the order they arise', () => {
  assert.deepEqual(applyRules(wholeRun()), [
    { step: 2, rule: 'tool_error', label: 'bad', axis: 'execution', reason: 'edit_file was refused: old_text was not found in src/a.ts; nothing was changed.' },
    { step: 4, rule: 'command_failed', label: 'bad', axis: 'execution', reason: 'the command failed (exit code 1)' },
    { step: 5, rule: 'command_failed', label: 'bad', axis: 'execution', reason: 'the command failed (exit code 1)' },
    { step: 5, rule: 'loop', label: 'bad', axis: 'decision', reason: 'repeats step 4: the same run_command call with the same result' },
    { step: 3, rule: 'reverted', label: 'bad', axis: 'decision', reason: 'its changes were undone by step 6' },
    { step: 7, rule: 'no_op', label: 'bad', axis: 'decision', reason: 'write_file changed nothing on disk' },
    { step: 8, rule: 'destructive', label: 'bad', axis: 'decision', reason: 'deleted 3 file(s) and removed 12 line(s) in one action' },
  ]);
});

test('applyRules gives the same verdicts as a RuleEngine fed event by event', () => {
  const engine = new RuleEngine();
  const live = wholeRun().flatMap((event) => engine.observe(event));
  assert.equal(live.length, 7);
  assert.deepEqual(applyRules(wholeRun()), live);
});

// ---------------------------------------------------------------------------------------------
// relabelEvents

const RELABEL_TIME = '2026-02-01T00:00:00.000Z';

test('relabelEvents appends new verdicts, takes back a rule verdict no longer given, and leaves human and judge labels alone', () => {
  const events: DatasetEvent[] = [
    runStarted('run-relabel'),
    step(1, { tool: 'run_command', args: command('npm test'), observation: '1 failing\n[exit code 1]', isError: true }),
    label(1, 'good', 'judge:gpt', { reason: 'reasonable first try' }),
    step(2, { tool: 'read_file', args: { path: 'test/a.test.ts' }, observation: 'it("adds")' }),
    // Recorded by an older version of the rules: step 2 is not a loop.
    label(2, 'bad', 'rule:loop', { axis: 'decision', reason: 'repeats step 1' }),
    label(2, 'bad', 'human', { axis: 'execution', reason: 'read the wrong file' }),
    label(2, 'bad', 'judge:gpt'),
    ended(2),
  ];
  const appended = relabelEvents(events, RELABEL_TIME);
  const expected: LabelEvent[] = [
    { type: 'label', time: RELABEL_TIME, step: 1, label: 'bad', axis: 'execution', source: 'rule:command_failed', reason: 'the command failed (exit code 1)' },
    { type: 'label', time: RELABEL_TIME, step: 2, label: 'neutral', axis: 'decision', source: 'rule:loop', reason: 'no longer flagged by rule:loop' },
  ];
  assert.deepEqual(appended, expected);
  assert.ok(
    appended.every((event) => event.source.startsWith('rule:')),
    'human and judge labels are never taken back',
  );

  // With the take-back, the old loop verdict no longer counts among the rules.
  const book = new LabelBook();
  for (const event of [...events, ...appended]) if (event.type === 'label') book.add(event);
  assert.equal(book.latestBySource(2).get('rule:loop')?.get('decision'), 'neutral');
  assert.equal(book.latestBySource(2).get('human')?.get('execution'), 'bad');
});

test('relabelEvents is idempotent: a second pass over the events and its own output appends nothing', () => {
  const first = relabelEvents(wholeRun(), RELABEL_TIME);
  assert.equal(first.length, 7, 'every verdict of the whole run is new');
  assert.deepEqual(
    first.map((event) => event.step),
    [2, 3, 4, 5, 5, 7, 8],
    'sorted by step',
  );
  const second = relabelEvents([...wholeRun(), ...first], '2026-02-02T00:00:00.000Z');
  assert.deepEqual(second, []);
});

test('relabelEvents does not repeat a verdict already recorded, and gives again one that was taken back', () => {
  const failing = step(1, { tool: 'run_command', args: command('npm test'), observation: '1 failing\n[exit code 1]', isError: true });
  const recorded = label(1, 'bad', 'rule:command_failed', { axis: 'execution', reason: 'the command failed (exit code 1)' });
  assert.deepEqual(relabelEvents([runStarted('r'), failing, recorded], RELABEL_TIME), []);

  const takenBack = label(1, 'neutral', 'rule:command_failed', { axis: 'execution', reason: 'no longer flagged by rule:command_failed' });
  assert.deepEqual(relabelEvents([runStarted('r'), failing, recorded, takenBack], RELABEL_TIME), [
    { type: 'label', time: RELABEL_TIME, step: 1, label: 'bad', axis: 'execution', source: 'rule:command_failed', reason: 'the command failed (exit code 1)' },
  ]);
});

test('relabelEvents with changed options takes back the verdicts the new options no longer give', () => {
  const repeated = { tool: 'search', args: { pattern: 'TODO' }, observation: 'src/a.ts:3:// TODO' };
  const steps = run(step(1, repeated), step(2), step(3), step(4, repeated));
  const first = relabelEvents(steps, RELABEL_TIME);
  assert.deepEqual(
    first.map((event) => [event.step, event.source, event.label]),
    [[4, 'rule:loop', 'bad']],
  );
  const narrower = relabelEvents([...steps, ...first], RELABEL_TIME, { loopWindow: 2 });
  assert.deepEqual(narrower, [{ type: 'label', time: RELABEL_TIME, step: 4, label: 'neutral', axis: 'decision', source: 'rule:loop', reason: 'no longer flagged by rule:loop' }]);
  assert.deepEqual(relabelEvents([...steps, ...first, ...narrower], RELABEL_TIME, { loopWindow: 2 }), []);
});

// ---------------------------------------------------------------------------------------------
// Known bugs, kept as executable descriptions (node:test reports them as TODO and does not fail the run).

test('reverted: a diff in a different file that happens to swap the same lines does not undo anything', () => {
  const labels = applyRules(
    run(
      step(1, { tool: 'edit_file', args: { path: 'src/a.ts' }, observation: 'Edited src/a.ts at line 1.', ...filePatch('src/a.ts', ['const x = 1;'], ['const x = 2;']) }),
      step(2, { tool: 'edit_file', args: { path: 'src/b.ts' }, observation: 'Edited src/b.ts at line 1.', ...filePatch('src/b.ts', ['const x = 2;'], ['const x = 1;']) }),
    ),
  );
  assert.deepEqual(labels, []);
});

test('command_failed keeps the exit code when the observation ends with the "[Full output … kept]" note', () => {
  const observation = 'FAIL …\n[exit code 1]\n[Full output (25000 characters) kept in the dataset: outputs/step-1-output.txt]';
  const [first] = applyRules(run(step(1, { tool: 'run_command', args: command('npm test'), observation, isError: true })));
  assert.equal(first.reason, 'the command failed (exit code 1)');
});

test('loop sees a repeated long-output command whose observations differ only by the kept-output file name', () => {
  const observation = (n: number) => `FAIL …\n[exit code 1]\n[Full output (25000 characters) kept in the dataset: outputs/step-${n}-output.txt]`;
  const labels = applyRules(
    run(
      step(1, { tool: 'run_command', args: command('npm test'), observation: observation(1), isError: true }),
      step(2, { tool: 'run_command', args: command('npm test'), observation: observation(2), isError: true }),
    ),
  );
  assert.deepEqual(pairs(only(labels, 'loop')), [[2, 'loop']]);
});

test('a run_command whose arguments were refused never ran: it is a tool error, not a failed command', () => {
  const labels = applyRules(
    run(step(1, { tool: 'run_command', args: '{"command": ', observation: 'The arguments of run_command are not a valid JSON object: {"command": . Send them again as JSON.', isError: true })),
  );
  assert.deepEqual(pairs(labels), [[1, 'tool_error']]);
  assert.match(labels[0].reason, /^run_command was refused: The arguments of run_command are not a valid JSON object/);
});

// ---------------------------------------------------------------------------------------------
// mixed grounding: someone else saved files while the action ran

/** A step whose grounding is marked mixed: the user saved `saved` while its action ran. */
function mixedStep(number: number, spec: StepSpec, saved: string[]): DatasetEvent {
  const event = step(number, spec);
  if (event.type === 'step') event.grounding = { ...event.grounding, mixed: { files: saved } };
  return event;
}

test('a mixed step gets no diff-based label: not no_op, not destructive, and its diff neither reverts nor is reverted', () => {
  const removed = Array.from({ length: 250 }, (_, index) => `line ${index}`);
  const big = filePatch('src/big.ts', removed, []);
  const forward = filePatch('src/a.ts', ['const x = 1;'], ['const x = 2;']);
  const back = filePatch('src/a.ts', ['const x = 2;'], ['const x = 1;']);
  const writeSpec: StepSpec = { tool: 'write_file', args: { path: 'src/c.ts', content: 'c' }, observation: 'Wrote 1 bytes to src/c.ts.' };
  // The same trajectory, plain: every diff rule fires.
  const plain = applyRules(
    run(
      step(1, { tool: 'run_command', args: { command: 'true' }, ...big }),
      step(2, writeSpec),
      step(3, { tool: 'edit_file', args: { path: 'src/a.ts' }, ...forward }),
      step(4, { tool: 'edit_file', args: { path: 'src/a.ts' }, ...back }),
    ),
  );
  assert.deepEqual(pairs(plain), [
    [1, 'destructive'],
    [2, 'no_op'],
    [3, 'reverted'],
  ]);
  // Marked mixed, the diff is not the agent's alone: none of them.
  const mixed = applyRules(
    run(
      mixedStep(1, { tool: 'run_command', args: { command: 'true' }, ...big }, ['src/big.ts']),
      mixedStep(2, writeSpec, ['notes.md']),
      step(3, { tool: 'edit_file', args: { path: 'src/a.ts' }, ...forward }),
      mixedStep(4, { tool: 'edit_file', args: { path: 'src/a.ts' }, ...back }, ['src/a.ts']),
    ),
  );
  assert.deepEqual(pairs(mixed), []);
  // A mixed step is still judged on what is not its diff: a failed command is still a failure.
  const failed = applyRules(run(mixedStep(1, { tool: 'run_command', args: { command: 'false' }, isError: true, observation: 'x\n[exit code 1]' }, ['a.ts'])));
  assert.deepEqual(pairs(failed), [[1, 'command_failed']]);
});

test("external changes are no step's diff: the rules read none of them", () => {
  const deleted = filePatch(
    'src/big.ts',
    Array.from({ length: 250 }, (_, index) => `line ${index}`),
    [],
  );
  const external: DatasetEvent = { type: 'external_change', time: tick(), step: 2, phase: 'during_request', grounding: { before: 'x', after: 'y', ...deleted } };
  assert.deepEqual(applyRules(run(step(1), external, step(2))), []);
});
