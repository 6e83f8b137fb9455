import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fs, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CliIo, main } from '../../src/cli/main';
import { DatasetStore } from '../../src/core/dataset/store';
import type { LabelEvent } from '../../src/core/dataset/events';
import { label, runStarted, step, writeRun } from '../fixtures/trajectories';

function io(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env: {}, cwd };
  return { io: value, out: () => out.join(''), err: () => err.join('') };
}

async function dataset() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-cli-'));
  const store = new DatasetStore(dir);
  return { dir, store, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('apollo validate reports a corrupt line with its file and number, carries on, and only warns about a truncated last line', async () => {
  const { dir, store, cleanup } = await dataset();
  try {
    await writeRun(store, 'run-a', [runStarted('run-a'), step(1)]);
    await fs.appendFile(path.join(store.runDir('run-a'), 'events.jsonl'), 'not json\n');
    await writeRun(store, 'run-b', [runStarted('run-b'), step(1), step(2)]);
    await fs.appendFile(path.join(store.runDir('run-b'), 'events.jsonl'), '{"type":"step","ti');
    await writeRun(store, 'run-c', [runStarted('run-c'), step(1), label(1, 'good'), label(7, 'bad')]);

    const cli = io(dir);
    assert.equal(await main(['validate', '--dataset', dir], cli.io), 1);
    const lines = cli.out().trim().split('\n');
    assert.ok(lines.includes(`error: ${path.join(dir, 'runs', 'run-a', 'events.jsonl')}:3: not valid JSON; readers skip this line`), cli.out());
    assert.ok(lines.includes(`warning: ${path.join(dir, 'runs', 'run-b', 'events.jsonl')}:4: truncated last line (interrupted write); readers skip this line`), cli.out());
    assert.ok(
      lines.some((line) => line.startsWith('error: ') && line.includes('run-c') && line.includes('refers to step 7')),
      cli.out(),
    );
    assert.equal(lines[lines.length - 1], '3 run(s), 9 event(s) checked: 2 error(s), 1 warning(s)');

    // A dataset whose only problem is a crash mid-write is valid.
    await fs.rm(store.runDir('run-a'), { recursive: true });
    await fs.rm(store.runDir('run-c'), { recursive: true });
    const clean = io(dir);
    assert.equal(await main(['validate', '--dataset', dir], clean.io), 0);
    assert.match(clean.out(), /1 run\(s\), 3 event\(s\) checked: 0 error\(s\), 1 warning\(s\)\n$/);
  } finally {
    cleanup();
  }
});

test('apollo validate flags a secret shape left in a run', async () => {
  const { dir, store, cleanup } = await dataset();
  try {
    await writeRun(store, 'run-s', [runStarted('run-s'), step(1)]);
    await fs.appendFile(path.join(store.runDir('run-s'), 'events.jsonl'), JSON.stringify(step(2, { observation: `key sk-${'x'.repeat(30)}` })) + '\n');
    const cli = io(dir);
    assert.equal(await main(['validate', '--dataset', dir], cli.io), 1);
    assert.match(cli.out(), /events\.jsonl:3: holds a secret shape \(openai\)/);
  } finally {
    cleanup();
  }
});

test('apollo relabel adds what the rules find in finished runs, takes back stale verdicts, and a second pass changes nothing', async () => {
  const { dir, store, cleanup } = await dataset();
  try {
    const failed = step(2, { tool: 'run_command', args: { command: 'npm test' }, observation: 'boom\n[exit code 1]', isError: true });
    await writeRun(store, 'run-f', [runStarted('run-f'), step(1), failed, label(1, 'bad', 'rule:loop', { axis: 'decision' })]);
    await writeRun(store, 'run-live', [runStarted('run-live'), failed], 'running');
    const cli = io(dir);
    assert.equal(await main(['relabel', '--dataset', dir], cli.io), 0);
    assert.match(cli.out(), /^run-f: 1 new rule label\(s\), 1 taken back\n/m);
    assert.match(cli.out(), /^run-live: skipped, the run is running/m);
    const { events } = await store.readEvents('run-f');
    const labels = events.filter((event): event is LabelEvent => event.type === 'label').slice(1);
    assert.deepEqual(
      labels.map((event) => [event.step, event.source, event.label, event.axis]),
      [
        [1, 'rule:loop', 'neutral', 'decision'],
        [2, 'rule:command_failed', 'bad', 'execution'],
      ],
    );
    assert.equal(labels[1].reason, 'the command failed (exit code 1)');
    const again = io(dir);
    assert.equal(await main(['relabel', '--dataset', dir, '--run', 'run-f'], again.io), 0);
    assert.equal(again.out(), 'run-f: 0 new rule label(s), 0 taken back\n');
  } finally {
    cleanup();
  }
});

test('apollo export writes the chosen format and refuses bad options with a usage error', async () => {
  const { dir, store, cleanup } = await dataset();
  try {
    await writeRun(store, 'run-e', [runStarted('run-e'), step(1), label(1, 'bad'), step(2)]);
    const cli = io(dir);
    assert.equal(await main(['export', '--dataset', dir, '--format', 'openai', '--out', 'out.jsonl'], cli.io), 0);
    assert.match(cli.out(), /^exported 1 openai record\(s\) from 1 trajectorie\(s\) of 1 run\(s\)/);
    assert.match(cli.out(), /steps: 2, trained 1, masked 1 \(policy not-bad\)/);
    const line = JSON.parse(readFileSync(path.join(dir, 'out.jsonl'), 'utf8'));
    assert.deepEqual(
      line.messages.filter((message: { role: string }) => message.role === 'assistant').map((message: { weight: number }) => message.weight),
      [0, 1],
    );

    for (const [args, message] of [
      [['--format', 'csv', '--out', 'x'], /needs --format openai\|hf\|trl\|llamafactory\|atif\|sharegpt\|pairs/],
      [['--format', 'openai'], /needs --out PATH/],
      [['--format', 'openai', '--out', 'x', '--policy', 'lenient'], /--policy takes not-bad, good-only, all/],
      [['--format', 'openai', '--out', 'x', '--min-quality', '80'], /--min-quality takes a share between 0 and 1/],
      [['--format', 'openai', '--out', 'x', '--branches', 'some'], /--branches takes main or all/],
    ] as const) {
      const bad = io(dir);
      assert.equal(await main(['export', '--dataset', dir, ...args], bad.io), 2, args.join(' '));
      assert.match(bad.err(), message);
    }
    const missing = io(dir);
    assert.equal(await main(['export', '--dataset', dir, '--format', 'hf', '--out', 'out.jsonl'], missing.io), 1);
    assert.match(missing.err(), /out\.jsonl is a file; this format writes a folder/);
  } finally {
    cleanup();
  }
});
