import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, promises as fs, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { DatasetEvent, RunStartedEvent, StepEvent } from '../../src/core/dataset/events';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { copyLayers, isMounted, overlaySupport, remountCopy } from '../../src/core/session/overlayCopy';
import { type SampleOptions, startSampling } from '../../src/core/session/sample';
import { removeWorkingCopies } from '../../src/core/session/workingCopy';
import { type RecordedRequest, ReplyGate, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { until } from '../fixtures/poll';
import { fingerprint } from '../fixtures/shadow';
import { makeWorkspace, tempDir } from '../fixtures/workspace';

/** Which run (0-based) a request comes from: the system prompt names its working copy, `<runsDir>/<taskId>/<index + 1>`. */
function copyIndex(request: RecordedRequest): number {
  const match = /The workspace root is (.*?); every path/.exec(String(request.messages[0]?.content));
  return Number(path.basename(match?.[1] ?? '')) - 1;
}

const hasToolResult = (request: RecordedRequest) => request.messages.some((message) => message.role === 'tool');
const call = (name: string, args: object = {}) => ({ toolCall: { name, arguments: args } });
const steps = (events: readonly DatasetEvent[]) => events.filter((event): event is StepEvent => event.type === 'step');

/** The mounts below `dir` that this process sees. */
const mountsUnder = (dir: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point) => point && (point === dir || point.startsWith(`${dir}/`)));

function options(workspace: string, baseUrl: string, runsDir: string): Omit<SampleOptions, 'n'> {
  return { workspace, datasetDir: defaultDatasetPath(workspace), task: 'Change a.txt', model: 'scripted', baseUrl, apiKey: 'test-key-0123456789', maxSteps: 5, runsDir, copies: 'auto' };
}

test('overlay copies: a run writes in place and deletes in its own copy only; the base, the other copy and the user workspace stay as they were', async (t) => {
  const refused = await overlaySupport();
  if (refused) return t.skip(`this process cannot mount overlays (${refused}); the CLI test below covers the namespace`);
  const ws = makeWorkspace({ 'a.txt': 'committed\n', 'b.txt': 'to be deleted\n', 'big/data.bin': 'x'.repeat(200_000) });
  const runs = tempDir('apollo-runs-');
  // Run 1 appends to a.txt in place (the same inode, as `>>` does) and deletes b.txt with a sandboxed command; run 2 only reads.
  const server = await startScriptedModelServer([], {
    fallback: (request) => {
      if (hasToolResult(request)) return call('finish', { summary: 'done' });
      return copyIndex(request) === 0 ? call('run_command', { command: "printf 'more\\n' >> a.txt && rm b.txt" }) : call('run_command', { command: 'cat a.txt b.txt' });
    },
  });
  const userFiles = fingerprint(ws.dir, (relative) => relative === '.apollo');
  try {
    const sampling = await startSampling({ ...options(ws.dir, server.baseUrl, runs.dir), n: 2, concurrency: 1 });
    const results = await sampling.done;
    assert.deepEqual(
      results.map((result) => result.state),
      ['ended', 'ended'],
      JSON.stringify(results),
    );
    assert.equal(sampling.overlay, true);
    const [first, second] = sampling.runs.map((run) => run.workingCopy);
    const base = copyLayers(first).base;
    assert.equal(await fs.readFile(path.join(first, 'a.txt'), 'utf8'), 'committed\nmore\n');
    assert.equal(existsSync(path.join(first, 'b.txt')), false);
    assert.equal(await fs.readFile(path.join(second, 'a.txt'), 'utf8'), 'committed\n');
    assert.equal(await fs.readFile(path.join(second, 'b.txt'), 'utf8'), 'to be deleted\n');
    assert.equal(await fs.readFile(path.join(base, 'a.txt'), 'utf8'), 'committed\n');
    assert.equal(await fs.readFile(path.join(base, 'b.txt'), 'utf8'), 'to be deleted\n');
    assert.deepEqual(
      fingerprint(ws.dir, (relative) => relative === '.apollo'),
      userFiles,
      "the user's workspace is untouched",
    );

    // Only what run 1 changed is in its upper layer: a.txt copied up, b.txt a whiteout; the large file stayed below.
    const upper = copyLayers(first).upper;
    assert.equal(await fs.readFile(path.join(upper, 'a.txt'), 'utf8'), 'committed\nmore\n');
    assert.ok((await fs.lstat(path.join(upper, 'b.txt'))).isCharacterDevice(), 'a deletion is a whiteout');
    assert.equal(existsSync(path.join(upper, 'big')), false);
    assert.equal(existsSync(path.join(copyLayers(second).upper, 'a.txt')), false);

    // Grounding sees the run's own changes through the mount.
    const store = new DatasetStore(sampling.datasetDir);
    const step = steps((await store.readEvents(results[0].runId!)).events)[0];
    assert.deepEqual(step.grounding?.files.map((file) => [file.path, file.status]).sort(), [
      ['a.txt', 'modified'],
      ['b.txt', 'deleted'],
    ]);
    assert.deepEqual(steps((await store.readEvents(results[1].runId!)).events)[0].grounding?.files ?? [], []);

    // Unmounted once done: the mount point is empty, the layers stay, and the copy can be mounted again.
    await sampling.unmount();
    assert.equal(await isMounted(first), false);
    assert.deepEqual(readdirSync(first), []);
    assert.equal(await remountCopy(first), true);
    assert.equal(await fs.readFile(path.join(first, 'a.txt'), 'utf8'), 'committed\nmore\n');
    assert.equal(await remountCopy(path.join(runs.dir, 'not-a-copy')), false);
    // A path not laid out as <taskId>/<n> is never mounted over, even with layers planted beside it.
    const planted = path.join(runs.dir, sampling.taskId, 'src');
    await fs.mkdir(copyLayers(planted).upper, { recursive: true });
    await fs.mkdir(planted);
    assert.equal(await remountCopy(planted), false);
    assert.equal(await isMounted(planted), false);

    // gc unmounts what is mounted before removing the copies and their layers.
    assert.equal(await removeWorkingCopies(runs.dir, sampling.taskId), true);
    assert.deepEqual(mountsUnder(await fs.realpath(runs.dir)), []);
    assert.equal(existsSync(path.join(runs.dir, sampling.taskId)), false);
  } finally {
    for (const point of mountsUnder(await fs.realpath(runs.dir)).reverse()) await new Promise((resolve) => spawn('umount', ['--lazy', point]).on('exit', resolve));
    await server.close();
    ws.cleanup();
    runs.cleanup();
  }
});

test('overlay copies: a runs folder whose path overlayfs cannot carry (a comma) gets plain copies, and says why', async (t) => {
  const refused = await overlaySupport();
  if (refused) return t.skip(`this process cannot mount overlays (${refused})`);
  const ws = makeWorkspace({ 'a.txt': 'committed\n' });
  const parent = tempDir('apollo-runs-');
  const runsDir = path.join(parent.dir, 'runs,lowerdir=/');
  const server = await startScriptedModelServer([], { fallback: () => call('finish', { summary: 'done' }) });
  const log: string[] = [];
  try {
    const sampling = await startSampling({ ...options(ws.dir, server.baseUrl, runsDir), n: 2, log: (line) => log.push(line) });
    const results = await sampling.done;
    assert.deepEqual(
      results.map((result) => result.state),
      ['ended', 'ended'],
      JSON.stringify(results),
    );
    assert.equal(sampling.overlay, false);
    assert.match(log.join('\n'), /working copies: plain copies \(.*holds a comma/);
    assert.deepEqual(
      readdirSync(runsDir).filter((name) => name.startsWith('.apollo-overlay-probe')),
      [],
      'the probe leaves nothing behind',
    );
    assert.equal(await fs.readFile(path.join(sampling.runs[1].workingCopy, 'a.txt'), 'utf8'), 'committed\n');
    assert.deepEqual(mountsUnder(await fs.realpath(parent.dir)), []);
  } finally {
    await server.close();
    ws.cleanup();
    parent.cleanup();
  }
});

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'out', 'src', 'cli', 'main.js');

/** Runs the CLI as a process of its own, as an unprivileged user (nobody, when the tests run as root). */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const asNobody = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'] : [];
  const [file, ...rest] = [...asNobody, process.execPath, CLI, ...args];
  const child = spawn(file, rest, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The CLI's environment: its folders in the scratch folder, the scripted model. */
const cliEnv = (dir: string, baseUrl: string) => ({
  HOME: path.join(dir, 'home'),
  APOLLO_HOME: path.join(dir, 'apollo'),
  OPENAI_API_KEY: 'test-key-0123456789',
  OPENAI_BASE_URL: baseUrl,
  OPENAI_MODEL: 'scripted',
});

/** A scratch folder any user may write in, holding a copy of the hello-file task and the CLI's folders (home, apollo, runs, data). */
async function unprivilegedScratch(prefix: string) {
  const scratch = tempDir(prefix);
  chmodSync(scratch.dir, 0o777);
  const task = path.join(scratch.dir, 'tasks', 'hello-file');
  cpSync(path.join(ROOT, 'test', 'fixtures', 'tasks', 'hello-file'), task, { recursive: true });
  for (const dir of ['home', 'apollo', 'runs', 'data']) {
    await fs.mkdir(path.join(scratch.dir, dir));
    chmodSync(path.join(scratch.dir, dir), 0o777);
  }
  return { scratch, task };
}

test('apollo sample --task-dir, unprivileged: the CLI mounts overlay copies in a namespace of its own, leaves no mount behind, and verify --run mounts a copy again', async (t) => {
  if (process.platform !== 'linux') return t.skip('overlay copies are Linux only');
  const { scratch, task } = await unprivilegedScratch('apollo-overlay-cli-');
  // Run 1 solves the task; run 2 finishes without doing anything.
  const server = await startScriptedModelServer([], {
    fallback: (request) => {
      if (hasToolResult(request) || copyIndex(request) === 1) return call('finish', { summary: 'done' });
      return call('write_file', { path: 'hello.txt', content: 'Hello, world!' });
    },
  });
  const env = cliEnv(scratch.dir, server.baseUrl);
  const data = path.join(scratch.dir, 'data');
  const runsDir = path.join(scratch.dir, 'runs');
  try {
    const sampled = await cli(['sample', '--task-dir', task, '--n', '2', '--concurrency', '1', '--runs-dir', runsDir, '--dataset', data, '--max-steps', '3'], env);
    if (/cannot mount an overlay here|plain copies/.test(sampled.stderr) && !/overlay mounts/.test(sampled.stderr))
      return t.skip(`no unprivileged overlay mounts on this machine: ${sampled.stderr.split('\n').find((line) => /plain copies/.test(line))}`);
    assert.match(sampled.stderr, /working copies: overlay mounts over one base copy/, sampled.stderr);
    const runIds = sampled.stdout.trim().split('\n');
    assert.equal(runIds.length, 2, sampled.stderr);
    const store = new DatasetStore(data);
    const started = async (runId: string) => (await store.readEvents(runId)).events.find((event): event is RunStartedEvent => event.type === 'run_started')!;
    const rewards = async (runId: string) =>
      (await store.readEvents(runId)).events
        .filter((event) => event.type === 'reward')
        .map((event) => (event as { reward?: number; rewards?: Record<string, number> }).rewards ?? (event as { reward?: number }).reward);
    assert.deepEqual(await rewards(runIds[0]), [{ reward: 1 }], sampled.stderr);
    assert.deepEqual(await rewards(runIds[1]), [{ reward: 0 }], sampled.stderr);

    // The mounts went with the CLI's namespace: on the host the copies are empty folders, their changes in their layers, owned by the user.
    const copy = (await started(runIds[0])).workspace;
    assert.deepEqual(mountsUnder(await fs.realpath(scratch.dir)), []);
    assert.deepEqual(readdirSync(copy), []);
    const written = path.join(copyLayers(copy).upper, 'hello.txt');
    assert.equal(readFileSync(written, 'utf8'), 'Hello, world!');
    if (process.getuid?.() === 0) assert.equal((await fs.stat(written)).uid, 65534, 'files belong to the user who ran the CLI');

    // A later verify mounts the copy again (in a namespace of its own) and judges what the run left.
    const verified = await cli(['verify', '--run', runIds[0], '--dataset', data], env);
    assert.equal(verified.code, 0, verified.stderr);
    assert.deepEqual(await rewards(runIds[0]), [{ reward: 1 }, { reward: 1 }]);
    assert.deepEqual(mountsUnder(await fs.realpath(scratch.dir)), []);
  } finally {
    await server.close();
    scratch.cleanup();
  }
});

test('an overlay run whose CLI was killed with SIGKILL resumes at once: run --resume mounts its copy again and goes on from its last step', async (t) => {
  if (process.platform !== 'linux') return t.skip('overlay copies are Linux only');
  const { scratch, task } = await unprivilegedScratch('apollo-overlay-resume-');
  const held = new ReplyGate();
  let killed = false;
  // Step 1 writes the file; the model then "thinks" about step 2 until the CLI is killed; after the resume it finishes.
  const server = await startScriptedModelServer([], {
    fallback: (request) => {
      if (!hasToolResult(request)) return call('write_file', { path: 'hello.txt', content: 'Hello, world!' });
      return killed ? call('finish', { summary: 'done after the resume' }) : { ...call('list_dir'), gate: held };
    },
  });
  const env = cliEnv(scratch.dir, server.baseUrl);
  const data = path.join(scratch.dir, 'data');
  try {
    const sampling = cli(['sample', '--task-dir', task, '--n', '1', '--runs-dir', path.join(scratch.dir, 'runs'), '--dataset', data, '--max-steps', '5'], env);
    await until('step 2 to be asked for', () => held.reached, 60_000);
    const claims = path.join(scratch.dir, 'apollo', 'claims');
    const claim = await until('the claim of the run', async () => {
      const files = await fs.readdir(claims).catch(() => []);
      return files.length ? (JSON.parse(await fs.readFile(path.join(claims, files[0]), 'utf8')) as { pid: number; runId: string; workspace: string }) : undefined;
    });
    const hostView = readdirSync(claim.workspace);
    process.kill(claim.pid, 'SIGKILL');
    killed = true;
    held.open();
    const first = await sampling;
    assert.notEqual(first.code, 0);
    if (/plain copies/.test(first.stderr) && !/overlay mounts/.test(first.stderr)) return t.skip('no unprivileged overlay mounts on this machine');
    assert.deepEqual(hostView, [], 'while the run went, its copy was mounted in its namespace only');
    assert.deepEqual(mountsUnder(await fs.realpath(scratch.dir)), [], 'the mount went with the killed process');
    assert.deepEqual(readdirSync(claim.workspace), []);

    const resumed = await cli(['run', '--resume', claim.runId, '--dataset', data], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout + resumed.stderr, /finished after 2 step\(s\): done after the resume/);
    const { events } = await new DatasetStore(data).readEvents(claim.runId);
    assert.deepEqual(
      steps(events).map((step) => step.grounding?.files.map((file) => file.path)),
      [['hello.txt'], []],
      'the resumed step sees the copy as step 1 left it: nothing new changed',
    );
    assert.equal(readFileSync(path.join(copyLayers(claim.workspace).upper, 'hello.txt'), 'utf8'), 'Hello, world!');
    assert.deepEqual(mountsUnder(await fs.realpath(scratch.dir)), []);
  } finally {
    held.open();
    await server.close();
    scratch.cleanup();
  }
});
