/**
 * `apollo import --format atif`, the inverse of the ATIF export: a trajectory exported, imported
 * into another dataset and exported again gives the same steps, labels, hints and rewards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CliIo, main } from '../../src/cli/main';
import type { DatasetEvent } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { exportDataset } from '../../src/core/export/exportDataset';
import { importAtif } from '../../src/core/session/importAtif';
import { harborAtifErrors } from '../fixtures/atifValidator';
import { filePatch, hint, label, runStarted, step, writeRun } from '../fixtures/trajectories';

let dir: string;

function io(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env: {}, cwd };
  return { io: value, out: () => out.join(''), err: () => err.join('') };
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-import-'));
  const store = new DatasetStore(path.join(dir, 'source'));
  const change = filePatch('src/a.ts', ['old'], ['new']);
  const events: DatasetEvent[] = [
    runStarted('run-src', 'Fix the failing test in src/a.ts'),
    step(1, { tool: 'read_file', args: { path: 'src/a.ts' }, thought: 'Read it first.', reasoning: 'The test fails on line 1.' }),
    ...hint('h-1', 2, 'the fix is one line', 'strategy'),
    step(2, { tool: 'edit_file', args: { path: 'src/a.ts', old_text: 'old', new_text: 'new' }, ...change, extraCalls: 1 }),
    label(2, 'good', 'human', { reason: 'minimal fix' }),
    label(1, 'neutral', 'rule:read-only', { axis: 'execution' }),
    step(3, { tool: null, thought: 'Done, I think.' }),
    step(4, { tool: 'finish', args: { summary: 'fixed' } }),
    { type: 'run_ended', time: '2026-01-01T01:00:00.000Z', status: 'finished', steps: 4 },
    { type: 'reward', time: '2026-01-01T01:00:01.000Z', source: 'verifier', rewards: { reward: 1, tests_passed: 12 }, task: 'fix-a', exitCode: 0, durationMs: 900 },
  ];
  await writeRun(store, 'run-src', events);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** An ATIF document with the run's own ids taken out, for comparing two exports of one trajectory. */
function comparable(document: any): any {
  const { session_id: _s, trajectory_id: _t, extra: _e, notes, ...rest } = document;
  return { ...rest, notes: String(notes).replace(document.session_id, '<run>') };
}

test('an ATIF export, imported and exported again, round-trips: steps, tool calls, results, hints, labels, diffs, rewards', async () => {
  const first = path.join(dir, 'atif-1');
  await exportDataset(new DatasetStore(path.join(dir, 'source')), { format: 'atif', out: first });
  const target = new DatasetStore(path.join(dir, 'target'));
  const report = await importAtif(target, [first]);
  assert.deepEqual(report.failed, []);
  assert.equal(report.imported.length, 1);
  assert.equal(report.imported[0].steps, 4);
  const { events } = await target.readEvents(report.imported[0].runId);
  assert.ok(events.some((event) => event.type === 'hint_delivered' && event.step === 2));
  assert.ok(events.some((event) => event.type === 'hint_queued' && event.kind === 'strategy' && event.text === 'the fix is one line'));

  const second = path.join(dir, 'atif-2');
  await exportDataset(target, { format: 'atif', out: second });
  const [a] = readdirSync(first).map((name) => JSON.parse(readFileSync(path.join(first, name), 'utf8')));
  const [b] = readdirSync(second).map((name) => JSON.parse(readFileSync(path.join(second, name), 'utf8')));
  assert.deepEqual(harborAtifErrors(b), []);
  assert.deepEqual(comparable(b), comparable(a));
  assert.deepEqual(b.final_metrics.extra.rewards, { reward: 1, tests_passed: 12 });

  const resume = io(dir);
  assert.equal(await main(['run', '--resume', report.imported[0].runId, '--dataset', target.root], resume.io), 1);
  assert.match(resume.err(), /was imported \(atif\): it has no workspace to go on in/);
  const rewind = io(dir);
  assert.equal(await main(['rewind', '--run', report.imported[0].runId, '--to-step', '2', '--dataset', target.root], rewind.io), 1);
  assert.match(rewind.err(), /was imported \(atif\): it has no workspace to rewind/);

  const again = await importAtif(target, [first]);
  assert.equal(again.imported.length, 0, 'importing twice adds nothing');
  assert.equal(again.skipped.length, 1);
});

test('apollo import refuses what is not ATIF with the file and the reason, and imports the rest', async () => {
  const folder = path.join(dir, 'mixed');
  await exportDataset(new DatasetStore(path.join(dir, 'source')), { format: 'atif', out: folder });
  writeFileSync(path.join(folder, 'broken.json'), '{"schema_version": "ATIF-v9", "steps": 3}');
  writeFileSync(path.join(folder, 'garbage.json'), 'not json');
  const cli = io(dir);
  assert.equal(await main(['import', '--format', 'atif', '--dataset', path.join(dir, 'cli-target'), folder], cli.io), 1);
  assert.match(cli.out(), /imported \S+ \(4 step\(s\)\)/);
  assert.match(cli.out(), /not imported: .*broken\.json: Not an ATIF trajectory Apollo can read: schema_version "ATIF-v9"/);
  assert.match(cli.out(), /not imported: .*garbage\.json: not JSON/);
  assert.match(cli.out(), /1 imported, 0 already there, 2 failed/);
  const usage = io(dir);
  assert.equal(await main(['import', '--format', 'sharegpt', folder], usage.io), 2);
  assert.match(usage.err(), /needs --format atif/);
});
