/**
 * Task suites in Harbor's layout (test/fixtures/tasks): loading, the refusals before a run, the
 * verifier in the real sandbox (rewards from reward.txt and reward.json, the timeout), and
 * `apollo run --task-dir` / `apollo verify` against the scripted model server.
 *
 * The fixtures follow Harbor's documented task format (harborframework.com/docs/tasks):
 * instruction.md, task.toml with [verifier]/[agent]/[environment] tables, environment/Dockerfile,
 * tests/test.sh writing /logs/verifier/reward.txt or reward.json, solution/solve.sh.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type CliIo, main } from '../../src/cli/main';
import { detectSandbox } from '../../src/core/agent/sandbox';
import { DatasetStore } from '../../src/core/dataset/store';
import type { HarborTask, TaskHost } from '../../src/core/session/harborTask';
import { dockerfileInstructions, findTaskDirs, loadTask, parseShard, prepareTaskWorkspace, shardOf, TaskError, taskRefusal } from '../../src/core/session/harborTask';
import { primaryReward } from '../../src/core/dataset/events';
import { readRewards } from '../../src/core/session/verifier';
import { checkTaskSolvable, loadRunnableTask, verifyWorkspace } from '../../src/core/session/taskRuns';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { tempDir } from '../fixtures/workspace';

const TASKS = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'tasks');
const task = (name: string) => path.join(TASKS, name);

function io(env: NodeJS.ProcessEnv = {}, cwd = process.cwd()) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env, cwd };
  return { io: value, out: () => out.join(''), err: () => err.join('') };
}

const everything: TaskHost = { hasCommand: () => true, hasPackage: () => true, hasPythonPackage: () => true, gpus: 0, sandbox: true };

async function sandboxOrSkip(t: { skip(message: string): void }) {
  const sandbox = await detectSandbox();
  if (sandbox.kind !== 'bwrap') {
    t.skip(`no bubblewrap sandbox here: ${sandbox.reason}`);
    return undefined;
  }
  return sandbox;
}

/** Processes of this machine whose command line is exactly `words` (the verifier's children). */
function processesRunning(words: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      if (cmdline === words) found.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

test('a task folder is read as Harbor lays it out: instruction, timeouts, WORKDIR, what the Dockerfile copies', async () => {
  const hello = await loadTask(task('hello-file'));
  assert.equal(hello.name, 'hello-file');
  assert.match(hello.instruction, /hello\.txt/);
  assert.equal(hello.verifier.timeoutSec, 60);
  assert.equal(hello.agent.timeoutSec, 120);
  assert.equal(hello.environment.memoryMb, 2048);
  assert.equal(hello.environment.allowInternet, false);
  assert.equal(hello.workdir, '/app');
  assert.deepEqual(hello.copies, [{ from: 'README.md', to: '/app/README.md' }]);
  assert.equal(hello.hasSolution, true);
  const sum = await loadTask(task('sum-metrics'));
  assert.equal(sum.name, 'apollo-tests/sum-metrics');
  assert.deepEqual(sum.verifier.env, { EXPECTED: '15' });
  assert.deepEqual(sum.copies, [{ from: 'data/', to: '/app/' }]);
  assert.equal(sum.environment.allowInternet, true, 'Harbor allows the internet unless allow_internet = false');

  const ws = tempDir('apollo-task-ws-');
  try {
    assert.deepEqual(await prepareTaskWorkspace(sum, ws.dir), { files: 1 });
    assert.equal(readFileSync(path.join(ws.dir, 'numbers.txt'), 'utf8'), '1\n2\n3\n4\n5\n', 'a folder COPY puts its contents in the WORKDIR, as Docker does');
  } finally {
    ws.cleanup();
  }
  assert.deepEqual(
    dockerfileInstructions('FROM x\n# comment\nRUN a && \\\n    b\nworkdir /w\n').map((line) => `${line.keyword} ${line.rest}`),
    ['FROM x', 'RUN a &&      b', 'WORKDIR /w'],
  );
});

test("a task that is not in Harbor's layout, or whose task.toml is broken, is refused with what is wrong", async () => {
  const dir = tempDir('apollo-task-bad-');
  try {
    await assert.rejects(loadTask(dir.dir), (error: Error) => error instanceof TaskError && /instruction\.md, task\.toml, tests\/test\.sh missing/.test(error.message));
    writeFileSync(path.join(dir.dir, 'instruction.md'), 'Do it.');
    writeFileSync(path.join(dir.dir, 'task.toml'), '[verifier\ntimeout_sec = 1');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path.join(dir.dir, 'tests'));
    writeFileSync(path.join(dir.dir, 'tests', 'test.sh'), 'exit 0');
    await assert.rejects(loadTask(dir.dir), /task\.toml is not valid TOML/);
    writeFileSync(path.join(dir.dir, 'task.toml'), '[verifier]\ntimeout_sec = "soon"\n');
    await assert.rejects(loadTask(dir.dir), /timeout_sec must be a number/);
    assert.throws(() => findTaskDirs(dir.dir + '-missing'), /Cannot read/);
  } finally {
    dir.cleanup();
  }
});

test('tasks this host cannot run are refused before the run, each with its reason', async () => {
  const needsTool = await loadTask(task('needs-tool'));
  const host: TaskHost = { ...everything, hasPackage: (name) => name !== 'apollo-test-frobnicator-that-does-not-exist' };
  assert.match(taskRefusal(needsTool, host) ?? '', /needs apollo-test-frobnicator-that-does-not-exist \(installed by its Dockerfile\), which this machine lacks/);
  assert.equal(taskRefusal(needsTool, everything), undefined, 'apt-get update, the install and the apt cache cleanup are all the host can stand in for');
  const hello = await loadTask(task('hello-file'));
  const variant = (patch: Partial<HarborTask>): HarborTask => ({ ...hello, ...patch, environment: { ...hello.environment, ...(patch.environment ?? {}) } });
  assert.match(taskRefusal(variant({ environment: { ...hello.environment, dockerImage: 'ghcr.io/x/y:1' } }), everything) ?? '', /needs the container image ghcr\.io\/x\/y:1/);
  assert.match(taskRefusal(variant({ hasCompose: true }), everything) ?? '', /several containers/);
  assert.match(taskRefusal(variant({ environment: { ...hello.environment, gpus: 1 } }), everything) ?? '', /needs 1 GPU\(s\) and this machine has 0/);
  assert.match(taskRefusal(variant({ runLines: ['make -j4 install'] }), everything) ?? '', /runs `RUN make -j4 install`, which needs a container engine/);
  assert.match(taskRefusal(variant({ runLines: ['pip install -r requirements.txt'] }), everything) ?? '', /needs a container engine/);
  assert.match(taskRefusal(variant({ copies: [{ from: 'README.md', to: '/etc/motd' }] }), everything) ?? '', /outside its WORKDIR \/app/);
  assert.match(taskRefusal(variant({ copies: [{ from: '../../secret', to: '/app/x' }] }), everything) ?? '', /outside its build context/);
  for (const workdir of ['/', '/etc', '/usr/src/app', '/tmp/work', '/proc', '/tests']) {
    assert.match(taskRefusal(variant({ workdir, copies: [] }), everything) ?? '', /would put the workspace over a system folder/, workdir);
  }
  for (const workdir of ['/app', '/workspace', '/testbed', '/home/user/project', '/root/repo']) assert.equal(taskRefusal(variant({ workdir, copies: [] }), everything), undefined, workdir);
  assert.match(taskRefusal(hello, { ...everything, sandbox: false, sandboxReason: 'bubblewrap (bwrap) is not installed' }) ?? '', /needs the command sandbox .* bubblewrap \(bwrap\) is not installed/);
});

test('rewards are read as Harbor reads them: reward.txt first, else reward.json of named numbers', async () => {
  const dir = tempDir('apollo-rewards-');
  try {
    assert.match((await readRewards(dir.dir)).error ?? '', /wrote no reward/);
    writeFileSync(path.join(dir.dir, 'reward.json'), '{"reward": 0.5, "tests_passed": 3, "lint": true}');
    assert.deepEqual((await readRewards(dir.dir)).rewards, { reward: 0.5, tests_passed: 3, lint: 1 });
    writeFileSync(path.join(dir.dir, 'reward.json'), '{"failed": ["a", "b"]}');
    assert.match((await readRewards(dir.dir)).error ?? '', /"failed" is .*not a number/);
    writeFileSync(path.join(dir.dir, 'reward.txt'), '1\n');
    assert.deepEqual((await readRewards(dir.dir)).rewards, { reward: 1 });
    writeFileSync(path.join(dir.dir, 'reward.txt'), 'passed');
    assert.match((await readRewards(dir.dir)).error ?? '', /not a number/);
  } finally {
    dir.cleanup();
  }
  assert.equal(primaryReward({ reward: 0.25, other: 1 }), 0.25);
  assert.equal(primaryReward({ a: 1, b: 0 }), 0.5);
  assert.equal(primaryReward(undefined), undefined);
});

test('shards deal the sorted tasks out to N machines, each task to exactly one', () => {
  const tasks = ['a', 'b', 'c', 'd', 'e'];
  const shards = [1, 2, 3].map((index) => shardOf(tasks, parseShard(`${index}/3`)));
  assert.deepEqual(shards, [['a', 'd'], ['b', 'e'], ['c']]);
  assert.throws(() => parseShard('0/3'), /1 ≤ I ≤ N/);
  assert.throws(() => parseShard('4/3'), /1 ≤ I ≤ N/);
  assert.throws(() => parseShard('two'), /I\/N/);
  assert.deepEqual(
    findTaskDirs(TASKS).map((dir) => path.basename(dir)),
    ['hanging-verifier', 'hello-file', 'needs-tool', 'sum-metrics'],
  );
});

test('the verifier runs in the sandbox with /app, /tests and /logs/verifier in place; the oracle solves its task', async (t) => {
  const sandbox = await sandboxOrSkip(t);
  if (!sandbox) return;
  const { task: hello } = await loadRunnableTask(task('hello-file'), { sandbox, host: everything });
  const ws = tempDir('apollo-verify-');
  try {
    await prepareTaskWorkspace(hello, ws.dir);
    const failed = await verifyWorkspace({ task: hello, workspace: ws.dir, sandbox });
    assert.deepEqual(failed.rewards, { reward: 0 });
    assert.match(failed.output ?? '', /missing or wrong/);
    writeFileSync(path.join(ws.dir, 'hello.txt'), 'Hello, world!\n');
    const passed = await verifyWorkspace({ task: hello, workspace: ws.dir, sandbox });
    assert.deepEqual(passed.rewards, { reward: 1 });
    assert.equal(passed.source, 'verifier');
    assert.equal(existsSync('/logs/verifier/reward.txt'), false, "the host's /logs is never written");

    const { task: sum } = await loadRunnableTask(task('sum-metrics'), { sandbox, host: everything });
    const sumWs = path.join(ws.dir, 'sum');
    await prepareTaskWorkspace(sum, sumWs);
    writeFileSync(path.join(sumWs, 'sum.py'), 'print(sum(int(line) for line in open("numbers.txt")))\n');
    const metrics = await verifyWorkspace({ task: sum, workspace: sumWs, sandbox });
    assert.deepEqual(metrics.rewards, { reward: 1, file_exists: 1, correct: 1 }, metrics.output);

    const oracle = await checkTaskSolvable({ taskDir: task('hello-file'), sandbox, host: everything });
    assert.equal(oracle.source, 'oracle');
    assert.deepEqual(oracle.rewards, { reward: 1 });
  } finally {
    ws.cleanup();
  }
});

test('a verifier that hangs is stopped at its timeout, with everything it started', async (t) => {
  const sandbox = await sandboxOrSkip(t);
  if (!sandbox) return;
  const { task: hanging } = await loadRunnableTask(task('hanging-verifier'), { sandbox, host: everything });
  const ws = tempDir('apollo-hang-');
  try {
    const started = Date.now();
    const outcome = await verifyWorkspace({ task: hanging, workspace: ws.dir, sandbox });
    assert.equal(outcome.timedOut, true);
    assert.deepEqual(outcome.rewards, {});
    assert.match(outcome.error ?? '', /ran past its timeout \(2 s, \[verifier\] timeout_sec\) and was stopped/);
    assert.ok(Date.now() - started < 20_000, 'stopped at the timeout, not at the end of the sleep');
    for (let waited = 0; processesRunning('sleep 600').length; waited += 50) {
      assert.ok(waited < 10_000, "the verifier's children outlived it");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    ws.cleanup();
  }
});

test("apollo run --task-dir: the agent gets instruction.md in a fresh working copy, the verifier's reward is recorded; apollo verify runs it again", async (t) => {
  const sandbox = await sandboxOrSkip(t);
  if (!sandbox) return;
  const root = tempDir('apollo-taskrun-');
  const server = await startScriptedModelServer([
    { toolCall: { name: 'write_file', arguments: { path: 'hello.txt', content: 'Hello, world!\n' } } },
    { toolCall: { name: 'finish', arguments: { summary: 'wrote hello.txt' } } },
  ]);
  try {
    const dataset = path.join(root.dir, 'dataset');
    const run = io({ OPENAI_API_KEY: 'k-0123456789', OPENAI_BASE_URL: server.baseUrl });
    const code = await main(['run', '--task-dir', task('hello-file'), '--model', 'scripted', '--dataset', dataset, '--runs-dir', path.join(root.dir, 'runs'), '--no-hints'], run.io);
    assert.equal(code, 0, run.err());
    const runId = run.out().split('\n')[0];
    assert.match(run.out(), /verifier of hello-file: reward=1 in/);
    assert.match(server.requests[0].messages[1].content, /^Create a file named `hello.txt` in \/app/);
    const store = new DatasetStore(dataset);
    const { events } = await store.readEvents(runId);
    const started = events.find((event) => event.type === 'run_started');
    assert.ok(started?.type === 'run_started' && started.taskSource?.name === 'hello-file' && started.hintsDisabled === true);
    assert.ok(existsSync(path.join(started.workspace, 'README.md')), 'the working copy holds what the Dockerfile copies');
    const rewards = events.filter((event) => event.type === 'reward');
    assert.equal(rewards.length, 1);
    assert.ok(rewards[0].type === 'reward' && rewards[0].rewards.reward === 1 && rewards[0].task === 'hello-file');

    // The workspace changes after the run (an adopt, a fix by hand): verify again.
    writeFileSync(path.join(started.workspace, 'hello.txt'), 'Goodbye\n');
    const again = io();
    assert.equal(await main(['verify', '--run', runId, '--dataset', dataset], again.io), 0, again.err());
    assert.match(again.out(), /verifier of hello-file: reward=0/);
    const after = (await store.readEvents(runId)).events.filter((event) => event.type === 'reward');
    assert.equal(after.length, 2);

    const refused = io();
    assert.equal(await main(['run', '--task-dir', task('hello-file'), '--task', 'something else', '--dataset', dataset], refused.io), 2);
    assert.match(refused.err(), /--task-dir gives the task/);
    const noTask = io();
    assert.equal(await main(['verify', '--dataset', dataset], noTask.io), 2);
    assert.match(noTask.err(), /needs --run ID/);
  } finally {
    await server.close();
    root.cleanup();
  }
});

test("apollo sample --task-dir SUITE --n 2 --shard 2/2: each task of the shard twice, each run verified; the other shard's tasks untouched", async (t) => {
  const sandbox = await sandboxOrSkip(t);
  if (!sandbox) return;
  const root = tempDir('apollo-suite-');
  const firsts = new Map<string, number>();
  // The first request of a run writes the answer: right for the first run of each task, wrong for the second.
  const reply = (request: { messages: any[] }) => {
    if (request.messages.some((message: any) => message.role === 'tool')) return { toolCall: { name: 'finish', arguments: { summary: 'done' } } };
    const instruction = String(request.messages[1].content);
    const key = instruction.includes('hello.txt') ? 'hello' : 'sum';
    const count = (firsts.get(key) ?? 0) + 1;
    firsts.set(key, count);
    if (key === 'hello') return { toolCall: { name: 'write_file', arguments: { path: 'hello.txt', content: count === 1 ? 'Hello, world!\n' : 'Hi\n' } } };
    return { toolCall: { name: 'write_file', arguments: { path: 'sum.py', content: count === 1 ? 'print(sum(int(l) for l in open("numbers.txt")))\n' : 'print(0)\n' } } };
  };
  const server = await startScriptedModelServer([], { fallback: reply });
  try {
    const dataset = path.join(root.dir, 'dataset');
    const run = io({ OPENAI_API_KEY: 'k-0123456789', OPENAI_BASE_URL: server.baseUrl });
    const code = await main(
      ['sample', '--task-dir', TASKS, '--n', '2', '--shard', '2/2', '--concurrency', '2', '--model', 'scripted', '--dataset', dataset, '--runs-dir', path.join(root.dir, 'runs')],
      run.io,
    );
    assert.equal(code, 0, run.err());
    const runIds = run.out().trim().split('\n');
    assert.equal(runIds.length, 4, run.out());
    const store = new DatasetStore(dataset);
    const verdicts: string[] = [];
    for (const runId of runIds) {
      const { events } = await store.readEvents(runId);
      const started = events.find((event) => event.type === 'run_started');
      const rewards = events.filter((event) => event.type === 'reward');
      assert.equal(rewards.length, 1, `${runId}: ${JSON.stringify(rewards)}`);
      if (started?.type === 'run_started' && rewards[0].type === 'reward') verdicts.push(`${started.taskSource?.name} ${rewards[0].rewards.reward}`);
    }
    assert.deepEqual(verdicts.sort(), ['apollo-tests/sum-metrics 0', 'apollo-tests/sum-metrics 1', 'hello-file 0', 'hello-file 1']);
    assert.match(run.err(), /2 task\(s\) \(shard 2\/2\), 2 run\(s\) each/);

    const other = io({ OPENAI_API_KEY: 'k-0123456789', OPENAI_BASE_URL: server.baseUrl });
    const refusedCode = await main(['sample', '--task-dir', task('needs-tool'), '--n', '1', '--model', 'scripted', '--dataset', dataset, '--runs-dir', path.join(root.dir, 'runs')], other.io);
    assert.equal(refusedCode, 1);
    assert.match(other.err(), /refused: Task needs-tool needs apollo-test-frobnicator-that-does-not-exist/);
    assert.equal(other.out(), '', 'no run started for a refused task');
  } finally {
    await server.close();
    root.cleanup();
  }
});
