import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { LabelEvent, RunAdoptedEvent } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import type { EngineTuning } from '../../src/core/session/runSession';
import { type ControllerUi, SessionController } from '../../src/core/session/controller';
import type { ApolloSettings } from '../../src/core/session/settings';
import type { InputOptions, PickItem, PickOptions } from '../../src/core/ui';
import { adoptedSummary, attentionTooltip, checkSampleCount, hintFromArguments, runListItems, sampleCountProblem, stepItems } from '../../src/core/session/controllerTexts';
import { ConfigError } from '../../src/core/session/errors';
import type { HintInput } from '../../src/core/session/hintInput';
import type { HostToWebview } from '../../src/core/session/panelViews';
import type { StatusView } from '../../src/core/session/registry';
import { until } from '../fixtures/poll';
import { type RecordedRequest, ReplyGate, type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { step } from '../fixtures/trajectories';
import { makeWorkspace, tempDir } from '../fixtures/workspace';

const call = (name: string, args: object = {}) => ({ toolCall: { name, arguments: args } });
const FINISH = call('finish', { summary: 'Done.' });

/** The editor as a test sees it: everything shown is recorded, every question answered by `answer`. */
class FakeUi implements ControllerUi {
  readonly lines: string[] = [];
  readonly log = {
    info: (line: string) => void this.lines.push(`info: ${line}`),
    warn: (line: string) => void this.lines.push(`warn: ${line}`),
    error: (line: string) => void this.lines.push(`error: ${line}`),
  };
  readonly notes: { level: string; message: string; actions: string[] }[] = [];
  readonly questions: { message: string; detail: string; actions: string[] }[] = [];
  readonly picks: { title: string; items: PickItem[] }[] = [];
  readonly inputs: InputOptions[] = [];
  readonly commands: string[] = [];
  /** Settings, files, diffs and previews opened, in order. */
  readonly opened: unknown[][] = [];
  readonly written: [string, unknown][] = [];
  readonly views: StatusView[] = [];
  readonly progressTitles: string[] = [];
  /** Settings under `apollo.` as the user set them. */
  readonly config: Record<string, unknown> = {};
  trusted = true;
  folder: { path: string; onDisk: boolean } | undefined;
  hostModels?: ControllerUi['hostModels'];
  disposed = false;
  answer: {
    notify?: (message: string, actions: string[]) => string | undefined;
    confirm?: (message: string, detail: string, actions: string[]) => string | undefined;
    pick?: (items: readonly PickItem[], title: string) => PickItem | undefined;
    input?: (options: InputOptions) => string | undefined;
    hint?: () => HintInput | undefined;
  } = {};

  constructor(readonly current: ApolloSettings) {}

  private note(level: 'info' | 'warning' | 'error', message: string, actions: string[]) {
    this.notes.push({ level, message, actions });
    return Promise.resolve(this.answer.notify?.(message, actions));
  }
  showInformationMessage(message: string, ...actions: string[]) {
    return this.note('info', message, actions);
  }
  showWarningMessage(message: string, ...actions: string[]) {
    return this.note('warning', message, actions);
  }
  showErrorMessage(message: string, ...actions: string[]) {
    return this.note('error', message, actions);
  }
  async showModalWarning(message: string, detail: string, ...actions: string[]) {
    this.questions.push({ message, detail, actions });
    return this.answer.confirm?.(message, detail, actions);
  }
  async showQuickPick<T extends PickItem>(items: readonly T[], options: PickOptions): Promise<T | undefined> {
    this.picks.push({ title: options.title ?? '', items: [...items] });
    return this.answer.pick?.(items, options.title ?? '') as T | undefined;
  }
  async showInputBox(options: InputOptions) {
    this.inputs.push(options);
    return this.answer.input?.(options);
  }
  async askHint() {
    return this.answer.hint?.();
  }
  async withNotificationProgress<T>(title: string, task: () => PromiseLike<T>) {
    this.progressTitles.push(title);
    return task();
  }
  async command(id: string) {
    this.commands.push(id);
  }
  async openSettings(setting: string) {
    this.opened.push(['settings', setting]);
  }
  async writeUserSetting(key: string, value: unknown) {
    this.written.push([key, value]);
    this.config[key.replace(/^apollo\./, '')] = value;
  }
  userAllowList() {
    return (this.config['sandbox.allow'] as string[] | undefined) ?? [];
  }
  setting<T>(key: string, fallback: T): T {
    return key in this.config ? (this.config[key] as T) : fallback;
  }
  maskPolicy() {
    return 'not-bad' as const;
  }
  isTrusted() {
    return this.trusted;
  }
  firstFolder() {
    return this.folder;
  }
  async settings() {
    return this.current;
  }
  async openAdoptPreview(preview: unknown) {
    this.opened.push(['adopt', preview]);
  }
  async openStepDiff(stepNumber: number, grounding: unknown, shadow: unknown) {
    this.opened.push(['diff', stepNumber, grounding, shadow]);
  }
  async showFile(file: string) {
    this.opened.push(['file', file]);
  }
  status(view: StatusView) {
    this.views.push(view);
  }
  dispose() {
    this.disposed = true;
  }
}

/** A window on a real workspace whose runs talk to a scripted model server. */
async function window(script: ScriptedReply[], options: { fallback?: ScriptedReply; engine?: EngineTuning; files?: Record<string, string> } = {}) {
  const ws = makeWorkspace(options.files ?? { 'README.md': '# demo\n' });
  const data = tempDir('apollo-data-');
  const copies = tempDir('apollo-copies-');
  const server = await startScriptedModelServer(script, { fallback: options.fallback ?? FINISH });
  const settings: ApolloSettings = {
    provider: 'openai-compatible',
    endpoint: { baseUrl: server.baseUrl, model: 'scripted', apiKey: 'k-0123456789' },
    reasoningInContext: 'auto',
    datasetDir: data.dir,
    maxSteps: 10,
    contextBudget: 0,
    grounding: { exclude: [], maxFileBytes: 1024 * 1024 },
    maskPolicy: 'not-bad',
    sandbox: { mode: 'off', network: true },
    secretsToModel: false,
    budget: {},
    runsDir: copies.dir,
    sampleCount: 3,
    concurrency: 2,
  };
  const ui = new FakeUi(settings);
  ui.folder = { path: ws.dir, onDisk: true };
  const controller = new SessionController(ui, options.engine);
  const posted: HostToWebview[] = [];
  const badges: [number, string][] = [];
  controller.attachPanel({ post: (message) => posted.push(message), setBadge: (value, tooltip) => badges.push([value, tooltip]) });
  const close = async () => {
    for (const session of controller.sessions()) await session.stop();
    await Promise.all(controller.sessions().map((session) => session.done));
    controller.dispose();
    await server.close();
    ws.cleanup();
    data.cleanup();
    copies.cleanup();
  };
  return { ws, settings, ui, controller, posted, badges, server, close };
}

type Posted<T extends HostToWebview['type']> = Extract<HostToWebview, { type: T }>;
const postedOf = <T extends HostToWebview['type']>(posted: HostToWebview[], type: T) => posted.filter((message): message is Posted<T> => message.type === type);
const notices = (posted: HostToWebview[]) => postedOf(posted, 'notice').map((message) => `${message.level}: ${message.message}`);
const ended = (posted: HostToWebview[]) => postedOf(posted, 'runUpdated').some((message) => message.run.status !== 'running' && message.run.status !== 'paused');

test('a run started from the panel: its timeline, the runs list, the status; the window says once that commands are not sandboxed', async (t) => {
  const w = await window([call('write_file', { path: 'out.txt', content: 'out\n' }), FINISH, FINISH]);
  t.after(w.close);
  await w.controller.handle({ type: 'ready' });
  assert.deepEqual(
    w.posted.map((message) => message.type),
    ['init', 'runs', 'liveRuns'],
  );
  assert.deepEqual(w.posted[0], { type: 'init', run: null, steps: [], hints: [], notes: [], attention: [], unseen: 0 });
  await w.controller.handle({ type: 'startRun', task: 'Write out.txt' });
  const session = w.controller.currentSession();
  assert.ok(session);
  assert.equal((await session.done).status, 'finished');
  await until('the run to end in the panel', () => ended(w.posted));
  assert.equal(readFileSync(path.join(w.ws.dir, 'out.txt'), 'utf8'), 'out\n');
  assert.deepEqual(
    postedOf(w.posted, 'stepAdded').map((message) => [message.step.step, message.step.tool]),
    [
      [1, 'write_file'],
      [2, 'finish'],
    ],
  );
  assert.ok(w.ui.lines.includes(`info: Run ${session.runId} started: Write out.txt`));
  const description = (await session.sandboxStatus).description;
  await until('the sandbox notice', () => notices(w.posted).includes(`info: ${description}`));
  assert.deepEqual(w.ui.notes, [{ level: 'warning', message: `Apollo: ${description}`, actions: [] }]);
  await until('the runs list with the run', () => postedOf(w.posted, 'runs').some((message) => message.runs.some((run) => run.runId === session.runId && run.status === 'finished')));
  const status = w.ui.views.at(-1)!;
  assert.equal(status.state, 'finished');
  assert.equal(status.item?.text, '$(check) Apollo: finished · 2 steps');

  // A second run: the sandbox is not announced again.
  const second = await w.controller.startRun('Write nothing');
  assert.ok(second);
  await second.done;
  assert.equal(w.ui.notes.length, 1);
  assert.deepEqual(w.badges.at(-1), [0, '0 steps need your attention']);
});

test('what stops a run before it starts is said with its fix, and the fix runs when chosen', async (t) => {
  const w = await window([]);
  t.after(w.close);
  w.ui.answer.notify = (_message, actions) => actions[0];
  assert.equal(await w.controller.startRun('   '), undefined);
  w.ui.trusted = false;
  assert.equal(await w.controller.startRun('Fix it'), undefined);
  await until('the trust command', () => w.ui.commands.includes('workbench.trust.manage'));
  w.ui.trusted = true;
  w.ui.folder = undefined;
  assert.equal(await w.controller.sampleRuns('Fix it', 2), undefined);
  w.ui.folder = { path: w.ws.dir, onDisk: false };
  await w.controller.resume();
  w.ui.folder = { path: w.ws.dir, onDisk: true };
  Object.assign(w.settings, {
    endpoint: { ...w.settings.endpoint, model: '', problem: 'No model configured: set "apollo.model" (or OPENAI_MODEL).', action: { label: 'Open Settings', setting: 'apollo.model' } },
  });
  assert.equal(await w.controller.startRun('Fix it'), undefined);
  await until('the settings at apollo.model', () => w.ui.opened.length);
  Object.assign(w.settings, { reasoningInContext: 'sometimes' });
  assert.equal(await w.controller.startRun('Fix it'), undefined);
  await until('every notification', () => w.ui.notes.length === 6);
  assert.deepEqual(w.ui.notes, [
    { level: 'error', message: 'The task is empty: describe what the agent should do.', actions: [] },
    { level: 'error', message: 'Apollo does not start runs in an untrusted workspace: the agent edits files and runs commands. Trust this folder first.', actions: ['Manage Workspace Trust'] },
    { level: 'error', message: 'Open a folder first: sampled runs work in copies of a workspace folder.', actions: [] },
    { level: 'error', message: 'Open a folder first: runs are recorded in the workspace.', actions: [] },
    { level: 'error', message: 'No model configured: set "apollo.model" (or OPENAI_MODEL).', actions: ['Open Settings'] },
    { level: 'error', message: 'Unknown apollo.reasoning.keepInContext "sometimes": use auto, always, never.', actions: ['Open Settings'] },
  ]);
  assert.deepEqual(
    notices(w.posted),
    w.ui.notes.map((note) => `error: ${note.message}`),
  );
  await until('both settings opened', () => w.ui.opened.length === 2);
  assert.deepEqual(w.ui.opened, [
    ['settings', 'apollo.model'],
    ['settings', 'apollo.reasoning.keepInContext'],
  ]);
  assert.deepEqual(w.controller.sessions(), [], 'nothing started');
});

test("a run on the editor's own models: the model is the one chosen, and a dismissed choice starts nothing", async (t) => {
  const w = await window([]);
  t.after(w.close);
  const asked: [string, string][] = [];
  w.ui.hostModels = {
    provider: 'vscode-lm',
    choose: async (wanted, title) => void asked.push([wanted, title]),
  };
  Object.assign(w.settings, { provider: 'vscode-lm', endpoint: { baseUrl: '', model: 'family-x', apiKey: '' } });
  assert.equal(await w.controller.startRun('Fix it'), undefined);
  assert.deepEqual(asked, [['family-x', 'Apollo: Start Run']]);
  assert.deepEqual(w.ui.notes, [], 'a dismissed choice is no error');
});

test('a second run in the workspace is refused while one goes; pause, resume, hints and stop reach the run the panel shows', async (t) => {
  const gate = new ReplyGate();
  const later = new ReplyGate();
  const w = await window(
    [
      { ...call('list_dir'), gate },
      { ...call('list_dir'), gate: later },
    ],
    { fallback: call('list_dir') },
  );
  t.after(w.close);
  const session = await w.controller.startRun('List forever');
  assert.ok(session);
  await until('the first request', () => gate.reached);
  assert.equal(await w.controller.startRun('Another'), undefined);
  await until('the refusal', () => w.ui.notes.some((note) => note.level === 'error'));
  assert.match(w.ui.notes.find((note) => note.level === 'error')!.message, new RegExp(`^Run ${session.runId} is still going in this workspace: stop it before starting another`));

  await w.controller.handle({ type: 'pauseRun' });
  assert.ok(notices(w.posted).includes('info: Pausing after the current step.'));
  w.ui.answer.hint = () => ({ text: 'read the README first', kind: 'strategy', urgency: 'next' });
  const asked = await w.controller.injectHintCommand();
  const given = await w.controller.injectHintCommand('Use the fixtures', 'opinion', 'later');
  assert.ok(asked && given);
  assert.deepEqual(
    postedOf(w.posted, 'hintQueued').map((message) => [message.hint.text, message.hint.kind, message.hint.urgency]),
    [
      ['read the README first', 'strategy', 'next'],
      ['Use the fixtures', 'knowledge', 'next'],
    ],
  );
  gate.open();
  await until('the run to pause', () => session.status === 'paused');
  await until('the status bar to say so', () => w.ui.views.at(-1)?.state === 'paused');
  await w.controller.handle({ type: 'resumeRun', runId: session.runId });
  await until('the run to go on', () => later.reached);
  await w.controller.handle({ type: 'stopRun' });
  assert.equal((await session.done).status, 'stopped');
  assert.equal(await w.controller.injectHint('too late'), undefined);
  await until('the last refusal', () => w.ui.notes.at(-1)?.message === 'No run is going: start one with "Apollo: Start Run".');
});

test('flagged commands wait for the annotator: Always Allow adds the pattern to the user settings once, Refuse tells the agent', async (t) => {
  const w = await window([call('run_command', { command: 'git push origin main' }), call('run_command', { command: 'sudo true' }), FINISH]);
  t.after(w.close);
  w.ui.config['sandbox.allow'] = ['echo'];
  w.ui.answer.confirm = (_message, detail) => (detail.startsWith('git push') ? 'Always Allow' : 'Refuse');
  const session = await w.controller.startRun('Publish');
  assert.ok(session);
  await session.done;
  assert.deepEqual(
    w.ui.questions.map((question) => [question.message, question.actions]),
    [
      ['Apollo: allow the agent to run this command?', ['Allow Once', 'Always Allow', 'Refuse']],
      ['Apollo: allow the agent to run this command?', ['Allow Once', 'Always Allow', 'Refuse']],
    ],
  );
  const [push] = w.ui.questions;
  const pattern = /Always Allow adds "(.*)" to apollo\.sandbox\.allow in your user settings\.$/.exec(push.detail)?.[1];
  assert.ok(pattern, push.detail);
  assert.match(push.detail, /^git push origin main\n\n.+\n\nAlways Allow/s);
  assert.deepEqual(w.ui.written, [['apollo.sandbox.allow', ['echo', pattern]]]);
  assert.ok(w.ui.lines.includes(`info: Added "${pattern}" to apollo.sandbox.allow in your user settings.`));
  assert.ok(w.ui.lines.includes('info: Command allowed by the annotator: git push origin main'));
  assert.ok(w.ui.lines.includes('info: Command refused by the annotator: sudo true'));
  assert.ok(notices(w.posted).includes('info: The agent wants to run a command that needs your answer: sudo true'));
  await w.controller.alwaysAllow(pattern);
  assert.equal(w.ui.written.length, 1, 'a pattern already allowed is not written again');
  const steps = (await session.events()).filter((event) => event.type === 'step');
  assert.match(steps[1].type === 'step' ? steps[1].observation : '', /refused|not run/i);
});

test('a flag is a notification whose buttons open the run and go to the step or to the hint box; it can be turned off', async (t) => {
  const w = await window([{ content: 'Which file should I edit?' }, FINISH, { content: 'Should I go on?' }, FINISH]);
  t.after(w.close);
  w.ui.answer.notify = (message, actions) => (actions.includes('Send Hint') ? 'Send Hint' : undefined);
  const first = await w.controller.startRun('Ask');
  assert.ok(first);
  await first.done;
  await until('the hint box', () => w.ui.commands.includes('apollo.injectHint'));
  const flag = w.ui.notes.find((note) => note.actions.includes('Send Hint'));
  assert.deepEqual(flag?.actions, ['Show', 'Send Hint']);
  assert.match(flag.message, /^Apollo: step 1 needs attention: /);
  assert.ok(w.ui.lines.some((line) => line.startsWith(`info: Step 1 of run ${first.runId} needs attention: `)));
  assert.ok(w.badges.some(([count, tooltip]) => count === 1 && tooltip === '1 step needs your attention'));
  await w.controller.handle({ type: 'attentionSeen' });
  assert.equal(w.ui.views.at(-1)?.unseen, 0);

  w.ui.config['attention.notify'] = false;
  const before = w.ui.notes.length;
  const second = await w.controller.startRun('Ask again');
  assert.ok(second);
  await second.done;
  await until('the flag in the log', () => w.ui.lines.some((line) => line.startsWith(`info: Step 1 of run ${second.runId} needs attention: `)));
  assert.equal(w.ui.notes.length, before, 'no notification');

  w.ui.answer.notify = (message, actions) => (actions.includes('Show') ? 'Show' : undefined);
  w.ui.config['attention.notify'] = true;
  await w.controller.openRun(first.runId);
  const top = await w.controller.focusNeediestRun();
  assert.equal(top, undefined, 'no run is going');
  assert.equal(w.ui.notes.at(-1)?.message, 'Apollo: no run is going in this window.');
  await w.controller.focusNextFlag();
  assert.equal(w.ui.commands.at(-1), 'apollo.panel.focus');
  assert.ok(w.posted.some((message) => message.type === 'focusNextFlag'));
});

test('a run that pauses itself on errors offers to resume or show it; a failed run is reported with its steps kept', async (t) => {
  const failing: ScriptedReply = { status: 500, body: { error: { message: 'overloaded' } } };
  const w = await window([failing, failing, FINISH], { engine: { maxConsecutiveFailures: 2, retryBaseMs: 1, retryMaxMs: 1 } });
  t.after(w.close);
  w.ui.answer.notify = (_message, actions) => (actions.includes('Resume') ? 'Resume' : undefined);
  const session = await w.controller.startRun('Try hard');
  assert.ok(session);
  assert.equal((await session.done).status, 'finished', 'Resume let it go on');
  const paused = w.ui.notes.find((note) => note.actions.includes('Resume'));
  assert.deepEqual(paused?.actions, ['Resume', 'Show']);
  assert.match(paused.message, new RegExp(`^Apollo paused run ${session.runId}: 2 model requests in a row failed; the last: `));
  assert.ok(w.ui.lines.some((line) => line.startsWith(`warn: run ${session.runId}, step 1: model request failed (attempt 1): `)));

  const refused = await window([{ status: 401, body: { error: { message: 'Incorrect API key provided', code: 'invalid_api_key' } } }]);
  t.after(refused.close);
  const failed = await refused.controller.startRun('Fail');
  assert.ok(failed);
  assert.equal((await failed.done).status, 'failed');
  const report = await until('the failure', () => refused.ui.notes.find((note) => note.level === 'error'));
  assert.match(report.message, new RegExp(`^run ${failed.runId} failed: .+ Its 0 step\\(s\\) are kept\\.$`));
  assert.ok(notices(refused.posted).includes(`error: ${report.message}`));
});

test('labelling from the palette asks what is not given, newest step first; a dismissed question records nothing', async (t) => {
  const w = await window([call('write_file', { path: 'a.txt', content: 'a\n' }), call('read_file', { path: 'a.txt' }), FINISH]);
  t.after(w.close);
  assert.equal(await w.controller.labelWithPrompts({}), false);
  await until('the refusal', () => w.ui.notes.length);
  assert.equal(w.ui.notes[0].message, 'No run is open to label: start or resume one, or open one from the runs list.');
  const session = await w.controller.startRun('Write and read');
  assert.ok(session);
  await session.done;
  const labels = async () => (await new DatasetStore(w.settings.datasetDir).readEvents(session.runId)).events.filter((event): event is LabelEvent => event.type === 'label');

  w.ui.answer.pick = (items, title) => (title === 'Label which step?' ? items[1] : title.startsWith('Label step') ? items.find((item) => item.label === 'bad') : undefined);
  assert.equal(await w.controller.labelWithPrompts({}), false);
  assert.deepEqual(
    w.ui.picks.map((pick) => pick.title),
    ['Label which step?', 'Label step 2', 'What is step 2 bad at?'],
  );
  assert.deepEqual(
    w.ui.picks[0].items.map((item) => [item.label, item.description]),
    [
      ['Step 3', 'finish'],
      ['Step 2', 'read_file'],
      ['Step 1', 'write_file'],
    ],
  );
  assert.equal(w.ui.picks[0].items[2].detail, 'a.txt');
  assert.deepEqual(await labels(), []);

  w.ui.answer.pick = (items, title) => (title.startsWith('Label step') ? items.find((item) => item.label === 'bad') : items.find((item) => item.label === 'Execution'));
  w.ui.answer.input = () => '  read the wrong file ';
  assert.equal(await w.controller.labelWithPrompts({ step: 2 }), true);
  assert.equal(w.ui.inputs.at(-1)?.title, 'Why is step 2 bad? (optional)');
  await w.controller.handle({ type: 'labelStep', step: 1, label: 'good' });
  assert.deepEqual(
    (await labels()).map((event) => [event.step, event.label, event.axis, event.reason]),
    [
      [2, 'bad', 'execution', 'read the wrong file'],
      [1, 'good', undefined, undefined],
    ],
  );
  assert.deepEqual(
    postedOf(w.posted, 'labelAdded').map((message) => [message.step, message.badge.label]),
    [
      [2, 'bad'],
      [1, 'good'],
    ],
  );
  assert.equal(await w.controller.label(9, 'good'), false);
  await until('the refusal', () => w.ui.notes.at(-1)?.message === `Run ${session.runId} has no step 9 yet (it has 3).`);
});

test("the panel's step messages: its detail, its diff, its full output, and what is missing said in the panel", async (t) => {
  const w = await window([call('write_file', { path: 'a.txt', content: 'a\n' }), FINISH]);
  t.after(w.close);
  const session = await w.controller.startRun('Write a.txt');
  assert.ok(session);
  await session.done;
  await w.controller.handle({ type: 'showStep', step: 1 });
  const detail = postedOf(w.posted, 'stepDetail').at(-1)?.detail;
  assert.equal(detail?.tool, 'write_file');
  assert.deepEqual(
    detail?.files.map((file) => file.path),
    ['a.txt'],
  );
  await w.controller.handle({ type: 'showStep', step: 7 });
  assert.deepEqual(postedOf(w.posted, 'stepDetailFailed').at(-1), { type: 'stepDetailFailed', step: 7, message: 'Step 7 is not in the open run.' });
  await w.controller.handle({ type: 'openDiff', step: 1 });
  const [kind, stepNumber, grounding, shadow] = w.ui.opened.at(-1)!;
  assert.deepEqual([kind, stepNumber, (grounding as { files: { path: string }[] }).files.map((file) => file.path)], ['diff', 1, ['a.txt']]);
  assert.equal((shadow as { workspace: string }).workspace, session.shadow.workspace);
  await w.controller.handle({ type: 'openFullOutput', step: 1 });
  await until('the refusal', () => w.ui.notes.some((note) => note.level === 'error'));
  assert.equal(w.ui.notes.find((note) => note.level === 'error')?.message, 'Step 1 kept no separate output: its observation is complete.');
  await w.controller.handle({ type: 'openRun', runId: 'no-such-run' });
  await w.controller.handle({ type: 'openRun', runId: session.runId });
  assert.equal(postedOf(w.posted, 'init').at(-1)?.run?.runId, session.runId);
});

test('a rewind asks first and says what changes; a dismissed one changes nothing; Resume goes on from there on the same run', async (t) => {
  const resumedStep = new ReplyGate();
  const w = await window([call('write_file', { path: 'a.txt', content: 'a\n' }), call('write_file', { path: 'b.txt', content: 'b\n' }), FINISH, { ...FINISH, gate: resumedStep }]);
  t.after(w.close);
  assert.equal(await w.controller.rewind(1), undefined);
  await until('the refusal', () => w.ui.notes.length);
  assert.equal(w.ui.notes[0].message, 'There is no run to rewind: start or resume one, or open one from the runs list.');
  const session = await w.controller.startRun('Write two files');
  assert.ok(session);
  await session.done;

  assert.equal(await w.controller.rewind(2), undefined);
  assert.deepEqual(w.ui.questions, [
    {
      message: 'Rewind the workspace to before step 2?',
      detail: 'Removed: b.txt.\nThe steps from this one on stay in the dataset as an abandoned branch; resume to go on from here.',
      actions: ['Rewind'],
    },
  ]);
  assert.ok(existsSync(path.join(w.ws.dir, 'b.txt')), 'dismissed: nothing changed');

  await w.controller.handle({ type: 'previewRewind', step: 2 });
  assert.deepEqual(postedOf(w.posted, 'rewindPreview').at(-1)?.preview, { step: 2, written: [], removed: ['b.txt'], userEdits: [], stopsRun: false });
  w.ui.answer.notify = (_message, actions) => (actions.includes('Resume') ? 'Resume' : undefined);
  await w.controller.handle({ type: 'rewind', step: 2 });
  assert.equal(w.ui.questions.length, 1, 'the preview in the panel was the confirmation');
  assert.equal(existsSync(path.join(w.ws.dir, 'b.txt')), false);
  assert.ok(notices(w.posted).includes('info: Rewound to before step 2: 1 file(s) restored. Resume to go on from there.'));
  const resumed = await until('the resumed run', () => w.controller.sessions().find((candidate) => candidate !== session && candidate.runId === session.runId));
  assert.ok(
    w.ui.notes.some(
      (note) =>
        note.message === 'Apollo: workspace rewound to before step 2 (1 file(s) restored). Resume the run to go on from there; a hint sent after resuming reaches its next step.' &&
        note.actions[0] === 'Resume',
    ),
  );
  // Steps are numbered in the order they happened: the new branch starts at step 4.
  await until('the resumed run in the log', () => w.ui.lines.includes(`info: Run ${session.runId} resumed from step 4.`));
  resumedStep.open();
  assert.equal((await resumed.done).status, 'finished');
});

test('resume offers the interrupted runs to pick from, and says when there is none', async (t) => {
  const w = await window([call('write_file', { path: 'a.txt', content: 'a\n' }), FINISH, FINISH]);
  t.after(w.close);
  await w.controller.resume();
  await until('the refusal', () => w.ui.notes.length);
  assert.equal(w.ui.notes[0].message, 'No interrupted run to resume: every recorded run has ended.');
  const session = await w.controller.startRun('Write a.txt\nand more');
  assert.ok(session);
  await session.done;
  // Rewound outside the window (the CLI): the run waits to be resumed.
  w.ui.answer.confirm = () => 'Rewind';
  await w.controller.rewind(2);
  w.ui.answer.pick = () => undefined;
  await w.controller.resume();
  assert.deepEqual(w.ui.picks.at(-1), { title: 'Resume an interrupted run', items: [{ label: 'Write a.txt', description: `2 steps · ${session.runId}`, id: session.runId }] });
  assert.deepEqual(w.controller.sessions(), [session], 'dismissed: nothing resumed');
  w.ui.answer.pick = (items) => items[0];
  await w.controller.resume();
  const resumed = w.controller.currentSession();
  assert.ok(resumed && resumed !== session);
  assert.equal((await resumed.done).status, 'finished');
});

test('sampling asks for the task and the count, shows the first run, and offers to adopt when all have ended', async (t) => {
  // Each run writes the answer its working copy's number gives, then finishes.
  const copyOf = (request: RecordedRequest) => path.basename(/The workspace root is (.*?); every path/.exec(String(request.messages[0]?.content))?.[1] ?? '');
  const answer: ScriptedReply = (request) =>
    request.messages.some((message) => message.role === 'tool') ? FINISH : call('write_file', { path: 'answer.txt', content: `answer ${copyOf(request)}\n` });
  const w = await window([], { fallback: answer, files: { 'README.md': '# demo\n', 'answer.txt': 'none yet\n' } });
  t.after(w.close);
  w.ui.answer.input = (options) => (options.prompt === 'The task every run works on' ? 'Find the answer' : '2');
  w.ui.answer.notify = (_message, actions) => (actions.includes('Adopt a Run…') ? 'Adopt a Run…' : undefined);
  w.ui.answer.pick = (items) => items[0];
  w.ui.answer.confirm = (_message, _detail, actions) => actions[0];
  const sampling = await w.controller.sampleRuns();
  assert.ok(sampling);
  assert.deepEqual(
    w.ui.inputs.map((input) => [input.title, input.prompt, input.value]),
    [
      ['Apollo: Sample Runs', 'The task every run works on', undefined],
      ['Apollo: Sample Runs', 'How many runs of this task? At most 2 go at once (apollo.sample.concurrency); the others wait their turn.', '3'],
    ],
  );
  assert.equal(w.ui.inputs[1].validateInput?.('0'), 'A whole number from 1 to 20');
  assert.equal(w.ui.inputs[1].validateInput?.(' 20 '), undefined);
  assert.deepEqual(w.ui.progressTitles, ['Apollo: taking a snapshot of the workspace for 2 runs…']);
  assert.ok(notices(w.posted).includes(`info: Sampling 2 runs of this task, each in its own working copy (task ${sampling.taskId}).`));
  await until('both runs listed, in their places', () => w.controller.liveRuns().length === 2);
  assert.deepEqual(
    w.controller
      .liveRuns()
      .map((run) => run.sample?.index)
      .sort(),
    [1, 2],
  );
  const results = await sampling.done;
  assert.equal(results.length, 2);
  // The closing notification's Adopt a Run… picks the run and confirms.
  const adopted = await until('the adoption', () => w.ui.notes.find((note) => note.message.startsWith('Apollo: Adopted run')));
  assert.ok(w.ui.notes.some((note) => note.message === 'Apollo: the 2 runs of "Find the answer" have ended. Review them in the panel and adopt the best.' && note.actions[0] === 'Adopt a Run…'));
  assert.equal(w.ui.picks[0].title, "Adopt which run's changes?");
  assert.equal(w.ui.picks[0].items.length, 2);
  assert.match(w.ui.questions[0].message, /^Adopt the 1 file change of run .+ into your workspace\?$/);
  assert.deepEqual(w.ui.questions[0].actions, ['Adopt']);
  const adoptedRun = /of run (\S+) into/.exec(w.ui.questions[0].message)?.[1];
  assert.equal(adopted.message, `Apollo: Adopted run ${adoptedRun}: 1 file changed in your workspace.`);
  const content = readFileSync(path.join(w.ws.dir, 'answer.txt'), 'utf8');
  assert.match(content, /^answer [12]\n$/);

  // The other run, from the panel: its preview lists the file adopted as a conflict, and only an explicit overwrite writes it.
  const other = w.controller.sessions().find((session) => session.runId !== adoptedRun)!;
  await w.controller.handle({ type: 'previewAdopt', runId: other.runId });
  const preview = postedOf(w.posted, 'adoptPreview').at(-1)?.preview;
  assert.deepEqual([preview?.written, preview?.conflicts, preview?.name.startsWith('Run ')], [['answer.txt'], ['answer.txt'], true]);
  assert.equal(w.ui.opened.filter((entry) => entry[0] === 'adopt').length, 2, 'the multi-diff editor shows each');
  await w.controller.handle({ type: 'adoptRun', runId: other.runId, overwrite: false });
  await until('the refusal', () => w.ui.notes.at(-1)?.level === 'error');
  assert.match(w.ui.notes.at(-1)!.message, /^You changed answer\.txt too; nothing was written\./);
  assert.equal(readFileSync(path.join(w.ws.dir, 'answer.txt'), 'utf8'), content);
  await w.controller.handle({ type: 'adoptRun', runId: other.runId, overwrite: true });
  assert.notEqual(readFileSync(path.join(w.ws.dir, 'answer.txt'), 'utf8'), content);
  assert.ok(notices(w.posted).includes(`info: Adopted run ${other.runId}: 1 file changed in your workspace, overwriting your changes to answer.txt.`));
});

test('a count of runs out of bounds is refused with the setting to open', async (t) => {
  const w = await window([]);
  t.after(w.close);
  assert.equal(await w.controller.sampleRuns('Fix it', 25), undefined);
  await until('the refusal', () => w.ui.notes.length);
  assert.deepEqual(w.ui.notes, [{ level: 'error', message: 'The number of runs must be a whole number from 1 to 20.', actions: ['Open Settings'] }]);
  assert.deepEqual(w.controller.sessions(), []);
});

test('dispose stops the runs and lets the editor go', async (t) => {
  const w = await window([], { fallback: call('list_dir') });
  t.after(w.close);
  const session = await w.controller.startRun('List forever');
  assert.ok(session);
  w.controller.dispose();
  assert.equal((await session.done).status, 'stopped');
  assert.equal(w.ui.disposed, true);
});

test('the texts: the runs list, the count check, hints given by a caller, steps newest first, the badge', () => {
  const manifest = {
    id: 'r1',
    task: 'Solve',
    workspace: '/w',
    model: 'm',
    baseUrl: '',
    status: 'finished' as const,
    steps: 3,
    createdAt: 't0',
    updatedAt: 't1',
    tokens: { promptTokens: 0, completionTokens: 0 },
  };
  assert.deepEqual(runListItems([manifest, { ...manifest, id: 'r2', taskSource: { format: 'harbor', name: 'fix-bug', dir: '/t' } as never, reward: { value: 1, time: 't2' } }]), [
    { runId: 'r1', task: 'Solve', status: 'finished', steps: 3, createdAt: 't0' },
    { runId: 'r2', task: 'Solve', status: 'finished', steps: 3, createdAt: 't0', suiteTask: { name: 'fix-bug', reward: { rewards: {}, value: 1 } } },
  ]);
  assert.equal(runListItems(Array.from({ length: 250 }, (_, index) => ({ ...manifest, id: `r${index}` }))).length, 200);
  assert.equal(sampleCountProblem('3'), undefined);
  for (const typed of ['0', '21', '2.5', 'two', '']) assert.equal(sampleCountProblem(typed), 'A whole number from 1 to 20');
  assert.throws(
    () => checkSampleCount(1.5),
    (error: Error) => error instanceof ConfigError && error.action?.label === 'Open Settings',
  );
  assert.deepEqual(hintFromArguments('Use X', 'correction', 'now'), { text: 'Use X', kind: 'correction', urgency: 'now' });
  assert.deepEqual(hintFromArguments('Use X', 42, 'later'), { text: 'Use X', kind: 'knowledge', urgency: 'next' });
  assert.deepEqual(stepItems([step(1, { tool: 'read_file' }), step(2, { tool: null })], false), [
    { label: 'Step 2', description: '(no tool call)', step: 2 },
    { label: 'Step 1', description: 'read_file', step: 1 },
  ]);
  assert.deepEqual([attentionTooltip(1), attentionTooltip(2)], ['1 step needs your attention', '2 steps need your attention']);
  const adopted = (files: number, overwritten: string[]): RunAdoptedEvent => ({
    type: 'run_adopted',
    time: '',
    workspace: '/w',
    snapshot: 's',
    files: Array.from({ length: files }, (_, index) => ({ path: `f${index}`, status: 'modified', additions: 1, deletions: 1, binary: false })),
    overwritten,
  });
  assert.equal(adoptedSummary('r1', adopted(2, [])), 'Adopted run r1: 2 files changed in your workspace.');
  assert.equal(adoptedSummary('r1', adopted(1, ['a.txt'])), 'Adopted run r1: 1 file changed in your workspace, overwriting your changes to a.txt.');
});
