/**
 * What a run is given and whether it is valid: the options of a new run and a resumed one, their
 * defaults, and the checks RunSession makes before it writes anything.
 */
import type { ReasoningInContext, RunBudget, RunGrounding, RunOrigin, SamplingOptions, TaskSource } from '../dataset/events';
import { REASONING_IN_CONTEXT } from '../dataset/events';
import { DEFAULT_EXCLUDES, DEFAULT_MAX_FILE_BYTES } from '../grounding/shadowStore';
import type { Grounder, WatchOutsideSaves } from '../agent/loop';
import type { ChatModelClient } from '../agent/modelClient';
import type { CommandApprovalRequest, CommandSandboxOptions } from '../agent/tools';
import { type JudgeOptions, validateJudgeOptions } from '../supervision/judge';
import { ConfigError, openSetting, SET_API_KEY } from './errors';

/** Knobs of the engine's fault handling; the defaults suit real endpoints, tests shorten them. */
export interface EngineTuning {
  maxConsecutiveFailures?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Time limit of one model request. */
  requestTimeoutMs?: number;
  /** How often the hint inbox is checked for urgent hints while a request is in flight. */
  inboxPollMs?: number;
  /** Stands in for shadow-git grounding, so a benchmark can measure the engine on its own. */
  grounder?: Grounder;
  /** The clock the time budget is measured with (milliseconds); default Date.now. */
  clock?: () => number;
}

/** What a new run and a resumed one are both given. */
export interface SessionOptions {
  maxSteps?: number;
  /**
   * Wall time (paused time not counted) and tokens (prompt plus completion) the run may use; checked
   * between steps. A resumed run keeps the budget it started with unless given another.
   */
  budget?: RunBudget;
  /** Tokens the prompt may use before older steps are summarized; default from the model. */
  contextBudget?: number;
  commandTimeoutMs?: number;
  /**
   * What snapshots leave out. A resumed run keeps the exclusions and size limit it recorded when
   * it started (only `watch` is taken from here), except a run recorded before they were kept.
   */
  grounding?: GroundingOptions;
  /** Scores every step with an LLM judge, in the background; its failures never stop the run. */
  judge?: JudgeOptions;
  /** How commands are contained; default: bubblewrap where it works, else the command policy, network on. */
  sandbox?: CommandSandboxOptions;
  /** Lets the model read secrets in observations in the live session (the record never holds them); default false. */
  secretsToModel?: boolean;
  /** Asks the annotator about a command the policy flags (no sandbox); absent: such commands are refused with the reason. */
  approveCommand?: (request: CommandApprovalRequest) => Promise<'allow' | 'deny'>;
  log?: (line: string) => void;
  engine?: EngineTuning;
  /**
   * Sampling of every model request (temperature, top_p, seed, output limit, extra request
   * fields), recorded in run_started. A resumed run keeps the sampling it started with unless given other.
   */
  sampling?: SamplingOptions;
  /** Whether earlier turns' reasoning is sent back to the model; default `auto` (by model family). */
  reasoningInContext?: ReasoningInContext;
  /**
   * A model the host serves (VS Code's language models) in place of the OpenAI-compatible
   * endpoint; the run then needs no base URL or key, and records the client's provider and model.
   */
  client?: ChatModelClient;
  /**
   * Which files someone other than the agent saved in the run's workspace while an action ran
   * (the extension: editor saves); such a step's grounding is marked mixed. The CLI gives none.
   */
  outsideSaves?: (workspace: string) => ReturnType<WatchOutsideSaves>;
}

export const DEFAULT_SANDBOX: CommandSandboxOptions = { mode: 'auto', network: true };

export interface RunOptions extends SessionOptions {
  workspace: string;
  datasetDir: string;
  task: string;
  model: string;
  baseUrl: string;
  apiKey: string;
  /** Shared by the runs of one sampling (N rollouts of one task). */
  taskId?: string;
  /** A sampled run: the user's workspace and the snapshot of it that `workspace`, a working copy, was made from. */
  origin?: RunOrigin;
  /** The task of a suite this run is given (its verifier runs when the run ends). */
  taskSource?: TaskSource;
  /** No hint reaches this run (the control group of a hints comparison); recorded in run_started. */
  hintsDisabled?: boolean;
}

/** What snapshots leave out, on top of .gitignore and the dataset folder. */
export interface GroundingOptions {
  /**
   * Gitignore-style patterns added after DEFAULT_EXCLUDES (dependency folders, caches, build
   * output); a `!pattern` takes one of those back.
   */
  exclude?: string[];
  /** Files larger than this are left out; default 10 MiB. */
  maxFileBytes?: number;
  /** Watch the workspace so a snapshot looks only at what changed; default true. */
  watch?: boolean;
}

/** The snapshot settings a run records when it starts: the options over the built-in defaults. */
export function resolveGrounding(grounding: GroundingOptions = {}): RunGrounding {
  return {
    excludePatterns: [...DEFAULT_EXCLUDES, ...(grounding.exclude ?? []).map((pattern) => pattern.trim()).filter(Boolean)],
    maxFileBytes: grounding.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
  };
}

export interface ResumeOptions extends SessionOptions {
  datasetDir: string;
  runId: string;
  apiKey: string;
  /** Defaults to the run's own endpoint and model. */
  baseUrl?: string;
  model?: string;
}

export const DEFAULT_MAX_STEPS = 50;

export function validateEndpoint(options: { baseUrl: string; model: string; apiKey: string; client?: ChatModelClient }): void {
  if (options.client) {
    if (!options.client.model) throw new ConfigError('The language model chosen has no id.');
    return;
  }
  if (!options.baseUrl) {
    throw new ConfigError('No model endpoint configured: set apollo.baseUrl (CLI: --base-url or OPENAI_BASE_URL).', openSetting('apollo.baseUrl'));
  }
  try {
    const url = new URL(options.baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new ConfigError(`The model endpoint "${options.baseUrl}" is not an http(s) URL: fix apollo.baseUrl (CLI: --base-url).`, openSetting('apollo.baseUrl'));
  }
  if (!options.model) {
    throw new ConfigError('No model configured: set apollo.model (CLI: --model or OPENAI_MODEL).', openSetting('apollo.model'));
  }
  if (!options.apiKey) {
    throw new ConfigError('No API key configured: run "Apollo: Set API Key" (CLI: set OPENAI_API_KEY). A local server that needs no key accepts any text.', SET_API_KEY);
  }
}

const SAMPLING_RESERVED = ['model', 'messages', 'stream', 'stream_options', 'tools', 'n'];

/** Checks sampling options, naming the setting and flag that fix each problem. */
export function validateSampling(sampling: SamplingOptions | undefined): void {
  if (!sampling) return;
  const { temperature, topP, seed, maxOutputTokens, extra } = sampling;
  if (temperature !== undefined && !(typeof temperature === 'number' && Number.isFinite(temperature) && temperature >= 0 && temperature <= 2)) {
    throw new ConfigError(`The temperature must be a number from 0 to 2 (got ${temperature}): fix apollo.request.temperature (CLI: --temperature).`, openSetting('apollo.request.temperature'));
  }
  if (topP !== undefined && !(typeof topP === 'number' && Number.isFinite(topP) && topP > 0 && topP <= 1)) {
    throw new ConfigError(`top_p must be a number above 0 and at most 1 (got ${topP}): fix apollo.request.topP (CLI: --top-p).`, openSetting('apollo.request.topP'));
  }
  if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= 0)) {
    throw new ConfigError(`The seed must be a whole number, 0 or more (got ${seed}): fix apollo.request.seed (CLI: --seed).`, openSetting('apollo.request.seed'));
  }
  if (maxOutputTokens !== undefined && !(Number.isInteger(maxOutputTokens) && maxOutputTokens >= 1)) {
    throw new ConfigError(
      `The output limit must be a whole number of tokens, at least 1 (got ${maxOutputTokens}): fix apollo.request.maxOutputTokens (CLI: --max-output-tokens).`,
      openSetting('apollo.request.maxOutputTokens'),
    );
  }
  if (extra !== undefined) {
    if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) {
      throw new ConfigError(
        'The extra request fields must be a JSON object, e.g. {"chat_template_kwargs": {"enable_thinking": false}}: fix apollo.request.extra (CLI: --request-extra).',
        openSetting('apollo.request.extra'),
      );
    }
    const reserved = Object.keys(extra).filter((key) => SAMPLING_RESERVED.includes(key));
    if (reserved.length) {
      throw new ConfigError(
        `The extra request fields cannot set ${reserved.join(', ')}: Apollo sends those itself. Remove them from apollo.request.extra (CLI: --request-extra).`,
        openSetting('apollo.request.extra'),
      );
    }
  }
}

export function validateReasoningInContext(value: ReasoningInContext | undefined): void {
  if (value !== undefined && !REASONING_IN_CONTEXT.includes(value)) {
    throw new ConfigError(`Unknown apollo.reasoning.keepInContext "${String(value)}": use ${REASONING_IN_CONTEXT.join(', ')}.`, openSetting('apollo.reasoning.keepInContext'));
  }
}

export function validateGrounding(grounding: GroundingOptions | undefined): void {
  const maxFileBytes = grounding?.maxFileBytes;
  if (maxFileBytes !== undefined && !(Number.isFinite(maxFileBytes) && maxFileBytes > 0)) {
    throw new ConfigError(`The largest file to snapshot must be a positive size, not ${maxFileBytes} bytes.`);
  }
}

export function validateLimits(maxSteps: number, contextBudget: number | undefined): void {
  if (!Number.isInteger(maxSteps) || maxSteps < 1) {
    throw new ConfigError(`The step limit must be a whole number of at least 1 (got ${maxSteps}): fix apollo.maxSteps (CLI: --max-steps).`, openSetting('apollo.maxSteps'));
  }
  if (contextBudget !== undefined && (!Number.isInteger(contextBudget) || contextBudget < 1000)) {
    throw new ConfigError(
      `The context budget must be a whole number of tokens, at least 1000 (got ${contextBudget}): fix apollo.contextBudget (CLI: --context-budget).`,
      openSetting('apollo.contextBudget'),
    );
  }
}

export function validateBudget(budget: RunBudget | undefined): void {
  if (!budget) return;
  const { maxMinutes, maxTokens } = budget;
  if (maxMinutes !== undefined && !(typeof maxMinutes === 'number' && Number.isFinite(maxMinutes) && maxMinutes > 0)) {
    throw new ConfigError(`The time budget must be a positive number of minutes (got ${maxMinutes}) (CLI: --max-minutes).`, openSetting('apollo.budget.maxMinutes'));
  }
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens > 0)) {
    throw new ConfigError(`The token budget must be a whole number of tokens, at least 1 (got ${maxTokens}) (CLI: --max-tokens).`, openSetting('apollo.budget.maxTokens'));
  }
}

/**
 * Everything RunSession.start checks before it writes anything, except that the workspace exists:
 * the task, the endpoint, the limits and budgets, the grounding and judge options.
 */
export function validateRunOptions(options: RunOptions): void {
  if (typeof options.task !== 'string' || options.task.trim() === '') {
    throw new ConfigError('The task is empty: describe what the agent should do.');
  }
  validateEndpoint(options);
  validateLimits(options.maxSteps ?? DEFAULT_MAX_STEPS, options.contextBudget);
  validateSampling(options.sampling);
  validateReasoningInContext(options.reasoningInContext);
  validateBudget(options.budget);
  validateGrounding(options.grounding);
  validateJudge(options.judge);
}

export function validateJudge(options: JudgeOptions | undefined): void {
  if (!options) return;
  const problem = validateJudgeOptions(options);
  // The judge's settings are apollo.judge.*: the settings editor shows them all.
  if (problem) throw new ConfigError(problem, openSetting('apollo.judge'));
}
