/**
 * A task suite (startTaskSuite), as the CLI and the editor start it: every task checked before a
 * run starts (a task this host cannot run is refused with its reason, the others go on), K runs
 * of each in fresh working copies under one limit, each verified as it ends in the real sandbox,
 * the progress counted, and a stop that ends the runs going and cancels the rest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { detectSandbox } from '../../src/core/agent/sandbox';
import { DatasetStore } from '../../src/core/dataset/store';
import { ConcurrencyLimit } from '../../src/core/session/sample';
import { startTaskSuite, type SuiteProgress, uncleanRuns } from '../../src/core/session/taskSuite';
import { type RecordedRequest, type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { tempDir } from '../fixtures/workspace';

const TASKS = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'tasks');
const task = (name: string) => path.join(TASKS, name);

async function sandboxOrSkip(t: { skip(message: string): void }) {
  const sandbox = await detectSandbox();
  if (sandbox.kind !== 'bwrap') {
    t.skip(`no bubblewrap sandbox here: ${sandbox.reason}`);
    return undefined;
  }
  return sandbox;
}

const runOptions = (baseUrl: string) => ({ model: 'scripted', baseUrl, apiKey: 'k-0123456789', maxSteps: 10, sandbox: { mode: 'auto' as const, network: false } });

test('a suite refuses the task this host cannot run, samples the others K times and verifies each run as it ends', async (t) => {
  const sandbox = await sandboxOrSkip(t);
  if (!sandbox) return;
  const root = tempDir('apollo-suite-core-');
  // hello-file is solved every time; sum-metrics never.
  const reply = (request: RecordedRequest): ScriptedReply => {
    if (request.messages.some((message) => message.role === 'tool')) return { toolCall: { name: 'finish', arguments: { summary: 'done' } } };
    if (String(request.messages[1].content).includes('hello.txt')) return { toolCall: { name: 'write_file', arguments: { path: 'hello.txt', content: 'Hello, world!\n' } } };
    return { toolCall: { name: 'write_file', arguments: { path: 'sum.py', content: 'print(0)\n' } } };
  };
  const server = await startScriptedModelServer([], { fallback: reply });
  try {
    const said: string[] = [];
    const progress: SuiteProgress[] = [];
    const limit = new ConcurrencyLimit(2);
    let mostAtOnce = 0;
    const suite = await startTaskSuite({
      taskDirs: [task('hello-file'), task('needs-tool'), task('sum-metrics')],
      n: 2,
      limit,
      datasetDir: path.join(root.dir, 'dataset'),
      runsDir: path.join(root.dir, 'runs'),
      run: runOptions(server.baseUrl),
      sandbox,
      events: {
        refused: (dir, reason) => said.push(`refused ${path.basename(dir)}: ${reason}`),
        runStarted: (run) => {
          mostAtOnce = Math.max(mostAtOnce, limit.running);
          said.push(`started ${run.task.name} ${run.index}/${run.count}`);
        },
        verifying: (run) => said.push(`verifying ${run.runId}`),
        rewarded: (run, reward) => said.push(`rewarded ${run.runId} ${run.task.name} ${reward.rewards.reward}`),
        verifyFailed: (run, error) => said.push(`verify failed ${run.runId}: ${error}`),
        progress: (value) => progress.push(value),
      },
    });
    // The refusal is known before the suite returns; the others go on.
    assert.equal(suite.refused.length, 1);
    assert.match(suite.refused[0].reason, /Task needs-tool needs apollo-test-frobnicator-that-does-not-exist/);
    assert.deepEqual(
      suite.tasks.map(({ task: each }) => each.name),
      ['hello-file', 'apollo-tests/sum-metrics'],
    );
    const result = await suite.done;
    assert.equal(result.runs.length, 4);
    assert.deepEqual(result.runs.map((run) => `${run.task} ${run.index} ${run.reward?.rewards.reward}`).sort(), [
      'apollo-tests/sum-metrics 1 0',
      'apollo-tests/sum-metrics 2 0',
      'hello-file 1 1',
      'hello-file 2 1',
    ]);
    assert.deepEqual(uncleanRuns(result), []);
    assert.ok(mostAtOnce <= 2, `at most 2 runs at once across the suite (saw ${mostAtOnce})`);
    assert.deepEqual(progress.at(-1), { total: 4, started: 4, ended: 4, verified: 4, failed: 0 });
    // Each run is verified after it ends, and said so before its reward.
    for (const run of result.runs) {
      const verifying = said.indexOf(`verifying ${run.runId}`);
      const rewarded = said.findIndex((line) => line.startsWith(`rewarded ${run.runId} `));
      assert.ok(verifying >= 0 && rewarded > verifying, said.join('\n'));
    }
    // The reward is in the run's events, where stats, exports and the panel read it.
    const store = new DatasetStore(path.join(root.dir, 'dataset'));
    for (const run of result.runs) {
      const { events } = await store.readEvents(run.runId!);
      assert.equal(events.filter((event) => event.type === 'reward').length, 1);
      const started = events.find((event) => event.type === 'run_started');
      assert.equal(started?.type === 'run_started' && started.taskSource?.name, run.task);
      // The manifest keeps the verdict for the lists of runs.
      const manifest = await store.readManifest(run.runId!);
      assert.equal(manifest.reward?.value, run.reward?.rewards.reward);
      assert.equal(manifest.taskSource?.name, run.task);
    }
  } finally {
    await server.close();
    root.cleanup();
  }
});

test('stopping a suite stops the runs going, cancels the rest and verifies none of them', async (t) => {
  const sandbox = await sandboxOrSkip(t);
  if (!sandbox) return;
  const root = tempDir('apollo-suite-stop-');
  const server = await startScriptedModelServer([], { fallback: { toolCall: { name: 'list_dir', arguments: {} }, delayMs: 300 } });
  try {
    let firstStarted!: () => void;
    const started = new Promise<void>((resolve) => (firstStarted = resolve));
    const suite = await startTaskSuite({
      taskDirs: [task('hello-file')],
      n: 3,
      limit: 1,
      datasetDir: path.join(root.dir, 'dataset'),
      runsDir: path.join(root.dir, 'runs'),
      run: runOptions(server.baseUrl),
      sandbox,
      events: { runStarted: () => firstStarted() },
    });
    await started;
    const result = await suite.stop();
    assert.equal(result.runs.length, 3);
    const stopped = result.runs.filter((run) => run.ended);
    assert.deepEqual(
      stopped.map((run) => run.ended?.status),
      ['stopped'],
    );
    assert.equal(result.runs.filter((run) => run.cancelled).length, 2, 'the runs waiting their turn never start');
    assert.equal(result.runs.filter((run) => run.reward).length, 0, 'a stopped run is not verified');
    assert.equal(suite.progress.verified, 0);
    assert.deepEqual(
      uncleanRuns(result).map((run) => run.ended?.status),
      ['stopped'],
    );
  } finally {
    await server.close();
    root.cleanup();
  }
});

test('a suite where no task can run here starts nothing and says why for each', async () => {
  const root = tempDir('apollo-suite-none-');
  try {
    const suite = await startTaskSuite({
      taskDirs: [task('needs-tool')],
      n: 1,
      limit: 1,
      datasetDir: path.join(root.dir, 'dataset'),
      runsDir: path.join(root.dir, 'runs'),
      run: runOptions('http://127.0.0.1:1/v1'),
      // A host without the sandbox: the verifier could not place /tests.
      sandbox: { kind: 'none', reason: 'bubblewrap is not installed' },
    });
    assert.equal(suite.tasks.length, 0);
    assert.match(suite.refused[0].reason, /cannot be verified here: .*bubblewrap is not installed/);
    assert.deepEqual(await suite.done, { runs: [], refused: suite.refused });
  } finally {
    root.cleanup();
  }
});
