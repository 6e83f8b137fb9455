/** Where the model endpoint comes from: settings first, then the standard OpenAI variables. */
import * as vscode from 'vscode';
import os from 'node:os';
import path from 'node:path';
import { defaultDatasetPath } from '../core/dataset/store';
import { DEFAULT_MAX_STEPS } from '../core/session/runSession';
import { DEFAULT_MASK_POLICY, MASK_POLICIES, MaskPolicy } from '../core/supervision/labels';
import type { JudgeOptions } from '../core/supervision/judge';
import type { CommandSandboxOptions } from '../core/agent/tools';
import type { ReasoningInContext, SamplingOptions } from '../core/dataset/events';
import { resolveEndpoint, ResolvedEndpoint } from './endpoint';

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

/** The default folder for sampled runs' working copies, shared with the CLI. */
export function defaultRunsDir(): string {
  return path.join(os.homedir(), '.apollo', 'runs');
}

/** The apollo.request.* values that are set; null and absent mean the server's default. */
export function readSampling(config: Pick<vscode.WorkspaceConfiguration, 'get'>): SamplingOptions | undefined {
  const value = (key: string) => {
    const setting = config.get<unknown>(key);
    return setting === null || setting === undefined ? undefined : setting;
  };
  const sampling: Record<string, unknown> = {};
  for (const [key, setting] of [['temperature', 'request.temperature'], ['topP', 'request.topP'], ['seed', 'request.seed'], ['maxOutputTokens', 'request.maxOutputTokens']] as const) {
    const setValue = value(setting);
    if (setValue !== undefined) sampling[key] = setValue;
  }
  const extra = value('request.extra');
  // An empty object adds nothing; anything else that is not an object is left for the check to name.
  if (extra !== undefined && !(typeof extra === 'object' && !Array.isArray(extra) && Object.keys(extra as object).length === 0)) sampling.extra = extra;
  return Object.keys(sampling).length ? (sampling as SamplingOptions) : undefined;
}

/** apollo.maskPolicy, read at once (no secrets involved), the default for an unknown value. */
export function readMaskPolicy(config: Pick<vscode.WorkspaceConfiguration, 'get'> = vscode.workspace.getConfiguration('apollo')): MaskPolicy {
  const policy = config.get<string>('maskPolicy', DEFAULT_MASK_POLICY) as MaskPolicy;
  return MASK_POLICIES.includes(policy) ? policy : DEFAULT_MASK_POLICY;
}

const positive = (value: number | undefined) => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined);

export async function readSettings(secrets: vscode.SecretStorage, workspace: string): Promise<ApolloSettings> {
  const config = vscode.workspace.getConfiguration('apollo');
  const endpoint = resolveEndpoint({
    baseUrlSetting: config.get<string>('baseUrl', ''),
    modelSetting: config.get<string>('model', ''),
    storedKey: await secrets.get(API_KEY_SECRET),
    env: process.env,
  });
  const datasetSetting = config.get<string>('datasetPath', '').trim();
  const judge = config.get<boolean>('judge.enabled', false)
    ? {
        baseUrl: config.get<string>('judge.baseUrl', '').trim() || endpoint.baseUrl,
        model: config.get<string>('judge.model', '').trim() || endpoint.model,
        apiKey: (await secrets.get(JUDGE_API_KEY_SECRET)) || endpoint.apiKey,
        batchSize: config.get<number>('judge.batchSize', 8),
      }
    : undefined;
  const sampling = readSampling(config);
  return {
    provider: config.get<string>('provider', 'openai-compatible') === 'vscode-lm' ? 'vscode-lm' : 'openai-compatible',
    ...(sampling ? { sampling } : {}),
    reasoningInContext: config.get<ReasoningInContext>('reasoning.keepInContext', 'auto'),
    maskPolicy: readMaskPolicy(config),
    secretsToModel: config.get<boolean>('secrets.showToModel', false),
    sandbox: {
      mode: config.get<string>('sandbox', 'auto') === 'off' ? 'off' : 'auto',
      network: config.get<boolean>('sandbox.network', true),
      // Read at every check, so "Always Allow" applies at once.
      allow: () => vscode.workspace.getConfiguration('apollo').get<string[]>('sandbox.allow', []).filter((pattern) => typeof pattern === 'string'),
    },
    ...(judge ? { judge } : {}),
    endpoint,
    datasetDir: datasetSetting ? path.resolve(workspace, datasetSetting) : defaultDatasetPath(workspace),
    maxSteps: config.get<number>('maxSteps', DEFAULT_MAX_STEPS),
    contextBudget: config.get<number>('contextBudget', 0),
    grounding: {
      exclude: config.get<string[]>('grounding.exclude', []).filter((pattern) => typeof pattern === 'string'),
      maxFileBytes: Math.round(config.get<number>('grounding.maxFileSizeMb', 10) * 1024 * 1024),
    },
    budget: {
      ...(positive(config.get<number>('budget.maxMinutes', 0)) ? { maxMinutes: config.get<number>('budget.maxMinutes', 0) } : {}),
      ...(positive(config.get<number>('budget.maxTokens', 0)) ? { maxTokens: Math.round(config.get<number>('budget.maxTokens', 0)) } : {}),
    },
    runsDir: (() => {
      const setting = config.get<string>('runsPath', '').trim();
      return setting ? path.resolve(workspace, setting.replace(/^~(?=$|[\\/])/, os.homedir())) : defaultRunsDir();
    })(),
    sampleCount: Math.max(1, Math.round(config.get<number>('sample.count', 3))),
    concurrency: Math.max(1, Math.round(config.get<number>('sample.concurrency', 3))),
  };
}
