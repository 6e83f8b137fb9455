import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { newRunId } from '../../src/core/dataset/ids';
import { ShadowStore, shadowStoreDir } from '../../src/core/grounding/shadowStore';
import { collectGarbage, formatGarbageReport, formatWorkingCopyReport, removeEndedWorkingCopies } from '../../src/core/session/gc';
import { datasetStats } from '../../src/core/session/stats';
import { DatasetStore } from '../../src/core/dataset/store';
import { ConfigError } from '../../src/core/session/runSession';
import { prepareWorkingCopy, snapshotOrigin, workingCopyDir } from '../../src/core/session/workingCopy';
import { git, makeWorkspace, tempDir } from '../fixtures/workspace';

test('gc reclaims the snapshots of deleted runs and keeps those of the runs that remain', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const data = tempDir('apollo-data-');
  const [deleted, kept] = [newRunId(), newRunId()];
  const storeDir = shadowStoreDir(data.dir, ws.dir);
  try {
    const first = new ShadowStore({ workspace: ws.dir, storeDir, runId: deleted });
    await first.init();
    await first.snapshot();
    await fs.writeFile(path.join(ws.dir, 'weights.bin'), randomBytes(3 * 1024 * 1024));
    const withWeights = await first.snapshot();
    await fs.rm(path.join(ws.dir, 'weights.bin'));
    await first.snapshot();

    const second = new ShadowStore({ workspace: ws.dir, storeDir, runId: kept });
    await second.init();
    await second.snapshot();
    await fs.writeFile(path.join(ws.dir, 'notes.txt'), 'kept\n');
    const keptSnapshot = await second.snapshot();

    await fs.mkdir(path.join(data.dir, 'runs', kept), { recursive: true });
    const statsBefore = await datasetStats(new DatasetStore(data.dir));
    assert.ok(statsBefore.snapshotBytes > 3 * 1024 * 1024, `snapshots take ${statsBefore.snapshotBytes} bytes`);

    const report = await collectGarbage(data.dir);
    assert.deepEqual(report.runs, [deleted]);
    assert.equal(report.keptRecent, false);
    assert.ok(report.bytesBefore - report.bytesAfter > 2.5 * 1024 * 1024, `reclaimed only ${report.bytesBefore - report.bytesAfter} bytes`);
    assert.match(formatGarbageReport(report), /^Reclaimed \d+\.\d\d MiB; the snapshots now take/);
    assert.equal((await second.readFile(keptSnapshot, 'notes.txt'))?.toString(), 'kept\n');
    assert.equal(await second.readFile(withWeights, 'weights.bin'), undefined);
    assert.equal((await datasetStats(new DatasetStore(data.dir))).snapshotBytes, report.bytesAfter);

    // The kept run goes on snapshotting after the collection, and a second gc finds nothing to do.
    await fs.writeFile(path.join(ws.dir, 'notes.txt'), 'kept, more\n');
    const later = await second.snapshot();
    assert.deepEqual(
      (await second.ground(keptSnapshot, later)).files.map((file) => file.path),
      ['notes.txt'],
    );
    assert.deepEqual((await collectGarbage(data.dir)).runs, []);
  } finally {
    data.cleanup();
    ws.cleanup();
  }
});

test('gc refuses a folder that is not there', async () => {
  const parent = tempDir();
  try {
    await assert.rejects(collectGarbage(path.join(parent.dir, 'missing')), (error: Error) => error instanceof ConfigError && /no dataset folder/.test(error.message));
  } finally {
    parent.cleanup();
  }
});

/** A manifest for a run of a task, so gc sees the run and its task. */
async function runOfTask(data: string, runId: string, taskId?: string): Promise<void> {
  const time = new Date().toISOString();
  await new DatasetStore(data).createRun({
    id: runId,
    task: 't',
    workspace: '/w',
    model: 'm',
    baseUrl: 'http://127.0.0.1:9/v1',
    status: 'finished',
    steps: 0,
    createdAt: time,
    updatedAt: time,
    tokens: { promptTokens: 0, completionTokens: 0 },
    ...(taskId ? { taskId } : {}),
  });
}

test("gc keeps a task's base snapshot while its runs exist, and every object a working copy's store borrows", async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const data = tempDir('apollo-data-');
  const runs = tempDir('apollo-runs-');
  const taskId = newRunId();
  const sampledRun = newRunId();
  try {
    const origin = await snapshotOrigin({ workspace: ws.dir, datasetDir: data.dir, taskId });
    // An object no ref of the workspace's store reaches (left by a deleted run, say) ...
    const content = randomBytes(64 * 1024).toString('hex');
    await fs.writeFile(path.join(runs.dir, 'left-over'), content);
    const blob = git(ws.dir, `--git-dir=${origin.storeDir}`, 'hash-object', '-w', path.join(runs.dir, 'left-over')).trim();

    // ... is what a sampled run's snapshot uses when its agent writes the same content and git
    // stores it (through the index: the in-process path writes its own copy of an object).
    const copy = await prepareWorkingCopy(origin, workingCopyDir(runs.dir, taskId, 0));
    const sampled = new ShadowStore({ workspace: copy.dir, storeDir: copy.storeDir, runId: sampledRun, patch: false });
    await sampled.init();
    await sampled.snapshot();
    await fs.writeFile(path.join(copy.dir, 'shared.txt'), content);
    const withShared = await sampled.snapshot();
    await sampled.settled();
    assert.equal(git(ws.dir, `--git-dir=${copy.storeDir}`, 'rev-parse', `${withShared}:shared.txt`).trim(), blob);
    assert.equal(existsSync(path.join(copy.storeDir, 'objects', blob.slice(0, 2), blob.slice(2))), false, 'git did not write it again');

    await runOfTask(data.dir, sampledRun, taskId);
    await collectGarbage(data.dir);
    assert.equal((await sampled.readFile(withShared, 'shared.txt'))?.toString(), content, 'the borrowed object is still there');
    git(ws.dir, `--git-dir=${copy.storeDir}`, 'fsck', '--connectivity-only', '--no-progress');
    assert.equal(git(ws.dir, `--git-dir=${origin.storeDir}`, 'rev-parse', `refs/apollo/tasks/${taskId}`).trim(), origin.snapshot);
    assert.equal((await sampled.readFile(origin.snapshot, 'a.txt'))?.toString(), 'a\n');

    // The sampled run is deleted too: its store lets go of its snapshots, and both stores stay whole.
    await fs.rm(path.join(data.dir, 'runs', sampledRun), { recursive: true });
    assert.deepEqual((await collectGarbage(data.dir)).runs, [sampledRun]);
    for (const store of [copy.storeDir, origin.storeDir]) git(ws.dir, `--git-dir=${store}`, 'fsck', '--connectivity-only', '--no-progress');
    assert.throws(() => git(ws.dir, `--git-dir=${origin.storeDir}`, 'cat-file', '-e', blob), 'nothing reaches the object any more');
  } finally {
    runs.cleanup();
    data.cleanup();
    ws.cleanup();
  }
});

test("gc drops a task's base snapshot once no run of the task remains (an hour after it was taken)", async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const data = tempDir('apollo-data-');
  const [kept, dropped, young] = [newRunId(), newRunId(), newRunId()];
  try {
    const origin = await snapshotOrigin({ workspace: ws.dir, datasetDir: data.dir, taskId: young });
    const tree = git(ws.dir, `--git-dir=${origin.storeDir}`, 'rev-parse', `${origin.snapshot}^{tree}`).trim();
    const old = execFileSync('git', [`--git-dir=${origin.storeDir}`, 'commit-tree', tree, '-m', 'snapshot'], {
      encoding: 'utf8',
      env: { ...process.env, GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@a', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@a', GIT_COMMITTER_DATE: '2020-01-01T00:00:00Z' },
    }).trim();
    for (const taskId of [kept, dropped]) git(ws.dir, `--git-dir=${origin.storeDir}`, 'update-ref', `refs/apollo/tasks/${taskId}`, old);
    await runOfTask(data.dir, newRunId(), kept);
    await runOfTask(data.dir, newRunId());
    await collectGarbage(data.dir);
    const refs = git(ws.dir, `--git-dir=${origin.storeDir}`, 'for-each-ref', '--format=%(refname)', 'refs/apollo/tasks/').split('\n').filter(Boolean).sort();
    assert.deepEqual(refs, [`refs/apollo/tasks/${kept}`, `refs/apollo/tasks/${young}`].sort());
  } finally {
    data.cleanup();
    ws.cleanup();
  }
});

test('gc --working-copies removes the copies of samplings whose runs have all ended, and keeps those with a run going', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const data = tempDir('apollo-data-');
  const runs = tempDir('apollo-runs-');
  const [endedTask, liveTask] = [newRunId(), newRunId()];
  try {
    const time = new Date().toISOString();
    const store = new DatasetStore(data.dir);
    const copies: Record<string, string> = {};
    for (const [taskId, statuses] of [
      [endedTask, ['finished', 'failed']],
      [liveTask, ['finished', 'running']],
    ] as const) {
      const origin = await snapshotOrigin({ workspace: ws.dir, datasetDir: data.dir, taskId });
      for (const [index, status] of statuses.entries()) {
        const copy = await prepareWorkingCopy(origin, workingCopyDir(runs.dir, taskId, index));
        copies[`${taskId}/${index}`] = copy.dir;
        await store.createRun({
          id: newRunId(),
          task: 't',
          workspace: copy.dir,
          model: 'm',
          baseUrl: 'http://127.0.0.1:9/v1',
          status,
          steps: 1,
          createdAt: time,
          updatedAt: time,
          tokens: { promptTokens: 0, completionTokens: 0 },
          taskId,
          originWorkspace: ws.dir,
        });
      }
    }
    const report = await removeEndedWorkingCopies(data.dir);
    assert.deepEqual([report.removed, report.kept], [[endedTask], [liveTask]]);
    assert.ok(report.bytes > 0);
    assert.equal(existsSync(path.join(runs.dir, endedTask)), false);
    for (const index of [0, 1]) assert.equal(existsSync(copies[`${liveTask}/${index}`]), true, 'a sampling with a run going keeps every copy');
    assert.match(formatWorkingCopyReport(report), /Removed the working copies of 1 sampling/);
    // The ended runs stay in the dataset; a second pass has nothing left to do.
    assert.equal((await store.listRuns()).length, 4);
    assert.deepEqual((await removeEndedWorkingCopies(data.dir)).removed, []);
  } finally {
    runs.cleanup();
    data.cleanup();
    ws.cleanup();
  }
});

test('a store in use keeps snapshotting exactly after gc points its HEAD away', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
  const data = tempDir('apollo-data-');
  const runId = newRunId();
  try {
    await runOfTask(data.dir, runId);
    // No change feed: every snapshot is a full pass through `git status`, which reads HEAD.
    const store = new ShadowStore({ workspace: ws.dir, storeDir: shadowStoreDir(data.dir, ws.dir), runId });
    await store.init();
    const first = await store.snapshot();
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'a, changed\n');
    await store.snapshot();
    await store.settled();
    await collectGarbage(data.dir);
    assert.equal(readFileSync(path.join(store.storeDir, 'HEAD'), 'utf8'), 'ref: refs/heads/unborn\n');
    await fs.writeFile(path.join(ws.dir, 'b.txt'), 'b, changed\n');
    const third = await store.snapshot();
    await store.settled();
    const changed = git(ws.dir, `--git-dir=${store.storeDir}`, 'diff-tree', '-r', '--name-only', first, third).trim().split('\n');
    assert.deepEqual(changed, ['a.txt', 'b.txt']);
    assert.equal(git(ws.dir, `--git-dir=${store.storeDir}`, 'show', `${third}:b.txt`), 'b, changed\n');
  } finally {
    data.cleanup();
    ws.cleanup();
  }
});
