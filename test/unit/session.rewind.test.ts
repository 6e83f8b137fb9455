import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { RunSession } from '../../src/core/session/runSession';
import { rewindRun, UnsavedChangesError } from '../../src/core/session/rewind';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import type { StepEvent } from '../../src/core/dataset/events';
import { main } from '../../src/cli/main';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace } from '../fixtures/workspace';

/** A finished three-step run: a.txt 1 → 2 with b.txt, then c.txt, then finish. */
async function finishedRun() {
  const ws = makeWorkspace({ 'README.md': '# demo\n', 'a.txt': '0\n' });
  const server = await startScriptedModelServer([
    { toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: '1\n' } } },
    { toolCall: { name: 'run_command', arguments: { command: 'echo 2 > a.txt && mkdir -p sub && echo b > sub/b.txt' } } },
    { toolCall: { name: 'write_file', arguments: { path: 'c.txt', content: 'c\n' } } },
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ]);
  const datasetDir = defaultDatasetPath(ws.dir);
  const session = await RunSession.start({ workspace: ws.dir, datasetDir, task: 'Edit files', model: 'm', baseUrl: server.baseUrl, apiKey: 'k-0123456789', maxSteps: 10 });
  assert.equal((await session.done).status, 'finished');
  await server.close();
  const read = (name: string) => fs.readFile(path.join(ws.dir, name), 'utf8').catch(() => undefined);
  return { ws, datasetDir, runId: session.runId, read };
}

test('rewind restores the workspace before a step, writing only what differs, and the run goes on on a new branch', async () => {
  const { ws, datasetDir, runId, read } = await finishedRun();
  const server = await startScriptedModelServer([
    { toolCall: { name: 'write_file', arguments: { path: 'd.txt', content: 'd\n' } } },
    { toolCall: { name: 'finish', arguments: { summary: 'other way' } } },
  ]);
  try {
    const readmeTime = statSync(path.join(ws.dir, 'README.md')).mtimeMs;
    const { event, overwritten } = await rewindRun({ datasetDir, runId, toStep: 2 });
    assert.deepEqual(overwritten, []);
    assert.equal(await read('a.txt'), '1\n');
    assert.equal(await read('sub/b.txt'), undefined);
    assert.equal(await read('c.txt'), undefined);
    await assert.rejects(fs.access(path.join(ws.dir, 'sub')), 'a folder left empty goes too');
    assert.equal(statSync(path.join(ws.dir, 'README.md')).mtimeMs, readmeTime, 'unchanged files are not written');
    assert.deepEqual(event.files.map((file) => [file.path, file.status]).sort(), [
      ['a.txt', 'modified'],
      ['c.txt', 'deleted'],
      ['sub/b.txt', 'deleted'],
    ]);
    assert.equal(event.parentStep, 1);

    const resumed = await RunSession.resume({ datasetDir, runId, apiKey: 'k-0123456789', baseUrl: server.baseUrl });
    assert.equal((await resumed.done).status, 'finished');
    const { events } = await new DatasetStore(datasetDir).readEvents(runId);
    const steps = events.filter((candidate): candidate is StepEvent => candidate.type === 'step');
    assert.deepEqual(
      steps.map((step) => [step.step, step.branch ?? 'first', step.parentStep ?? null]),
      [
        [1, 'first', null],
        [2, 'first', null],
        [3, 'first', null],
        [4, 'first', null],
        [5, event.branch, 1],
        [6, event.branch, 5],
      ],
    );
    // The model's context holds step 1 and nothing of the abandoned steps 2–4.
    const prompt = JSON.stringify(server.requests[0].messages);
    assert.match(prompt, /a\.txt/);
    assert.doesNotMatch(prompt, /sub\/b\.txt|c\.txt/);
    assert.deepEqual(
      steps[4].grounding.files.map((file) => file.path),
      ['d.txt'],
    );
    assert.equal(await read('d.txt'), 'd\n');
  } finally {
    await server.close();
    ws.cleanup();
  }
});

test("rewind refuses to overwrite the user's edits unless forced, and keeps them in the dataset when forced", async () => {
  const { ws, datasetDir, runId, read } = await finishedRun();
  try {
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'my edit\n');
    await assert.rejects(rewindRun({ datasetDir, runId, toStep: 1 }), (error: Error) => error instanceof UnsavedChangesError && /a\.txt/.test(error.message) && /--force/.test(error.message));
    assert.equal(await read('a.txt'), 'my edit\n', 'nothing was written');
    assert.equal(await read('c.txt'), 'c\n');

    const out: string[] = [];
    const err: string[] = [];
    const io = { cwd: ws.dir, env: {}, stdout: (text: string) => out.push(text), stderr: (text: string) => err.push(text) };
    assert.equal(await main(['rewind', '--dataset', datasetDir, '--run', runId, '--to-step', '1'], io), 1);
    assert.match(err.join(''), /rewinding would overwrite: a\.txt/);
    assert.equal(await main(['rewind', '--dataset', datasetDir, '--run', runId, '--to-step', '9'], io), 1);
    assert.match(err.join(''), /Step 9 is not on run .*'s current branch \(its steps: 1–4\)/);
    assert.equal(await main(['rewind', '--dataset', datasetDir, '--run', runId, '--to-step', '1', '--force'], io), 0);
    assert.match(out.join(''), /rewound run .* to before step 1: 3 file\(s\) restored/);
    assert.equal(await read('a.txt'), '0\n');

    const { events } = await new DatasetStore(datasetDir).readEvents(runId);
    const types = events.map((event) => event.type);
    assert.deepEqual(types.slice(-2), ['external_change', 'rewind']);
    const external = events[events.length - 2];
    assert.ok(external.type === 'external_change');
    assert.match(external.grounding.patch, /^\+my edit$/m, 'the overwritten edit is kept in the dataset');
  } finally {
    ws.cleanup();
  }
});

test("rewind and resume snapshot with the run's own exclusions and size limit, recorded when it started", async () => {
  const ws = makeWorkspace({ 'README.md': '# demo\n', 'a.txt': '0\n' });
  const server = await startScriptedModelServer([
    { toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: '1\n' } } },
    { toolCall: { name: 'run_command', arguments: { command: 'echo 2 > a.txt && echo noise > debug.log && head -c 3000 /dev/zero > big.bin' } } },
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ]);
  const datasetDir = defaultDatasetPath(ws.dir);
  const read = (name: string) => fs.readFile(path.join(ws.dir, name), 'utf8').catch(() => undefined);
  try {
    const session = await RunSession.start({
      workspace: ws.dir,
      datasetDir,
      task: 'Edit files',
      model: 'm',
      baseUrl: server.baseUrl,
      apiKey: 'k-0123456789',
      maxSteps: 10,
      grounding: { exclude: ['*.log'], maxFileBytes: 1000 },
    });
    assert.equal((await session.done).status, 'finished');
    const runId = session.runId;
    const { events } = await new DatasetStore(datasetDir).readEvents(runId);
    const started = events[0];
    assert.ok(started.type === 'run_started');
    assert.deepEqual(started.grounding?.excludePatterns.slice(-1), ['*.log']);
    assert.ok(started.grounding?.excludePatterns.includes('node_modules/'), 'the built-in exclusions are recorded too');
    assert.equal(started.grounding?.maxFileBytes, 1000);
    const second = events.find((event): event is StepEvent => event.type === 'step' && event.step === 2)!;
    assert.deepEqual(
      second.grounding.files.map((file) => file.path),
      ['a.txt'],
    );

    // The log and the large file were never in the run's snapshots: they are not the user's
    // edits to overwrite, and the rewind leaves them alone.
    const { event, overwritten } = await rewindRun({ datasetDir, runId, toStep: 2 });
    assert.deepEqual(overwritten, []);
    assert.deepEqual(
      event.files.map((file) => file.path),
      ['a.txt'],
    );
    assert.equal(await read('a.txt'), '1\n');
    assert.equal(await read('debug.log'), 'noise\n');
    assert.equal((await fs.stat(path.join(ws.dir, 'big.bin'))).size, 3000);

    // Resumed without any grounding options, the run still leaves out what it left out.
    const next = await startScriptedModelServer([
      { toolCall: { name: 'run_command', arguments: { command: 'echo more > other.log && echo c > c.txt' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'done again' } } },
    ]);
    try {
      const resumed = await RunSession.resume({ datasetDir, runId, apiKey: 'k-0123456789', baseUrl: next.baseUrl });
      assert.equal((await resumed.done).status, 'finished');
      const after = (await resumed.events()).filter((candidate): candidate is StepEvent => candidate.type === 'step');
      assert.deepEqual(
        after[after.length - 2].grounding.files.map((file) => file.path),
        ['c.txt'],
      );
    } finally {
      await next.close();
    }
  } finally {
    await server.close();
    ws.cleanup();
  }
});
