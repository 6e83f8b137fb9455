/** Where the model endpoint comes from: settings first, then the standard OpenAI variables. */
import * as vscode from 'vscode';
import { promises as fs, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { apolloHome, defaultDatasetDir, workspaceKey } from '../core/paths';
import { DEFAULT_MAX_STEPS } from '../core/session/runSession';
import { DEFAULT_MASK_POLICY, MASK_POLICIES, type MaskPolicy } from '../core/supervision/labels';
import type { JudgeOptions } from '../core/supervision/judge';
import type { CommandSandboxOptions } from '../core/agent/tools';
import type { ReasoningInContext, SamplingOptions } from '../core/dataset/events';
import { resolveEndpoint, type ResolvedEndpoint } from '../core/session/endpoint';

export const API_KEY_SECRET = 'apollo.apiKey';
export const JUDGE_API_KEY_SECRET = 'apollo.judgeApiKey';

export type Provider = 'openai-compatible' | 'vscode-lm';
export const PROVIDERS: readonly Provider[] = ['openai-compatible', 'vscode-lm'];

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

type Inspectable = Pick<vscode.WorkspaceConfiguration, 'inspect'>;

/** The user's value of a setting (user or remote-machine settings), else its default: never a workspace's. */
export function userValue<T>(config: Inspectable, key: string, fallback: T): T {
  const inspected = config.inspect<T>(key);
  const value = inspected?.globalValue ?? inspected?.defaultValue;
  return value === undefined || value === null ? fallback : value;
}

/** The user's old `apollo.sandbox` value, kept while it could not be moved to `apollo.sandbox.mode`. */
let legacySandboxMode: string | undefined;
export function setLegacySandboxFallback(value: string | undefined): void {
  legacySandboxMode = value;
}

/** The sandbox mode the user set; the old `apollo.sandbox` string counts (from user settings only) until it is moved. */
export function userSandboxMode(config: Inspectable): 'auto' | 'off' {
  const mode = config.inspect<unknown>('sandbox.mode')?.globalValue;
  const legacy = config.inspect<unknown>(LEGACY_SANDBOX_SETTING)?.globalValue;
  const value = typeof mode === 'string' ? mode : typeof legacy === 'string' ? legacy : (legacySandboxMode ?? 'auto');
  return value === 'off' ? 'off' : 'auto';
}

/** The user's own `apollo.sandbox.allow` list (never a workspace's, never merged). */
export function userAllowList(config: Inspectable = vscode.workspace.getConfiguration('apollo')): string[] {
  const list = config.inspect<unknown>('sandbox.allow')?.globalValue;
  return Array.isArray(list) ? list.filter((pattern): pattern is string => typeof pattern === 'string') : [];
}

/** Parses a settings file: JSON with comments and trailing commas. Undefined when it is not an object. */
export function parseSettingsText(text: string): Record<string, unknown> | undefined {
  let out = '';
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (char === '"') {
      const start = index;
      for (index++; index < text.length && text[index] !== '"'; index++) if (text[index] === '\\') index++;
      out += text.slice(start, index + 1);
    } else if (char === '/' && text[index + 1] === '/') {
      while (index < text.length && text[index] !== '\n') index++;
      out += '\n';
    } else if (char === '/' && text[index + 1] === '*') {
      const end = text.indexOf('*/', index + 2);
      index = end < 0 ? text.length : end + 1;
      out += ' ';
    } else out += char;
  }
  try {
    const value: unknown = JSON.parse(out.replace(/,(\s*[}\]])/g, '$1'));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The security settings (and the old `apollo.sandbox`) a parsed settings object sets, flat (`apollo.baseUrl`) or nested. */
export function securityKeysIn(settings: Record<string, unknown>): string[] {
  const wanted = [...SECURITY_SETTINGS, LEGACY_SANDBOX_SETTING].map((key) => `apollo.${key}`);
  const found = new Set<string>();
  const walk = (prefix: string, value: Record<string, unknown>) => {
    for (const [key, child] of Object.entries(value)) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (wanted.includes(name)) found.add(name);
      else if (child && typeof child === 'object' && !Array.isArray(child) && wanted.some((candidate) => candidate.startsWith(`${name}.`))) walk(name, child as Record<string, unknown>);
    }
  };
  walk('', settings);
  return wanted.filter((key) => found.has(key));
}

/** Where the open workspace sets security settings: each settings file and the keys it sets. */
export async function workspaceSecurityValues(): Promise<{ file: string; keys: string[] }[]> {
  const found: { file: string; keys: string[] }[] = [];
  const folders = vscode.workspace.workspaceFolders ?? [];
  const read = async (uri: vscode.Uri, label: string, pick: (settings: Record<string, unknown>) => unknown) => {
    if (uri.scheme !== 'file') return;
    const text = await fs.readFile(uri.fsPath, 'utf8').catch(() => undefined);
    const parsed = text === undefined ? undefined : parseSettingsText(text);
    const settings = parsed && pick(parsed);
    const keys = settings && typeof settings === 'object' ? securityKeysIn(settings as Record<string, unknown>) : [];
    if (keys.length) found.push({ file: label, keys });
  };
  for (const folder of folders) {
    const label = folders.length > 1 ? `${folder.name}/.vscode/settings.json` : '.vscode/settings.json';
    await read(vscode.Uri.joinPath(folder.uri, '.vscode', 'settings.json'), label, (settings) => settings);
  }
  const workspaceFile = vscode.workspace.workspaceFile;
  if (workspaceFile) await read(workspaceFile, path.basename(workspaceFile.fsPath), (settings) => settings.settings);
  // A VS Code that does not filter machine-scoped values out of the workspace shows them here.
  const config = vscode.workspace.getConfiguration('apollo', folders[0]?.uri);
  const elsewhere = [...SECURITY_SETTINGS, LEGACY_SANDBOX_SETTING]
    .filter((key) => {
      const inspected = config.inspect(key);
      return inspected?.workspaceValue !== undefined || inspected?.workspaceFolderValue !== undefined;
    })
    .map((key) => `apollo.${key}`)
    .filter((key) => !found.some((entry) => entry.keys.includes(key)));
  if (elsewhere.length) found.push({ file: 'the workspace settings', keys: elsewhere });
  return found;
}

/** The default folder for sampled runs' working copies, shared with the CLI: `<APOLLO_HOME>/runs`. */
export function defaultRunsDir(): string {
  return path.join(apolloHome(), 'runs');
}

/** The extension's storage folder (`context.storageUri`, else `globalStorageUri`), set at activation. */
let extensionStorage: string | undefined;

export function useExtensionStorage(dir: string | undefined): void {
  extensionStorage = dir;
}

/**
 * Where a workspace folder's dataset lives when apollo.datasetPath is not set: outside the
 * workspace, in the extension's storage, `datasets/<workspace key>` (the key the CLI uses under
 * `~/.apollo/datasets`; that folder when there is no extension storage).
 */
export function defaultWorkspaceDataset(workspace: string): string {
  let real = path.resolve(workspace);
  try {
    real = realpathSync(real);
  } catch {
    // not there (yet): keyed by the path given
  }
  return extensionStorage ? path.join(extensionStorage, 'datasets', workspaceKey(real)) : defaultDatasetDir(real);
}

/** The apollo.request.* values that are set; null and absent mean the server's default. */
export function readSampling(config: Pick<vscode.WorkspaceConfiguration, 'get' | 'inspect'>): SamplingOptions | undefined {
  const value = (key: string) => {
    const setting = config.get<unknown>(key);
    return setting === null || setting === undefined ? undefined : setting;
  };
  const sampling: Record<string, unknown> = {};
  for (const [key, setting] of [
    ['temperature', 'request.temperature'],
    ['topP', 'request.topP'],
    ['seed', 'request.seed'],
    ['maxOutputTokens', 'request.maxOutputTokens'],
  ] as const) {
    const setValue = value(setting);
    if (setValue !== undefined) sampling[key] = setValue;
  }
  // A security setting: the user's value only.
  const extra = userValue<unknown>(config, 'request.extra', undefined);
  // An empty object adds nothing; anything else that is not an object is left for the check to name.
  if (extra !== undefined && !(typeof extra === 'object' && !Array.isArray(extra) && Object.keys(extra as object).length === 0)) sampling.extra = extra;
  return Object.keys(sampling).length ? sampling : undefined;
}

/** apollo.maskPolicy, read at once (no secrets involved), the default for an unknown value. */
export function readMaskPolicy(config: Pick<vscode.WorkspaceConfiguration, 'get'> = vscode.workspace.getConfiguration('apollo')): MaskPolicy {
  const policy = config.get<string>('maskPolicy', DEFAULT_MASK_POLICY) as MaskPolicy;
  return MASK_POLICIES.includes(policy) ? policy : DEFAULT_MASK_POLICY;
}

const positive = (value: number | undefined) => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined);

export async function readSettings(secrets: vscode.SecretStorage, workspace: string): Promise<ApolloSettings> {
  const config = vscode.workspace.getConfiguration('apollo');
  const user = <T>(key: SecuritySetting, fallback: T) => userValue<T>(config, key, fallback);
  const endpoint = resolveEndpoint({
    baseUrlSetting: String(user<string>('baseUrl', '')),
    modelSetting: config.get<string>('model', ''),
    storedKey: await secrets.get(API_KEY_SECRET),
    env: process.env,
  });
  const datasetSetting = String(user<string>('datasetPath', '')).trim();
  const judge = config.get<boolean>('judge.enabled', false)
    ? {
        baseUrl: String(user<string>('judge.baseUrl', '')).trim() || endpoint.baseUrl,
        model: config.get<string>('judge.model', '').trim() || endpoint.model,
        apiKey: (await secrets.get(JUDGE_API_KEY_SECRET)) || endpoint.apiKey,
        batchSize: config.get<number>('judge.batchSize', 8),
      }
    : undefined;
  const sampling = readSampling(config);
  return {
    provider: user<string>('provider', 'openai-compatible') === 'vscode-lm' ? 'vscode-lm' : 'openai-compatible',
    ...(sampling ? { sampling } : {}),
    reasoningInContext: config.get<ReasoningInContext>('reasoning.keepInContext', 'auto'),
    maskPolicy: readMaskPolicy(config),
    secretsToModel: user<boolean>('secrets.showToModel', false) === true,
    sandbox: {
      mode: userSandboxMode(config),
      network: user<boolean>('sandbox.network', true) !== false,
      // Read at every check, so "Always Allow" applies at once; a value written into the workspace mid-run never counts.
      allow: () => userAllowList(),
    },
    ...(judge ? { judge } : {}),
    endpoint,
    datasetDir: datasetSetting ? path.resolve(workspace, datasetSetting.replace(/^~(?=$|[\\/])/, os.homedir())) : defaultWorkspaceDataset(workspace),
    maxSteps: config.get<number>('maxSteps', DEFAULT_MAX_STEPS),
    contextBudget: config.get<number>('contextBudget', 0),
    grounding: {
      exclude: (() => {
        const exclude = user<unknown>('grounding.exclude', []);
        return Array.isArray(exclude) ? exclude.filter((pattern): pattern is string => typeof pattern === 'string') : [];
      })(),
      maxFileBytes: Math.round(config.get<number>('grounding.maxFileSizeMb', 10) * 1024 * 1024),
    },
    budget: {
      ...(positive(config.get<number>('budget.maxMinutes', 0)) ? { maxMinutes: config.get<number>('budget.maxMinutes', 0) } : {}),
      ...(positive(config.get<number>('budget.maxTokens', 0)) ? { maxTokens: Math.round(config.get<number>('budget.maxTokens', 0)) } : {}),
    },
    runsDir: (() => {
      const setting = String(user<string>('runsPath', '')).trim();
      return setting ? path.resolve(workspace, setting.replace(/^~(?=$|[\\/])/, os.homedir())) : defaultRunsDir();
    })(),
    sampleCount: Math.max(1, Math.round(config.get<number>('sample.count', 3))),
    concurrency: Math.max(1, Math.round(config.get<number>('sample.concurrency', 3))),
  };
}
