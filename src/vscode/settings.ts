/** Where the model endpoint comes from: settings first, then the standard OpenAI variables. */
import * as vscode from 'vscode';
import path from 'node:path';
import { defaultDatasetPath } from '../core/dataset/store';
import { DEFAULT_MAX_STEPS } from '../core/session/runSession';
import { resolveEndpoint, ResolvedEndpoint } from './endpoint';

export const API_KEY_SECRET = 'apollo.apiKey';

export interface ApolloSettings {
  endpoint: ResolvedEndpoint;
  datasetDir: string;
  maxSteps: number;
  /** 0: derived from the model's context window. */
  contextBudget: number;
  grounding: { exclude: string[]; maxFileBytes: number };
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
  return {
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
