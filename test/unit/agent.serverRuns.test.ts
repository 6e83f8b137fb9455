/**
 * Whole runs against servers on 127.0.0.1 that replay the wire habits of real model servers,
 * chunk by chunk: each test names the server behaviour it reproduces and checks that the run
 * finishes, that the step records what the model sent, and that the next request carries what
 * it must.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type RunOptions, RunSession } from '../../src/core/session/runSession';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import type { ContextWindowEvent, DatasetEvent, StepEvent } from '../../src/core/dataset/events';
import { makeWorkspace } from '../fixtures/workspace';
import { failRequest } from '../fixtures/scriptedModelServer';

interface Reply {
  /** `delta` objects of a streamed reply, one SSE event each. */
  deltas?: Record<string, unknown>[];
  finishReason?: string;
  usage?: { prompt_tokens: number; completion_tokens: number };
  /** A refusal instead of a stream. */
  status?: number;
  body?: unknown;
  /** Waits before answering (polled by the test, never slept on). */
  gate?: Promise<void>;
}

interface Server {
  baseUrl: string;
  requests: any[];
  close(): Promise<void>;
}

async function replayServer(answer: (request: any, index: number) => Reply): Promise<Server> {
  const requests: any[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk) => (raw += chunk));
    const respond = async () => {
      if (req.method !== 'POST' || !/\/chat\/completions$/.test(req.url ?? '')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
        return;
      }
      const body = JSON.parse(raw);
      requests.push(body);
      const reply = answer(body, requests.length - 1);
      await reply.gate;
      if (reply.status) {
        res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const send = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: body.model, choices, ...extra })}\n\n`);
      for (const delta of reply.deltas ?? []) send([{ index: 0, delta, finish_reason: null }]);
      send([{ index: 0, delta: {}, finish_reason: reply.finishReason ?? 'stop' }]);
      send([], { usage: { ...(reply.usage ?? { prompt_tokens: 50, completion_tokens: 5 }), total_tokens: 0 } });
      res.end('data: [DONE]\n\n');
    };
    req.on('end', () => void respond().catch((error: unknown) => failRequest(res, error)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}/v1`, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A tool call sent the way most servers stream it: id and name first, arguments in pieces. */
function streamedCall(index: number, id: string, name: string, args: object): Record<string, unknown>[] {
  const text = JSON.stringify(args);
  const half = Math.ceil(text.length / 2);
  return [
    { tool_calls: [{ index, id, type: 'function', function: { name, arguments: '' } }] },
    { tool_calls: [{ index, function: { arguments: text.slice(0, half) } }] },
    { tool_calls: [{ index, function: { arguments: text.slice(half) } }] },
  ];
}

const FINISH: Reply = { deltas: streamedCall(0, 'call_fin', 'finish', { summary: 'Done.' }), finishReason: 'tool_calls' };

async function withRun(
  answer: (request: any, index: number) => Reply,
  body: (run: { session: RunSession; workspace: string; requests: any[] }) => Promise<void>,
  overrides: Partial<RunOptions> = {},
): Promise<void> {
  const ws = makeWorkspace({ 'README.md': '# demo\n' });
  const server = await replayServer(answer);
  try {
    const session = await RunSession.start({
      workspace: ws.dir,
      datasetDir: defaultDatasetPath(ws.dir),
      task: 'Make the files',
      model: 'replayed-model',
      baseUrl: server.baseUrl,
      apiKey: 'test-key-0123456789',
      maxSteps: 10,
      engine: { retryBaseMs: 1, retryMaxMs: 5, inboxPollMs: 20 },
      ...overrides,
    });
    try {
      await body({ session, workspace: ws.dir, requests: server.requests });
    } finally {
      await session.stop();
    }
  } finally {
    await server.close();
    ws.cleanup();
  }
}

async function eventsOf(session: RunSession, workspace: string): Promise<DatasetEvent[]> {
  const { events, problems } = await new DatasetStore(defaultDatasetPath(workspace)).readEvents(session.runId);
  assert.deepEqual(problems, []);
  return events;
}

const stepsOf = (events: DatasetEvent[]) => events.filter((event): event is StepEvent => event.type === 'step');

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('two tool calls in one turn (OpenAI models call in parallel by default) both run, in order, each with its own diff and result', async () => {
  // OpenAI's chat completions stream parallel calls with index 0 and 1 interleaved in one turn.
  await withRun(
    (_request, index) =>
      index === 0
        ? {
            deltas: [...streamedCall(0, 'call_a', 'write_file', { path: 'a.txt', content: 'alpha\n' }), ...streamedCall(1, 'call_b', 'write_file', { path: 'b.txt', content: 'beta\n' })],
            finishReason: 'tool_calls',
          }
        : FINISH,
    async ({ session, workspace, requests }) => {
      const ended = await session.done;
      assert.equal(ended.status, 'finished');
      assert.equal(await fs.readFile(path.join(workspace, 'a.txt'), 'utf8'), 'alpha\n');
      assert.equal(await fs.readFile(path.join(workspace, 'b.txt'), 'utf8'), 'beta\n');
      const [first] = stepsOf(await eventsOf(session, workspace));
      assert.equal(first.action?.id, 'call_a');
      assert.deepEqual(
        first.grounding.files.map((file) => file.path),
        ['a.txt'],
      );
      assert.equal(first.moreActions?.length, 1);
      assert.equal(first.moreActions[0].action.id, 'call_b');
      assert.deepEqual(
        first.moreActions[0].grounding.files.map((file) => file.path),
        ['b.txt'],
      );
      assert.equal(first.skippedToolCalls, undefined);
      // The next request answers both calls, in order, with what each did.
      const tools = requests[1].messages.filter((message: any) => message.role === 'tool');
      assert.deepEqual(
        tools.map((message: any) => message.tool_call_id),
        ['call_a', 'call_b'],
      );
      assert.match(tools[1].content, /b\.txt/);
    },
  );
});

test('a hostile turn of many calls runs only the first sixteen; the rest are answered with the reason, none run', async () => {
  const calls = Array.from({ length: 40 }, (_, index) => ({
    tool_calls: [{ index, id: `w${index}`, type: 'function', function: { name: 'write_file', arguments: JSON.stringify({ path: `m${index}.txt`, content: 'x' }) } }],
  }));
  await withRun(
    (_request, index) => (index === 0 ? { deltas: calls, finishReason: 'tool_calls' } : FINISH),
    async ({ session, workspace, requests }) => {
      assert.equal((await session.done).status, 'finished');
      const [first] = stepsOf(await eventsOf(session, workspace));
      assert.equal(1 + (first.moreActions?.length ?? 0), 16);
      assert.equal(first.skippedToolCalls?.length, 24);
      await fs.stat(path.join(workspace, 'm15.txt'));
      await assert.rejects(fs.stat(path.join(workspace, 'm16.txt')));
      const tools = requests[1].messages.filter((message: any) => message.role === 'tool');
      assert.equal(tools.length, 40);
      assert.match(tools[39].content, /at most 16 tool calls/);
    },
  );
});

test('a reply cut by the output limit mid-call (finish_reason "length") does not run the half call and tells the model', async () => {
  // vLLM and OpenAI end a reply that reaches max_tokens with finish_reason "length", whatever was being written.
  await withRun(
    (_request, index) =>
      index === 0
        ? { deltas: [{ tool_calls: [{ index: 0, id: 'call_cut', type: 'function', function: { name: 'write_file', arguments: '{"path":"big.txt","content":"aaaa' } }] }], finishReason: 'length' }
        : FINISH,
    async ({ session, workspace, requests }) => {
      assert.equal((await session.done).status, 'finished');
      await assert.rejects(fs.stat(path.join(workspace, 'big.txt')));
      const [first] = stepsOf(await eventsOf(session, workspace));
      assert.equal(first.action, null);
      assert.equal(first.assistant.truncated, true);
      assert.equal(first.skippedToolCalls?.[0].id, 'call_cut');
      const told = requests[1].messages.find((message: any) => message.role === 'tool' && message.tool_call_id === 'call_cut');
      assert.match(told.content, /output limit/);
    },
    { sampling: { maxOutputTokens: 64 } },
  );
});

test('Ollama streams each call whole in one chunk, content "", thinking in delta.reasoning; the run finishes and the thoughts are kept', async () => {
  // ollama/ollama openai/openai.go: ToChunk puts Thinking in `reasoning`, each tool call whole with
  // its index and id, and content as the (empty) string; finish_reason is "tool_calls" once a call was sent.
  await withRun(
    (_request, index) =>
      index === 0
        ? {
            deltas: [
              { role: 'assistant', content: '', reasoning: 'The user wants a file. ' },
              { role: 'assistant', content: '', reasoning: 'I will write it.' },
              { role: 'assistant', content: '', tool_calls: [{ id: 'call_o1', index: 0, type: 'function', function: { name: 'write_file', arguments: '{"path":"o.txt","content":"ollama\\n"}' } }] },
            ],
            finishReason: 'tool_calls',
          }
        : {
            deltas: [{ role: 'assistant', content: '', tool_calls: [{ id: 'call_o2', index: 0, type: 'function', function: { name: 'finish', arguments: '{"summary":"ok"}' } }] }],
            finishReason: 'tool_calls',
          },
    async ({ session, workspace }) => {
      assert.equal((await session.done).status, 'finished');
      const [first] = stepsOf(await eventsOf(session, workspace));
      assert.equal(first.assistant.reasoning, 'The user wants a file. I will write it.');
      assert.equal(first.assistant.content, null);
      assert.equal(await fs.readFile(path.join(workspace, 'o.txt'), 'utf8'), 'ollama\n');
    },
  );
});

test('LM Studio: reasoning_content when it separates reasoning, inline <think> when it does not; arguments in pieces', async () => {
  // LM Studio 0.3.9 release notes: the developer setting "separate reasoning_content and content in
  // API responses" (off: the thoughts stay inline in content as <think>…</think>).
  await withRun(
    (_request, index) =>
      index === 0
        ? { deltas: [{ role: 'assistant', reasoning_content: 'Plan: write l.txt.' }, ...streamedCall(0, '123456789', 'write_file', { path: 'l.txt', content: 'lm\n' })], finishReason: 'tool_calls' }
        : index === 1
          ? { deltas: [{ content: '<thi' }, { content: 'nk>Check it.</think>\n\nReading.' }, ...streamedCall(0, '987654321', 'read_file', { path: 'l.txt' })], finishReason: 'tool_calls' }
          : FINISH,
    async ({ session, workspace }) => {
      assert.equal((await session.done).status, 'finished');
      const [first, second] = stepsOf(await eventsOf(session, workspace));
      assert.equal(first.assistant.reasoning, 'Plan: write l.txt.');
      assert.equal(second.assistant.reasoning, 'Check it.');
      assert.equal(second.assistant.content, 'Reading.');
      assert.match(second.observation, /lm/);
    },
  );
});

test("Google's endpoint: calls without index and a thought signature that goes back with the call on the next request", async () => {
  // ai.google.dev/gemini-api/docs/openai: thought signatures arrive in extra_content.google.thought_signature
  // on the tool call and must be sent back with it; each call is streamed whole without `index`.
  const signature = { google: { thought_signature: 'c2lnbmF0dXJl' } };
  await withRun(
    (_request, index) =>
      index === 0
        ? { deltas: [{ role: 'assistant', tool_calls: [{ id: 'g1', type: 'function', function: { name: 'list_dir', arguments: '{"path":"."}' }, extra_content: signature }] }], finishReason: 'stop' }
        : { deltas: [{ role: 'assistant', tool_calls: [{ id: 'g2', type: 'function', function: { name: 'finish', arguments: '{"summary":"listed"}' } }] }], finishReason: 'stop' },
    async ({ session, workspace, requests }) => {
      assert.equal((await session.done).status, 'finished');
      const [first] = stepsOf(await eventsOf(session, workspace));
      assert.deepEqual(first.action?.extra, { extra_content: signature });
      const assistant = requests[1].messages.find((message: any) => message.role === 'assistant');
      assert.deepEqual(assistant.tool_calls[0].extra_content, signature);
    },
  );
});

test('a context-length refusal mid-run (vLLM 400) is survived: the context is compacted harder, the request sent again, the run finishes with all steps', async () => {
  // vLLM's error body for a prompt over max_model_len (serving_engine.py _validate_input).
  const refusal = {
    object: 'error',
    message:
      "This model's maximum context length is 4096 tokens. However, you requested 4700 tokens (4200 in the messages, 500 in the completion). Please reduce the length of the messages or completion.",
    type: 'BadRequestError',
    param: null,
    code: 400,
  };
  let refused = false;
  await withRun(
    (request, index) => {
      const size = JSON.stringify(request.messages).length;
      if (index < 4) return { deltas: streamedCall(0, `call_${index}`, 'write_file', { path: `f${index}.txt`, content: `${'x'.repeat(3000)}\n` }), finishReason: 'tool_calls' };
      // Refuses the first request that grew past ~3 steps of large writes, once.
      if (!refused && size > 9000) {
        refused = true;
        return { status: 400, body: refusal };
      }
      return FINISH;
    },
    async ({ session, workspace, requests }) => {
      const ended = await session.done;
      assert.equal(ended.status, 'finished', ended.error);
      assert.ok(refused, 'the server refused once');
      const events = await eventsOf(session, workspace);
      assert.equal(stepsOf(events).length, 5);
      const retry = events.find((event) => event.type === 'model_retry');
      assert.ok(retry && retry.type === 'model_retry');
      assert.match(retry.error, /maximum context length is 4096/);
      assert.match(retry.error, /compacted/);
      const learned = events.filter((event): event is ContextWindowEvent => event.type === 'context_window').find((event) => event.source === 'refusal');
      assert.equal(learned?.windowTokens, 4096);
      assert.ok(
        events.some((event) => event.type === 'summary'),
        'older steps were summarized',
      );
      const refusedAt = requests.findIndex((request, index) => index >= 4 && JSON.stringify(request.messages).length > 9000);
      const resent = requests[requests.length - 1];
      assert.ok(JSON.stringify(resent.messages).length < JSON.stringify(requests[refusedAt].messages).length, 'the request sent again is smaller');
    },
    { contextBudget: 60_000 },
  );
});

test('a server that under-reports prompt tokens (a lying proxy) does not let the context grow past its budget; said once', async () => {
  const budget = 2000;
  await withRun(
    (_request, index) =>
      index < 8
        ? {
            deltas: streamedCall(0, `call_${index}`, 'write_file', { path: `f${index}.txt`, content: `${'y'.repeat(1500)}\n` }),
            finishReason: 'tool_calls',
            usage: { prompt_tokens: 100, completion_tokens: 5 },
          }
        : { ...FINISH, usage: { prompt_tokens: 100, completion_tokens: 5 } },
    async ({ session, workspace, requests }) => {
      assert.equal((await session.done).status, 'finished');
      const events = await eventsOf(session, workspace);
      assert.equal(events.filter((event) => event.type === 'notice').length, 1);
      // Each agent request stays near the budget (4 characters a token, with room for one large step).
      for (const request of requests.filter((request) => request.tools)) {
        assert.ok(JSON.stringify(request.messages).length < budget * 4 * 2, `a prompt of ${JSON.stringify(request.messages).length} characters`);
      }
    },
    { contextBudget: budget },
  );
});

test('a hint sent while the request that ends in finish is in flight holds the finish: the hint reaches the model and the run goes on', async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await withRun(
    (request, index) => {
      if (index === 0) return { ...FINISH, gate };
      const hinted = request.messages.some((message: any) => message.role === 'user' && /Also write notes\.txt/.test(message.content));
      if (index === 1) {
        assert.ok(hinted, 'the held-back hint is in the next request');
        return { deltas: streamedCall(0, 'call_n', 'write_file', { path: 'notes.txt', content: 'n\n' }), finishReason: 'tool_calls' };
      }
      return FINISH;
    },
    async ({ session, workspace, requests }) => {
      await until('the finish request is in flight', () => requests.length === 1);
      await session.injectHint('Also write notes.txt', 'correction');
      release();
      const ended = await session.done;
      assert.equal(ended.status, 'finished');
      assert.equal(await fs.readFile(path.join(workspace, 'notes.txt'), 'utf8'), 'n\n');
      const events = await eventsOf(session, workspace);
      const [held] = stepsOf(events);
      assert.equal(held.action?.name, 'finish');
      assert.match(held.observation, /Not finished yet/);
      assert.ok(events.some((event) => event.type === 'hint_delivered' && event.step === 2));
      assert.equal(events.filter((event) => event.type === 'hint_undelivered').length, 0);
    },
  );
});

test('a hint that can no longer reach the model (the run ran out of steps) is recorded as undelivered', async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await withRun(
    () => ({ deltas: streamedCall(0, 'call_l', 'list_dir', { path: '.' }), finishReason: 'tool_calls', gate }),
    async ({ session, workspace, requests }) => {
      await until('the last request is in flight', () => requests.length === 1);
      const hintId = await session.injectHint('Too late');
      release();
      const ended = await session.done;
      assert.equal(ended.status, 'max_steps');
      const events = await eventsOf(session, workspace);
      const undelivered = events.find((event) => event.type === 'hint_undelivered');
      assert.ok(undelivered && undelivered.type === 'hint_undelivered');
      assert.equal(undelivered.hintId, hintId);
      assert.match(undelivered.reason, /max_steps/);
      await assert.rejects(session.injectHint('later still'), /has ended/);
    },
    { maxSteps: 1 },
  );
});

test('earlier reasoning goes back for models trained on interleaved thinking (GLM-4.6 auto), not for others, and never when told', async () => {
  const thinkingTurns = (_request: any, index: number): Reply =>
    index === 0 ? { deltas: [{ reasoning_content: 'Think first.' }, ...streamedCall(0, 'call_r', 'list_dir', { path: '.' })], finishReason: 'tool_calls' } : FINISH;
  const sentBack = async (model: string, keep?: 'auto' | 'always' | 'never') => {
    let assistant: any;
    await withRun(
      thinkingTurns,
      async ({ session, requests }) => {
        assert.equal((await session.done).status, 'finished');
        assistant = requests[1].messages.find((message: any) => message.role === 'assistant');
      },
      { model, ...(keep ? { reasoningInContext: keep } : {}) },
    );
    return assistant;
  };
  assert.equal((await sentBack('zai-org/GLM-4.6')).reasoning_content, 'Think first.');
  assert.equal((await sentBack('gpt-4.1')).reasoning_content, undefined);
  assert.equal((await sentBack('zai-org/GLM-4.6', 'never')).reasoning_content, undefined);
  assert.equal((await sentBack('gpt-4.1', 'always')).reasoning_content, 'Think first.');
  // MiniMax M2 wants its thoughts back inline in the content.
  assert.match((await sentBack('MiniMaxAI/MiniMax-M2')).content, /^<think>Think first\.<\/think>/);
});

test('sampling options reach every request and run_started says how the run was sampled', async () => {
  const sampling = { temperature: 0.6, topP: 0.95, seed: 11, maxOutputTokens: 2048, extra: { chat_template_kwargs: { enable_thinking: false } } };
  await withRun(
    (_request, index) => (index === 0 ? { deltas: streamedCall(0, 'c', 'list_dir', { path: '.' }), finishReason: 'tool_calls' } : FINISH),
    async ({ session, workspace, requests }) => {
      assert.equal((await session.done).status, 'finished');
      for (const request of requests) {
        assert.equal(request.temperature, 0.6);
        assert.equal(request.top_p, 0.95);
        assert.equal(request.seed, 11);
        assert.equal(request.max_tokens, 2048);
        assert.deepEqual(request.chat_template_kwargs, { enable_thinking: false });
      }
      const started = (await eventsOf(session, workspace))[0];
      assert.ok(started.type === 'run_started');
      assert.deepEqual(started.sampling, sampling);
      assert.equal(started.provider, 'openai-compatible');
    },
    { sampling },
  );
});

test('bad sampling options are refused before anything is written, naming the setting', async () => {
  const ws = makeWorkspace();
  try {
    const base = { workspace: ws.dir, datasetDir: defaultDatasetPath(ws.dir), task: 't', model: 'm', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' };
    await assert.rejects(RunSession.start({ ...base, sampling: { temperature: 7 } }), /apollo\.request\.temperature/);
    await assert.rejects(RunSession.start({ ...base, sampling: { extra: { messages: [] } } }), /cannot set messages/);
    await assert.rejects(RunSession.start({ ...base, reasoningInContext: 'sometimes' as never }), /keepInContext/);
    await assert.rejects(fs.stat(defaultDatasetPath(ws.dir)));
  } finally {
    ws.cleanup();
  }
});

/**
 * Per server, the reasoning field it streams and whether the next request sends it back (auto):
 * - vLLM with a reasoning parser: `delta.reasoning` (vLLM docs "Reasoning Outputs"; earlier releases named it `reasoning_content`);
 * - older vLLM, llama.cpp (`--reasoning-format deepseek`), DeepSeek's API: `delta.reasoning_content`;
 * - OpenRouter: `delta.reasoning` beside `reasoning_details` (docs "Reasoning Tokens").
 */
const REASONING_SERVERS: { server: string; model: string; field: 'reasoning' | 'reasoning_content'; extra?: Record<string, unknown>; sentBack: boolean }[] = [
  { server: 'vLLM (reasoning parser, current field)', model: 'Qwen/Qwen3-8B', field: 'reasoning', sentBack: false },
  { server: 'vLLM (older field) serving GLM-4.5', model: 'zai-org/GLM-4.5-Air', field: 'reasoning_content', sentBack: true },
  { server: 'llama.cpp llama-server', model: 'qwen3-8b-q4_k_m.gguf', field: 'reasoning_content', sentBack: false },
  { server: 'DeepSeek (thinking mode with tools)', model: 'deepseek-reasoner', field: 'reasoning_content', sentBack: true },
  { server: 'OpenRouter', model: 'moonshotai/kimi-k2-thinking', field: 'reasoning', extra: { reasoning_details: [{ type: 'reasoning.text', text: 'Look first.' }] }, sentBack: true },
];

for (const habit of REASONING_SERVERS) {
  test(`${habit.server}: thoughts in delta.${habit.field} are recorded apart from the text; sent back: ${habit.sentBack}`, async () => {
    await withRun(
      (_request, index) =>
        index === 0
          ? {
              deltas: [
                { role: 'assistant', [habit.field]: 'Look ', ...(habit.extra ?? {}) },
                { [habit.field]: 'first.' },
                { content: 'Listing.' },
                ...streamedCall(0, 'call_x', 'list_dir', { path: '.' }),
              ],
              finishReason: 'tool_calls',
            }
          : FINISH,
      async ({ session, workspace, requests }) => {
        assert.equal((await session.done).status, 'finished');
        const [first] = stepsOf(await eventsOf(session, workspace));
        assert.equal(first.assistant.reasoning, 'Look first.');
        assert.equal(first.assistant.content, 'Listing.');
        const assistant = requests[1].messages.find((message: any) => message.role === 'assistant');
        assert.equal(assistant.content, 'Listing.');
        assert.equal(assistant.reasoning_content, habit.sentBack ? 'Look first.' : undefined);
        assert.equal(requests[1].messages.find((message: any) => message.role === 'tool')?.tool_call_id, 'call_x');
      },
      { model: habit.model },
    );
  });
}
