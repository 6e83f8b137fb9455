import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DatasetStore, type RunWriter } from '../../src/core/dataset/store';
import type { DatasetEvent, RunManifest } from '../../src/core/dataset/events';
import { ConfigError } from '../../src/core/session/errors';
import { HintInbox, type HintInboxHost, HINTS_DISABLED, type InFlightRequest } from '../../src/core/session/hintInbox';
import { tempDir } from '../fixtures/workspace';

function manifest(id: string): RunManifest {
  const time = new Date().toISOString();
  return { id, task: 't', workspace: '/w', model: 'm', baseUrl: 'http://x', status: 'running', steps: 0, createdAt: time, updatedAt: time, tokens: { promptTokens: 0, completionTokens: 0 } };
}

/** A hint inbox over a real dataset run: its events are appended to the run and kept here too. */
async function inboxOf(dir: string, host: Partial<HintInboxHost> = {}) {
  const store = new DatasetStore(path.join(dir, 'dataset'));
  const runId = 'run-1';
  const writer: RunWriter = await store.createRun(manifest(runId));
  const events: DatasetEvent[] = [];
  const logs: string[] = [];
  let queuedCalls = 0;
  const inbox = new HintInbox({
    runId,
    takeInboxHints: () => store.takeInboxHints(runId),
    record: async (event) => {
      await writer.append(event);
      events.push(event);
    },
    log: (line) => logs.push(line),
    closed: () => undefined,
    onQueued: () => queuedCalls++,
    inboxPollMs: 20,
    ...host,
  });
  const sendFromAnotherProcess = (hintId: string, text: string, urgency: 'next' | 'now' = 'next') =>
    new DatasetStore(path.join(dir, 'dataset')).queueHintFile(runId, { hintId, text, kind: 'knowledge', source: 'cli', time: new Date().toISOString(), urgency });
  return { inbox, store, runId, writer, events, logs, queued: () => queuedCalls, sendFromAnotherProcess };
}

test('hints are handed out once, in the order they were queued, each recorded as hint_queued', async () => {
  const tmp = tempDir();
  try {
    const { inbox, writer, events, queued } = await inboxOf(tmp.dir);
    const first = await inbox.inject('look in src/', 'knowledge');
    const second = await inbox.inject('run the tests first', 'strategy', 'human', 'next');
    assert.notEqual(first, second);
    assert.equal(queued(), 2);
    assert.equal(await inbox.hasPending(), true);
    assert.deepEqual(await inbox.take(), [
      { hintId: first, text: 'look in src/', kind: 'knowledge' },
      { hintId: second, text: 'run the tests first', kind: 'strategy' },
    ]);
    assert.deepEqual(await inbox.take(), []);
    assert.equal(await inbox.hasPending(), false);
    assert.deepEqual(
      events.map((event) => event.type === 'hint_queued' && [event.hintId, event.urgency, event.source]),
      [
        [first, 'next', 'human'],
        [second, 'next', 'human'],
      ],
    );
    // As written to the run's events.
    const { events: written } = await writer.readEvents();
    assert.deepEqual(
      written.map((event) => event.type),
      ['hint_queued', 'hint_queued'],
    );
  } finally {
    tmp.cleanup();
  }
});

test('an empty hint, an unknown kind or urgency, and a closed run are refused with what to do', async () => {
  const tmp = tempDir();
  try {
    let closed: string | undefined;
    const { inbox, events } = await inboxOf(tmp.dir, { closed: () => closed });
    await assert.rejects(inbox.inject('  '), (error: Error) => error instanceof ConfigError && /The hint is empty/.test(error.message));
    await assert.rejects(inbox.inject('x', 'gossip' as never), /Unknown hint kind "gossip"/);
    await assert.rejects(inbox.inject('x', 'knowledge', 'human', 'later' as never), /Unknown urgency "later": use next or now/);
    closed = 'Run run-1 has ended (finished); a hint can no longer reach it.';
    await assert.rejects(inbox.inject('too late'), (error: Error) => error instanceof ConfigError && error.message === closed);
    assert.deepEqual(events, []);
  } finally {
    tmp.cleanup();
  }
});

test('a now hint interrupts the request in flight, naming itself; a next hint does not', async () => {
  const tmp = tempDir();
  try {
    const { inbox } = await inboxOf(tmp.dir);
    const request: InFlightRequest = { controller: new AbortController() };
    const unwatch = inbox.watch(request);
    await inbox.inject('keep going', 'knowledge', 'human', 'next');
    assert.equal(request.controller.signal.aborted, false);
    const urgent = await inbox.inject('stop editing that file', 'correction', 'human', 'now');
    assert.equal(request.controller.signal.aborted, true);
    assert.deepEqual(request.interruptedBy, [urgent]);
    unwatch();
    // Once the request ended, a now hint has nothing to interrupt: it waits for the next request.
    const later: InFlightRequest = { controller: new AbortController() };
    inbox.watch(later)();
    await inbox.inject('and another', 'knowledge', 'human', 'now');
    assert.equal(later.controller.signal.aborted, false);
    assert.deepEqual(
      (await inbox.take()).map((hint) => hint.text),
      ['keep going', 'stop editing that file', 'and another'],
    );
  } finally {
    tmp.cleanup();
  }
});

test('hints another process left in the inbox are queued in order, and a now one interrupts the request while it is in flight', async () => {
  const tmp = tempDir();
  try {
    const { inbox, events, sendFromAnotherProcess } = await inboxOf(tmp.dir);
    await sendFromAnotherProcess('h-a', 'first from the CLI');
    await sendFromAnotherProcess('h-b', 'second from the CLI');
    assert.deepEqual(await inbox.take(), [
      { hintId: 'h-a', text: 'first from the CLI', kind: 'knowledge' },
      { hintId: 'h-b', text: 'second from the CLI', kind: 'knowledge' },
    ]);
    assert.deepEqual(
      events.map((event) => event.type === 'hint_queued' && [event.hintId, event.source, event.urgency]),
      [
        ['h-a', 'cli', 'next'],
        ['h-b', 'cli', 'next'],
      ],
    );
    // Taken once: the inbox is empty now.
    assert.deepEqual(await inbox.take(), []);

    const request: InFlightRequest = { controller: new AbortController() };
    const unwatch = inbox.watch(request);
    try {
      await sendFromAnotherProcess('h-now', 'urgent from the CLI', 'now');
      // The watch polls the inbox while the request is in flight.
      const deadline = Date.now() + 10_000;
      while (!request.controller.signal.aborted && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(request.controller.signal.aborted, true);
      assert.deepEqual(request.interruptedBy, ['h-now']);
    } finally {
      unwatch();
    }
    assert.deepEqual(
      (await inbox.take()).map((hint) => hint.hintId),
      ['h-now'],
    );
  } finally {
    tmp.cleanup();
  }
});

test('a run with hints disabled refuses a hint given to it and records hint_undelivered for one from the inbox', async () => {
  const tmp = tempDir();
  try {
    const { inbox, runId, events, sendFromAnotherProcess } = await inboxOf(tmp.dir, { hintsDisabled: true });
    await assert.rejects(inbox.inject('a hint'), (error: Error) => error instanceof ConfigError && error.message === HINTS_DISABLED(runId));
    await sendFromAnotherProcess('h-x', 'from the CLI');
    assert.deepEqual(await inbox.take(), []);
    assert.deepEqual(
      events.map((event) => event.type === 'hint_undelivered' && [event.hintId, event.reason]),
      [['h-x', HINTS_DISABLED(runId)]],
    );
    assert.match(HINTS_DISABLED(runId), /takes no hints: it was started with hints disabled/);
  } finally {
    tmp.cleanup();
  }
});

test('hints still queued when the run ends are recorded as undelivered, with the reason, and logged', async () => {
  const tmp = tempDir();
  try {
    const { inbox, events, logs, sendFromAnotherProcess } = await inboxOf(tmp.dir);
    const given = await inbox.inject('never delivered');
    await sendFromAnotherProcess('h-late', 'also never delivered');
    await inbox.recordUndelivered('finished');
    const reason = 'the run ended (finished) before its next model request';
    assert.deepEqual(
      events.filter((event) => event.type === 'hint_undelivered').map((event) => event.type === 'hint_undelivered' && [event.hintId, event.reason]),
      [
        [given, reason],
        ['h-late', reason],
      ],
    );
    assert.deepEqual(logs, [`Hint ${given} was not delivered: ${reason}.`, `Hint h-late was not delivered: ${reason}.`]);
    assert.deepEqual(await inbox.take(), []);
  } finally {
    tmp.cleanup();
  }
});

test('hints queued before an interruption are handed out first after a resume', async () => {
  const tmp = tempDir();
  const store = new DatasetStore(path.join(tmp.dir, 'dataset'));
  try {
    await store.createRun(manifest('run-1'));
    const inbox = new HintInbox(
      { runId: 'run-1', takeInboxHints: () => store.takeInboxHints('run-1'), record: async () => undefined, log: () => undefined, closed: () => undefined, onQueued: () => undefined, inboxPollMs: 20 },
      [{ hintId: 'h-old', text: 'from before', kind: 'knowledge', urgency: 'next' }],
    );
    const fresh = await inbox.inject('new one');
    assert.deepEqual(
      (await inbox.take()).map((hint) => hint.hintId),
      ['h-old', fresh],
    );
  } finally {
    tmp.cleanup();
  }
});
