/** Parsing a command's flags: usage errors, the flags `apollo run` and `apollo sample` share, and where datasets are. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ReasoningInContext, SamplingOptions } from '../core/dataset/events';
import { REASONING_IN_CONTEXT } from '../core/dataset/events';
import { DatasetStore } from '../core/dataset/store';
import { cliApolloHome, legacyNotice, resolveDataset, workspaceDataset } from './datasets';
import { ConfigError, DEFAULT_MAX_STEPS, validateSampling } from '../core/session/runSession';
import { MASK_POLICIES, type MaskPolicy } from '../core/supervision/labels';
import type { CliIo } from './io';
import { USAGE } from './usage';

export class UsageError extends Error {}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

/** Parses a command's options strictly; undefined when --help printed the usage instead. */
export function parseCommand<const O extends OptionSpec>(args: string[], options: O, io: CliIo, allowPositionals = false) {
  const parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals });
  if ((parsed.values as { help?: boolean }).help) {
    io.stdout(USAGE);
    return undefined;
  }
  return parsed;
}

/** The options `apollo run` and `apollo sample` share: endpoint, limits and budgets, grounding, judge, sandbox. */
export const SESSION_FLAGS = {
  model: { type: 'string' },
  'base-url': { type: 'string' },
  dataset: { type: 'string' },
  'max-steps': { type: 'string' },
  'max-minutes': { type: 'string' },
  'max-tokens': { type: 'string' },
  'context-budget': { type: 'string' },
  exclude: { type: 'string', multiple: true },
  'max-file-size-mb': { type: 'string' },
  judge: { type: 'boolean' },
  'judge-model': { type: 'string' },
  'judge-base-url': { type: 'string' },
  sandbox: { type: 'string' },
  'no-network': { type: 'boolean' },
  'allow-command': { type: 'string', multiple: true },
  'show-secrets-to-model': { type: 'boolean' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  seed: { type: 'string' },
  'max-output-tokens': { type: 'string' },
  'request-extra': { type: 'string' },
  'keep-reasoning': { type: 'string' },
  verbose: { type: 'boolean' },
  'no-hints': { type: 'boolean' },
} as const;

export interface SessionFlagValues {
  model?: string;
  'base-url'?: string;
  'max-steps'?: string;
  'max-minutes'?: string;
  'max-tokens'?: string;
  'context-budget'?: string;
  exclude?: string[];
  'max-file-size-mb'?: string;
  judge?: boolean;
  'judge-model'?: string;
  'judge-base-url'?: string;
  sandbox?: string;
  'no-network'?: boolean;
  'allow-command'?: string[];
  'show-secrets-to-model'?: boolean;
  temperature?: string;
  'top-p'?: string;
  seed?: string;
  'max-output-tokens'?: string;
  'request-extra'?: string;
  'keep-reasoning'?: string;
  verbose?: boolean;
  'no-hints'?: boolean;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

const WHOLE = /^\d+$/;

/** A number flag, read strictly: "0.7" and "1e-1" yes, "", "0x1", "warm" no. */
export function numberFlag(value: string | undefined, flag: string, what: string, whole = false): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (!(whole ? WHOLE : DECIMAL).test(text)) throw new UsageError(`${flag} takes ${what} (got "${value}").`);
  const number = Number(text);
  if (!Number.isFinite(number) || (whole && !Number.isSafeInteger(number))) throw new UsageError(`${flag} takes ${what} (got "${value}").`);
  return number;
}

/** --request-extra: a JSON object given inline or as @path/to/file.json (relative to the current folder). */
function requestExtraFlag(value: string | undefined, cwd: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let text = value;
  let where = '--request-extra';
  if (value.startsWith('@')) {
    const file = path.resolve(cwd, value.slice(1));
    where = `--request-extra ${value} (${file})`;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`${where}: cannot read the file: ${(error as Error).message}`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${where} is not valid JSON: ${(error as Error).message}.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`${where} must be a JSON object, e.g. '{"chat_template_kwargs": {"enable_thinking": false}}'.`);
  }
  return parsed as Record<string, unknown>;
}

/** The sampling flags given (only those), checked with the engine's own rules. */
function samplingFlags(values: SessionFlagValues, cwd: string): SamplingOptions | undefined {
  const sampling: SamplingOptions = {};
  const temperature = numberFlag(values.temperature, '--temperature', 'a number from 0 to 2, e.g. 0.7');
  if (temperature !== undefined) sampling.temperature = temperature;
  const topP = numberFlag(values['top-p'], '--top-p', 'a number above 0 and at most 1, e.g. 0.95');
  if (topP !== undefined) sampling.topP = topP;
  const seed = numberFlag(values.seed, '--seed', 'a whole number, 0 or more', true);
  if (seed !== undefined) sampling.seed = seed;
  const maxOutputTokens = numberFlag(values['max-output-tokens'], '--max-output-tokens', 'a whole number of tokens, at least 1', true);
  if (maxOutputTokens !== undefined) sampling.maxOutputTokens = maxOutputTokens;
  const extra = requestExtraFlag(values['request-extra'], cwd);
  if (extra !== undefined) sampling.extra = extra;
  if (!Object.keys(sampling).length) return undefined;
  try {
    validateSampling(sampling);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  return sampling;
}

/** Reads the shared options; usage errors are thrown before anything runs. */
export function sessionFlags(values: SessionFlagValues, io: CliIo) {
  const maxSteps = values['max-steps'] === undefined ? undefined : Number(values['max-steps']);
  if (maxSteps !== undefined && (!Number.isInteger(maxSteps) || maxSteps < 1)) throw new UsageError('--max-steps takes a whole number of at least 1.');
  const maxMinutes = values['max-minutes'] === undefined ? undefined : Number(values['max-minutes']);
  if (maxMinutes !== undefined && !(Number.isFinite(maxMinutes) && maxMinutes > 0)) throw new UsageError('--max-minutes takes a number of minutes greater than 0.');
  const maxTokens = values['max-tokens'] === undefined ? undefined : Number(values['max-tokens']);
  if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 1)) throw new UsageError('--max-tokens takes a whole number of at least 1.');
  const budget = maxMinutes !== undefined || maxTokens !== undefined ? { ...(maxMinutes !== undefined ? { maxMinutes } : {}), ...(maxTokens !== undefined ? { maxTokens } : {}) } : undefined;
  const contextBudget = values['context-budget'] === undefined ? undefined : Number(values['context-budget']);
  if (contextBudget !== undefined && !Number.isInteger(contextBudget)) throw new UsageError('--context-budget takes a whole number of tokens.');
  const maxFileMb = values['max-file-size-mb'] === undefined ? undefined : Number(values['max-file-size-mb']);
  if (maxFileMb !== undefined && !(maxFileMb > 0)) throw new UsageError('--max-file-size-mb takes a size in megabytes greater than 0.');
  const grounding = { exclude: values.exclude, maxFileBytes: maxFileMb === undefined ? undefined : Math.round(maxFileMb * 1024 * 1024) };
  if (!values.judge && (values['judge-model'] !== undefined || values['judge-base-url'] !== undefined)) {
    throw new UsageError('--judge-model and --judge-base-url go with --judge.');
  }
  /** The judge's endpoint: its own flags and variables, else the run's (resolved once the run's own is known). */
  const judgeFor = (run: { baseUrl: string; model: string }) =>
    values.judge
      ? {
          baseUrl: values['judge-base-url'] ?? io.env.APOLLO_JUDGE_BASE_URL ?? run.baseUrl,
          model: values['judge-model'] ?? io.env.APOLLO_JUDGE_MODEL ?? run.model,
          apiKey: io.env.APOLLO_JUDGE_API_KEY ?? io.env.OPENAI_API_KEY ?? '',
        }
      : undefined;
  if (values.sandbox !== undefined && values.sandbox !== 'auto' && values.sandbox !== 'off') throw new UsageError('--sandbox takes auto or off.');
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- needed: in the object literal the narrowed mode would widen to string
  const sandbox = { mode: (values.sandbox ?? 'auto') as 'auto' | 'off', network: !values['no-network'], allow: values['allow-command'] ?? [] };
  const keepReasoning = values['keep-reasoning'] as ReasoningInContext | undefined;
  if (keepReasoning !== undefined && !REASONING_IN_CONTEXT.includes(keepReasoning)) throw new UsageError(`--keep-reasoning takes ${REASONING_IN_CONTEXT.join(', ')}.`);
  const sampling = samplingFlags(values, io.cwd);
  /** The run's endpoint: flags, then the standard variables. */
  const endpoint = { model: values.model ?? io.env.OPENAI_MODEL ?? '', baseUrl: values['base-url'] ?? io.env.OPENAI_BASE_URL ?? '' };
  return {
    maxSteps,
    budget,
    contextBudget,
    grounding,
    judgeFor,
    sandbox,
    secretsToModel: values['show-secrets-to-model'] ?? false,
    sampling,
    reasoningInContext: keepReasoning,
    verbose: values.verbose ?? false,
    hintsDisabled: values['no-hints'] ?? false,
    endpoint,
    apiKey: io.env.OPENAI_API_KEY ?? '',
  };
}

export type SessionFlags = ReturnType<typeof sessionFlags>;

/** What a new run is given from the shared flags: apollo run and apollo sample, on a task or a task folder. */
export function newRunOptions(flags: SessionFlags) {
  return {
    ...flags.endpoint,
    apiKey: flags.apiKey,
    maxSteps: flags.maxSteps ?? DEFAULT_MAX_STEPS,
    budget: flags.budget,
    contextBudget: flags.contextBudget,
    grounding: flags.grounding,
    judge: flags.judgeFor(flags.endpoint),
    sandbox: flags.sandbox,
    secretsToModel: flags.secretsToModel,
    sampling: flags.sampling,
    reasoningInContext: flags.reasoningInContext,
    hintsDisabled: flags.hintsDisabled,
  };
}

/** Where task runs record by default: one dataset (under APOLLO_HOME) for the suite the task folders belong to. */
export function suiteDatasetDir(values: { dataset?: string }, taskDirs: string[], io: CliIo): string {
  if (values.dataset) return path.resolve(io.cwd, values.dataset);
  const parents = [...new Set(taskDirs.map((dir) => path.dirname(path.resolve(io.cwd, dir))))];
  return workspaceDataset(parents.length === 1 ? parents[0] : io.cwd, io.env);
}

export function runsDirFrom(value: string | undefined, io: CliIo): string {
  return value ? path.resolve(io.cwd, value) : path.join(cliApolloHome(io.env), 'runs');
}

/** --dataset, else the dataset holding the run (any of APOLLO_HOME's), else the current workspace's. */
export function datasetFrom(value: string | undefined, io: CliIo, runId?: string): DatasetStore {
  return new DatasetStore(resolveDataset({ dataset: value, runId, cwd: io.cwd, env: io.env, note: io.stderr }));
}

/** --dataset, else the workspace's own dataset under APOLLO_HOME; says so when older runs sit in the workspace. */
export function datasetForNewRuns(value: string | undefined, workspace: string, io: CliIo): string {
  if (value) return path.resolve(io.cwd, value);
  const dataset = workspaceDataset(workspace, io.env);
  const notice = legacyNotice(workspace, dataset);
  if (notice) io.stderr(notice);
  return dataset;
}

export function maskPolicy(value: string | undefined): MaskPolicy | undefined {
  if (value !== undefined && !MASK_POLICIES.includes(value as MaskPolicy)) throw new UsageError(`--policy takes ${MASK_POLICIES.join(', ')}.`);
  return value as MaskPolicy | undefined;
}
