import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DatasetEvent, StepEvent } from '../../src/core/dataset/events';
import { buildTimeline, stepDetail, summarizeArguments, TimelineModel, timelineNote, toTimelineStep } from '../../src/core/session/timeline';
import { TimelineData } from '../../webview/timelineData';
import type { HostToWebview } from '../../src/protocol';
import { resolveEndpoint } from '../../src/core/session/endpoint';
import { runStarted } from '../fixtures/trajectories';

const time = '2026-01-01T00:00:00.000Z';

function step(number: number, name: string | null, args: object | string, extra: Partial<StepEvent> = {}): StepEvent {
  const call = name ? { id: `c${number}`, name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } : null;
  return {
    type: 'step',
    time,
    step: number,
    assistant: { content: name ? null : 'just talking', toolCalls: call ? [call] : [] },
    action: call,
    observation: 'line one\n   line two\n' + 'x'.repeat(400),
    isError: false,
    grounding: {
      before: 'a',
      after: 'b',
      files: [
        { path: 'a.ts', status: 'modified', additions: 3, deletions: 1, binary: false },
        { path: 'b.png', status: 'added', additions: 0, deletions: 0, binary: true },
      ],
      patch: '',
    },
    modelMs: 1,
    toolMs: 1,
    ...extra,
  };
}

test('a step becomes a compact timeline item', () => {
  const item = toTimelineStep(step(4, 'run_command', { command: 'npm   test\n -- --watch=false' }));
  assert.equal(item.tool, 'run_command');
  assert.equal(item.args, 'npm test -- --watch=false');
  assert.ok(item.observation.startsWith('line one line two xxx'));
  assert.equal(item.observation.length, 200);
  assert.deepEqual(item.diff, { files: 2, additions: 3, deletions: 1 });
  assert.equal(toTimelineStep(step(5, null, '')).args, 'just talking');
});

test('arguments are summarised by what identifies the action', () => {
  assert.equal(summarizeArguments('{"path":"src/a.ts","content":"…"}'), 'src/a.ts');
  assert.equal(summarizeArguments('{"summary":"all done"}'), 'all done');
  assert.equal(summarizeArguments('{}'), '');
  assert.match(summarizeArguments('{"path": '), /^\(invalid JSON\)/);
  assert.equal(summarizeArguments(JSON.stringify({ command: 'y'.repeat(200) })).length, 80);
});

test('the whole timeline is rebuilt from events: hints where delivered, labels, final status', () => {
  const events: DatasetEvent[] = [
    { type: 'run_started', time, version: 1, runId: 'r1', task: 'do it', workspace: '/w', model: 'm', baseUrl: 'http://x', maxSteps: 5, systemPrompt: 's', tools: [] },
    step(1, 'list_dir', {}),
    { type: 'hint_queued', time, hintId: 'h1', text: 'look left', kind: 'strategy', source: 'human' },
    { type: 'hint_queued', time, hintId: 'h2', text: 'still queued', kind: 'knowledge', source: 'human' },
    { type: 'hint_delivered', time, hintId: 'h1', step: 2 },
    step(2, 'read_file', { path: 'left.txt' }),
    { type: 'label', time, step: 2, label: 'bad', source: 'human' },
    { type: 'run_ended', time, status: 'failed', steps: 2, error: 'boom' },
  ];
  const { run, steps, hints } = buildTimeline(events);
  assert.deepEqual(run, {
    runId: 'r1',
    task: 'do it',
    status: 'failed',
    steps: 2,
    model: 'm',
    error: 'boom',
    startedAt: time,
    endedAt: time,
    tokens: 0,
    hints: 2,
    maskedShare: 0.5,
    redactions: 0,
    readOnly: false,
    live: false,
  });
  assert.deepEqual(
    steps.map((item) => [item.step, item.labels]),
    [
      [1, []],
      [2, [{ label: 'bad', source: 'human' }]],
    ],
  );
  assert.deepEqual(hints, [
    { hintId: 'h1', text: 'look left', kind: 'strategy', deliveredAtStep: 2 },
    { hintId: 'h2', text: 'still queued', kind: 'knowledge' },
  ]);
  assert.deepEqual(buildTimeline([]), { type: 'init', run: null, steps: [], hints: [], notes: [], attention: [], unseen: 0 });
});

test('the endpoint comes from settings, then the environment, and says what is missing', () => {
  const env = { OPENAI_BASE_URL: 'http://env/v1', OPENAI_MODEL: 'env-model', OPENAI_API_KEY: 'env-key' };
  assert.deepEqual(resolveEndpoint({ baseUrlSetting: ' http://set/v1 ', modelSetting: 'set-model', storedKey: 'stored', env }), {
    baseUrl: 'http://set/v1',
    model: 'set-model',
    apiKey: 'stored',
  });
  assert.deepEqual(resolveEndpoint({ baseUrlSetting: '', modelSetting: '', storedKey: undefined, env }), {
    baseUrl: 'http://env/v1',
    model: 'env-model',
    apiKey: 'env-key',
  });
  const none = { baseUrlSetting: '', modelSetting: '', storedKey: undefined, env: {} };
  assert.match(resolveEndpoint(none).problem ?? '', /apollo\.baseUrl/);
  assert.deepEqual(resolveEndpoint(none).action, { label: 'Open Settings', setting: 'apollo.baseUrl' });
  assert.match(resolveEndpoint({ ...none, baseUrlSetting: 'http://x/v1' }).problem ?? '', /apollo\.model/);
  const noKey = resolveEndpoint({ ...none, baseUrlSetting: 'http://x/v1', modelSetting: 'm' });
  assert.match(noKey.problem ?? '', /Apollo: Set API Key/);
  assert.deepEqual(noKey.action, { label: 'Set API Key', command: 'apollo.setApiKey' });
});

test('panel messages are validated field by field', async () => {
  const { parseWebviewMessage } = await import('../../src/protocol');
  assert.deepEqual(parseWebviewMessage({ type: 'sendHint', text: 'hi', kind: 'strategy', extra: 1 }), { type: 'sendHint', text: 'hi', kind: 'strategy', urgency: 'next' });
  assert.deepEqual(parseWebviewMessage({ type: 'sendHint', text: 'hi', kind: 'strategy', urgency: 'now' }), { type: 'sendHint', text: 'hi', kind: 'strategy', urgency: 'now' });
  assert.deepEqual(parseWebviewMessage({ type: 'labelStep', step: 3, label: 'good' }), { type: 'labelStep', step: 3, label: 'good' });
  // Actions on one of several runs name it; a hint for a named run carries the name through.
  assert.deepEqual(parseWebviewMessage({ type: 'sendHint', text: 'hi', kind: 'knowledge', runId: 'run-1' }), { type: 'sendHint', text: 'hi', kind: 'knowledge', urgency: 'next', runId: 'run-1' });
  assert.deepEqual(parseWebviewMessage({ type: 'stopRun', runId: 'run-1' }), { type: 'stopRun', runId: 'run-1' });
  assert.deepEqual(parseWebviewMessage({ type: 'sampleRuns', task: 'fix it' }), { type: 'sampleRuns', task: 'fix it' });
  assert.deepEqual(parseWebviewMessage({ type: 'adoptRun', runId: 'run-1', overwrite: false }), { type: 'adoptRun', runId: 'run-1', overwrite: false });
  for (const bad of [
    undefined,
    7,
    [],
    { type: 'labelStep', step: 1.5, label: 'good' },
    { type: 'labelStep', step: 1, label: 'neutral' },
    { type: 'startRun', task: 'x'.repeat(100_001) },
    { type: 'openDiff', step: '2' },
    { type: 'sendHint', text: 'x', kind: 'strategy', urgency: 'later' },
    { type: 'sendHint', text: 'x', kind: 'strategy', runId: '../other' },
    { type: 'pauseRun', runId: 42 },
    { type: 'sampleRuns' },
    { type: 'adoptRun', runId: 'run-1' },
    { type: 'adoptRun', runId: 'run-1', overwrite: 'yes' },
    { type: 'previewAdopt', runId: '' },
    { type: 'nope' },
  ]) {
    assert.equal(parseWebviewMessage(bad), undefined, JSON.stringify(bad)?.slice(0, 60));
  }
});

const started: DatasetEvent = { type: 'run_started', time, version: 1, runId: 'r2', task: 't', workspace: '/w', model: 'm', baseUrl: 'http://x', maxSteps: 50, systemPrompt: 's', tools: [] };

test('the live model sends only what an event changes', () => {
  const model = new TimelineModel({ policy: 'not-bad', readOnly: false });
  model.observe(started);
  const types = (messages: HostToWebview[]) => messages.map((message) => message.type);
  assert.deepEqual(types(model.observe(step(1, 'list_dir', {}, { usage: { promptTokens: 100, completionTokens: 5 } }))), ['stepAdded', 'runUpdated']);
  assert.deepEqual(types(model.observe({ type: 'label', time, step: 1, label: 'bad', source: 'rule:tool_error' })), ['labelAdded', 'runUpdated']);
  const updated = model.observe({ type: 'label', time, step: 1, label: 'good', source: 'human' }).find((message) => message.type === 'runUpdated');
  assert.equal(updated?.type === 'runUpdated' && updated.run.maskedShare, 0, 'the human label outranks the rule: no longer masked');
  assert.equal(updated?.type === 'runUpdated' && updated.run.tokens, 105);
  assert.deepEqual(types(model.observe({ type: 'summary', time, step: 2, keptFromStep: 1, text: 'state', tokensBefore: 900, tokensAfter: 300 })), ['summaryAdded', 'runUpdated']);
  const [added] = model.observe(step(2, 'read_file', { path: 'a' }));
  assert.equal(added.type === 'stepAdded' && added.step.summaryBefore?.tokensAfter, 300);
});

test('a rewind reshapes the timeline: the abandoned steps are marked and the new branch says where it starts', () => {
  const model = new TimelineModel({ policy: 'not-bad', readOnly: false });
  for (const event of [started, step(1, 'list_dir', {}), step(2, 'list_dir', {}), step(3, 'list_dir', {})]) model.observe(event);
  const [init] = model.observe({ type: 'rewind', time, toStep: 2, branch: 'b-1', parentStep: 1, snapshot: 'x', files: [] });
  assert.equal(init.type, 'init');
  model.observe(step(4, 'read_file', { path: 'a' }, { branch: 'b-1', parentStep: 1 }));
  const { steps, run } = model.init();
  assert.deepEqual(
    steps.map((item) => [item.step, !!item.abandoned, item.branch ?? null, item.branchFrom ?? null]),
    [
      [1, false, null, null],
      [2, true, null, null],
      [3, true, null, null],
      [4, false, 'b-1', 1],
    ],
  );
  assert.equal(run?.steps, 4);
});

test('attention flags reach the panel with the count not yet seen, until the annotator looks', () => {
  const model = new TimelineModel({ policy: 'not-bad', readOnly: false });
  model.observe(started);
  const failing = (n: number) => step(n, 'run_command', { command: 'make' }, { isError: true, grounding: { before: 'a', after: 'a', files: [], patch: '' } });
  assert.equal(
    model.observe(failing(1)).some((message) => message.type === 'attention'),
    false,
  );
  model.observe(failing(2));
  const flag = model.observe(failing(3)).find((message) => message.type === 'attention');
  assert.deepEqual(flag, { type: 'attention', flag: { step: 3, kind: 'failures', message: '3 failed actions in a row' }, unseen: 1 });
  assert.deepEqual(model.flaggedSteps(), [3]);
  model.markSeen();
  assert.equal(model.unseenFlags, 0);
  assert.deepEqual(model.init().attention, [{ step: 3, kind: 'failures', message: '3 failed actions in a row' }]);
});

test('a sampled run shows its task id and origin, a budget stop says why, and adopting is noted', () => {
  const model = new TimelineModel({ policy: 'not-bad', readOnly: false });
  model.observe({ ...runStarted('r-1'), taskId: 'task-1', origin: { workspace: '/home/me/project', snapshot: 'a'.repeat(40) } });
  const failing = (n: number) => step(n, 'run_command', { command: 'make' }, { isError: true });
  for (const n of [1, 2, 3]) model.observe(failing(n));
  assert.deepEqual(
    model.unseenFlagList().map((flag) => [flag.step, flag.kind]),
    [[3, 'failures']],
  );
  model.markSeen();
  assert.deepEqual(model.unseenFlagList(), []);
  const ended = model.observe({ type: 'run_ended', time, status: 'budget', budget: 'tokens', steps: 3, summary: 'Stopped: the run reached its token budget of 1,000 after 3 steps.' });
  const view = ended.find((message) => message.type === 'runUpdated');
  assert.ok(view?.type === 'runUpdated');
  assert.deepEqual(
    [view.run.taskId, view.run.originWorkspace, view.run.status, view.run.stopReason, view.run.error],
    ['task-1', '/home/me/project', 'budget', 'Stopped: the run reached its token budget of 1,000 after 3 steps.', undefined],
  );
  const adopted = model.observe({ type: 'run_adopted', time: '2026-01-01T02:00:00.000Z', workspace: '/home/me/project', snapshot: 'b'.repeat(40), files: [], overwritten: [] });
  const after = adopted.find((message) => message.type === 'runUpdated');
  assert.equal(after?.type === 'runUpdated' && after.run.adoptedAt, '2026-01-01T02:00:00.000Z');
});

test('the step detail holds the reasoning, every call the turn ran, the calls it did not run and what they all changed', () => {
  const second = { id: 'c2b', name: 'run_command', arguments: '{"command":"make"}' };
  const event = step(
    2,
    'write_file',
    { path: 'a.ts', content: 'x' },
    {
      assistant: {
        content: 'Writing, then building.',
        reasoning: 'a.ts lacks the export; add it, then build.',
        toolCalls: [{ id: 'c2', name: 'write_file', arguments: '{"path":"a.ts","content":"x"}' }, second, { id: 'c2c', name: 'finish', arguments: '{}' }],
      },
      moreActions: [
        {
          action: second,
          observation: 'make: ok',
          isError: false,
          toolMs: 1,
          grounding: { before: 'b', after: 'c', files: [{ path: 'out.js', status: 'added', additions: 1, deletions: 0, binary: false }], patch: 'diff --git a/out.js b/out.js\n' },
        },
      ],
      skippedToolCalls: [{ id: 'c2c', content: 'Not run: finish must be the only call of its turn.' }],
    },
  );
  const detail = stepDetail(event);
  assert.equal(detail.reasoning, 'a.ts lacks the export; add it, then build.');
  assert.equal(detail.thought, 'Writing, then building.');
  assert.equal(detail.truncated, false);
  assert.deepEqual(detail.moreActions, [{ tool: 'run_command', arguments: '{\n  "command": "make"\n}', observation: 'make: ok', isError: false }]);
  assert.deepEqual(detail.skipped, [{ tool: 'finish', reason: 'Not run: finish must be the only call of its turn.' }]);
  assert.deepEqual(
    detail.files.map((file) => file.path),
    ['a.ts', 'b.png', 'out.js'],
  );
  const plain = stepDetail(step(3, 'list_dir', {}));
  assert.deepEqual([plain.reasoning, plain.moreActions, plain.skipped], ['', [], []]);
  const cut = stepDetail(
    step(4, null, '', {
      assistant: { content: 'Next file.', toolCalls: [{ id: 'c4', name: 'write_file', arguments: '{"pa' }], truncated: true },
      skippedToolCalls: [{ id: 'c4', content: 'Cut by the output limit; not run.' }],
    }),
  );
  assert.equal(cut.truncated, true);
  assert.deepEqual(cut.skipped, [{ tool: 'write_file', reason: 'Cut by the output limit; not run.' }]);
});

test("undelivered hints, notices and refused prompts become timeline notes; the run setup's context window does not", () => {
  const model = new TimelineModel({ policy: 'not-bad', readOnly: false });
  model.observe(runStarted('r-notes'));
  assert.equal(
    model.observe({ type: 'context_window', time, windowTokens: 32_768, budgetTokens: 24_000, source: 'server' }).some((message) => message.type === 'timelineNote'),
    false,
  );
  model.observe(step(1, 'list_dir', {}));
  model.observe({ type: 'hint_queued', time, hintId: 'h9', text: 'try the other branch', kind: 'strategy', source: 'human' });
  const refused = model.observe({ type: 'context_window', time, windowTokens: 8192, budgetTokens: 6000, source: 'refusal', detail: 'maximum context length is 8192 tokens' });
  assert.deepEqual(
    refused.find((message) => message.type === 'timelineNote'),
    {
      type: 'timelineNote',
      note: {
        kind: 'context',
        step: 1,
        text: 'The server refused a prompt as too long (window 8,192 tokens): the prompt budget is now 6,000 tokens',
        title: 'The server refused a prompt as too long (window 8,192 tokens): the prompt budget is now 6,000 tokens. maximum context length is 8192 tokens',
      },
    },
  );
  model.observe(step(2, 'list_dir', {}));
  const noticed = model.observe({ type: 'notice', time, step: 1, message: 'The server reports no token usage; counts are estimated.' });
  assert.deepEqual(
    noticed.find((message) => message.type === 'timelineNote'),
    {
      type: 'timelineNote',
      note: { kind: 'notice', step: 1, text: 'Notice: The server reports no token usage; counts are estimated.', title: 'Notice: The server reports no token usage; counts are estimated.' },
    },
  );
  const undelivered = model.observe({ type: 'hint_undelivered', time, hintId: 'h9', reason: 'the run finished before its next step' });
  assert.deepEqual(
    undelivered.find((message) => message.type === 'hintUndelivered'),
    { type: 'hintUndelivered', hintId: 'h9', reason: 'the run finished before its next step' },
  );
  const note = undelivered.find((message) => message.type === 'timelineNote');
  assert.ok(note?.type === 'timelineNote');
  assert.deepEqual([note.note.kind, note.note.step, note.note.text], ['undelivered', 2, 'Hint not delivered: the run finished before its next step']);
  assert.match(note.note.title, /The hint \(strategy\): try the other branch/);
  const init = model.init();
  assert.deepEqual(
    init.notes.map((entry) => [entry.kind, entry.step]),
    [
      ['context', 1],
      ['notice', 1],
      ['undelivered', 2],
    ],
  );
  assert.equal(init.hints.find((hint) => hint.hintId === 'h9')?.undelivered, 'the run finished before its next step');
  // Before any step a note waits above step 1.
  assert.equal(timelineNote({ type: 'notice', time, message: 'early' }, 0)?.step, 1);
});

test('the panel places notes above their step, counts them in the row height and keeps them in its saved copy', () => {
  const data = new TimelineData();
  const init = buildTimeline([runStarted('r-panel'), step(1, 'list_dir', {}), step(2, 'list_dir', {})]);
  data.reset({ ...init, notes: [{ kind: 'notice', step: 2, text: 'Notice: x', title: 'Notice: x' }] });
  assert.equal(data.noteCount(1), 1);
  assert.deepEqual(data.notesOf(1), [{ kind: 'notice', text: 'Notice: x', title: 'Notice: x' }]);
  assert.equal(data.addNote({ kind: 'undelivered', step: 2, text: 'Hint not delivered: ended', title: 'Hint not delivered: ended' }), 1);
  assert.equal(data.noteCount(1), 2);
  assert.equal(data.addNote({ kind: 'context', step: 7, text: 'later', title: 'later' }), undefined, 'a step not yet shown');
  assert.equal(data.snapshot(10).notes?.length, 3);
  assert.equal(data.addNote({ kind: 'bogus', step: 1, text: 'x', title: 'x' } as never), undefined, 'a malformed note is dropped');
  data.addHint({ hintId: 'h', text: 't', kind: 'knowledge' });
  assert.equal(data.undeliverHint('h', 'the run was stopped')?.undelivered, 'the run was stopped');
});

test('changes made outside the agent and mixed steps are shown for what they are, in words a screen reader reads', () => {
  const external: DatasetEvent = {
    type: 'external_change',
    time,
    step: 2,
    phase: 'during_request',
    grounding: {
      before: 'b',
      after: 'c',
      files: [
        { path: 'a.ts', status: 'modified', additions: 1, deletions: 0, binary: false },
        { path: 'b.ts', status: 'added', additions: 2, deletions: 0, binary: false },
      ],
      patch: '',
    },
  };
  const mixed = step(2, 'run_command', { command: 'sleep 1' });
  mixed.grounding = { ...mixed.grounding, mixed: { files: ['x.ts'] } };
  const model = new TimelineModel({ policy: 'not-bad', readOnly: false });
  model.observe(runStarted('r-who'));
  model.observe(step(1, 'list_dir', {}));
  const note = model.observe(external).find((message) => message.type === 'timelineNote');
  assert.deepEqual(note, {
    type: 'timelineNote',
    note: {
      kind: 'external',
      step: 2,
      text: 'Changed outside the agent: a.ts, b.ts',
      title: "Changed outside the agent while the model was answering step 2's request, not part of any action's diff: a.ts, b.ts",
    },
  });
  const added = model.observe(mixed).find((message) => message.type === 'stepAdded');
  assert.ok(added?.type === 'stepAdded');
  assert.deepEqual(added.step.mixed, ['x.ts']);
  assert.equal(toTimelineStep(step(3, 'list_dir', {})).mixed, undefined, 'a plain step is not mixed');
  assert.deepEqual(stepDetail(mixed).mixed, ['x.ts']);

  // The panel: the external change above step 2, then the mixed line, each counted in the row height.
  const data = new TimelineData();
  data.reset(model.init());
  assert.equal(data.noteCount(1), 2);
  assert.deepEqual(
    data.notesOf(1).map((item) => [item.kind, item.text]),
    [
      ['external', 'Changed outside the agent: a.ts, b.ts'],
      ['mixed', 'Mixed: you saved x.ts during this action'],
    ],
  );
  assert.equal(data.noteCount(0), 0);
  // An external change with no file (nothing really changed) is no line.
  assert.equal(timelineNote({ ...external, grounding: { ...external.grounding, files: [] } }, 1), undefined);
});
