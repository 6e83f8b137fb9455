/** Where the model endpoint comes from: settings first, then the standard OpenAI variables. */
import * as vscode from 'vscode';
import path from 'node:path';
import { defaultDatasetPath } from '../core/dataset/store';
import { DEFAULT_MAX_STEPS } from '../core/session/runSession';
import { DEFAULT_MASK_POLICY, MASK_POLICIES, MaskPolicy } from '../core/supervision/labels';
import type { JudgeOptions } from '../core/supervision/judge';
import type { CommandSandboxOptions } from '../core/agent/tools';
import { resolveEndpoint, ResolvedEndpoint } from './endpoint';

export const API_KEY_SECRET = 'apollo.apiKey';
export const JUDGE_API_KEY_SECRET = 'apollo.judgeApiKey';

export interface ApolloSettings {
  endpoint: ResolvedEndpoint;
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
}

export async function readSettings(secrets: vscode.SecretStorage, workspace: string): Promise<ApolloSettings> {
  const config = vscode.workspace.getConfiguration('apollo');
  const endpoint = resolveEndpoint({
    baseUrlSetting: config.get<string>('baseUrl', ''),
    modelSetting: config.get<string>('model', ''),
    storedKey: await secrets.get(API_KEY_SECRET),
    env: process.env,
  });
  const datasetSetting = config.get<string>('datasetPath', '').trim();
  const maskPolicy = config.get<string>('maskPolicy', DEFAULT_MASK_POLICY) as MaskPolicy;
  const judge = config.get<boolean>('judge.enabled', false)
    ? {
        baseUrl: config.get<string>('judge.baseUrl', '').trim() || endpoint.baseUrl,
        model: config.get<string>('judge.model', '').trim() || endpoint.model,
        apiKey: (await secrets.get(JUDGE_API_KEY_SECRET)) || endpoint.apiKey,
        batchSize: config.get<number>('judge.batchSize', 8),
      }
    : undefined;
  return {
    maskPolicy: MASK_POLICIES.includes(maskPolicy) ? maskPolicy : DEFAULT_MASK_POLICY,
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
  };
}
