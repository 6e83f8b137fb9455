import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { activeTimeOf, ConfigError, type RunOptions, RunSession } from '../../src/core/session/runSession';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { rewindRun } from '../../src/core/session/rewind';
import type { DatasetEvent, StepEvent } from '../../src/core/dataset/events';
import { type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { git, makeWorkspace } from '../fixtures/workspace';

async function withRun(
  script: ScriptedReply[],
  body: (context: { session: RunSession; workspace: string; requests: { messages: any[] }[]; options: RunOptions }) => Promise<void>,
  overrides: Partial<RunOptions> = {},
  serverOptions: { requireApiKey?: string } = {},
): Promise<void> {
  const ws = makeWorkspace({ 'README.md': '# demo\n' });
  const server = await startScriptedModelServer(script, serverOptions);
  const options: RunOptions = {
    workspace: ws.dir,
    datasetDir: defaultDatasetPath(ws.dir),
    task: 'Create hello.txt',
    model: 'scripted-model',
    baseUrl: server.baseUrl,
    apiKey: 'test-key-0123456789',
    maxSteps: 10,
    ...overrides,
  };
  try {
    const session = await RunSession.start(options);
    await body({ session, workspace: ws.dir, requests: server.requests, options });
    await session.stop();
  } finally {
    await server.close();
    ws.cleanup();
  }
}

/** Polls until `probe` holds; fails the test instead of hanging. */
async function until(what: string, probe: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const steps = (events: readonly DatasetEvent[]) => events.filter((event): event is StepEvent => event.type === 'step');

test('a run records grounded steps for file tools and shell commands, then finishes', async () => {
  await withRun(
    [
      { toolCall: { name: 'write_file', arguments: { path: 'hello.txt', content: 'hello\n' } }, content: 'I will create the file.' },
      { toolCall: { name: 'run_command', arguments: { command: 'echo made-by-shell > shell.txt && cat hello.txt' } } },
      { toolCall: { name: 'read_file', arguments: { path: 'hello.txt' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'Created hello.txt' } } },
    ],
    async ({ session, workspace, requests }) => {
      const ended = await session.done;
      assert.equal(ended.status, 'finished');
      assert.equal(ended.summary, 'Created hello.txt');
      const store = new DatasetStore(defaultDatasetPath(workspace));
      const { events, problems } = await store.readEvents(session.runId);
      assert.deepEqual(problems, []);
      assert.deepEqual(
        events.map((event) => event.type),
        ['run_started', 'context_window', 'step', 'step', 'step', 'step', 'run_ended'],
      );
      // The scripted server says nothing of its window: the cautious default, said so.
      const window = events.find((event) => event.type === 'context_window');
      assert.equal(window?.type === 'context_window' && window.source, 'default');
      const [write, command, read, finish] = steps(events);
      assert.equal(write.assistant.content, 'I will create the file.');
      assert.deepEqual(
        write.grounding.files.map((file) => [file.path, file.status, file.additions]),
        [['hello.txt', 'added', 1]],
      );
      assert.match(write.grounding.patch, /^\+hello$/m);
      assert.deepEqual(
        command.grounding.files.map((file) => file.path),
        ['shell.txt'],
      );
      assert.match(command.observation, /hello\n\[exit code 0\]/);
      assert.deepEqual(read.grounding.files, []);
      assert.equal(finish.action?.name, 'finish');
      // The model saw each observation as a tool message answering its call.
      const last = requests[3].messages.filter((m: { role: string }) => m.role !== 'system');
      assert.equal(last[last.length - 1].role, 'tool');
      assert.equal(last[last.length - 1].content, 'hello\n');
      // Every request tells the agent where it stands against its budget.
      assert.match(requests[3].messages[requests[3].messages.length - 1].content, /^Budget: this is step 4 of at most 10 \(6 left/);
      const manifest = await store.readManifest(session.runId);
      assert.equal(manifest.status, 'finished');
      assert.equal(manifest.steps, 4);
      assert.ok(manifest.tokens.completionTokens > 0);
      // The dataset never shows in the user's git status, and the user's HEAD did not move.
      assert.equal(git(workspace, 'status', '--porcelain'), '?? hello.txt\n?? shell.txt\n');
      assert.equal(git(workspace, 'rev-list', '--count', 'HEAD').trim(), '1');
    },
  );
});

test('a hint sent mid-request is delivered in the very next request without pausing the agent', async () => {
  await withRun(
    [
      { toolCall: { name: 'list_dir', arguments: {} } },
      { toolCall: { name: 'read_file', arguments: { path: 'README.md' } }, delayMs: 400 },
      { toolCall: { name: 'finish', arguments: { summary: 'ok' } } },
    ],
    async ({ session, requests }) => {
      await until('the second request', () => requests.length >= 2);
      const hintId = await session.injectHint('Look at the README first', 'strategy');
      const ended = await session.done;
      assert.equal(ended.status, 'finished');
      const userTexts = (index: number) => requests[index].messages.filter((m) => m.role === 'user').map((m) => m.content);
      assert.ok(!userTexts(1).some((text: string) => text.includes('README first')));
      assert.deepEqual(userTexts(2).slice(-1), ['[Hint from the annotator (strategy)]: Look at the README first']);
      const delivered = (await session.events()).find((event) => event.type === 'hint_delivered');
      assert.deepEqual(delivered && { hintId: delivered.hintId, step: delivered.step }, { hintId, step: 3 });
      assert.ok(!(await session.events()).some((event) => event.type === 'run_state'));
    },
  );
});

test('hints from another process are picked up from the inbox, exactly once', async () => {
  await withRun(
    [{ toolCall: { name: 'list_dir', arguments: {} }, delayMs: 300 }, { toolCall: { name: 'list_dir', arguments: {} } }],
    async ({ session, requests }) => {
      await session.store.queueHintFile(session.runId, { hintId: 'h-cli', text: 'from the CLI', kind: 'correction', source: 'cli', time: 't' });
      await session.done;
      const carrying = requests.filter((request) => request.messages.some((m: any) => m.role === 'user' && String(m.content).includes('from the CLI')));
      assert.ok(carrying.length >= 1);
      const firstIndex = requests.indexOf(carrying[0]);
      assert.equal(carrying.length, requests.length - firstIndex); // stays in context afterwards
      const deliveries = (await session.events()).filter((event) => event.type === 'hint_delivered');
      assert.equal(deliveries.length, 1);
    },
    { maxSteps: 3 },
  );
});

test('stop aborts the in-flight model request at once', async () => {
  await withRun([{ toolCall: { name: 'list_dir', arguments: {} }, delayMs: 30_000 }], async ({ session, requests }) => {
    await until('the first request', () => requests.length >= 1);
    const started = Date.now();
    const ended = await session.stop();
    assert.equal(ended.status, 'stopped');
    assert.ok(Date.now() - started < 5000);
    assert.equal((await session.store.readManifest(session.runId)).status, 'stopped');
  });
});

test('pause takes effect after the current step; resume continues', async () => {
  await withRun([{ toolCall: { name: 'list_dir', arguments: {} }, delayMs: 200 }, { toolCall: { name: 'finish', arguments: { summary: 'ok' } } }], async ({ session, requests }) => {
    await until('the first request', () => requests.length >= 1);
    session.pause();
    await until('the pause', () => session.status === 'paused');
    assert.equal(requests.length, 1);
    assert.equal(steps(await session.events()).length, 1);
    session.resume();
    assert.equal((await session.done).status, 'finished');
    assert.deepEqual(
      (await session.events()).filter((event) => event.type === 'run_state').map((event) => (event as { state: string }).state),
      ['paused', 'resumed'],
    );
  });
});

test('invalid tool arguments and unknown tools become error observations; the run goes on', async () => {
  await withRun(
    [
      { toolCall: { name: 'write_file', arguments: '{"path": "x.txt", "content": ' } },
      { toolCall: { name: 'launch_rocket', arguments: {} } },
      { content: 'Thinking out loud without a tool.' },
      { toolCall: { name: 'write_file', arguments: { path: '../escape.txt', content: 'x' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
    ],
    async ({ session, workspace }) => {
      assert.equal((await session.done).status, 'finished');
      const [bad, unknown, silent, escape] = steps(await session.events());
      assert.equal(bad.isError, true);
      assert.match(bad.observation, /not a valid JSON object/);
      assert.match(unknown.observation, /Unknown tool "launch_rocket"/);
      assert.equal(silent.action, null);
      assert.match(silent.observation, /No tool was called/);
      assert.match(escape.observation, /outside the workspace/);
      await assert.rejects(fs.access(path.join(workspace, '..', 'escape.txt')));
    },
  );
});

test('a refused API key ends the run as failed, keeping its steps and naming the fix', async () => {
  await withRun(
    [],
    async ({ session }) => {
      const ended = await session.done;
      assert.equal(ended.status, 'failed');
      assert.match(ended.error ?? '', /refused the API key.*Apollo: Set API Key/);
      assert.equal((await session.store.readManifest(session.runId)).status, 'failed');
    },
    { apiKey: 'wrong-key-123456' },
    { requireApiKey: 'right-key-123456' },
  );
});

test('an unreachable endpoint fails the run with the URL in the message', async () => {
  await withRun(
    [],
    async ({ session }) => {
      const ended = await session.done;
      assert.equal(ended.status, 'failed');
      assert.match(ended.error ?? '', /Cannot reach the model endpoint http:\/\/127\.0\.0\.1:9\/v1/);
    },
    { baseUrl: 'http://127.0.0.1:9/v1' },
  );
});

test('bad options are refused before anything is written', async () => {
  const ws = makeWorkspace();
  try {
    const base: RunOptions = { workspace: ws.dir, datasetDir: defaultDatasetPath(ws.dir), task: 'x', model: 'm', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' };
    await assert.rejects(RunSession.start({ ...base, task: '   ' }), (error: Error) => error instanceof ConfigError && /task is empty/.test(error.message));
    await assert.rejects(RunSession.start({ ...base, baseUrl: '' }), /apollo\.baseUrl/);
    await assert.rejects(RunSession.start({ ...base, baseUrl: 'not a url' }), /not an http\(s\) URL/);
    await assert.rejects(RunSession.start({ ...base, model: '' }), /apollo\.model/);
    await assert.rejects(RunSession.start({ ...base, apiKey: '' }), /Set API Key/);
    await assert.rejects(RunSession.start({ ...base, maxSteps: 0 }), /at least 1/);
    await assert.rejects(RunSession.start({ ...base, workspace: path.join(ws.dir, 'missing') }), /does not exist/);
    await assert.rejects(fs.access(defaultDatasetPath(ws.dir)));
  } finally {
    ws.cleanup();
  }
});

test('labels are appended for recorded steps only; hints to an ended run are refused', async () => {
  await withRun([{ toolCall: { name: 'list_dir', arguments: {} } }], async ({ session }) => {
    await session.done;
    await session.label(1, 'bad', { reason: 'useless listing', axis: 'decision' });
    await assert.rejects(session.label(5, 'good'), /no step 5/);
    await assert.rejects(session.injectHint('too late'), /has ended/);
    const { events } = await session.store.readEvents(session.runId);
    const label = events.find((event) => event.type === 'label');
    assert.deepEqual(label && { step: label.step, label: label.label, source: label.source, reason: label.reason }, {
      step: 1,
      label: 'bad',
      source: 'human',
      reason: 'useless listing',
    });
  });
});

test('max steps ends the run as max_steps', async () => {
  const listing: ScriptedReply = { toolCall: { name: 'list_dir', arguments: {} } };
  await withRun(
    [listing, listing, listing],
    async ({ session }) => {
      const ended = await session.done;
      assert.equal(ended.status, 'max_steps');
      assert.equal(ended.steps, 2);
    },
    { maxSteps: 2 },
  );
});

test('snapshots leave out dependency folders and large files unless the grounding options say otherwise', async () => {
  const script: ScriptedReply[] = [
    { toolCall: { name: 'run_command', arguments: { command: 'mkdir -p node_modules/pkg && echo dep > node_modules/pkg/index.js && head -c 3000 /dev/zero > big.bin && echo src > app.js' } } },
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ];
  const groundedPaths = async (session: RunSession) => {
    await session.done;
    return steps(await session.events())[0]
      .grounding.files.map((file) => file.path)
      .sort();
  };
  await withRun(script, async ({ session }) => assert.deepEqual(await groundedPaths(session), ['app.js', 'big.bin']));
  await withRun(script, async ({ session }) => assert.deepEqual(await groundedPaths(session), ['app.js']), { grounding: { maxFileBytes: 1000 } });
  await withRun(script, async ({ session }) => assert.deepEqual(await groundedPaths(session), ['app.js', 'big.bin', 'node_modules/pkg/index.js']), {
    grounding: { exclude: ['!node_modules/'] },
  });
  const ws = makeWorkspace();
  try {
    await assert.rejects(
      RunSession.start({ workspace: ws.dir, datasetDir: defaultDatasetPath(ws.dir), task: 't', model: 'm', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k', grounding: { maxFileBytes: -1 } }),
      (error: Error) => error instanceof ConfigError && /positive size/.test(error.message),
    );
    await assert.rejects(fs.access(path.join(ws.dir, '.apollo')), 'nothing is written for refused options');
  } finally {
    ws.cleanup();
  }
});

test('a token budget ends the run after the step in flight, with status budget and the reason in words', async () => {
  const listing: ScriptedReply = { toolCall: { name: 'list_dir', arguments: {} } };
  await withRun(
    [listing, listing, listing],
    async ({ session, requests }) => {
      const ended = await session.done;
      assert.equal(ended.status, 'budget');
      assert.equal(ended.budget, 'tokens');
      assert.equal(ended.steps, 1);
      assert.equal(ended.summary, 'Stopped: the run reached its token budget of 1 after 1 step.');
      assert.equal(requests.length, 1);
      const events = await session.events();
      const started = events[0];
      assert.deepEqual(started.type === 'run_started' && started.budget, { maxTokens: 1 });
      assert.equal((await session.store.readManifest(session.runId)).status, 'budget');
    },
    { budget: { maxTokens: 1 } },
  );
});

test('a time budget counts active time only: time spent paused is left out', async () => {
  let clock = 1_000_000;
  const listing: ScriptedReply = { toolCall: { name: 'list_dir', arguments: {} } };
  await withRun(
    [
      { ...listing, delayMs: 200 },
      // The second step takes two minutes of the run's clock.
      () => ((clock += 2 * 60_000), listing),
      listing,
    ],
    async ({ session, requests }) => {
      await until('the first request', () => requests.length >= 1);
      session.pause();
      await until('the pause', () => session.status === 'paused');
      clock += 10 * 60_000; // paused for ten minutes: not counted
      session.resume();
      const ended = await session.done;
      assert.equal(ended.status, 'budget');
      assert.equal(ended.budget, 'time');
      assert.equal(ended.steps, 2);
      assert.equal(ended.summary, 'Stopped: the run reached its time budget of 1 minute after 2 steps.');
    },
    { budget: { maxMinutes: 1 }, engine: { clock: () => clock } },
  );
});

test('budgets must be positive', async () => {
  const ws = makeWorkspace();
  try {
    const base: RunOptions = { workspace: ws.dir, datasetDir: defaultDatasetPath(ws.dir), task: 'x', model: 'm', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' };
    await assert.rejects(
      RunSession.start({ ...base, budget: { maxMinutes: 0 } }),
      (error: Error) => error instanceof ConfigError && /time budget must be a positive number of minutes \(got 0\)/.test(error.message),
    );
    await assert.rejects(
      RunSession.start({ ...base, budget: { maxTokens: -5 } }),
      (error: Error) => error instanceof ConfigError && /token budget must be a whole number of tokens, at least 1 \(got -5\)/.test(error.message),
    );
    await assert.rejects(RunSession.start({ ...base, budget: { maxTokens: 1.5 } }), /token budget/);
    await assert.rejects(fs.access(defaultDatasetPath(ws.dir)));
  } finally {
    ws.cleanup();
  }
});

test('active time leaves out pauses and the time a crashed run was down', () => {
  const at = (minutes: number) => new Date(Date.UTC(2026, 0, 1, 0, minutes)).toISOString();
  const events = [
    { type: 'run_started', time: at(0) },
    { type: 'run_state', time: at(5), state: 'paused' },
    { type: 'run_state', time: at(50), state: 'resumed' },
    { type: 'step', time: at(53) }, // then the process died
    { type: 'run_state', time: at(200), state: 'resumed' },
    { type: 'step', time: at(201) },
  ] as unknown as DatasetEvent[];
  assert.equal(activeTimeOf(events), (5 + 3 + 1) * 60_000);
});

test('a run resumed after a rewind keeps the budget it started with', async () => {
  const listing: ScriptedReply = { toolCall: { name: 'list_dir', arguments: {} } };
  await withRun(
    [listing, listing],
    async ({ session, options }) => {
      assert.equal((await session.done).status, 'budget');
      await rewindRun({ datasetDir: options.datasetDir, runId: session.runId, toStep: 1 });
      const resumed = await RunSession.resume({ datasetDir: options.datasetDir, runId: session.runId, apiKey: options.apiKey, baseUrl: options.baseUrl });
      const ended = await resumed.done;
      // The tokens already used count: the budget is reached before another request.
      assert.deepEqual([ended.status, ended.budget], ['budget', 'tokens']);
      assert.match(ended.summary ?? '', /token budget of 1 after/);
    },
    { budget: { maxTokens: 1 } },
  );
});
