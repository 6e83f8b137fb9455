/**
 * The model client against servers that replay real wire habits, chunk by chunk, over HTTP on
 * 127.0.0.1. Each case cites the server behaviour it reproduces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ModelClient, ModelError, ThinkSplitter } from '../../src/core/agent/modelClient';

interface Replay {
  /** `delta` objects of a streamed reply, sent one SSE event each. */
  deltas?: Record<string, unknown>[];
  finishReason?: string;
  /** A refusal instead of a stream: status and JSON body. */
  status?: number;
  body?: unknown;
}

async function replay(reply: Replay, run: (client: ModelClient, requests: Record<string, unknown>[]) => Promise<void>): Promise<void> {
  const requests: Record<string, unknown>[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk) => (raw += chunk));
    req.on('end', () => {
      requests.push(JSON.parse(raw));
      if (reply.status) {
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply.body));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const send = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        res.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices, ...extra })}\n\n`);
      for (const delta of reply.deltas ?? []) send([{ index: 0, delta, finish_reason: null }]);
      send([{ index: 0, delta: {}, finish_reason: reply.finishReason ?? 'stop' }]);
      send([], { usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } });
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await run(new ModelClient({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: 'k', model: 'm' }), requests);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

const messages = [{ role: 'user' as const, content: 'hi' }];

test('vLLM reasoning parsers stream thoughts in delta.reasoning (the renamed field)', async () => {
  await replay({ deltas: [{ role: 'assistant', reasoning: 'Look at ' }, { reasoning: 'the tests.' }, { content: 'Running them.' }] }, async (client) => {
    const turn = await client.complete({ messages });
    assert.equal(turn.reasoning, 'Look at the tests.');
    assert.equal(turn.content, 'Running them.');
  });
});

test('DeepSeek, llama.cpp and OpenRouter stream thoughts in delta.reasoning_content', async () => {
  await replay({ deltas: [{ role: 'assistant', content: null, reasoning_content: 'Think' }, { reasoning_content: 'ing.' }, { content: 'Done.' }] }, async (client) => {
    const turn = await client.complete({ messages });
    assert.equal(turn.reasoning, 'Thinking.');
    assert.equal(turn.content, 'Done.');
  });
});

test('a server without a reasoning parser sends <think> inline, its tags cut across chunks', async () => {
  await replay({ deltas: [{ content: '<thi' }, { content: 'nk>plan A</th' }, { content: 'ink>\n\nHere it is.' }] }, async (client) => {
    const turn = await client.complete({ messages });
    assert.equal(turn.reasoning, 'plan A');
    assert.equal(turn.content, 'Here it is.');
  });
});

test('a turn that only thinks and calls a tool keeps content null', async () => {
  const call = { index: 0, id: 'call_1', type: 'function', function: { name: 'list_dir', arguments: '{}' } };
  await replay({ deltas: [{ content: '<think>list first</think>' }, { tool_calls: [call] }], finishReason: 'tool_calls' }, async (client) => {
    const turn = await client.complete({ messages });
    assert.equal(turn.content, null);
    assert.equal(turn.reasoning, 'list first');
    assert.equal(turn.toolCalls[0].name, 'list_dir');
  });
});

test("Google's OpenAI-compatible endpoint sends each tool call whole without index, with a thought signature", async () => {
  const signature = { google: { thought_signature: 'c2lnbmF0dXJl' } };
  const deltas = [
    { role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'read_file', arguments: '{"path":"a.py"}' }, extra_content: signature }] },
    { tool_calls: [{ id: 'b', type: 'function', function: { name: 'read_file', arguments: '{"path":"b.py"}' } }] },
  ];
  await replay({ deltas, finishReason: 'stop' }, async (client) => {
    const turn = await client.complete({ messages });
    assert.deepEqual(
      turn.toolCalls.map((call) => [call.id, call.name, JSON.parse(call.arguments).path]),
      [
        ['a', 'read_file', 'a.py'],
        ['b', 'read_file', 'b.py'],
      ],
    );
    assert.deepEqual(turn.toolCalls[0].extra, { extra_content: signature });
    assert.equal(turn.toolCalls[1].extra, undefined);
  });
});

test('a reply cut by the output limit in the middle of a tool call is marked truncated', async () => {
  const deltas = [{ tool_calls: [{ index: 0, id: 'c', type: 'function', function: { name: 'write_file', arguments: '{"path":"a' } }] }];
  await replay({ deltas, finishReason: 'length' }, async (client) => {
    const turn = await client.complete({ messages });
    assert.equal(turn.truncated, true);
    assert.equal(turn.finishReason, 'length');
  });
});

test("vLLM's error body is shown in the server's own words, and a context refusal has its own kind", async () => {
  const body = { object: 'error', message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.", type: 'BadRequestError', param: null, code: 400 };
  await replay({ status: 400, body }, async (client) => {
    const error = await client.complete({ messages }).then(
      () => assert.fail('succeeded'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof ModelError);
    assert.equal(error.kind, 'context');
    assert.match(error.message, /maximum context length is 4096/);
    assert.equal(error.retryable, false);
  });
});

test("Ollama's and OpenRouter's error bodies reach the message", async () => {
  await replay({ status: 400, body: { error: 'model requires more system memory' } }, async (client) => {
    const error = (await client.complete({ messages }).catch((e: unknown) => e)) as ModelError;
    assert.equal(error.kind, 'http');
    assert.match(error.message, /model requires more system memory/);
    assert.match(error.message, /check the model id and the request fields you set/);
  });
  await replay({ status: 502, body: { error: { code: 502, message: 'Provider returned error', metadata: { raw: 'upstream overloaded' } } } }, async (client) => {
    const error = (await client.complete({ messages }).catch((e: unknown) => e)) as ModelError;
    assert.match(error.message, /Provider returned error: upstream overloaded/);
    assert.match(error.message, /retried/);
    assert.equal(error.retryable, true);
  });
});

test('sampling options and extra request fields are sent with the request', async () => {
  await replay({ deltas: [{ content: 'ok' }] }, async (client, requests) => {
    await client.complete({
      messages,
      sampling: { temperature: 0.7, topP: 0.9, seed: 42, maxOutputTokens: 256, extra: { chat_template_kwargs: { enable_thinking: false } } },
    });
    assert.equal(requests[0].temperature, 0.7);
    assert.equal(requests[0].top_p, 0.9);
    assert.equal(requests[0].seed, 42);
    assert.equal(requests[0].max_tokens, 256);
    assert.deepEqual(requests[0].chat_template_kwargs, { enable_thinking: false });
    assert.equal(requests[0].stream, true);
  });
});

test('the <think> splitter holds back only what could start a tag', () => {
  const splitter = new ThinkSplitter();
  for (const chunk of ['a <', 'b> <think', '>x<', '/think>', ' <th']) splitter.push(chunk);
  splitter.end();
  assert.equal(splitter.content, 'a <b>  <th');
  assert.equal(splitter.reasoning, 'x');
});
