/**
 * Apollo's settings (`apollo.*`) read into what a run needs: the values checked and normalised,
 * the defaults, the endpoint from the settings first and then the standard OpenAI variables.
 * The settings come through `SettingsSource`, the shape of VS Code's WorkspaceConfiguration; the
 * security settings are taken from the user's value only (see SECURITY_SETTINGS).
 */
import os from 'node:os';
import path from 'node:path';
import { realpathSync } from 'node:fs';
import { apolloHome, defaultDatasetDir, workspaceKey } from '../paths';
import type { CommandSandboxOptions } from '../agent/tools';
import type { ReasoningInContext, SamplingOptions } from '../dataset/events';
import type { JudgeOptions } from '../supervision/judge';
import { DEFAULT_MASK_POLICY, MASK_POLICIES, type MaskPolicy } from '../supervision/labels';
import { resolveEndpoint, type ResolvedEndpoint } from './endpoint';
import { DEFAULT_MAX_STEPS } from './runOptions';

/** The names the API keys are kept under in the editor's secret storage. */
export const API_KEY_SECRET = 'apollo.apiKey';
export const JUDGE_API_KEY_SECRET = 'apollo.judgeApiKey';

export type Provider = 'openai-compatible' | 'vscode-lm';
export const PROVIDERS: readonly Provider[] = ['openai-compatible', 'vscode-lm'];

/** One setting's values where they are set (VS Code's `inspect`). */
export interface SettingValues<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/** The `apollo` section of the settings: the effective value (`get`) and where it is set (`inspect`). */
export interface SettingsSource {
  get<T>(key: string): T | undefined;
  get<T>(key: string, defaultValue: T): T;
  inspect<T>(key: string): SettingValues<T> | undefined;
}

export interface ApolloSettings {
  /** Where the agent's model is served: an OpenAI-compatible endpoint, or VS Code's language models. */
  provider: Provider;
  endpoint: ResolvedEndpoint;
  /** apollo.request.*, only the values set (unset ones are the server's defaults); checked when a run starts. */
  sampling?: SamplingOptions;
  /** apollo.reasoning.keepInContext, as set; checked when a run starts. */
  reasoningInContext: ReasoningInContext;
  datasetDir: string;
  maxSteps: number;
  /** 0: derived from the model's context window. */
  contextBudget: number;
  grounding: { exclude: string[]; maxFileBytes: number };
  maskPolicy: MaskPolicy;
  sandbox: CommandSandboxOptions;
  secretsToModel: boolean;
  /** Set when `apollo.judge.enabled`: the judge's endpoint, defaulting to the agent's. */
  judge?: JudgeOptions;
  /** Limits of every run besides maxSteps; absent when unlimited. */
  budget: { maxMinutes?: number; maxTokens?: number };
  /** Where sampled runs get their working copies: outside the workspace. */
  runsDir: string;
  /** How many runs `Apollo: Sample Runs…` proposes, and how many may go at once in this window. */
  sampleCount: number;
  concurrency: number;
}

/**
 * Settings that could redirect a key or weaken containment (under `apollo.`). They have machine or
 * application scope and are restricted in untrusted workspaces (package.json; a test checks), and
 * Apollo reads only their user value: a workspace's `.vscode/settings.json`, which the agent can
 * write, never changes them, even in a VS Code that does not enforce the scope.
 */
export const SECURITY_SETTINGS = [
  'provider',
  'baseUrl',
  'judge.baseUrl',
  'sandbox.mode',
  'sandbox.network',
  'sandbox.allow',
  'secrets.showToModel',
  'datasetPath',
  'runsPath',
  'grounding.exclude',
  'request.extra',
] as const;
export type SecuritySetting = (typeof SECURITY_SETTINGS)[number];

/** `apollo.sandbox` was a string with `apollo.sandbox.network`/`.allow` under it, so VS Code ignored those; now `apollo.sandbox.mode`. */
export const LEGACY_SANDBOX_SETTING = 'sandbox';

type Inspectable = Pick<SettingsSource, 'inspect'>;

/** The user's value of a setting (user or remote-machine settings), else its default: never a workspace's. */
export function userValue<T>(config: Inspectable, key: string, fallback: T): T {
  const inspected = config.inspect<T>(key);
  const value = inspected?.globalValue ?? inspected?.defaultValue;
  return value === undefined || value === null ? fallback : value;
}

/**
 * The sandbox mode the user set; the old `apollo.sandbox` string counts (from user settings only)
 * until it is moved, and `legacyFallback` (the old value the migration could not move) after that.
 */
export function userSandboxMode(config: Inspectable, legacyFallback?: string): 'auto' | 'off' {
  const mode = config.inspect<unknown>('sandbox.mode')?.globalValue;
  const legacy = config.inspect<unknown>(LEGACY_SANDBOX_SETTING)?.globalValue;
  const value = typeof mode === 'string' ? mode : typeof legacy === 'string' ? legacy : (legacyFallback ?? 'auto');
  return value === 'off' ? 'off' : 'auto';
}

/** The strings of a list setting; anything else counts as no list. */
const strings = (list: unknown): string[] => (Array.isArray(list) ? list.filter((item): item is string => typeof item === 'string') : []);

/** The user's own `apollo.sandbox.allow` list (never a workspace's, never merged). */
export function userAllowList(config: Inspectable): string[] {
  return strings(config.inspect<unknown>('sandbox.allow')?.globalValue);
}

/** The default folder for sampled runs' working copies, shared with the CLI: `<APOLLO_HOME>/runs`. */
export function defaultRunsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(apolloHome(env), 'runs');
}

/**
 * Where a workspace folder's dataset lives when apollo.datasetPath is not set: outside the
 * workspace, in the extension's storage `storage`, `datasets/<workspace key>` (the key the CLI
 * uses under `~/.apollo/datasets`; that folder when there is no extension storage).
 */
export function defaultWorkspaceDataset(workspace: string, storage: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  let real = path.resolve(workspace);
  try {
    real = realpathSync(real);
  } catch {
    // not there (yet): keyed by the path given
  }
  return storage ? path.join(storage, 'datasets', workspaceKey(real)) : defaultDatasetDir(real, env);
}

/** The apollo.request.* values that are set; null and absent mean the server's default. */
export function readSampling(config: SettingsSource): SamplingOptions | undefined {
  const sampling: Record<string, unknown> = {};
  for (const [key, setting] of [
    ['temperature', 'request.temperature'],
    ['topP', 'request.topP'],
    ['seed', 'request.seed'],
    ['maxOutputTokens', 'request.maxOutputTokens'],
  ] as const) {
    const value = config.get<unknown>(setting);
    if (value !== null && value !== undefined) sampling[key] = value;
  }
  // A security setting: the user's value only.
  const extra = userValue<unknown>(config, 'request.extra', undefined);
  // An empty object adds nothing; anything else that is not an object is left for the check to name.
  if (extra !== undefined && !(typeof extra === 'object' && !Array.isArray(extra) && Object.keys(extra as object).length === 0)) sampling.extra = extra;
  return Object.keys(sampling).length ? sampling : undefined;
}

/** apollo.maskPolicy, the default for an unknown value. */
export function readMaskPolicy(config: Pick<SettingsSource, 'get'>): MaskPolicy {
  const policy = config.get<string>('maskPolicy', DEFAULT_MASK_POLICY) as MaskPolicy;
  return MASK_POLICIES.includes(policy) ? policy : DEFAULT_MASK_POLICY;
}

const positive = (value: number | undefined) => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined);

/** A path setting (`~` is the home folder), relative to the workspace; undefined when blank. */
const settingPath = (setting: unknown, workspace: string): string | undefined => {
  const text = String(setting).trim();
  return text ? path.resolve(workspace, text.replace(/^~(?=$|[\\/])/, os.homedir())) : undefined;
};

export interface SettingsContext {
  /** A key from the secret storage (API_KEY_SECRET, JUDGE_API_KEY_SECRET). */
  secret(name: string): PromiseLike<string | undefined>;
  /** The open workspace folder: relative paths are resolved against it. */
  workspace: string;
  /** The extension's storage folder, where datasets go by default. */
  storage?: string;
  /** The old `apollo.sandbox` value the migration could not move (see userSandboxMode). */
  legacySandboxMode?: string;
  /** The user's allow list, read at every check. */
  allow: () => string[];
  env?: NodeJS.ProcessEnv;
}

export async function readApolloSettings(config: SettingsSource, context: SettingsContext): Promise<ApolloSettings> {
  const { workspace, env = process.env } = context;
  const user = <T>(key: SecuritySetting, fallback: T) => userValue<T>(config, key, fallback);
  const endpoint = resolveEndpoint({
    baseUrlSetting: String(user<string>('baseUrl', '')),
    modelSetting: config.get<string>('model', ''),
    storedKey: await context.secret(API_KEY_SECRET),
    env,
  });
  const judge = config.get<boolean>('judge.enabled', false)
    ? {
        baseUrl: String(user<string>('judge.baseUrl', '')).trim() || endpoint.baseUrl,
        model: config.get<string>('judge.model', '').trim() || endpoint.model,
        apiKey: (await context.secret(JUDGE_API_KEY_SECRET)) || endpoint.apiKey,
        batchSize: config.get<number>('judge.batchSize', 8),
      }
    : undefined;
  const sampling = readSampling(config);
  const maxMinutes = config.get<number>('budget.maxMinutes', 0);
  const maxTokens = config.get<number>('budget.maxTokens', 0);
  return {
    provider: user<string>('provider', 'openai-compatible') === 'vscode-lm' ? 'vscode-lm' : 'openai-compatible',
    ...(sampling ? { sampling } : {}),
    reasoningInContext: config.get<ReasoningInContext>('reasoning.keepInContext', 'auto'),
    maskPolicy: readMaskPolicy(config),
    secretsToModel: user<boolean>('secrets.showToModel', false) === true,
    sandbox: {
      mode: userSandboxMode(config, context.legacySandboxMode),
      network: user<boolean>('sandbox.network', true) !== false,
      // Read at every check, so "Always Allow" applies at once; a value written into the workspace mid-run never counts.
      allow: context.allow,
    },
    ...(judge ? { judge } : {}),
    endpoint,
    datasetDir: settingPath(user<string>('datasetPath', ''), workspace) ?? defaultWorkspaceDataset(workspace, context.storage, env),
    maxSteps: config.get<number>('maxSteps', DEFAULT_MAX_STEPS),
    contextBudget: config.get<number>('contextBudget', 0),
    grounding: { exclude: strings(user<unknown>('grounding.exclude', [])), maxFileBytes: Math.round(config.get<number>('grounding.maxFileSizeMb', 10) * 1024 * 1024) },
    budget: { ...(positive(maxMinutes) ? { maxMinutes } : {}), ...(positive(maxTokens) ? { maxTokens: Math.round(maxTokens) } : {}) },
    runsDir: settingPath(user<string>('runsPath', ''), workspace) ?? defaultRunsDir(env),
    sampleCount: Math.max(1, Math.round(config.get<number>('sample.count', 3))),
    concurrency: Math.max(1, Math.round(config.get<number>('sample.concurrency', 3))),
  };
}
