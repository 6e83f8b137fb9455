/**
 * The watcher's pending work stays bounded whatever the event rate: a job renaming paths in a
 * tight loop once grew it to gigabytes. Past the bound it collapses into a full pass, and the
 * watch is right again afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkspaceWatcher } from '../../src/core/grounding/watcher';
import { makeWorkspace } from '../fixtures/workspace';

const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

/**
 * Runs `loop` in a shell until the stop file exists, sampling the watcher's pending count
 * meanwhile: for `ms` at least, and on until the loop has gone round `minIterations` times (a
 * loaded machine runs it slower), within a minute.
 */
async function renameLoop(dir: string, loop: string, watcher: WorkspaceWatcher, ms: number, minIterations = 0): Promise<{ maxPending: number; iterations: number }> {
  const control = mkdtempSync(path.join(os.tmpdir(), 'apollo-loop-'));
  const stop = path.join(control, 'stop');
  // One dot a round, so that the test sees how far it got.
  const child = spawn('/bin/sh', ['-c', `while [ ! -e ${stop} ]; do ${loop}; printf .; done`], { cwd: dir });
  let iterations = 0;
  child.stdout.on('data', (data: Buffer) => (iterations += data.length));
  const closed = new Promise((resolve) => child.on('close', resolve));
  let maxPending = 0;
  const started = Date.now();
  while (Date.now() - started < ms || (iterations < minIterations && Date.now() - started < 60_000)) {
    maxPending = Math.max(maxPending, watcher.pendingCount);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  writeFileSync(stop, '');
  await closed;
  rmSync(control, { recursive: true, force: true });
  return { maxPending, iterations };
}

test('two paths renamed in a tight loop keep the pending set tiny, and the next snapshots are right', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n', 'd1/inner.txt': 'i\n', 'keep/k.txt': 'k\n' });
  const watcher = new WorkspaceWatcher(ws.dir, { maxPaths: 200, nativeRecursive: false });
  await watcher.start();
  try {
    await watcher.take();
    const heapBefore = process.memoryUsage().heapUsed;
    const { maxPending, iterations } = await renameLoop(ws.dir, 'mv a.txt b.txt; mv b.txt a.txt; mv d1 d2; mv d2 d1', watcher, 3000, 200);
    assert.ok(iterations > 100, `the loop ran (${iterations} iterations)`);
    assert.ok(maxPending <= 200, `pending ${maxPending}`);
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 200 * 1024 * 1024, 'memory stays bounded');
    await settle();
    // The loop's own snapshot: either the paths it touched, or a full pass.
    const during = await watcher.take();
    if (during) for (const p of during) assert.ok(/^(a\.txt|b\.txt|d1|d2)(\/|$)/.test(p), p);
    // The watch is right afterwards: a change inside the renamed folder and a new folder are seen.
    await fs.writeFile(path.join(ws.dir, 'd1', 'inner.txt'), 'changed\n');
    await fs.mkdir(path.join(ws.dir, 'keep', 'new'));
    await settle();
    await fs.writeFile(path.join(ws.dir, 'keep', 'new', 'n.txt'), 'n\n');
    await settle();
    const next = await watcher.take();
    if (next !== undefined) assert.deepEqual(next.sort(), ['d1/inner.txt', 'keep/new', 'keep/new/n.txt']);
    await fs.writeFile(path.join(ws.dir, 'keep', 'new', 'n.txt'), 'n2\n');
    await settle();
    assert.deepEqual(await watcher.take(), ['keep/new/n.txt']);
  } finally {
    watcher.dispose();
    ws.cleanup();
  }
});

test('renames over many names collapse into a full pass at the bound, and the watch is laid anew', async () => {
  const ws = makeWorkspace({ 'dir0/x.txt': 'x\n', 'stay/s.txt': 's\n' });
  const watcher = new WorkspaceWatcher(ws.dir, { maxPaths: 50, nativeRecursive: false });
  await watcher.start();
  try {
    await watcher.take();
    const { maxPending } = await renameLoop(ws.dir, 'i=0; while [ $i -lt 200 ]; do mv dir$i dir$((i+1)); i=$((i+1)); done; mv dir200 dir0', watcher, 2000);
    assert.ok(maxPending <= 50 + 64, `pending ${maxPending}`);
    await settle();
    assert.equal(await watcher.take(), undefined, 'past the bound: a full pass');
    assert.ok(existsSync(path.join(ws.dir, 'dir0', 'x.txt')));
    await fs.writeFile(path.join(ws.dir, 'dir0', 'x.txt'), 'x2\n');
    await fs.writeFile(path.join(ws.dir, 'stay', 's.txt'), 's2\n');
    await settle();
    const after = await watcher.take();
    if (after !== undefined) assert.deepEqual(after.sort(), ['dir0/x.txt', 'stay/s.txt']);
    await fs.writeFile(path.join(ws.dir, 'dir0', 'x.txt'), 'x3\n');
    await settle();
    assert.deepEqual(await watcher.take(), ['dir0/x.txt']);
  } finally {
    watcher.dispose();
    ws.cleanup();
  }
});
