import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { newRunId } from '../../src/core/dataset/ids';
import { ShadowStore, shadowStoreDir } from '../../src/core/grounding/shadowStore';
import { collectGarbage, formatGarbageReport } from '../../src/core/session/gc';
import { datasetStats } from '../../src/core/session/stats';
import { DatasetStore } from '../../src/core/dataset/store';
import { ConfigError } from '../../src/core/session/runSession';
import { makeWorkspace, tempDir } from '../fixtures/workspace';

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
    assert.deepEqual((await second.ground(keptSnapshot, later)).files.map((file) => file.path), ['notes.txt']);
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
