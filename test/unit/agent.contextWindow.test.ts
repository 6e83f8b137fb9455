/**
 * Learning a model's context window from the server, against servers on 127.0.0.1 that replay
 * each server's real answers. Every body cites the source its shape comes from:
 * - vLLM: vllm/entrypoints/openai/protocol.py, ModelCard (max_model_len).
 * - OpenRouter: https://openrouter.ai/docs/models (context_length, top_provider).
 * - llama.cpp: tools/server/server-context.cpp (get_props, get_models / model_meta),
 *   tools/server/server-models.cpp (get_router_props).
 * - LM Studio: lmstudio-ai/docs 1_developer/2_rest/endpoints.mdx (v0) and list.md (v1).
 * - Ollama: docs/api.md "Show Model Information", server/routes.go (parameters format),
 *   openai/openai.go (the /v1/models entry), docs/faq.mdx (default window).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { discoverContextWindow, saneTokens } from '../../src/core/agent/contextWindow';
import { ModelClient } from '../../src/core/agent/modelClient';

interface Seen {
  method: string;
  url: string;
  authorization?: string;
  body: string;
}

type Reply = { status?: number; json?: unknown; text?: string; headers?: Record<string, string> } | 'hang';
type Routes = Record<string, Reply | ((url: URL, body: string) => Reply)>;

/** A server answering `METHOD /path` from `routes`; anything else is `fallback` (Go's plain 404 by default). */
async function serve(routes: Routes, fallback: Reply = { status: 404, text: '404 page not found', headers: { 'content-type': 'text/plain' } }) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
      const url = new URL(req.url ?? '/', 'http://x');
      const route = routes[`${req.method} ${url.pathname}`];
      const reply = typeof route === 'function' ? route(url, body) : (route ?? fallback);
      if (reply === 'hang') return;
      const text = reply.text ?? JSON.stringify(reply.json);
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    seen,
    paths: () => seen.map((s) => `${s.method} ${s.url}`),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

async function withServer(routes: Routes, run: (s: Awaited<ReturnType<typeof serve>>) => Promise<void>, fallback?: Reply) {
  const s = await serve(routes, fallback);
  try {
    await run(s);
  } finally {
    await s.close();
  }
}

const discover = (baseUrl: string, model: string, extra: Partial<Parameters<typeof discoverContextWindow>[0]> = {}) =>
  discoverContextWindow({ baseUrl, apiKey: 'sk-test-key', model, timeoutMs: 3000, ...extra });

test('vLLM: max_model_len on the /v1/models entry, nothing else asked', async () => {
  // vllm ModelCard: id, object, created, owned_by "vllm", root, parent, max_model_len, permission[].
  const models = {
    object: 'list',
    data: [
      {
        id: 'Qwen/Qwen3-8B',
        object: 'model',
        created: 1764000000,
        owned_by: 'vllm',
        root: 'Qwen/Qwen3-8B',
        parent: null,
        max_model_len: 32768,
        permission: [
          {
            id: 'modelperm-1',
            object: 'model_permission',
            created: 1764000000,
            allow_create_engine: false,
            allow_sampling: true,
            allow_logprobs: true,
            allow_search_indices: false,
            allow_view: true,
            allow_fine_tuning: false,
            organization: '*',
            group: null,
            is_blocking: false,
          },
        ],
      },
      { id: 'my-lora', object: 'model', created: 1764000000, owned_by: 'vllm', root: '/adapters/my-lora', parent: 'Qwen/Qwen3-8B', max_model_len: 32768, permission: [] },
    ],
  };
  await withServer({ 'GET /v1/models': { json: models } }, async (s) => {
    const found = await discover(`${s.origin}/v1`, 'Qwen/Qwen3-8B');
    assert.deepEqual(found, { tokens: 32768, detail: 'vLLM: max_model_len of Qwen/Qwen3-8B from GET /v1/models' });
    assert.deepEqual(s.paths(), ['GET /v1/models']);
    assert.equal(s.seen[0].authorization, 'Bearer sk-test-key');
  });
});

test('OpenRouter: context_length of the one matching entry among hundreds, under /api/v1', async () => {
  const entry = (id: string, context: number, top: number | null) => ({
    id,
    canonical_slug: id,
    name: id,
    created: 1750000000,
    description: 'A model.',
    context_length: context,
    architecture: { modality: 'text->text', input_modalities: ['text'], output_modalities: ['text'], tokenizer: 'Qwen3', instruct_type: null },
    pricing: { prompt: '0.00000018', completion: '0.0000007', request: '0', image: '0', web_search: '0', internal_reasoning: '0' },
    top_provider: { context_length: top, max_completion_tokens: 8192, is_moderated: false },
    per_request_limits: null,
    supported_parameters: ['max_tokens', 'temperature', 'tools', 'tool_choice', 'reasoning'],
  });
  const data = Array.from({ length: 320 }, (_, i) => entry(`vendor${i}/model-${i}`, 8192 + i, 4096));
  data.splice(171, 0, entry('qwen/qwen3-coder', 262144, 131072));
  await withServer({ 'GET /api/v1/models': { json: { data } } }, async (s) => {
    const found = await discover(`${s.origin}/api/v1`, 'qwen/qwen3-coder');
    assert.equal(found?.tokens, 262144);
    assert.match(found.detail, /context_length of qwen\/qwen3-coder from GET \/api\/v1\/models/);
    assert.deepEqual(s.paths(), ['GET /api/v1/models']);
  });
  // Only the first provider's figure given: that one.
  await withServer({ 'GET /api/v1/models': { json: { data: [{ ...entry('a/b', 0, 65536), context_length: null }] } } }, async (s) => {
    assert.equal((await discover(`${s.origin}/api/v1`, 'a/b'))?.tokens, 65536);
  });
});

// llama.cpp's /v1/models: Ollama-style models[] and OpenAI-style data[] in one body; meta from
// model_meta() (older builds: n_ctx_train only, the TRAINED length).
const llamaCppModels = (meta: Record<string, unknown>) => ({
  models: [
    {
      name: 'qwen3-8b',
      model: 'qwen3-8b',
      modified_at: '',
      size: '',
      digest: '',
      type: 'model',
      description: '',
      tags: [''],
      capabilities: ['completion'],
      parameters: '',
      details: { parent_model: '', format: 'gguf', family: '', families: [''], parameter_size: '', quantization_level: '' },
    },
  ],
  object: 'list',
  data: [{ id: 'qwen3-8b', object: 'model', created: 1764000000, owned_by: 'llamacpp', meta }],
});
const llamaCppProps = (nCtx: number, slots = 4) => ({
  default_generation_settings: { params: { n_predict: -1, seed: 4294967295, temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05 }, n_ctx: nCtx },
  total_slots: slots,
  model_alias: 'qwen3-8b',
  model_path: '/models/Qwen3-8B-Q4_K_M.gguf',
  modalities: { vision: false, audio: false },
  endpoint_slots: true,
  endpoint_props: false,
  endpoint_metrics: false,
  webui: true,
  chat_template: '{% for message in messages %}...{% endfor %}',
  bos_token: '<|endoftext|>',
  eos_token: '<|im_end|>',
  build_info: 'b6500-1a2b3c4d',
});

test('llama.cpp: n_ctx_train on the list is the trained length; the served per-slot n_ctx comes from /props', async () => {
  await withServer(
    {
      'GET /v1/models': { json: llamaCppModels({ vocab_type: 2, n_vocab: 151936, n_ctx_train: 40960, n_embd: 4096, n_params: 8190735360, size: 5027783808 }) },
      'GET /props': { json: llamaCppProps(8192) },
    },
    async (s) => {
      const found = await discover(`${s.origin}/v1`, 'qwen3-8b');
      assert.deepEqual(found, { tokens: 8192, detail: 'llama.cpp: n_ctx of qwen3-8b (per slot, one of 4 slots) from GET /props' });
      assert.deepEqual(s.paths(), ['GET /v1/models', 'GET /props?model=qwen3-8b']);
    },
  );
});

test('llama.cpp newer builds: meta.n_ctx on the list is the served window, no probe needed', async () => {
  await withServer(
    { 'GET /v1/models': { json: llamaCppModels({ vocab_type: 2, n_vocab: 151936, n_ctx: 16384, n_ctx_train: 40960, n_embd: 4096, n_params: 8190735360, size: 5027783808, ftype: 'Q4_K - Medium' }) } },
    async (s) => {
      assert.equal((await discover(`${s.origin}/v1`, 'qwen3-8b'))?.tokens, 16384);
      assert.deepEqual(s.paths(), ['GET /v1/models']);
    },
  );
});

test('llama.cpp router mode: the bare /props is a placeholder with n_ctx 0; ?model= reaches the model', async () => {
  await withServer(
    {
      'GET /v1/models': {
        json: { object: 'list', data: [{ id: 'qwen3-8b', object: 'model', owned_by: 'llamacpp', created: 1764000000, status: { value: 'loaded', args: ['llama-server', '-c', '65536'] } }] },
      },
      'GET /props': (url) =>
        url.searchParams.get('model') === 'qwen3-8b'
          ? { json: llamaCppProps(65536, 1) }
          : { json: { role: 'router', max_instances: 4, model_alias: 'llama-server', model_path: 'none', default_generation_settings: { params: {}, n_ctx: 0 } } },
    },
    async (s) => {
      const found = await discover(`${s.origin}/v1`, 'qwen3-8b');
      assert.deepEqual(found, { tokens: 65536, detail: 'llama.cpp: n_ctx of qwen3-8b (per slot) from GET /props' });
    },
  );
});

// LM Studio answers an unknown route with 200 and {"error": "Unexpected endpoint or method. (...)"}.
const lmStudioUnknown: Reply = { json: { error: 'Unexpected endpoint or method.' } };
const lmStudioList = {
  data: [
    { id: 'qwen2.5-7b-instruct', object: 'model', owned_by: 'organization_owner' },
    { id: 'text-embedding-nomic-embed-text-v1.5', object: 'model', owned_by: 'organization_owner' },
  ],
  object: 'list',
};

test('LM Studio: loaded_context_length from /api/v0/models, the window the model was loaded with', async () => {
  const v0 = {
    object: 'list',
    data: [
      {
        id: 'qwen2.5-7b-instruct',
        object: 'model',
        type: 'llm',
        publisher: 'lmstudio-community',
        arch: 'qwen2',
        compatibility_type: 'gguf',
        quantization: 'Q4_K_M',
        state: 'loaded',
        max_context_length: 32768,
        loaded_context_length: 8192,
      },
      {
        id: 'text-embedding-nomic-embed-text-v1.5',
        object: 'model',
        type: 'embeddings',
        publisher: 'nomic-ai',
        arch: 'nomic-bert',
        compatibility_type: 'gguf',
        quantization: 'Q4_0',
        state: 'not-loaded',
        max_context_length: 2048,
      },
    ],
  };
  await withServer(
    { 'GET /v1/models': { json: lmStudioList }, 'GET /api/v0/models': { json: v0 } },
    async (s) => {
      const found = await discover(`${s.origin}/v1`, 'qwen2.5-7b-instruct');
      assert.deepEqual(found, { tokens: 8192, detail: 'LM Studio: loaded_context_length of qwen2.5-7b-instruct from GET /api/v0/models' });
      assert.deepEqual(s.paths(), ['GET /v1/models', 'GET /props?model=qwen2.5-7b-instruct', 'GET /api/v0/models']);
    },
    lmStudioUnknown,
  );
});

test('LM Studio 0.4: the loaded instance config.context_length from /api/v1/models; not loaded: max_context_length, said so', async () => {
  const v0 = {
    object: 'list',
    data: [
      {
        id: 'google/gemma-3-12b',
        object: 'model',
        type: 'vlm',
        publisher: 'lmstudio-community',
        arch: 'gemma3',
        compatibility_type: 'gguf',
        quantization: 'Q4_K_M',
        state: 'loaded',
        max_context_length: 131072,
      },
    ],
  };
  const v1 = (instances: unknown[]) => ({
    models: [
      {
        type: 'llm',
        publisher: 'lmstudio-community',
        key: 'google/gemma-3-12b',
        display_name: 'Gemma 3 12B',
        architecture: 'gemma3',
        quantization: { name: 'Q4_K_M', bits_per_weight: 4 },
        size_bytes: 8149190656,
        params_string: '12B',
        loaded_instances: instances,
        max_context_length: 131072,
        format: 'gguf',
        capabilities: { vision: true, trained_for_tool_use: true },
        description: null,
      },
    ],
  });
  const list = { data: [{ id: 'google/gemma-3-12b', object: 'model', owned_by: 'organization_owner' }], object: 'list' };
  await withServer(
    { 'GET /v1/models': { json: list }, 'GET /api/v0/models': { json: v0 }, 'GET /api/v1/models': { json: v1([{ id: 'google/gemma-3-12b', config: { context_length: 4096 } }]) } },
    async (s) => {
      const found = await discover(`${s.origin}/v1`, 'google/gemma-3-12b');
      assert.equal(found?.tokens, 4096);
      assert.match(found.detail, /^LM Studio: context_length google\/gemma-3-12b is loaded with, from GET \/api\/v1\/models$/);
    },
    lmStudioUnknown,
  );
  await withServer(
    { 'GET /v1/models': { json: list }, 'GET /api/v0/models': { json: { ...v0, data: [{ ...v0.data[0], state: 'not-loaded' }] } }, 'GET /api/v1/models': { json: v1([]) } },
    async (s) => {
      const found = await discover(`${s.origin}/v1`, 'google/gemma-3-12b');
      assert.equal(found?.tokens, 131072);
      assert.match(found.detail, /^LM Studio: max_context_length of google\/gemma-3-12b from GET \/api\/v0\/models \(not loaded yet/);
    },
    lmStudioUnknown,
  );
});

// Ollama's /v1/models entry (openai/openai.go Model: id, object, created, owned_by).
const ollamaList = { object: 'list', data: [{ id: 'llama3.1:8b', object: 'model', created: 1764000000, owned_by: 'library' }] };
const ollamaShow = (parameters: string) => ({
  modelfile: '# Modelfile generated by "ollama show"\nFROM /root/.ollama/models/blobs/sha256-667b0c1932bc\nPARAMETER stop <|eot_id|>',
  parameters,
  template: '{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}',
  details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '8.0B', quantization_level: 'Q4_K_M' },
  model_info: {
    'general.architecture': 'llama',
    'general.file_type': 15,
    'general.parameter_count': 8030261248,
    'llama.context_length': 131072,
    'llama.embedding_length': 4096,
    'llama.block_count': 32,
  },
  capabilities: ['completion', 'tools'],
  modified_at: '2025-11-02T10:00:00.000000000Z',
});
// server/routes.go: each parameter as fmt.Sprintf("%-*s %#v", 30, name, value).
const param = (name: string, value: string) => `${name.padEnd(30)} ${value}`;

test('Ollama: num_ctx in the /api/show parameters is the served window', async () => {
  const parameters = [param('num_ctx', '8192'), param('stop', '"<|start_header_id|>"'), param('stop', '"<|eot_id|>"'), param('temperature', '0.6')].join('\n');
  let showBody = '';
  await withServer(
    {
      'GET /v1/models': { json: ollamaList },
      'POST /api/show': (_url, body) => {
        showBody = body;
        return { json: ollamaShow(parameters) };
      },
    },
    async (s) => {
      const found = await discover(`${s.origin}/v1/`, 'llama3.1:8b');
      assert.deepEqual(found, { tokens: 8192, detail: 'Ollama: num_ctx 8192 in the parameters of llama3.1:8b, from POST /api/show' });
      assert.deepEqual(JSON.parse(showBody), { model: 'llama3.1:8b' });
      assert.deepEqual(s.paths(), ['GET /v1/models', 'GET /props?model=llama3.1%3A8b', 'GET /api/v0/models', 'GET /api/v1/models', 'POST /api/show']);
    },
  );
});

test('Ollama without num_ctx: its smallest default (4096), never the trained model_info length; said so', async () => {
  const parameters = [param('stop', '"<|start_header_id|>"'), param('stop', '"<|eot_id|>"')].join('\n');
  await withServer({ 'GET /v1/models': { json: ollamaList }, 'POST /api/show': { json: ollamaShow(parameters) } }, async (s) => {
    const found = await discover(`${s.origin}/v1`, 'llama3.1:8b');
    assert.equal(found?.tokens, 4096);
    assert.match(found.detail, /no num_ctx .* smallest default of 4096 tokens.*OLLAMA_CONTEXT_LENGTH.*trained for 131072/);
  });
  // A num_ctx above the trained length is cut to it, as Ollama's scheduler does.
  await withServer(
    {
      'GET /v1/models': { json: ollamaList },
      'POST /api/show': { json: { ...ollamaShow(param('num_ctx', '262144')), model_info: { 'general.architecture': 'llama', 'llama.context_length': 131072 } } },
    },
    async (s) => {
      assert.equal((await discover(`${s.origin}/v1`, 'llama3.1:8b'))?.tokens, 131072);
    },
  );
});

test('a plain OpenAI-like list without a length, and no server endpoints: undefined', async () => {
  await withServer(
    { 'GET /v1/models': { json: { object: 'list', data: [{ id: 'gpt-4.1', object: 'model', created: 1744316542, owned_by: 'system' }] } } },
    async (s) => {
      assert.equal(await discover(`${s.origin}/v1`, 'gpt-4.1'), undefined);
    },
    { status: 404, json: { error: { message: 'Not found', type: 'invalid_request_error' } } },
  );
});

test('a model missing from the list, or a list entry with insane lengths: undefined', async () => {
  const data = [
    { id: 'zero', max_model_len: 0 },
    { id: 'negative', max_model_len: -4096, context_length: -1 },
    { id: 'words', max_model_len: 'lots', context_length: 'about 8k' },
    { id: 'absurd', context_length: 1e12 },
    { id: 'fraction', context_length: 4096.5 },
  ];
  await withServer({ 'GET /v1/models': { json: { object: 'list', data } } }, async (s) => {
    for (const model of ['zero', 'negative', 'words', 'absurd', 'fraction', 'not-listed']) assert.equal(await discover(`${s.origin}/v1`, model), undefined, model);
  });
  assert.equal(saneTokens('32768'), 32768);
  assert.equal(saneTokens(100_000_001), undefined);
  assert.equal(saneTokens(null), undefined);
});

test('500s and garbage everywhere: undefined', async () => {
  await withServer(
    {
      'GET /v1/models': { status: 500, json: { error: { message: 'Internal Server Error' } } },
      'GET /props': { text: 'not json {' },
      'GET /api/v0/models': { json: { data: 'nope' } },
      'GET /api/v1/models': { json: [1, 2, 3] },
      'POST /api/show': { status: 500, text: '<html>Bad Gateway</html>', headers: { 'content-type': 'text/html' } },
    },
    async (s) => {
      assert.equal(await discover(`${s.origin}/v1`, 'm'), undefined);
    },
  );
});

test('a server that never answers: undefined within the timeout', async () => {
  await withServer(
    {},
    async (s) => {
      const started = Date.now();
      const found = await discover(`${s.origin}/v1`, 'm', { timeoutMs: 150 });
      assert.equal(found, undefined);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    },
    'hang',
  );
});

test('a probe that never answers after the list: undefined within the timeout; an aborted signal gives up too', async () => {
  await withServer(
    { 'GET /v1/models': { json: { object: 'list', data: [{ id: 'm', object: 'model' }] } } },
    async (s) => {
      const started = Date.now();
      assert.equal(await discover(`${s.origin}/v1`, 'm', { timeoutMs: 200 }), undefined);
      assert.ok(Date.now() - started < 2000);
      const controller = new AbortController();
      const pending = discover(`${s.origin}/v1`, 'm', { timeoutMs: 60_000, signal: controller.signal });
      controller.abort();
      assert.equal(await pending, undefined);
    },
    'hang',
  );
});

test('the key never leaves the base URL origin: redirects elsewhere are not followed', async () => {
  const elsewhere = await serve({ 'GET /v1/models': { json: { object: 'list', data: [{ id: 'm', max_model_len: 4096 }] } } }, { json: { default_generation_settings: { n_ctx: 4096 } } });
  try {
    // Another origin (another port, and by name): a redirect to it must not carry the key there.
    const target = `http://localhost:${elsewhere.port}`;
    const redirect = (url: URL): Reply => ({ status: 307, text: '', headers: { location: `${target}${url.pathname}${url.search}` } });
    await withServer({ 'GET /v1/models': redirect, 'GET /props': redirect, 'GET /api/v0/models': redirect, 'GET /api/v1/models': redirect, 'POST /api/show': redirect }, async (s) => {
      const urls: string[] = [];
      const recording: typeof fetch = (input, init) => {
        urls.push(typeof input === 'string' || input instanceof URL ? String(input) : input.url);
        return fetch(input, init);
      };
      assert.equal(await discover(`${s.origin}/v1`, 'm', { fetch: recording }), undefined);
      assert.equal(elsewhere.seen.length, 0, `the other origin was asked: ${elsewhere.paths().join(', ')}`);
      assert.ok(urls.length >= 5);
      for (const url of urls) assert.equal(new URL(url).origin, s.origin, url);
      assert.ok(s.seen.every((seen) => seen.authorization === 'Bearer sk-test-key'));
    });
  } finally {
    await elsewhere.close();
  }
});

test('ModelClient.contextWindow asks its own endpoint; contextWindowDetail says where from', async () => {
  await withServer({ 'GET /v1/models': { json: { object: 'list', data: [{ id: 'm', object: 'model', owned_by: 'vllm', max_model_len: 40960 }] } } }, async (s) => {
    const client = new ModelClient({ baseUrl: `${s.origin}/v1`, apiKey: 'k', model: 'm' });
    assert.equal(await client.contextWindow(), 40960);
    assert.deepEqual(await client.contextWindowDetail(), { tokens: 40960, detail: 'vLLM: max_model_len of m from GET /v1/models' });
    assert.equal(s.seen[0].authorization, 'Bearer k');
  });
});
