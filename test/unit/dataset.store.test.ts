import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DatasetError, DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { InvalidEventError, validateEvent } from '../../src/core/dataset/events';
import type { LabelEvent, RunManifest } from '../../src/core/dataset/events';
import { isValidRunId, newRunId } from '../../src/core/dataset/ids';
import { git, makeWorkspace, tempDir } from '../fixtures/workspace';
import { until } from '../fixtures/poll';

function manifest(id: string): RunManifest {
  const time = new Date().toISOString();
  return { id, task: 't', workspace: '/w', model: 'm', baseUrl: 'http://x', status: 'running', steps: 0, createdAt: time, updatedAt: time, tokens: { promptTokens: 0, completionTokens: 0 } };
}

function label(step: number): LabelEvent {
  return { type: 'label', time: new Date().toISOString(), step, label: 'good', source: 'human' };
}

test('run ids sort by time and are valid folder names', () => {
  const a = newRunId(new Date('2026-01-02T03:04:05Z'));
  const b = newRunId(new Date('2026-01-02T03:04:06Z'));
  assert.match(a, /^20260102-030405-[0-9a-f]{8}$/);
  assert.ok(a < b);
  assert.ok(isValidRunId(a));
  assert.equal(isValidRunId('../escape'), false);
});

test('a run round-trips: manifest, appended events, listing', async () => {
  const tmp = tempDir();
  try {
    const store = new DatasetStore(path.join(tmp.dir, 'dataset'));
    const writer = await store.createRun(manifest('run-1'));
    await writer.append(label(1));
    await writer.append(label(2));
    await writer.updateManifest({ steps: 2 });
    const { events, problems } = await store.readEvents('run-1');
    assert.deepEqual(problems, []);
    assert.deepEqual(
      events.map((event) => (event as LabelEvent).step),
      [1, 2],
    );
    assert.equal((await store.readManifest('run-1')).steps, 2);
    assert.deepEqual(
      (await store.listRuns()).map((run) => run.id),
      ['run-1'],
    );
    await assert.rejects(store.createRun(manifest('run-1')), DatasetError);
    await assert.rejects(store.readManifest('nope'), /No run "nope"/);
    await assert.rejects(writer.append({ type: 'label', time: 'x', step: 0, label: 'good', source: 'human' }), /step/);
  } finally {
    tmp.cleanup();
  }
});

test('a corrupt line and a truncated last line are reported and skipped, never fatal', async () => {
  const tmp = tempDir();
  try {
    const store = new DatasetStore(tmp.dir);
    const writer = await store.createRun(manifest('run-2'));
    await writer.append(label(1));
    const file = path.join(store.runDir('run-2'), 'events.jsonl');
    await fs.appendFile(file, '{not json}\n');
    await writer.append(label(2));
    await fs.appendFile(file, '{"type":"label","time":"t","st');
    const { events, problems } = await store.readEvents('run-2');
    assert.equal(events.length, 2);
    assert.equal(problems.length, 2);
    assert.match(problems[0], /line 2: not valid JSON/);
    assert.match(problems[1], /line 4: truncated last line/);
  } finally {
    tmp.cleanup();
  }
});

test('concurrent appends never interleave', async () => {
  const tmp = tempDir();
  try {
    const store = new DatasetStore(tmp.dir);
    const writer = await store.createRun(manifest('run-3'));
    await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? writer.append(label(i + 1)) : store.appendEvent('run-3', label(i + 1)))));
    const { events, problems } = await store.readEvents('run-3');
    assert.deepEqual(problems, []);
    assert.equal(events.length, 100);
  } finally {
    tmp.cleanup();
  }
});

test('inbox hints are taken once, oldest first; bad files are kept aside', async () => {
  const tmp = tempDir();
  try {
    const store = new DatasetStore(tmp.dir);
    await store.createRun(manifest('run-4'));
    await store.queueHintFile('run-4', { hintId: 'h1', text: 'first', kind: 'knowledge', source: 'cli', time: 't' });
    // Inbox files are named by the millisecond they were queued: the second one comes a tick later.
    const queued = Date.now();
    await until('the clock to move on', () => Date.now() > queued, 1000, 1);
    await store.queueHintFile('run-4', { hintId: 'h2', text: 'second', kind: 'strategy', source: 'cli', time: 't' });
    await fs.writeFile(path.join(store.runDir('run-4'), 'inbox', '999999999999999-bad.json'), '{oops');
    assert.deepEqual(
      (await store.takeInboxHints('run-4')).map((hint) => hint.text),
      ['first', 'second'],
    );
    assert.deepEqual(await store.takeInboxHints('run-4'), []);
    assert.deepEqual(await fs.readdir(path.join(store.runDir('run-4'), 'inbox', 'rejected')), ['999999999999999-bad.json']);
    await assert.rejects(store.queueHintFile('missing', { hintId: 'h', text: 'x', kind: 'knowledge', source: 'cli', time: 't' }), /No run/);
  } finally {
    tmp.cleanup();
  }
});

test("the default dataset folder never shows in the user's git status", async () => {
  const ws = makeWorkspace();
  try {
    const store = new DatasetStore(defaultDatasetPath(ws.dir));
    await store.createRun(manifest('run-5'));
    assert.equal(git(ws.dir, 'status', '--porcelain', '--untracked-files=all'), '');
  } finally {
    ws.cleanup();
  }
});

test('secrets are redacted before anything is written', async () => {
  const tmp = tempDir();
  try {
    const store = new DatasetStore(tmp.dir);
    store.redactor.addSecret('my-configured-key-123');
    const writer = await store.createRun(manifest('run-6'));
    await writer.append({ ...label(1), reason: 'key my-configured-key-123 and sk-abcdefghijklmnopqrstuvwxyz012345' });
    const raw = await fs.readFile(path.join(store.runDir('run-6'), 'events.jsonl'), 'utf8');
    assert.ok(!raw.includes('my-configured-key-123'));
    assert.ok(!raw.includes('sk-abcdefghijklmnopqrstuvwxyz012345'));
    assert.match(raw, /\[REDACTED:secret\].*\[REDACTED:openai\]/);
  } finally {
    tmp.cleanup();
  }
});

test("run_started may record the run's grounding; events recorded before it was kept still validate", () => {
  const started = {
    type: 'run_started',
    time: new Date().toISOString(),
    version: 1,
    runId: 'r',
    task: 't',
    workspace: '/w',
    model: 'm',
    baseUrl: 'http://x',
    maxSteps: 5,
    systemPrompt: 's',
    tools: [],
  };
  assert.equal(validateEvent(started).type, 'run_started');
  assert.equal(validateEvent({ ...started, grounding: { excludePatterns: ['node_modules/', '*.log'], maxFileBytes: 1000 } }).type, 'run_started');
  for (const grounding of [{ excludePatterns: '*.log', maxFileBytes: 1000 }, { excludePatterns: [1], maxFileBytes: 1000 }, { excludePatterns: [], maxFileBytes: 0 }, 'none']) {
    assert.throws(() => validateEvent({ ...started, grounding }), InvalidEventError);
  }
});
