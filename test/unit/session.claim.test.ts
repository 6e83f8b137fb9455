import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../src/cli/main';
import { DatasetStore } from '../../src/core/dataset/store';
import { RunSession } from '../../src/core/session/runSession';
import { CLAIM_EXPIRY_MS, claimFileOf, claimWorkspace, WorkspaceBusyError, workspaceHolder } from '../../src/core/session/workspaceClaim';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace, tempDir } from '../fixtures/workspace';

const builtCli = path.resolve(__dirname, '../../../dist/cli.js');
const RUN_ID = /^\d{8}-\d{6}-[0-9a-f]{8}$/;

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function procState(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

function cliIo(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (text: string) => out.push(text), stderr: (text: string) => err.push(text), env: { ...process.env, OPENAI_API_KEY: 'k-0123456789' }, cwd }, out, err };
}

/** Step 1 writes a file; step 2's reply never comes (the process is killed meanwhile); the resumed run finishes. */
const KILLED_MID_RUN = [
  { toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: 'b\n' } } },
  { toolCall: { name: 'finish', arguments: { summary: 'never seen' } }, delayMs: 120_000 },
  { toolCall: { name: 'finish', arguments: { summary: 'done after the resume' } } },
];

test('one claim per workspace whatever the dataset: a second run recording into another dataset is refused, with nothing written for it', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const data = tempDir('apollo-datasets-');
  const server = await startScriptedModelServer([{ toolCall: { name: 'list_dir', arguments: {} } }, { toolCall: { name: 'finish', arguments: { summary: 'done' } }, delayMs: 1500 }]);
  const first = path.join(data.dir, 'first');
  const second = path.join(data.dir, 'second');
  try {
    const session = await RunSession.start({ workspace: ws.dir, datasetDir: first, task: 'Look', model: 'm', baseUrl: server.baseUrl, apiKey: 'k-0123456789', maxSteps: 5 });
    await assert.rejects(RunSession.start({ workspace: ws.dir, datasetDir: second, task: 'Look too', model: 'm', baseUrl: server.baseUrl, apiKey: 'k-0123456789', maxSteps: 5 }), (error: Error) => {
      assert.ok(error instanceof WorkspaceBusyError);
      assert.match(error.message, new RegExp(`^Run ${session.runId} is going in this workspace \\(in this process, since .*stop it or let it finish first`));
      return true;
    });
    assert.deepEqual(await new DatasetStore(second).runIds(), [], 'no run is recorded in the second dataset');
    assert.equal((await session.done).status, 'finished');
    assert.equal(await workspaceHolder(ws.dir), undefined);
  } finally {
    await server.close();
    ws.cleanup();
    data.cleanup();
  }
});

test('a CLI run killed with SIGKILL is resumed at once: its claim names a process that is gone', { skip: !existsSync(builtCli) && 'run npm run build first' }, async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const data = tempDir('apollo-dataset-');
  const server = await startScriptedModelServer(KILLED_MID_RUN);
  try {
    const child = spawn(process.execPath, [builtCli, 'run', '--workspace', ws.dir, '--dataset', data.dir, '--task', 'Edit a.txt', '--base-url', server.baseUrl, '--model', 'm'], {
      env: { ...process.env, OPENAI_API_KEY: 'k-0123456789' },
    });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    await until('step 1 and the second request', () => /^step 1 /m.test(stdout) && server.requests.length >= 2);
    const claimFile = claimFileOf(await fs.realpath(ws.dir));
    assert.equal(JSON.parse(await fs.readFile(claimFile, 'utf8')).pid, child.pid, 'the CLI holds the workspace');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
    const runId = stdout.split('\n')[0];
    assert.match(runId, RUN_ID);

    const { io, out, err } = cliIo(ws.dir);
    assert.equal(await main(['run', '--resume', runId, '--dataset', data.dir], io), 0, err.join(''));
    assert.match(out.join(''), /finished after 2 step\(s\): done after the resume/);
    assert.equal(existsSync(claimFile), false, 'the resumed run let the workspace go');
  } finally {
    await server.close();
    ws.cleanup();
    data.cleanup();
  }
});

test(
  'a CLI run killed and left unreaped (a zombie) is resumed at once',
  { skip: (!existsSync(builtCli) && 'run npm run build first') || (process.platform !== 'linux' && 'needs /proc') },
  async () => {
    const ws = makeWorkspace({ 'a.txt': 'a\n' });
    const data = tempDir('apollo-dataset-');
    const server = await startScriptedModelServer(KILLED_MID_RUN);
    // A parent that never waits for its child, as in a container without an init process.
    const parent = spawn(
      'python3',
      [
        '-c',
        'import os, sys, time\npid = os.fork()\nif pid == 0:\n    os.execv(sys.argv[1], sys.argv[1:])\nprint("child", pid, flush=True)\ntime.sleep(600)\n',
        process.execPath,
        builtCli,
        'run',
        '--workspace',
        ws.dir,
        '--dataset',
        data.dir,
        '--task',
        'Edit a.txt',
        '--base-url',
        server.baseUrl,
        '--model',
        'm',
      ],
      { env: { ...process.env, OPENAI_API_KEY: 'k-0123456789' } },
    );
    let stdout = '';
    parent.stdout.on('data', (chunk) => (stdout += chunk));
    try {
      const childPid = Number(await until('the child pid', () => /^child (\d+)$/m.exec(stdout)?.[1]));
      const runId = await until('the run id', () => stdout.split('\n').find((line) => RUN_ID.test(line)));
      await until('step 1 and the second request', () => /^step 1 /m.test(stdout) && server.requests.length >= 2);
      const claimFile = claimFileOf(await fs.realpath(ws.dir));
      assert.equal(JSON.parse(await fs.readFile(claimFile, 'utf8')).pid, childPid);
      process.kill(childPid, 'SIGKILL');
      await until('the killed CLI to be a zombie', () => procState(childPid) === 'Z');
      assert.doesNotThrow(() => process.kill(childPid, 0), 'a zombie still answers signal 0: liveness alone would call it alive');

      const { io, out, err } = cliIo(ws.dir);
      assert.equal(await main(['run', '--resume', runId, '--dataset', data.dir], io), 0, err.join(''));
      assert.match(out.join(''), /finished after 2 step\(s\): done after the resume/);
      assert.equal(procState(childPid), 'Z', 'resumed while the old process was still an unreaped zombie');
    } finally {
      parent.kill('SIGKILL');
      await server.close();
      ws.cleanup();
      data.cleanup();
    }
  },
);

test('a claim from another machine is held while its heartbeat goes on, and taken over once it stopped', async () => {
  const ws = tempDir('apollo-ws-');
  const file = claimFileOf(await fs.realpath(ws.dir));
  await fs.mkdir(path.dirname(file), { recursive: true });
  const theirs = JSON.stringify({ runId: 'run-on-the-share', purpose: 'run', pid: 4242, host: 'build-box-9', since: '2026-01-01T00:00:00.000Z' }) + '\n';
  try {
    await fs.writeFile(file, theirs);
    await assert.rejects(claimWorkspace(ws.dir, 'run-here', 'run'), /Run run-on-the-share is going in this workspace \(on build-box-9, /);
    // Touched recently enough: still held.
    const recent = new Date(Date.now() - CLAIM_EXPIRY_MS / 2);
    await fs.utimes(file, recent, recent);
    await assert.rejects(claimWorkspace(ws.dir, 'run-here', 'run'), WorkspaceBusyError);
    assert.equal(await fs.readFile(file, 'utf8'), theirs, 'a refused claim changes nothing');
    // Its heartbeat stopped a few beats ago.
    const old = new Date(Date.now() - CLAIM_EXPIRY_MS - 5_000);
    await fs.utimes(file, old, old);
    assert.equal(await workspaceHolder(ws.dir), undefined);
    const claim = await claimWorkspace(ws.dir, 'run-here', 'run', { heartbeatMs: 50 });
    assert.equal(JSON.parse(await fs.readFile(file, 'utf8')).runId, 'run-here');
    // This holder's own heartbeat keeps the file fresh.
    await fs.utimes(file, old, old);
    await until('the heartbeat', async () => (await fs.stat(file)).mtimeMs > Date.now() - CLAIM_EXPIRY_MS);
    await claim.release();
    assert.equal(existsSync(file), false);
  } finally {
    ws.cleanup();
  }
});

test('a claim naming a live process whose start time differs (the pid was reused) is taken over', async () => {
  const ws = tempDir('apollo-ws-');
  const file = claimFileOf(await fs.realpath(ws.dir));
  await fs.mkdir(path.dirname(file), { recursive: true });
  const sleeper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    const holder = { runId: 'run-old', purpose: 'run', pid: sleeper.pid, host: os.hostname(), since: '2026-01-01T00:00:00.000Z' };
    await fs.writeFile(file, JSON.stringify({ ...holder, started: 'linux:another-boot:1' }) + '\n');
    const claim = await claimWorkspace(ws.dir, 'run-new', 'run');
    await claim.release();
    await fs.writeFile(file, JSON.stringify(holder) + '\n');
    await assert.rejects(claimWorkspace(ws.dir, 'run-new', 'run'), new RegExp(`in process ${sleeper.pid}, `), 'the same process, alive: held');
  } finally {
    sleeper.kill();
    ws.cleanup();
  }
});
