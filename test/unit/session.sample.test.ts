import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DatasetEvent, RunStartedEvent, StepEvent } from '../../src/core/dataset/events';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { ConfigError } from '../../src/core/session/runSession';
import { ConcurrencyLimit, type SampleOptions, startSampling } from '../../src/core/session/sample';
import { type RecordedRequest, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { fingerprint } from '../fixtures/shadow';
import { git, makeWorkspace, tempDir } from '../fixtures/workspace';

/** Which run (0-based) a request comes from: the system prompt names its working copy, `<runsDir>/<taskId>/<index + 1>`. */
function copyIndex(request: RecordedRequest): number {
  const match = /The workspace root is (.*?); every path/.exec(String(request.messages[0]?.content));
  return Number(path.basename(match?.[1] ?? '')) - 1;
}

/** The step a request is for, from the budget note sent with it. */
function stepOf(request: RecordedRequest): number {
  const note = request.messages
    .filter((message) => message.role === 'system')
    .map((message) => String(message.content))
    .find((text) => text.startsWith('Budget:'));
  return Number(/step (\d+) of/.exec(note ?? '')?.[1]);
}

const call = (name: string, args: object = {}): { toolCall: { name: string; arguments: object }; delayMs?: number } => ({ toolCall: { name, arguments: args } });
const steps = (events: readonly DatasetEvent[]) => events.filter((event): event is StepEvent => event.type === 'step');
const HINT = 'Only run 1 may see this hint';
const hinted = (request: RecordedRequest) => request.messages.some((message) => message.role === 'user' && String(message.content).includes(HINT));

function baseOptions(workspace: string, baseUrl: string, runsDir: string): Omit<SampleOptions, 'n'> {
  return { workspace, datasetDir: defaultDatasetPath(workspace), task: 'Leave a file of your own', model: 'scripted', baseUrl, apiKey: 'test-key-0123456789', maxSteps: 40, runsDir };
}

test("three concurrent runs of one task each work in a copy of their own; the user's workspace and repository stay as they were", async () => {
  const ws = makeWorkspace({ 'a.txt': 'committed\n', '.gitignore': 'build/\n' });
  await fs.writeFile(path.join(ws.dir, 'a.txt'), 'changed, not committed\n');
  await fs.writeFile(path.join(ws.dir, 'notes.txt'), 'untracked\n');
  await fs.mkdir(path.join(ws.dir, 'build'));
  await fs.writeFile(path.join(ws.dir, 'build', 'out.js'), 'ignored\n');
  await fs.mkdir(path.join(ws.dir, 'node_modules', 'dep'), { recursive: true });
  await fs.writeFile(path.join(ws.dir, 'node_modules', 'dep', 'index.js'), 'dependency\n');
  const runs = tempDir('apollo-runs-');
  let hintDelivered = false;
  // Each run writes its own file, lists the folder, asks git what changed, then waits until run 1 has its hint.
  const server = await startScriptedModelServer([], {
    fallback: (request) => {
      const index = copyIndex(request);
      const step = stepOf(request);
      if (index === 1 && hinted(request)) hintDelivered = true;
      if (step === 1) return call('write_file', { path: `from-${index}.txt`, content: `run ${index}\n` });
      if (step === 2) return call('list_dir');
      if (step === 3) return call('run_command', { command: 'git status --porcelain' });
      return hintDelivered ? call('finish', { summary: `run ${index} done` }) : { ...call('list_dir'), delayMs: 30 };
    },
  });
  const userFiles = () => fingerprint(ws.dir, (relative) => relative === '.apollo');
  const userGit = fingerprint(path.join(ws.dir, '.git'));
  const filesBefore = userFiles();
  try {
    const sampling = await startSampling({ ...baseOptions(ws.dir, server.baseUrl, runs.dir), n: 3 });
    const dataset = new DatasetStore(defaultDatasetPath(ws.dir));
    const hinting = new Promise<void>((resolve, reject) => {
      sampling.onRunStarted((session, index) => {
        if (index !== 1) return;
        // As `apollo hint --run ID` does: through the run's inbox in the dataset.
        dataset.queueHintFile(session.runId, { hintId: 'h-only-one', text: HINT, kind: 'knowledge', source: 'cli', time: new Date().toISOString() }).then(resolve, reject);
      });
    });
    const results = await sampling.done;
    await hinting;
    assert.deepEqual(
      results.map((result) => [result.state, result.ended?.status]),
      [
        ['ended', 'finished'],
        ['ended', 'finished'],
        ['ended', 'finished'],
      ],
    );

    const copies = results.map((result) => result.workingCopy);
    assert.equal(new Set(copies).size, 3);
    for (const [index, copy] of copies.entries()) {
      assert.equal(copy, path.join(sampling.copiesDir, String(index + 1)));
      assert.ok(!copy.startsWith(ws.dir + path.sep));
    }
    for (const result of results) {
      const { events } = await dataset.readEvents(result.runId!);
      const started = events[0] as RunStartedEvent;
      assert.equal(started.workspace, result.workingCopy);
      assert.equal(started.taskId, sampling.taskId);
      assert.deepEqual(started.origin, { workspace: await fs.realpath(ws.dir), snapshot: sampling.baseSnapshot });
      const manifest = await dataset.readManifest(result.runId!);
      assert.equal(manifest.taskId, sampling.taskId);
      assert.equal(manifest.originWorkspace, await fs.realpath(ws.dir));
      const [write, listing, status] = steps(events);
      assert.deepEqual(
        write.grounding.files.map((file) => file.path),
        [`from-${result.index}.txt`],
      );
      // Each run sees its own file and none of the others'.
      assert.deepEqual(
        listing.observation.split('\n').filter((line) => line.startsWith('from-')),
        [`from-${result.index}.txt`],
      );
      // The copy carries the user's uncommitted work, as changes in its own repository.
      assert.match(status.observation, /^ M a\.txt$/m);
      assert.match(status.observation, /^\?\? notes\.txt$/m);
      assert.match(status.observation, new RegExp(`^\\?\\? from-${result.index}\\.txt$`, 'm'));
      assert.doesNotMatch(status.observation, /from-(?!\d\.txt)|build|node_modules/);
      assert.equal(await fs.readFile(path.join(result.workingCopy, 'a.txt'), 'utf8'), 'changed, not committed\n');
      assert.equal(existsSync(path.join(result.workingCopy, 'build')), false);
      assert.equal(existsSync(path.join(result.workingCopy, 'node_modules')), false);
      assert.equal(existsSync(path.join(result.workingCopy, '.apollo')), false);
    }
    // The hint reached run 1's requests and no other run's.
    const carrying = server.requests.filter(hinted);
    assert.ok(carrying.length >= 1);
    assert.deepEqual([...new Set(carrying.map(copyIndex))], [1]);
    // The other runs asked the model again after the hint had reached run 1: it could have strayed to them.
    const firstHinted = server.requests.indexOf(carrying[0]);
    for (const other of [0, 2])
      assert.ok(
        server.requests.slice(firstHinted).some((request) => copyIndex(request) === other),
        `run ${other} was over before the hint`,
      );
    const delivered = await Promise.all(results.map(async (result) => (await dataset.readEvents(result.runId!)).events.filter((event) => event.type === 'hint_delivered').length));
    assert.deepEqual(delivered, [0, 1, 0]);

    const all = await dataset.listRuns();
    assert.equal(all.length, 3);
    assert.deepEqual([...new Set(all.map((run) => run.taskId))], [sampling.taskId]);
    assert.equal(userFiles(), filesBefore);
    assert.equal(fingerprint(path.join(ws.dir, '.git')), userGit);
    assert.equal(git(ws.dir, 'status', '--porcelain', '--ignored'), ' M a.txt\n?? node_modules/\n?? notes.txt\n!! .apollo/\n!! build/\n');
  } finally {
    await server.close();
    runs.cleanup();
    ws.cleanup();
  }
});

test('with concurrency 1 the runs go one at a time, in order', async () => {
  const ws = makeWorkspace();
  const runs = tempDir('apollo-runs-');
  const server = await startScriptedModelServer([], { fallback: (request) => (stepOf(request) === 1 ? call('list_dir') : call('finish', { summary: 'ok' })) });
  try {
    const sampling = await startSampling({ ...baseOptions(ws.dir, server.baseUrl, runs.dir), n: 3, concurrency: 1 });
    const runningAtStart: number[] = [];
    sampling.onRunStarted(() => runningAtStart.push(sampling.runs.filter((run) => run.state === 'running').length));
    const results = await sampling.done;
    assert.deepEqual(runningAtStart, [1, 1, 1]);
    const store = new DatasetStore(defaultDatasetPath(ws.dir));
    const spans = await Promise.all(
      results.map(async (result) => {
        const { events } = await store.readEvents(result.runId!);
        return { started: events[0].time, ended: events[events.length - 1].time, end: events[events.length - 1].type };
      }),
    );
    assert.deepEqual(
      spans.map((span) => span.end),
      ['run_ended', 'run_ended', 'run_ended'],
    );
    for (let i = 1; i < spans.length; i++) assert.ok(spans[i].started >= spans[i - 1].ended, `run ${i} started before run ${i - 1} ended`);
  } finally {
    await server.close();
    runs.cleanup();
    ws.cleanup();
  }
});

test('a limit shared by two samplings holds across both', async () => {
  const ws = makeWorkspace();
  const runs = tempDir('apollo-runs-');
  const server = await startScriptedModelServer([], { fallback: (request) => (stepOf(request) === 1 ? { ...call('list_dir'), delayMs: 50 } : call('finish', { summary: 'ok' })) });
  try {
    const limit = new ConcurrencyLimit(1);
    const samplings = await Promise.all([1, 2].map(() => startSampling({ ...baseOptions(ws.dir, server.baseUrl, runs.dir), n: 2, limit })));
    const seen: number[] = [];
    for (const sampling of samplings) sampling.onRunStarted(() => seen.push(samplings.flatMap((each) => each.runs).filter((run) => run.state === 'running').length));
    const results = (await Promise.all(samplings.map((sampling) => sampling.done))).flat();
    assert.deepEqual(
      results.map((result) => result.ended?.status),
      ['finished', 'finished', 'finished', 'finished'],
    );
    assert.deepEqual(seen, [1, 1, 1, 1]);
    assert.notEqual(samplings[0].taskId, samplings[1].taskId);
  } finally {
    await server.close();
    runs.cleanup();
    ws.cleanup();
  }
});

test('stop ends the runs going on and cancels the queued ones', async () => {
  const ws = makeWorkspace();
  const runs = tempDir('apollo-runs-');
  const server = await startScriptedModelServer([], { fallback: { ...call('list_dir'), delayMs: 30_000 } });
  try {
    const sampling = await startSampling({ ...baseOptions(ws.dir, server.baseUrl, runs.dir), n: 3, concurrency: 1 });
    const started = new Promise<void>((resolve) => sampling.onRunStarted(() => resolve()));
    await started;
    const results = await sampling.stop();
    assert.deepEqual(
      results.map((result) => result.ended?.status ?? (result.cancelled && 'cancelled')),
      ['stopped', 'cancelled', 'cancelled'],
    );
    assert.match(results[1].error ?? '', /sampling was stopped/);
  } finally {
    await server.close();
    runs.cleanup();
    ws.cleanup();
  }
});

test('a run whose working copy cannot be made fails alone, saying why; the others go on', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const runs = tempDir('apollo-runs-');
  const server = await startScriptedModelServer([], { fallback: call('finish', { summary: 'ok' }) });
  try {
    const sampling = await startSampling({ ...baseOptions(ws.dir, server.baseUrl, runs.dir), n: 3 });
    // The first copy's folder is taken before the sampling gets to it.
    mkdirSync(sampling.runs[0].workingCopy, { recursive: true });
    writeFileSync(path.join(sampling.runs[0].workingCopy, 'someone-else.txt'), 'mine\n');
    const failed: string[] = [];
    sampling.onRunChanged((run) => run.state === 'failed' && failed.push(run.error ?? ''));
    const results = await sampling.done;
    assert.deepEqual(
      results.map((result) => result.state),
      ['failed', 'ended', 'ended'],
    );
    assert.match(results[0].error ?? '', /Could not prepare working copy 1\/3 at .*: The working copy folder .* already exists and is not empty/);
    assert.deepEqual(failed, [results[0].error]);
    assert.equal(readFileSync(path.join(sampling.runs[0].workingCopy, 'someone-else.txt'), 'utf8'), 'mine\n');
    for (const result of results.slice(1)) {
      assert.equal(result.ended?.status, 'finished');
      assert.equal(readFileSync(path.join(result.workingCopy, 'a.txt'), 'utf8'), 'a\n');
    }
  } finally {
    await server.close();
    runs.cleanup();
    ws.cleanup();
  }
});

test('bad sampling options are refused before anything is written', async () => {
  const ws = makeWorkspace();
  const outside = tempDir('apollo-outside-');
  try {
    const runsDir = path.join(outside.dir, 'runs');
    const base: SampleOptions = { ...baseOptions(ws.dir, 'http://127.0.0.1:9/v1', runsDir), n: 2 };
    const refused = async (options: SampleOptions, message: RegExp) => assert.rejects(startSampling(options), (error: Error) => error instanceof ConfigError && message.test(error.message));
    await refused({ ...base, n: 0 }, /number of runs must be a whole number of at least 1 \(got 0\)/);
    await refused({ ...base, concurrency: 0 }, /concurrency must be a whole number of at least 1/);
    await refused({ ...base, runsDir: path.join(ws.dir, 'copies') }, /inside the workspace/);
    await refused({ ...base, datasetDir: path.join(outside.dir, 'data'), runsDir: path.join(outside.dir, 'data', 'runs') }, /inside the dataset folder/);
    await refused({ ...base, workspace: path.join(ws.dir, 'missing') }, /does not exist/);
    await refused({ ...base, task: '  ' }, /task is empty/);
    await refused({ ...base, budget: { maxTokens: 0 } }, /token budget/);
    assert.throws(() => new ConcurrencyLimit(0), ConfigError);
    assert.equal(existsSync(defaultDatasetPath(ws.dir)), false);
    assert.equal(existsSync(path.join(ws.dir, '.apollo')), false);
    assert.deepEqual(await fs.readdir(outside.dir), []);
  } finally {
    outside.cleanup();
    ws.cleanup();
  }
});
