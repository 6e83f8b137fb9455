import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DatasetEvent, StepEvent } from '../../src/core/dataset/events';
import { buildTimeline, summarizeArguments, TimelineModel, toTimelineStep } from '../../src/vscode/timeline';
import type { HostToWebview } from '../../src/protocol';
import { resolveEndpoint } from '../../src/vscode/endpoint';
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
  assert.deepEqual(steps.map((item) => [item.step, item.labels]), [[1, []], [2, [{ label: 'bad', source: 'human' }]]]);
  assert.deepEqual(hints, [
    { hintId: 'h1', text: 'look left', kind: 'strategy', deliveredAtStep: 2 },
    { hintId: 'h2', text: 'still queued', kind: 'knowledge' },
  ]);
  assert.deepEqual(buildTimeline([]), { type: 'init', run: null, steps: [], hints: [], attention: [], unseen: 0 });
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
  assert.equal(resolveEndpoint(none).fix, 'openSettings');
  assert.match(resolveEndpoint({ ...none, baseUrlSetting: 'http://x/v1' }).problem ?? '', /apollo\.model/);
  const noKey = resolveEndpoint({ ...none, baseUrlSetting: 'http://x/v1', modelSetting: 'm' });
  assert.match(noKey.problem ?? '', /Apollo: Set API Key/);
  assert.equal(noKey.fix, 'setApiKey');
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
  assert.equal(model.observe(failing(1)).some((message) => message.type === 'attention'), false);
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
  assert.deepEqual(model.unseenFlagList().map((flag) => [flag.step, flag.kind]), [[3, 'failures']]);
  model.markSeen();
  assert.deepEqual(model.unseenFlagList(), []);
  const ended = model.observe({ type: 'run_ended', time, status: 'budget', budget: 'tokens', steps: 3, summary: 'Stopped: the run reached its token budget of 1,000 after 3 steps.' });
  const view = ended.find((message) => message.type === 'runUpdated');
  assert.ok(view?.type === 'runUpdated');
  assert.deepEqual([view.run.taskId, view.run.originWorkspace, view.run.status, view.run.stopReason, view.run.error], ['task-1', '/home/me/project', 'budget', 'Stopped: the run reached its token budget of 1,000 after 3 steps.', undefined]);
  const adopted = model.observe({ type: 'run_adopted', time: '2026-01-01T02:00:00.000Z', workspace: '/home/me/project', snapshot: 'b'.repeat(40), files: [], overwritten: [] });
  const after = adopted.find((message) => message.type === 'runUpdated');
  assert.equal(after?.type === 'runUpdated' && after.run.adoptedAt, '2026-01-01T02:00:00.000Z');
});
