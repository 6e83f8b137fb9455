/**
 * Who changed what: an edit made while the model thinks is an external change of that step and
 * never the agent's; an edit made while the action itself runs cannot be told apart by the CLI
 * (it stays in the action's diff) unless a source of outside saves says so (the extension's
 * editor saves), and then the step's grounding is marked mixed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { type RunOptions, RunSession } from '../../src/core/session/runSession';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { rewindRun } from '../../src/core/session/rewind';
import { mixedFiles, snapshotBeforeStep, validateEvent, type DatasetEvent, type ExternalChangeEvent, type StepEvent } from '../../src/core/dataset/events';
import { ReplyGate, type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace } from '../fixtures/workspace';

async function withRun(script: ScriptedReply[], body: (context: { session: RunSession; workspace: string; options: RunOptions }) => Promise<void>, overrides: Partial<RunOptions> = {}): Promise<void> {
  const ws = makeWorkspace({ 'README.md': '# demo\n', 'notes.md': 'first\n' });
  const server = await startScriptedModelServer(script);
  const options: RunOptions = {
    workspace: ws.dir,
    datasetDir: defaultDatasetPath(ws.dir),
    task: 'Create a.txt',
    model: 'scripted-model',
    baseUrl: server.baseUrl,
    apiKey: 'test-key-0123456789',
    maxSteps: 10,
    ...overrides,
  };
  try {
    const session = await RunSession.start(options);
    await body({ session, workspace: ws.dir, options });
    await session.stop();
  } finally {
    await server.close();
    ws.cleanup();
  }
}

async function until(what: string, probe: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function eventsOf(options: RunOptions, runId: string): Promise<DatasetEvent[]> {
  return (await new DatasetStore(options.datasetDir).readEvents(runId)).events;
}

const stepsOf = (events: DatasetEvent[]) => events.filter((event): event is StepEvent => event.type === 'step');
const externalOf = (events: DatasetEvent[]) => events.filter((event): event is ExternalChangeEvent => event.type === 'external_change');
const paths = (files: { path: string }[]) => files.map((file) => file.path).sort();

/** A command that says it started, then waits (polling, bounded) until the test lets it end. */
const WAITING_COMMAND = 'touch started.flag; for i in $(seq 400); do [ -e go.flag ] && break; sleep 0.05; done; echo done';

test('an edit made while the model thinks is an external change of that step, never in its action diff; rewind goes back to the request', async () => {
  const gate = new ReplyGate();
  await withRun(
    [{ content: 'I will create a.txt.', toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: 'agent\n' } }, gate }, { toolCall: { name: 'finish', arguments: { summary: 'done' } } }],
    async ({ session, workspace, options }) => {
      await until('the first request to reach the model', () => gate.reached);
      // The user edits two files while the reply is held.
      await fs.writeFile(path.join(workspace, 'notes.md'), 'first\nedited by the user while the model thought\n');
      await fs.writeFile(path.join(workspace, 'user.txt'), 'the user wrote this\n');
      gate.open();
      const ended = await session.done;
      assert.equal(ended.status, 'finished');

      const events = await eventsOf(options, session.runId);
      for (const event of events) validateEvent(event);
      const [first] = stepsOf(events);
      assert.deepEqual(paths(first.grounding.files), ['a.txt'], 'only the agent’s write is its diff');
      assert.doesNotMatch(first.grounding.patch, /user/);
      const external = externalOf(events);
      assert.equal(external.length, 1);
      assert.equal(external[0].step, 1);
      assert.equal(external[0].phase, 'during_request');
      assert.deepEqual(paths(external[0].grounding.files), ['notes.md', 'user.txt']);
      assert.match(external[0].grounding.patch, /\+edited by the user while the model thought/);
      // The external change is recorded before the step, and the step's diff starts where it ended.
      assert.ok(events.indexOf(external[0]) < events.indexOf(first));
      assert.equal(first.grounding.before, external[0].grounding.after);
      assert.equal(first.requestSnapshot, external[0].grounding.before);
      assert.equal(mixedFiles(first).length, 0);
      assert.equal(stepsOf(events)[1].requestSnapshot, undefined, 'nothing changed while the second reply was awaited');

      // "Before step 1" is the workspace when its request was sent: without the user's edits.
      await rewindRun({ datasetDir: options.datasetDir, runId: session.runId, toStep: 1 });
      assert.equal(await fs.readFile(path.join(workspace, 'notes.md'), 'utf8'), 'first\n');
      assert.equal(existsSync(path.join(workspace, 'user.txt')), false);
      assert.equal(existsSync(path.join(workspace, 'a.txt')), false);
      assert.equal(snapshotBeforeStep(first), first.requestSnapshot);
    },
  );
});

test('an edit made while the action runs stays in its diff in the CLI, which sees no editor saves: the limit, stated', async () => {
  await withRun(
    [{ toolCall: { name: 'run_command', arguments: { command: WAITING_COMMAND } } }, { toolCall: { name: 'finish', arguments: { summary: 'done' } } }],
    async ({ session, workspace, options }) => {
      await until('the command to start', () => existsSync(path.join(workspace, 'started.flag')));
      await fs.writeFile(path.join(workspace, 'during.txt'), 'edited while the command ran\n');
      await fs.writeFile(path.join(workspace, 'go.flag'), '');
      assert.equal((await session.done).status, 'finished');
      const events = await eventsOf(options, session.runId);
      const [first] = stepsOf(events);
      assert.ok(paths(first.grounding.files).includes('during.txt'), 'the diff cannot tell who wrote during.txt');
      assert.equal(first.grounding.mixed, undefined, 'no source of saves: not marked');
      assert.deepEqual(externalOf(events), []);
    },
  );
});

test('with a source of outside saves, a save during the action marks that step mixed, naming the files; one watch per action, each ended', async () => {
  const watches: { begun: number; ended?: number }[] = [];
  const saved: string[] = [];
  let workspaceSeen = '';
  await withRun(
    [
      { toolCall: { name: 'run_command', arguments: { command: WAITING_COMMAND } } },
      { toolCall: { name: 'write_file', arguments: { path: 'b.txt', content: 'b\n' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
    ],
    async ({ session, workspace, options }) => {
      await until('the command to start', () => existsSync(path.join(workspace, 'started.flag')));
      // What an editor save does: the file is written, and the source hears of it.
      await fs.writeFile(path.join(workspace, 'during.txt'), 'saved in an editor\n');
      saved.push('during.txt', 'during.txt');
      await fs.writeFile(path.join(workspace, 'go.flag'), '');
      assert.equal((await session.done).status, 'finished');
      const events = await eventsOf(options, session.runId);
      for (const event of events) validateEvent(event);
      const steps = stepsOf(events);
      assert.deepEqual(steps[0].grounding.mixed, { files: ['during.txt'] });
      assert.equal(steps[1].grounding.mixed, undefined, 'the next action saw no save');
      assert.equal(workspaceSeen, options.workspace);
      assert.equal(watches.length, 3, 'one watch per action');
      assert.ok(watches.every((watch) => watch.ended !== undefined));
    },
    {
      outsideSaves: (workspace) => {
        workspaceSeen = workspace;
        const watch: { begun: number; ended?: number } = { begun: Date.now() };
        watches.push(watch);
        return {
          end: () => {
            watch.ended = Date.now();
            return saved.splice(0);
          },
        };
      },
    },
  );
});

test('the new fields are checked when read, and events recorded before them still read', () => {
  const plain = {
    type: 'step',
    time: 't',
    step: 1,
    assistant: { content: null, toolCalls: [] },
    action: null,
    observation: '',
    isError: false,
    grounding: { before: 'a', after: 'a', files: [], patch: '' },
    modelMs: 1,
    toolMs: 0,
  };
  assert.equal(validateEvent(plain).type, 'step', 'a step without requestSnapshot or mixed');
  assert.equal(
    validateEvent({ type: 'external_change', time: 't', step: 2, grounding: { before: 'a', after: 'b', files: [], patch: '' } }).type,
    'external_change',
    'an external change without a phase',
  );
  assert.throws(() => validateEvent({ ...plain, grounding: { ...plain.grounding, mixed: { files: [1] } } }), /grounding.mixed/);
  assert.throws(() => validateEvent({ ...plain, requestSnapshot: 7 }), /requestSnapshot/);
  assert.throws(() => validateEvent({ type: 'external_change', time: 't', step: 2, phase: 'sometime', grounding: { before: 'a', after: 'b', files: [] } }), /phase/);
});
