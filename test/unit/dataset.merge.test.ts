import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, promises as fs, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatasetStore } from '../../src/core/dataset/store';
import { type CliIo, main } from '../../src/cli/main';
import { label, runStarted, step, writeRun } from '../fixtures/trajectories';

/** A digest of every file below a folder, names and contents. */
function digest(dir: string): string {
  const hash = createHash('sha256');
  const walk = (folder: string) => {
    for (const name of readdirSync(folder).sort()) {
      const file = path.join(folder, name);
      if (statSync(file).isDirectory()) walk(file);
      else hash.update(path.relative(dir, file)).update(readFileSync(file));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

function cli(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env: {}, cwd };
  return { io, out: () => out.join(''), err: () => err.join('') };
}

test('apollo merge brings the runs of several dataset folders into one, and merging again changes nothing', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'apollo-merge-'));
  try {
    const a = new DatasetStore(path.join(root, 'machine-a'));
    const b = new DatasetStore(path.join(root, 'machine-b'));
    await writeRun(a, 'run-a1', [runStarted('run-a1'), step(1), label(1, 'good')]);
    await a.writeRunFile('run-a1', 'step-1-output.txt', 'long output');
    await writeRun(b, 'run-b1', [runStarted('run-b1'), step(1), step(2)]);
    await fs.mkdir(path.join(a.root, 'shadow', 'ws-1.git', 'objects', 'ab'), { recursive: true });
    await fs.writeFile(path.join(a.root, 'shadow', 'ws-1.git', 'objects', 'ab', 'cdef'), 'object');

    const into = path.join(root, 'merged');
    const first = cli(root);
    assert.equal(await main(['merge', 'machine-a', 'machine-b', '--into', 'merged'], first.io), 0, first.err());
    assert.match(first.out(), /2 run\(s\) copied, 0 brought up to date, 0 already there; 1 snapshot file\(s\) copied/);
    const merged = new DatasetStore(into);
    assert.deepEqual((await merged.listRuns()).map((run) => run.id).sort(), ['run-a1', 'run-b1']);
    assert.equal((await merged.readEvents('run-a1')).events.length, 3);
    assert.equal(readFileSync(path.join(merged.runDir('run-a1'), 'outputs', 'step-1-output.txt'), 'utf8'), 'long output');

    const before = digest(into);
    const again = cli(root);
    assert.equal(await main(['merge', 'machine-a', 'machine-b', '--into', 'merged'], again.io), 0);
    assert.match(again.out(), /0 run\(s\) copied, 0 brought up to date, 2 already there; 0 snapshot file\(s\) copied/);
    assert.equal(digest(into), before, 'a second merge changes nothing');

    // The run went on on machine A: the merge appends what is new.
    await a.appendEvent('run-a1', step(2));
    const later = cli(root);
    assert.equal(await main(['merge', 'machine-a', '--into', 'merged'], later.io), 0);
    assert.match(later.out(), /1 brought up to date/);
    assert.equal((await merged.readEvents('run-a1')).events.length, 4);

    // Two different records under one id are never overwritten.
    const c = new DatasetStore(path.join(root, 'machine-c'));
    await writeRun(c, 'run-b1', [runStarted('run-b1', 'another task')]);
    const clash = cli(root);
    assert.equal(await main(['merge', 'machine-c', '--into', 'merged'], clash.io), 1);
    assert.match(clash.out(), /conflict: run run-b1 from .*machine-c: the two records of this run differ/);
    assert.equal((await merged.readEvents('run-b1')).events.length, 3);

    const usage = cli(root);
    assert.equal(await main(['merge', '--into', 'merged'], usage.io), 2);
    assert.match(usage.err(), /needs the dataset folders to merge/);
    const notDataset = cli(root);
    assert.equal(await main(['merge', 'nowhere', '--into', 'merged'], notDataset.io), 1);
    assert.match(notDataset.err(), /nowhere is not a dataset folder/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
