/** The engine under faults, urgent hints, tiny context budgets and a killed process. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { type RunOptions, RunSession } from '../../src/core/session/runSession';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { defaultDatasetDir } from '../../src/core/paths';
import type { DatasetEvent, StepEvent } from '../../src/core/dataset/events';
import { main } from '../../src/cli/main';
import { type RecordedRequest, type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace } from '../fixtures/workspace';

const FAST = { retryBaseMs: 20, retryMaxMs: 2000, requestTimeoutMs: 400, inboxPollMs: 30 };

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const ofType = <T extends DatasetEvent['type']>(events: readonly DatasetEvent[], type: T) => events.filter((event): event is Extract<DatasetEvent, { type: T }> => event.type === type);

async function run(script: ScriptedReply[], overrides: Partial<RunOptions> = {}, fallback?: ScriptedReply) {
  const ws = makeWorkspace({ 'README.md': '# demo\n' });
  const server = await startScriptedModelServer(script, { fallback });
  const options: RunOptions = {
    workspace: ws.dir,
    datasetDir: defaultDatasetPath(ws.dir),
    task: 'Do the task',
    model: 'scripted-model',
    baseUrl: server.baseUrl,
    apiKey: 'test-key-0123456789',
    maxSteps: 10,
    engine: FAST,
    ...overrides,
  };
  const session = await RunSession.start(options);
  return {
    session,
    server,
    workspace: ws.dir,
    async close() {
      await session.stop();
      await server.close();
      ws.cleanup();
    },
  };
}

const listDir: ScriptedReply = { toolCall: { name: 'list_dir', arguments: {} } };

test('rate limits, server errors, timeouts, cut streams and empty replies are retried without losing a step', async () => {
  const { session, server, close } = await run([
    { status: 429, headers: { 'retry-after': '1' } },
    listDir,
    { status: 503 },
    { cut: true },
    { ...listDir, delayMs: 2000 }, // longer than the request time limit
    { empty: true },
    listDir,
    { toolCall: { name: 'finish', arguments: { summary: 'survived' } } },
  ]);
  try {
    const ended = await session.done;
    assert.equal(ended.status, 'finished');
    const events = await session.events();
    assert.deepEqual(
      ofType(events, 'step').map((event) => event.step),
      [1, 2, 3],
    );
    const retries = ofType(events, 'model_retry');
    assert.deepEqual(
      retries.map((retry) => [retry.step, retry.attempt]),
      [
        [1, 1],
        [2, 1],
        [2, 2],
        [2, 3],
        [2, 4],
      ],
    );
    assert.equal(retries[0].waitMs, 1000, 'Retry-After is honoured');
    assert.equal(retries[0].status, 429);
    assert.equal(retries[1].status, 503);
    assert.match(retries[2].error, /broke off|could not be read/);
    assert.match(retries[3].error, /did not answer in time/);
    assert.match(retries[4].error, /empty reply/);
    assert.equal(retries[4].waitMs, 20 * 2 ** 3, 'the backoff doubles');
    assert.equal(server.requests.length, 8);
  } finally {
    await close();
  }
});

test('after too many failures in a row the run pauses and asks; a hint continues it', async () => {
  const failing: ScriptedReply = { status: 500 };
  const { session, close } = await run([listDir, failing, failing, failing, failing, failing, { toolCall: { name: 'finish', arguments: { summary: 'ok' } } }]);
  try {
    await until('the pause on errors', () => session.status === 'paused');
    const paused = ofType(await session.events(), 'run_state').find((event) => event.state === 'paused');
    assert.match(paused?.reason ?? '', /5 model requests in a row failed; the last: The model endpoint answered HTTP 500/);
    assert.equal(session.pausedBecause, paused?.reason);
    await session.injectHint('The server is back; try again.', 'knowledge');
    const ended = await session.done;
    assert.equal(ended.status, 'finished');
    const states = ofType(await session.events(), 'run_state').map((event) => event.state);
    assert.deepEqual(states, ['paused', 'resumed']);
    assert.deepEqual(
      ofType(await session.events(), 'step').map((event) => event.step),
      [1, 2],
    );
  } finally {
    await close();
  }
});

test('an urgent hint interrupts the model request in flight and is in the request sent again', async () => {
  const { session, server, close } = await run([{ ...listDir, delayMs: 10_000 }, { toolCall: { name: 'finish', arguments: { summary: 'ok' } } }]);
  try {
    await until('the first request', () => server.requests.length >= 1);
    const started = Date.now();
    const hintId = await session.injectHint('Stop listing, just finish.', 'correction', 'human', 'now');
    const ended = await session.done;
    assert.ok(Date.now() - started < 5000, 'the slow request was not waited for');
    assert.equal(ended.status, 'finished');
    const interrupted = ofType(await session.events(), 'request_interrupted');
    assert.deepEqual(
      interrupted.map((event) => [event.step, event.hintIds]),
      [[1, [hintId]]],
    );
    assert.ok(server.requests[1].messages.some((message: { content: string }) => message.content === '[Hint from the annotator (correction)]: Stop listing, just finish.'));
    assert.deepEqual(
      ofType(await session.events(), 'step').map((event) => event.action?.name),
      ['finish'],
    );
  } finally {
    await close();
  }
});

test('apollo hint --now from another process interrupts the request in flight', async () => {
  const { session, server, workspace, close } = await run([{ ...listDir, delayMs: 10_000 }, { toolCall: { name: 'finish', arguments: { summary: 'ok' } } }]);
  try {
    await until('the first request', () => server.requests.length >= 1);
    const out: string[] = [];
    const io = { stdout: (text: string) => out.push(text), stderr: (text: string) => out.push(text), env: {}, cwd: workspace };
    assert.equal(await main(['hint', '--run', session.runId, '--now', '--kind', 'strategy', 'finish now'], io), 0);
    assert.equal((await session.done).status, 'finished');
    const queued = ofType(await session.events(), 'hint_queued')[0];
    assert.deepEqual([queued.text, queued.urgency, queued.source], ['finish now', 'now', 'cli']);
    assert.equal(ofType(await session.events(), 'request_interrupted').length, 1);
  } finally {
    await close();
  }
});

test('a tiny context budget summarizes many times and the prompt still carries every hint', async () => {
  const summaries: RecordedRequest[] = [];
  let steps = 0;
  const reply = (request: RecordedRequest): ScriptedReply => {
    if (!request.body.tools) {
      summaries.push(request);
      return { content: `## Task state\nsummary number ${summaries.length}` };
    }
    steps++;
    return steps > 24 ? { toolCall: { name: 'finish', arguments: { summary: 'done' } } } : { toolCall: { name: 'run_command', arguments: { command: `printf 'x%.0s' $(seq 1 600); echo ${steps}` } } };
  };
  const { session, server, close } = await run([], { maxSteps: 40, contextBudget: 1500 }, reply);
  try {
    await until('step 3', async () => ofType(await session.events(), 'step').length >= 3);
    await session.injectHint('HINT-ALPHA: the config lives in etc/', 'knowledge');
    await until('step 12', async () => ofType(await session.events(), 'step').length >= 12);
    await session.injectHint('HINT-BETA: never touch the tests', 'correction');
    assert.equal((await session.done).status, 'finished');

    const events = await session.events();
    const summaryEvents = ofType(events, 'summary');
    assert.ok(summaryEvents.length >= 3, `summarized ${summaryEvents.length} times`);
    assert.ok(summaryEvents.every((event) => event.tokensAfter < event.tokensBefore));
    const last = server.requests.filter((request) => request.body.tools).pop()!;
    const prompt = last.messages.map((message: { content: string }) => message.content ?? '').join('\n');
    assert.match(prompt, /HINT-ALPHA: the config lives in etc\//);
    assert.match(prompt, /HINT-BETA: never touch the tests/);
    assert.match(prompt, /\[State snapshot: steps 1-\d+ are summarized here/);
    // The dataset keeps the whole trajectory, unsummarized.
    const { events: stored } = await session.store.readEvents(session.runId);
    assert.equal(ofType(stored, 'step').length, 25);
  } finally {
    await close();
  }
});

const builtCli = path.resolve(__dirname, '../../../dist/cli.js');

/** The same script whichever process asks: the reply depends only on the steps done so far. */
function deterministic(request: RecordedRequest): ScriptedReply {
  const done = request.messages.filter((message) => message.role === 'assistant').length;
  if (done >= 6) return { toolCall: { name: 'finish', arguments: { summary: 'wrote six files' } }, delayMs: 100 };
  return { toolCall: { name: 'write_file', arguments: { path: `f${done + 1}.txt`, content: `${done + 1}\n` } }, delayMs: 150 };
}

function normalized(request: RecordedRequest): string {
  // Tool-call ids come from the server's counter and the budget note from the clock.
  return JSON.stringify(request.messages.filter((message) => message.role !== 'system' || !String(message.content).startsWith('Budget:')))
    .replace(/call_\d+/g, 'call')
    .replace(/apollo-ws-[A-Za-z0-9]+/g, 'workspace');
}

test('a run killed with SIGKILL resumes from its last step: none lost, none repeated, same context', { skip: !existsSync(builtCli) && 'run npm run build first' }, async () => {
  // The uninterrupted reference run.
  const reference = await run([], {}, deterministic);
  const referenceEnded = await reference.session.done;
  const referenceSteps = ofType(await reference.session.events(), 'step').map((event: StepEvent) => [event.step, event.action?.arguments]);
  const referenceRequests = reference.server.requests.map(normalized);
  await reference.close();

  const ws = makeWorkspace({ 'README.md': '# demo\n' });
  const server = await startScriptedModelServer([], { fallback: deterministic });
  try {
    const env = { ...process.env, OPENAI_API_KEY: 'test-key-0123456789' };
    const child = spawn(process.execPath, [builtCli, 'run', '--workspace', ws.dir, '--task', 'Do the task', '--base-url', server.baseUrl, '--model', 'scripted-model', '--max-steps', '10'], { env });
    let stdout = '';
    child.stdout.on('data', (data) => (stdout += data));
    await until('step 3 in the CLI output', () => /^step 3 /m.test(stdout));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
    const runId = stdout.split('\n')[0];
    await fs.writeFile(path.join(ws.dir, 'user-edit.txt'), 'made while the agent was down\n');

    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (text: string) => out.push(text), stderr: (text: string) => err.push(text), env: { OPENAI_API_KEY: 'test-key-0123456789' }, cwd: ws.dir };
    assert.equal(await main(['run', '--resume', runId], io), 0, err.join(''));
    assert.equal(out[0], `${runId}\n`);
    assert.match(err.join(''), /workspace changed outside the agent before step \d+: user-edit\.txt/);

    const { events, problems } = await new DatasetStore(defaultDatasetDir(await fs.realpath(ws.dir))).readEvents(runId);
    assert.deepEqual(problems, []);
    const steps = ofType(events, 'step').map((event) => [event.step, event.action?.arguments]);
    assert.deepEqual(steps, referenceSteps, 'the same steps, none lost or repeated');
    assert.equal(ofType(events, 'run_ended')[0].status, referenceEnded.status);
    assert.ok(ofType(events, 'run_state').some((event) => event.state === 'resumed'));
    const external = ofType(events, 'external_change');
    assert.deepEqual(
      external.map((event) => event.grounding.files.map((file) => file.path)),
      [['user-edit.txt']],
    );
    // Each request after the resume carries exactly the context the uninterrupted run had.
    const resumedRequests = server.requests.slice(-2).map(normalized);
    assert.deepEqual(resumedRequests, referenceRequests.slice(-2));
  } finally {
    await server.close();
    ws.cleanup();
  }
});
