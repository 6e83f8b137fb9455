/** The model client against a real OpenAI-compatible server: reassembly, usage, every error kind. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ModelClient, ModelError, retryAfterMs } from '../../src/core/agent/modelClient';
import { TOOL_DEFINITIONS } from '../../src/core/agent/tools';
import { type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';

const messages = [{ role: 'user' as const, content: 'hello' }];

async function withServer<T>(script: ScriptedReply[], body: (client: ModelClient) => Promise<T>, timeoutMs?: number): Promise<T> {
  const server = await startScriptedModelServer(script);
  try {
    return await body(new ModelClient({ baseUrl: server.baseUrl, apiKey: 'k', model: 'm', timeoutMs }));
  } finally {
    await server.close();
  }
}

async function failure(promise: Promise<unknown>): Promise<ModelError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ModelError, `expected a ModelError, got ${String(error)}`);
    return error;
  }
  assert.fail('the request succeeded');
}

test('puts streamed text and tool-call deltas back together, with usage', async () => {
  const turn = await withServer([{ content: 'Reading the file first.', toolCall: { name: 'read_file', arguments: { path: 'src/a.py' } } }], (client) =>
    client.complete({ messages, tools: TOOL_DEFINITIONS }),
  );
  assert.equal(turn.content, 'Reading the file first.');
  assert.equal(turn.toolCalls.length, 1);
  assert.equal(turn.toolCalls[0].name, 'read_file');
  assert.deepEqual(JSON.parse(turn.toolCalls[0].arguments), { path: 'src/a.py' });
  assert.equal(turn.finishReason, 'tool_calls');
  assert.ok(turn.usage && turn.usage.promptTokens > 0 && turn.usage.completionTokens === 20);
});

test('a reply without text has content null, not an empty string', async () => {
  const turn = await withServer([{ toolCall: { name: 'list_dir', arguments: {} } }], (client) => client.complete({ messages }));
  assert.equal(turn.content, null);
});

test('classifies refusals and faults so the loop knows what to retry', async () => {
  const cases: [ScriptedReply, Partial<ModelError> & { retryable: boolean }][] = [
    [{ status: 401 }, { kind: 'auth', status: 401, retryable: false }],
    [{ status: 404 }, { kind: 'http', status: 404, retryable: false }],
    [{ status: 400 }, { kind: 'http', status: 400, retryable: false }],
    [
      { status: 429, headers: { 'retry-after': '3' } },
      { kind: 'http', status: 429, retryAfterMs: 3000, retryable: true },
    ],
    [{ status: 503 }, { kind: 'http', status: 503, retryable: true }],
    [{ cut: true }, { kind: 'protocol', retryable: true }],
  ];
  for (const [reply, expected] of cases) {
    const error = await withServer([reply], (client) => failure(client.complete({ messages })));
    for (const [key, value] of Object.entries(expected)) assert.equal((error as any)[key], value, `${JSON.stringify(reply)}: ${key}`);
    assert.ok(error.message.length > 10);
  }
});

test('the auth error says how to fix the key', async () => {
  const error = await withServer([{ status: 401 }], (client) => failure(client.complete({ messages })));
  assert.match(error.message, /Set API Key|OPENAI_API_KEY/);
});

test('a slow endpoint times out; a closed port is unreachable', async () => {
  const timeout = await withServer([{ content: 'late', delayMs: 2000 }], (client) => failure(client.complete({ messages })), 200);
  assert.equal(timeout.kind, 'timeout');
  assert.ok(timeout.retryable);

  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise((resolve) => closed.close(resolve));
  const client = new ModelClient({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: 'k', model: 'm' });
  const unreachable = await failure(client.complete({ messages }));
  assert.equal(unreachable.kind, 'unreachable');
  assert.match(unreachable.message, /Check the base URL/);
});

test('aborting the signal ends the request as aborted', async () => {
  const error = await withServer([{ content: 'late', delayMs: 2000 }], async (client) => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    return failure(client.complete({ messages, signal: controller.signal }));
  });
  assert.equal(error.kind, 'aborted');
  assert.equal(error.retryable, false);
});

test('a long-lived signal does not gather a listener per request', async () => {
  const run = new AbortController();
  await withServer(
    Array.from({ length: 15 }, () => ({ content: 'ok' })),
    async (client) => {
      for (let i = 0; i < 15; i++) await client.complete({ messages, signal: run.signal });
    },
  );
  assert.equal(getEventListeners(run.signal, 'abort').length, 0);
});

test('reads Retry-After as seconds, as an HTTP date and as retry-after-ms', () => {
  assert.equal(retryAfterMs({ 'retry-after': '2' }), 2000);
  assert.equal(retryAfterMs({ 'retry-after-ms': '150' }), 150);
  const inFive = new Date(Date.now() + 5000).toUTCString();
  const fromDate = retryAfterMs({ 'retry-after': inFive })!;
  assert.ok(fromDate > 3000 && fromDate <= 5000, String(fromDate));
  assert.equal(retryAfterMs({ 'retry-after': 'soon' }), undefined);
  assert.equal(retryAfterMs(undefined), undefined);
});
