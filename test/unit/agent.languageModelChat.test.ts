/**
 * An editor's chat models as the agent's model (LmChatClient): OpenAI-shaped messages mapped to
 * the API's messages, the stream read back into one turn, cancellation from the run's signal and
 * the API's failures as model errors that say what to do. The API here is plain objects.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { type LmApi, LmChatClient, type LmErrorKind, type LmParts, type LmStreamPart, lmModelError, readLmStream, toLmMessages, toLmTools } from '../../src/core/agent/languageModelChat';
import { type ChatMessage, ModelError } from '../../src/core/agent/modelClient';

type Part = { text: string } | { call: [string, string, object] } | { result: string; content: Part[] };
type Message = { role: 'user' | 'assistant'; content: string | Part[] };

const parts: LmParts<Message, Part> = {
  user: (content) => ({ role: 'user', content }),
  assistant: (content) => ({ role: 'assistant', content }),
  text: (text) => ({ text }),
  toolCall: (callId, name, input) => ({ call: [callId, name, input] }),
  toolResult: (result, content) => ({ result, content }),
};

test('messages map in order: instructions as user messages, calls with their input, the results of one turn in one user message', () => {
  const messages: ChatMessage[] = [
    { role: 'system', content: 'You are a coding agent.' },
    { role: 'developer', content: 'Be brief.' },
    { role: 'user', content: 'Write two files.' },
    {
      role: 'assistant',
      content: 'Both at once.',
      tool_calls: [
        { id: 'a', type: 'function', function: { name: 'write_file', arguments: '{"path":"a.txt"}' } },
        { id: 'b', type: 'function', function: { name: 'write_file', arguments: '{"path":' } },
        { id: 'c', type: 'function', function: { name: 'list', arguments: '[1]' } },
      ],
    },
    { role: 'tool', tool_call_id: 'a', content: 'wrote a.txt' },
    {
      role: 'tool',
      tool_call_id: 'b',
      content: [
        { type: 'text', text: 'bad ' },
        { type: 'text', text: 'arguments' },
      ],
    },
    { role: 'tool', tool_call_id: 'c', content: 'listed' },
    { role: 'assistant', content: null },
    { role: 'tool', tool_call_id: 'd', content: 'late' },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Hint: ' },
        { type: 'text', text: 'check b.txt' },
      ],
    },
  ];
  assert.deepEqual(toLmMessages(messages, parts), [
    { role: 'user', content: 'You are a coding agent.' },
    { role: 'user', content: 'Be brief.' },
    { role: 'user', content: 'Write two files.' },
    { role: 'assistant', content: [{ text: 'Both at once.' }, { call: ['a', 'write_file', { path: 'a.txt' }] }, { call: ['b', 'write_file', {}] }, { call: ['c', 'list', {}] }] },
    {
      role: 'user',
      content: [
        { result: 'a', content: [{ text: 'wrote a.txt' }] },
        { result: 'b', content: [{ text: 'bad arguments' }] },
        { result: 'c', content: [{ text: 'listed' }] },
      ],
    },
    { role: 'assistant', content: '' },
    { role: 'user', content: [{ result: 'd', content: [{ text: 'late' }] }] },
    { role: 'user', content: 'Hint: check b.txt' },
  ]);
});

test("tools go as the API's tools: function tools only, a schema only where there is one", () => {
  const schema = { type: 'object', properties: { path: { type: 'string' } } };
  assert.deepEqual(
    toLmTools([
      { type: 'function', function: { name: 'read_file', description: 'Read a file', parameters: schema } },
      { type: 'function', function: { name: 'finish' } },
    ]),
    [
      { name: 'read_file', description: 'Read a file', inputSchema: schema },
      { name: 'finish', description: '' },
    ],
  );
  assert.deepEqual(toLmTools(undefined), []);
});

const classify = (part: unknown): LmStreamPart | undefined => (part && typeof part === 'object' && ('text' in part || 'callId' in part) ? (part as LmStreamPart) : undefined);

async function* streamOf(items: unknown[], breakWith?: Error) {
  for (const item of items) yield item;
  if (breakWith) throw breakWith;
}

test('a stream is one turn: text joined, calls with JSON arguments and an id each, other parts skipped', async () => {
  assert.deepEqual(
    await readLmStream(
      streamOf([{ text: 'Reading ' }, { unknown: 'part' }, { text: 'it.' }, { callId: 'c1', name: 'read_file', input: { path: 'x' } }, { callId: '', name: 'finish', input: undefined }]),
      classify,
    ),
    {
      content: 'Reading it.',
      toolCalls: [
        { id: 'c1', name: 'read_file', arguments: '{"path":"x"}' },
        { id: 'call_2', name: 'finish', arguments: '{}' },
      ],
      finishReason: 'tool_calls',
    },
  );
  assert.deepEqual(await readLmStream(streamOf([]), classify), { content: null, toolCalls: [], finishReason: 'stop' });
});

/** A chat model whose API is scripted: each request's stream, or its failure; what was sent, cancelled and disposed is kept. */
function scripted(reply: (signal: { cancelled: boolean }) => Promise<AsyncIterable<unknown>>, errorKind: (error: unknown) => LmErrorKind | undefined = () => undefined) {
  const seen = { sent: [] as unknown[][], cancelled: 0, disposed: 0 };
  const api: LmApi = {
    request: () => {
      const state = { cancelled: false };
      return {
        send: (messages, tools) => {
          seen.sent.push([messages, tools]);
          return reply(state);
        },
        cancel: () => void (seen.cancelled++, (state.cancelled = true)),
        dispose: () => void seen.disposed++,
      };
    },
    classify,
    errorKind,
  };
  return { client: new LmChatClient({ id: 'lm-1', name: 'Scripted LM', vendor: 'test', maxInputTokens: 64_000 }, api), seen };
}

const request = (signal?: AbortSignal) => ({ messages: [{ role: 'user' as const, content: 'hi' }], tools: [{ type: 'function' as const, function: { name: 'finish' } }], signal });

test('a request sends the messages and tools, reads the reply, and is disposed; the model gives its window, never estimated usage', async () => {
  const { client, seen } = scripted(async () => streamOf([{ text: 'Done.' }]));
  assert.deepEqual(await client.complete(request()), { content: 'Done.', toolCalls: [], finishReason: 'stop' });
  assert.deepEqual(seen, { sent: [[[{ role: 'user', content: 'hi' }], [{ name: 'finish', description: '' }]]], cancelled: 0, disposed: 1 });
  assert.equal(client.provider, 'vscode-lm');
  assert.equal(client.model, 'lm-1');
  assert.equal(await client.contextWindow(), 64_000);
  assert.deepEqual(await client.contextWindowDetail(), { tokens: 64_000, detail: 'VS Code: the input limit of Scripted LM (test)' });
  const unknown = new LmChatClient({ id: 'x', name: 'X', vendor: 'v', maxInputTokens: Number.NaN }, { request: () => assert.fail(), classify, errorKind: () => undefined });
  assert.equal(await unknown.contextWindowDetail(), undefined);
});

test("the run's abort cancels the request in flight; an aborted run sends nothing", async () => {
  const cancelled = new Error('Canceled');
  const { client, seen } = scripted(
    (state) =>
      new Promise((_resolve, reject) => {
        const poll = setInterval(() => state.cancelled && (clearInterval(poll), reject(cancelled)), 1);
      }),
    (error) => (error === cancelled ? 'cancelled' : undefined),
  );
  const controller = new AbortController();
  const pending = client.complete(request(controller.signal));
  controller.abort();
  const error = await pending.then(
    () => assert.fail('the request should fail'),
    (failure: unknown) => failure as ModelError,
  );
  assert.deepEqual([error.kind, error.message], ['aborted', 'The model request was aborted.']);
  assert.deepEqual([seen.cancelled, seen.disposed], [1, 1]);
  await assert.rejects(client.complete(request(controller.signal)), { kind: 'aborted' });
  assert.equal(seen.sent.length, 1);
});

test("the API's failures say what to do, and whether trying again helps", async () => {
  const fails = async (reply: () => Promise<AsyncIterable<unknown>>, kind?: LmErrorKind) => {
    const { client } = scripted(reply, () => kind);
    return client.complete(request()).then(
      () => assert.fail('the request should fail'),
      (error: unknown) => {
        assert.ok(error instanceof ModelError, String(error));
        return error;
      },
    );
  };
  const refuse = (message: string) => () => Promise.reject(new Error(message));
  const consent = await fails(refuse('consent refused'), 'NoPermissions');
  assert.deepEqual([consent.kind, consent.retryable], ['auth', false]);
  assert.match(consent.message, /^VS Code's language model "lm-1" refused the request: Apollo may not use it yet \(consent refused\)\. Allow Apollo/);
  const blocked = await fails(refuse('quota'), 'Blocked');
  assert.deepEqual([blocked.kind, blocked.retryable], ['http', false]);
  assert.match(blocked.message, /apollo\.provider back to openai-compatible/);
  const gone = await fails(refuse('no such model'), 'NotFound');
  assert.deepEqual([gone.kind, gone.retryable], ['http', false]);
  assert.match(gone.message, /apollo\.model/);
  const window = await fails(refuse('Message exceeds token limit'));
  assert.equal(window.kind, 'context');
  const unreachable = await fails(refuse('socket hang up'));
  assert.deepEqual([unreachable.kind, unreachable.retryable, unreachable.message], ['unreachable', true, `VS Code's language model "lm-1" could not be reached: socket hang up`]);
  const broken = await fails(async () => streamOf([{ text: 'half a rep' }], new Error('connection reset')));
  assert.deepEqual([broken.kind, broken.retryable, broken.message], ['protocol', true, `The reply of VS Code's language model "lm-1" broke off: connection reset`]);
  const own = new ModelError('already a model error', 'timeout');
  assert.equal(lmModelError(own, 'NotFound', 'lm-1', 'request', false), own);
  assert.equal(lmModelError('a string', undefined, 'lm-1', 'request', true).kind, 'aborted');
});
