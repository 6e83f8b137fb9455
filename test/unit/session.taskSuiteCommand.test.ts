/**
 * "Run Task Suite…" as the editor runs it (runTaskSuite): the folder and the count asked through
 * the editor's UI (fakes here), what a dismissed question or a bad count does, and a real suite
 * whose runs are shown in the window's runs, verified, and summed up at the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { detectSandbox } from '../../src/core/agent/sandbox';
import { ConfigError, openSetting } from '../../src/core/session/errors';
import type { HostToWebview } from '../../src/core/session/panelViews';
import { ConcurrencyLimit } from '../../src/core/session/sample';
import type { ApolloSettings } from '../../src/core/session/settings';
import { refusalMessage, runTaskSuite, type SuiteHost, type SuiteUi, suiteProgressText, suiteSummary } from '../../src/core/session/taskSuiteCommand';
import type { InputOptions } from '../../src/core/ui';
import { until } from '../fixtures/poll';
import { type RecordedRequest, type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { tempDir } from '../fixtures/workspace';

const TASKS = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'tasks');
const task = (name: string) => path.join(TASKS, name);

test('Run Task Suite says every refused task in one notification, its progress and its outcome in one line each', () => {
  const refused = [
    { dir: '/suite/needs-tool', reason: 'Task needs-tool needs frobnicator (installed by its Dockerfile), which this machine lacks.' },
    { dir: '/suite/gpu-task', reason: 'Task gpu-task needs 1 GPU(s) and this machine has 0.' },
  ];
  assert.equal(
    refusalMessage(refused, 2),
    'Apollo refused 2 tasks of the suite. The other 2 tasks go on. needs-tool: Task needs-tool needs frobnicator (installed by its Dockerfile), which this machine lacks. gpu-task: Task gpu-task needs 1 GPU(s) and this machine has 0.',
  );
  assert.match(refusalMessage(refused, 1), / The other 1 task goes on\. /);
  assert.match(refusalMessage(refused.slice(0, 1), 0), /^Apollo refused 1 task of the suite\. No task of the suite can run here\. needs-tool: /);
  assert.equal(suiteProgressText({ total: 4, started: 3, ended: 2, verified: 1, failed: 0 }), '3 of 4 runs started · 2 ended · 1 verified');
  assert.equal(suiteProgressText({ total: 1, started: 0, ended: 0, verified: 0, failed: 1 }), '0 of 1 run started · 0 ended · 0 verified · 1 could not start');
  const reward = (rewards: Record<string, number>, error?: string) => ({
    type: 'reward' as const,
    time: '',
    source: 'verifier' as const,
    rewards,
    task: 't',
    exitCode: 0,
    durationMs: 1,
    ...(error ? { error } : {}),
  });
  assert.equal(
    suiteSummary({
      runs: [
        { task: 'a', taskId: 'x', index: 1, reward: reward({ reward: 1 }) },
        { task: 'a', taskId: 'x', index: 2, reward: reward({ reward: 0 }) },
        { task: 'b', taskId: 'y', index: 1, reward: reward({}, 'timed out') },
        { task: 'b', taskId: 'y', index: 2, cancelled: true },
      ],
      refused: [],
    }),
    'the task suite has ended: 2 tasks, 4 runs; 1 solved its task (reward 1), 1 got no reward, 1 not verified (stopped or not started). Review the runs in the panel.',
  );
  assert.equal(
    suiteSummary({ runs: [{ task: 'a', taskId: 'x', index: 1, reward: reward({ reward: 1 }) }], refused: [] }),
    'the task suite has ended: 1 task, 1 run; 1 solved its task (reward 1). Review the runs in the panel.',
  );
});

/** A window whose runs and UI are fakes: what the suite asks, shows, logs and posts is recorded. */
function fakeWindow(answers: { model?: string; folder?: string; count?: string }, run: () => object = () => ({})) {
  const root = tempDir('apollo-suite-command-');
  const settings = { concurrency: 2, sampleCount: 3, datasetDir: path.join(root.dir, 'dataset'), runsDir: path.join(root.dir, 'runs') } as ApolloSettings;
  const seen = {
    asked: [] as string[],
    inputs: [] as InputOptions[],
    said: [] as string[],
    log: [] as string[],
    posted: [] as HostToWebview[],
    reported: [] as unknown[],
    followed: [] as { runId: string; show?: boolean; index?: number; count?: number }[],
    verifying: [] as [string, boolean][],
    observed: [] as [string, string][],
    progress: [] as string[],
    runsPosted: 0,
  };
  const host: SuiteHost<string> = {
    runs: { setVerifying: (runId, verifying) => void seen.verifying.push([runId, verifying]), observe: (runId, event) => void seen.observed.push([runId, event.type]) },
    log: { info: (line) => void seen.log.push(`info ${line}`), warn: (line) => void seen.log.push(`warn ${line}`), error: (line) => void seen.log.push(`error ${line}`) },
    openWorkspace: async () => ({ folder: root.dir, settings }),
    checkWorkspace: async () => undefined,
    chooseModel: async (_settings, title) => (seen.asked.push(`model: ${title}`), answers.model),
    newRunOptions: (_settings, model) => ({ model, baseUrl: '', apiKey: '', ...run() }),
    limit: (max) => new ConcurrencyLimit(max),
    follow: (session, options) => seen.followed.push({ runId: session.runId, show: options.show, index: options.sample?.index, count: options.sample?.count }),
    post: (message) => void seen.posted.push(message),
    report: (error) => void seen.reported.push(error),
    postRuns: () => seen.runsPosted++,
  };
  const notify = (level: string) => async (message: string) => void seen.said.push(`${level}: ${message}`);
  const ui: SuiteUi = {
    showFolderDialog: async (title, openLabel, defaultFolder) => (
      seen.asked.push(`folder: ${title} [${openLabel}] in ${defaultFolder === root.dir ? 'the workspace' : defaultFolder}`),
      answers.folder
    ),
    showInputBox: async (options) => (seen.inputs.push(options), answers.count),
    withNotificationProgress: async (title, work) => (seen.said.push(`progress: ${title}`), work()),
    withCancellableProgress: async (title, work) =>
      work(
        (line) => void seen.progress.push(line),
        () => undefined,
      ),
    showInformationMessage: notify('info'),
    showWarningMessage: notify('warning'),
    showErrorMessage: notify('error'),
  };
  return { host, ui, seen, cleanup: root.cleanup };
}

test('a dismissed question runs nothing: the model, the folder or the count', async (t) => {
  const noModel = fakeWindow({});
  t.after(noModel.cleanup);
  assert.equal(await runTaskSuite(noModel.host, noModel.ui), undefined);
  assert.deepEqual(noModel.seen.asked, ['model: Apollo: Run Task Suite']);

  const noFolder = fakeWindow({ model: 'm' });
  t.after(noFolder.cleanup);
  assert.equal(await runTaskSuite(noFolder.host, noFolder.ui), undefined);
  assert.deepEqual(noFolder.seen.asked, ['model: Apollo: Run Task Suite', 'folder: Apollo: Run Task Suite: a task (its folder holds task.toml) or a folder of tasks [Run Suite] in the workspace']);
  assert.deepEqual(noFolder.seen.inputs, []);

  const noCount = fakeWindow({ model: 'm', folder: TASKS });
  t.after(noCount.cleanup);
  assert.equal(await runTaskSuite(noCount.host, noCount.ui), undefined);
  const [asked] = noCount.seen.inputs;
  assert.equal(asked.prompt, 'How many runs of each of the 4 tasks? At most 2 go at once (apollo.sample.concurrency); each is verified as it ends.');
  assert.equal(asked.value, '3');
  assert.deepEqual(
    ['0', '21', 'two', '2.5', ' 4 ', '20'].map((value) => asked.validateInput?.(value)),
    ['A whole number from 1 to 20', 'A whole number from 1 to 20', 'A whole number from 1 to 20', 'A whole number from 1 to 20', undefined, undefined],
  );
  assert.deepEqual([noCount.seen.said, noCount.seen.reported], [[], []]);
});

test('a count out of range and a folder without tasks are reported with what to do, before anything starts', async (t) => {
  const tooMany = fakeWindow({ model: 'm' });
  t.after(tooMany.cleanup);
  assert.equal(await runTaskSuite(tooMany.host, tooMany.ui, TASKS, 21), undefined);
  const [error] = tooMany.seen.reported;
  assert.ok(error instanceof ConfigError);
  assert.equal(error.message, 'The number of runs of each task must be a whole number from 1 to 20 (more is a batch for apollo sample --task-dir).');
  assert.deepEqual(error.action, openSetting('apollo.sample.count'));

  const empty = fakeWindow({ model: 'm', count: '2' });
  t.after(empty.cleanup);
  assert.equal(await runTaskSuite(empty.host, empty.ui, path.join(TASKS, 'hello-file', 'tests')), undefined);
  assert.match(String(empty.seen.reported[0]), /holds no task: a task folder has task\.toml/);
  assert.deepEqual([empty.seen.inputs, empty.seen.said], [[], []]);
});

test('a suite whose every task is refused says so as an error, in the panel too, and starts nothing', async (t) => {
  const window = fakeWindow({ model: 'm' });
  t.after(window.cleanup);
  const suite = await runTaskSuite(window.host, window.ui, task('needs-tool'), 1);
  assert.ok(suite);
  assert.deepEqual(suite.tasks, []);
  const message = window.seen.said.find((line) => line.startsWith('error: '))!.slice('error: '.length);
  assert.match(message, /^Apollo refused 1 task of the suite\. No task of the suite can run here\. needs-tool: Task needs-tool needs /);
  assert.deepEqual(window.seen.posted, [{ type: 'notice', level: 'error', message }]);
  assert.deepEqual(window.seen.said[0], 'progress: Apollo: Run Task Suite: checking 1 task…');
  assert.deepEqual([window.seen.followed, window.seen.progress], [[], []]);
});

test('a suite runs: the first run shown, each verified with its reward in the window, the progress in one line, the outcome at the end', async (t) => {
  const sandbox = await detectSandbox();
  if (sandbox.kind !== 'bwrap') return t.skip(`no bubblewrap sandbox here: ${sandbox.reason}`);
  const reply = (request: RecordedRequest): ScriptedReply =>
    request.messages.some((message) => message.role === 'tool')
      ? { toolCall: { name: 'finish', arguments: { summary: 'done' } } }
      : { toolCall: { name: 'write_file', arguments: { path: 'hello.txt', content: 'Hello, world!\n' } } };
  const server = await startScriptedModelServer([], { fallback: reply });
  t.after(() => server.close());
  const window = fakeWindow({ model: 'scripted', folder: task('hello-file'), count: '2' }, () => ({
    baseUrl: server.baseUrl,
    apiKey: 'k-0123456789',
    maxSteps: 10,
    sandbox: { mode: 'auto', network: false },
  }));
  t.after(window.cleanup);
  const suite = await runTaskSuite(window.host, window.ui);
  assert.ok(suite && suite.tasks.length === 1, String(window.seen.reported[0]));
  assert.deepEqual(window.seen.posted, [{ type: 'notice', level: 'info', message: 'Running 1 task of the suite, 2 runs each, each in its own working copy and verified as it ends.' }]);
  const result = await suite.done;
  await until('the closing notification', () => window.seen.said.some((line) => line.startsWith('info: ')));
  const runIds = result.runs.map((run) => run.runId!);
  assert.deepEqual(
    window.seen.followed.map(({ show, count }) => [show, count]),
    [
      [true, 2],
      [false, 2],
    ],
    'the first run is shown, the other waits in the live runs list',
  );
  assert.deepEqual(window.seen.followed.map((followed) => followed.runId).sort(), [...runIds].sort());
  for (const runId of runIds) {
    assert.deepEqual(
      window.seen.verifying.filter(([id]) => id === runId),
      [
        [runId, true],
        [runId, false],
      ],
    );
    assert.deepEqual(
      window.seen.observed.filter(([id]) => id === runId),
      [[runId, 'reward']],
    );
    assert.ok(
      window.seen.log.some((line) => line.startsWith(`info Run ${runId}: verifier of hello-file: reward=1 in `)),
      window.seen.log.join('\n'),
    );
  }
  assert.equal(window.seen.progress.at(-1), '2 of 2 runs started · 2 ended · 2 verified');
  assert.equal(window.seen.said.at(-1), 'info: Apollo: the task suite has ended: 1 task, 2 runs; 2 solved its task (reward 1). Review the runs in the panel.');
  assert.ok(window.seen.runsPosted >= 1);
  assert.deepEqual(window.seen.reported, []);
});
