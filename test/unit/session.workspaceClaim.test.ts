import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultDatasetPath } from '../../src/core/dataset/store';
import { RunSession } from '../../src/core/session/runSession';
import { previewRewind, rewindRun } from '../../src/core/session/rewind';
import { claimFileOf, claimWorkspace, WorkspaceBusyError, workspaceHolder } from '../../src/core/session/workspaceClaim';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace, tempDir } from '../fixtures/workspace';

/** A process id that belonged to a process which has ended. */
function endedPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  return child.pid;
}

/** A process that stays alive until killed: another program holding a claim. */
function otherProcess() {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  /** Ends it; resolves once it has gone (reaped: its pid no longer answers). */
  const stop = () => {
    child.kill();
    return exited;
  };
  return { pid: child.pid!, stop };
}

const holderText = (fields: Record<string, unknown>) => JSON.stringify({ runId: 'run-elsewhere', purpose: 'run', pid: 1, host: os.hostname(), since: '2026-01-01T00:00:00.000Z', ...fields }) + '\n';

test('a workspace claim is held by one run at a time, and let go', async () => {
  const store = tempDir('apollo-ws-');
  try {
    const first = await claimWorkspace(store.dir, 'run-a', 'run');
    assert.equal((await workspaceHolder(store.dir))?.runId, 'run-a');
    await assert.rejects(claimWorkspace(store.dir, 'run-b', 'rewind'), (error: Error) => {
      assert.ok(error instanceof WorkspaceBusyError);
      assert.match(error.message, /Run run-a is going in this workspace \(in this process, since /);
      assert.match(error.message, /stop it or let it finish first/);
      return true;
    });
    await first.release();
    await first.release();
    assert.equal(await workspaceHolder(store.dir), undefined);
    const second = await claimWorkspace(store.dir, 'run-b', 'adopt');
    assert.equal(second.holder.purpose, 'adopt');
    await second.release();
  } finally {
    store.cleanup();
  }
});

test('a claim whose process ended, or that is damaged, is taken over; a live one elsewhere is not', async () => {
  const store = tempDir('apollo-ws-');
  const file = claimFileOf(await fs.realpath(store.dir));
  await fs.mkdir(path.dirname(file), { recursive: true });
  const other = otherProcess();
  try {
    await fs.writeFile(file, holderText({ pid: endedPid() }));
    assert.equal(await workspaceHolder(store.dir), undefined, 'a crashed process holds nothing');
    let claim = await claimWorkspace(store.dir, 'run-a', 'run');
    assert.equal(JSON.parse(await fs.readFile(file, 'utf8')).pid, process.pid);
    await claim.release();

    await fs.writeFile(file, '{"runId": "run-x", "pi');
    claim = await claimWorkspace(store.dir, 'run-a', 'run');
    await claim.release();

    await fs.writeFile(file, holderText({ pid: other.pid }));
    await assert.rejects(claimWorkspace(store.dir, 'run-a', 'run'), new RegExp(`Run run-elsewhere is going in this workspace \\(in process ${other.pid}, .*delete ${file.replace(/[\\.]/g, '\\$&')}`));
    await fs.writeFile(file, holderText({ host: 'build-box-7', purpose: 'rewind' }));
    await assert.rejects(claimWorkspace(store.dir, 'run-a', 'run'), /Run run-elsewhere is being rewound in this workspace \(on build-box-7, /);
    assert.equal(JSON.parse(await fs.readFile(file, 'utf8')).host, 'build-box-7', 'a refused claim changes nothing');
  } finally {
    await other.stop();
    store.cleanup();
  }
});

test('letting go never removes a claim another process made after taking this one over', async () => {
  const store = tempDir('apollo-ws-');
  const file = claimFileOf(await fs.realpath(store.dir));
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    const claim = await claimWorkspace(store.dir, 'run-a', 'run');
    const theirs = holderText({ pid: process.pid + 1, runId: 'run-b' });
    await fs.writeFile(file, theirs);
    await claim.release();
    assert.equal(await fs.readFile(file, 'utf8'), theirs);
  } finally {
    store.cleanup();
  }
});

test('a run, a rewind and a second run are refused while another process works in the workspace, and go ahead once it has gone', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const server = await startScriptedModelServer([{ toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: 'b\n' } } }, { toolCall: { name: 'finish', arguments: { summary: 'done' } } }]);
  const datasetDir = defaultDatasetPath(ws.dir);
  const options = { workspace: ws.dir, datasetDir, task: 'Edit a.txt', model: 'm', baseUrl: server.baseUrl, apiKey: 'k-0123456789', maxSteps: 5 };
  const other = otherProcess();
  try {
    const session = await RunSession.start(options);
    assert.equal((await session.done).status, 'finished');
    assert.equal(await workspaceHolder(ws.dir), undefined, 'an ended run lets the workspace go');

    // The CLI in another process is running an agent here.
    const claimFile = claimFileOf(await fs.realpath(ws.dir));
    await fs.writeFile(claimFile, holderText({ pid: other.pid }));
    const runsBefore = await fs.readdir(path.join(datasetDir, 'runs'));
    await assert.rejects(RunSession.start(options), WorkspaceBusyError);
    assert.deepEqual(await fs.readdir(path.join(datasetDir, 'runs')), runsBefore, 'no run is recorded');
    await assert.rejects(previewRewind({ datasetDir, runId: session.runId, toStep: 1 }), WorkspaceBusyError);
    await assert.rejects(rewindRun({ datasetDir, runId: session.runId, toStep: 1 }), WorkspaceBusyError);
    assert.equal(await fs.readFile(path.join(ws.dir, 'a.txt'), 'utf8'), 'b\n', 'nothing was rewound');

    await other.stop();
    const { event } = await rewindRun({ datasetDir, runId: session.runId, toStep: 1 });
    assert.deepEqual(
      event.files.map((file) => file.path),
      ['a.txt'],
    );
    assert.equal(await fs.readFile(path.join(ws.dir, 'a.txt'), 'utf8'), 'a\n');
    await assert.rejects(fs.access(claimFile), 'the rewind let the workspace go');
  } finally {
    await other.stop();
    await server.close();
    ws.cleanup();
  }
});

test('while a run is going in this process, a second run there is refused and a preview of its own rewind is not', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const server = await startScriptedModelServer([
    { toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: 'b\n' } } },
    { toolCall: { name: 'finish', arguments: { summary: 'done' } }, delayMs: 1500 },
  ]);
  const datasetDir = defaultDatasetPath(ws.dir);
  const options = { workspace: ws.dir, datasetDir, task: 'Edit a.txt', model: 'm', baseUrl: server.baseUrl, apiKey: 'k-0123456789', maxSteps: 5 };
  try {
    const session = await RunSession.start(options);
    await assert.rejects(RunSession.start(options), new RegExp(`Run ${session.runId} is going in this workspace \\(in this process`));
    // The second request goes out once step 1 is recorded.
    while (server.requests.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    const preview = await previewRewind({ datasetDir, runId: session.runId, toStep: 1 });
    assert.deepEqual(
      preview.files.map((file) => file.path),
      ['a.txt'],
    );
    assert.equal((await session.done).status, 'finished');
    const next = await RunSession.start({ ...options, task: 'Again' });
    await next.stop();
    await next.done;
  } finally {
    await server.close();
    ws.cleanup();
  }
});
