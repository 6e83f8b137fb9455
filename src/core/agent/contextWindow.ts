/**
 * The context window a server really serves a model with, asked of the server itself.
 *
 * First the cheap OpenAI model list (`GET {baseUrl}/models`, through the `openai` package), whose
 * entries some servers extend with a length; only when it says nothing, the server's own
 * endpoints: llama.cpp's `/props`, LM Studio's `/api/v0/models` and `/api/v1/models`, Ollama's
 * `/api/show`. Those live at the server root: the base URL with a trailing `/v1` cut off. Every
 * request goes to the base URL's own origin, redirects are never followed (a redirect could carry
 * the key elsewhere), and the whole discovery gives up after `timeoutMs`.
 *
 * It never throws: no answer, an error status, a body of another shape, or a value that is not a
 * sane token count all give `undefined`, and the caller keeps its cautious default.
 */
import OpenAI from 'openai';

export interface ContextWindowOptions {
  baseUrl: string;
  apiKey: string;
  model: string;
  signal?: AbortSignal;
  /** For the whole discovery, every probe included; default 5000. */
  timeoutMs?: number;
  /** The fetch every request goes through (tests record it); default the global one. */
  fetch?: typeof fetch;
}

export interface ContextWindow {
  tokens: number;
  /** Where the figure came from, in words for the user. */
  detail: string;
}

/** A window above this is taken for garbage, not a model. */
const MAX_SANE_TOKENS = 100_000_000;

/**
 * Ollama's smallest default window. Its FAQ ("How can I specify the context window size?") says
 * 4096; docs/context-length.mdx and server/routes.go give 4k below 24 GiB of VRAM, 32k up to 48
 * GiB, 256k above, unless OLLAMA_CONTEXT_LENGTH is set where the server runs (envconfig/config.go)
 * — none of which a client can see. The smallest is the one that cannot overflow.
 */
const OLLAMA_DEFAULT_NUM_CTX = 4096;

export async function discoverContextWindow(options: ContextWindowOptions): Promise<ContextWindow | undefined> {
  const controller = new AbortController();
  const forwardAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) return undefined;
  options.signal?.addEventListener('abort', forwardAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error('context window discovery timed out')), options.timeoutMs ?? 5000);
  const aborted = new Promise<undefined>((resolve) => {
    if (controller.signal.aborted) resolve(undefined);
    controller.signal.addEventListener('abort', () => resolve(undefined), { once: true });
  });
  try {
    // A server that ignores the abort still loses the race against the deadline.
    return await Promise.race([discover(options, controller.signal), aborted]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', forwardAbort);
  }
}

async function discover(options: ContextWindowOptions, signal: AbortSignal): Promise<ContextWindow | undefined> {
  let base: URL;
  try {
    base = new URL(options.baseUrl);
  } catch {
    return undefined;
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') return undefined;
  const probe = new Probe(options, base, signal);
  const listed = await fromModelList(options, probe, signal);
  if (listed) return listed;
  for (const source of [fromLlamaCppProps, fromLmStudio, fromOllama]) {
    if (signal.aborted) return undefined;
    const found = await source(probe, options.model).catch(() => undefined);
    if (found) return found;
  }
  return undefined;
}

/** A positive integer token count, or undefined for anything else (0, negatives, fractions, words, absurd sizes). */
export function saneTokens(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  return Number.isSafeInteger(n) && n > 0 && n <= MAX_SANE_TOKENS ? n : undefined;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** Requests to the server root, on the base URL's origin only, redirects refused. */
class Probe {
  /** The base URL without a trailing /v1: where llama.cpp, LM Studio and Ollama keep their own endpoints. */
  readonly root: string;
  readonly fetch: typeof fetch;

  constructor(
    private readonly options: ContextWindowOptions,
    base: URL,
    private readonly signal: AbortSignal,
  ) {
    this.root = base.href.replace(/\/+$/, '').replace(/\/v1$/, '');
    this.fetch = sameOriginFetch(options.fetch ?? globalThis.fetch, base.origin);
  }

  async json(path: string, init: { method?: string; body?: unknown } = {}): Promise<unknown> {
    const response = await this.fetch(`${this.root}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        Authorization: `Bearer ${this.options.apiKey}`,
        Accept: 'application/json',
        ...(init.body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: this.signal,
    });
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      return undefined;
    }
    try {
      return JSON.parse(await response.text());
    } catch {
      return undefined;
    }
  }

  /** For messages: the server root as the user wrote it. */
  where(path: string): string {
    return `GET ${new URL(this.root).pathname.replace(/\/$/, '')}${path}`;
  }
}

/**
 * A fetch that refuses any URL off `origin` and never follows a redirect: the bearer key goes to
 * the host the user configured and nowhere else. A redirect answer is just "no figure here".
 */
function sameOriginFetch(inner: typeof fetch, origin: string): typeof fetch {
  return async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    if (url.origin !== origin) throw new Error(`refusing to send the key to ${url.origin}`);
    return inner(input, { ...init, redirect: 'manual' });
  };
}

// ---------------------------------------------------------------------------------------------
// GET {baseUrl}/models — the OpenAI list, extended by some servers.

async function fromModelList(options: ContextWindowOptions, probe: Probe, signal: AbortSignal): Promise<ContextWindow | undefined> {
  const client = new OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey, maxRetries: 0, fetch: probe.fetch });
  let entries: unknown[];
  try {
    const page = await client.models.list({ signal });
    entries = Array.isArray(page.data) ? page.data : [];
  } catch {
    return undefined;
  }
  // OpenRouter lists hundreds of models: only the entry whose id is the model counts.
  const entry = record(entries.find((item) => record(item)?.id === options.model));
  if (!entry) return undefined;
  const where = `GET ${new URL(options.baseUrl).pathname.replace(/\/$/, '')}/models`;

  // vLLM: ModelCard.max_model_len, the --max-model-len the engine was started with (or the one it
  // derived from the model config). vllm/entrypoints/openai/protocol.py, class ModelCard.
  const maxModelLen = saneTokens(entry.max_model_len);
  if (maxModelLen) return { tokens: maxModelLen, detail: `vLLM: max_model_len of ${options.model} from ${where}` };

  // llama.cpp (newer builds): data[].meta.n_ctx is the per-slot window it serves (meta.slot_n_ctx);
  // meta.n_ctx_train beside it is the TRAINED length and is not used. tools/server/server-context.cpp
  // (get_res_model_info; older builds put only n_ctx_train in model_meta()).
  const meta = record(entry.meta);
  const metaCtx = saneTokens(meta?.n_ctx);
  if (metaCtx) return { tokens: metaCtx, detail: `llama.cpp: n_ctx of ${options.model} (per slot) from ${where}` };

  // OpenRouter: context_length on each model; top_provider.context_length is the first provider's.
  // It routes a request to a provider that can take the prompt, so the model's own figure holds.
  // https://openrouter.ai/docs/models (Models API: "context_length — Maximum context window size
  // in tokens", "top_provider — Configuration details for the primary provider").
  const contextLength = saneTokens(entry.context_length);
  if (contextLength) return { tokens: contextLength, detail: `context_length of ${options.model} from ${where}` };
  const topProvider = saneTokens(record(entry.top_provider)?.context_length);
  if (topProvider) return { tokens: topProvider, detail: `top_provider.context_length of ${options.model} from ${where}` };
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// llama.cpp server: GET /props → default_generation_settings.n_ctx.

/**
 * `default_generation_settings` is `{ params: {...sampling}, n_ctx }` with n_ctx the per-slot
 * window (the -c figure divided among --parallel slots) — a sibling of `params`, not inside it.
 * tools/server/server-context.cpp, `get_props` (n_ctx = get_slot_n_ctx()). In router mode
 * (several models) the bare /props is a placeholder with n_ctx 0 and `/props?model=NAME` is
 * passed on to that model's server (tools/server/server-models.cpp, get_router_props); a single
 * model server ignores the query.
 */
async function fromLlamaCppProps(probe: Probe, model: string): Promise<ContextWindow | undefined> {
  const path = `/props?model=${encodeURIComponent(model)}`;
  const props = record(await probe.json(path));
  const tokens = saneTokens(record(props?.default_generation_settings)?.n_ctx);
  if (!tokens) return undefined;
  const slots = saneTokens(props?.total_slots);
  const perSlot = slots && slots > 1 ? `, one of ${slots} slots` : '';
  return { tokens, detail: `llama.cpp: n_ctx of ${model} (per slot${perSlot}) from ${probe.where('/props')}` };
}

// ---------------------------------------------------------------------------------------------
// LM Studio: GET /api/v0/models (0.3.6+), GET /api/v1/models (0.4.0+).

/**
 * v0 lists `{ id, state: "loaded" | "not-loaded", max_context_length, ... }`
 * (lmstudio-ai/docs 1_developer/2_rest/endpoints.mdx); a loaded model also carries
 * `loaded_context_length`, the window it was loaded with (seen on the wire, not in the docs).
 * v1 lists `models[]` of `{ key, loaded_instances: [{ id, config: { context_length } }],
 * max_context_length }` (lmstudio-ai/docs 1_developer/2_rest/list.md). `max_context_length` is the
 * most the model supports, used only when no loaded window is known.
 */
async function fromLmStudio(probe: Probe, model: string): Promise<ContextWindow | undefined> {
  const v0 = record(await probe.json('/api/v0/models'));
  const v0Entry = Array.isArray(v0?.data) ? v0.data.map(record).find((item) => item?.id === model) : undefined;
  const loaded = saneTokens(v0Entry?.loaded_context_length);
  if (loaded) return { tokens: loaded, detail: `LM Studio: loaded_context_length of ${model} from ${probe.where('/api/v0/models')}` };

  const v1 = record(await probe.json('/api/v1/models').catch(() => undefined));
  const v1Entries = Array.isArray(v1?.models) ? v1.models.map(record) : [];
  for (const entry of v1Entries) {
    const instances = Array.isArray(entry?.loaded_instances) ? entry.loaded_instances.map(record) : [];
    const instance = instances.find((item) => item?.id === model) ?? (entry?.key === model ? instances[0] : undefined);
    const tokens = saneTokens(record(instance?.config)?.context_length);
    if (tokens) return { tokens, detail: `LM Studio: context_length ${model} is loaded with, from ${probe.where('/api/v1/models')}` };
  }

  const v1Entry = v1Entries.find((item) => item?.key === model);
  const most = saneTokens(v0Entry?.max_context_length) ?? saneTokens(v1Entry?.max_context_length);
  if (most) {
    const from = saneTokens(v0Entry?.max_context_length) ? '/api/v0/models' : '/api/v1/models';
    return {
      tokens: most,
      detail: `LM Studio: max_context_length of ${model} from ${probe.where(from)} (${v0Entry?.state === 'not-loaded' ? 'not loaded yet' : 'no loaded window given'}: the most it supports; LM Studio may load it with less)`,
    };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Ollama: POST /api/show {"model": ...}.

/**
 * `parameters` is the model's Modelfile PARAMETER lines, one `name<padding> value` a line
 * (server/routes.go formats them "%-*s %#v", width 30), e.g. "num_ctx                        8192".
 * A num_ctx there is the window every request without its own num_ctx gets (Apollo sends none),
 * cut to the trained length (server/sched.go). Without it the server's default applies, which the
 * client cannot see (OLLAMA_CONTEXT_LENGTH, or a VRAM tier): the smallest default is assumed.
 * `model_info["<arch>.context_length"]` is the TRAINED length (docs/api.md, "Show Model
 * Information"), only a ceiling here.
 */
async function fromOllama(probe: Probe, model: string): Promise<ContextWindow | undefined> {
  const show = record(await probe.json('/api/show', { method: 'POST', body: { model } }));
  if (!show) return undefined;
  const parameters = typeof show.parameters === 'string' ? show.parameters : undefined;
  const modelInfo = record(show.model_info);
  // Only a body shaped like Ollama's: llama.cpp answers /api/show too, but /props came first.
  if (parameters === undefined && !modelInfo && !record(show.details)) return undefined;
  const where = `POST ${new URL(probe.root).pathname.replace(/\/$/, '')}/api/show`;
  const arch = typeof modelInfo?.['general.architecture'] === 'string' ? modelInfo['general.architecture'] : undefined;
  const trained = saneTokens(arch ? modelInfo?.[`${arch}.context_length`] : undefined);

  const match = parameters ? /^num_ctx\s+"?(\d+)"?\s*$/m.exec(parameters) : null;
  const numCtx = saneTokens(match?.[1]);
  if (numCtx) {
    const tokens = trained ? Math.min(numCtx, trained) : numCtx;
    const cut = tokens < numCtx ? `, cut to its trained length ${trained}` : '';
    return { tokens, detail: `Ollama: num_ctx ${numCtx} in the parameters of ${model}${cut}, from ${where}` };
  }
  const tokens = trained ? Math.min(OLLAMA_DEFAULT_NUM_CTX, trained) : OLLAMA_DEFAULT_NUM_CTX;
  return {
    tokens,
    detail:
      `Ollama: no num_ctx in the parameters of ${model} (${where}); assuming Ollama's smallest default of ${tokens} tokens. ` +
      `The server may serve more (OLLAMA_CONTEXT_LENGTH, or 32k/256k with 24/48 GiB of VRAM); set PARAMETER num_ctx in a Modelfile to be sure` +
      (trained ? ` (the model was trained for ${trained})` : ''),
  };
}
