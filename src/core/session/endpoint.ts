/** Pure resolution of the model endpoint (unit-tested without VS Code). */
import { openSetting, SET_API_KEY, type ErrorAction } from './errors';

export interface ResolvedEndpoint {
  baseUrl: string;
  model: string;
  apiKey: string;
  /** What is missing, phrased as what to do; undefined when the endpoint is complete. */
  problem?: string;
  /** The action that fixes the problem. */
  action?: ErrorAction;
}

export function resolveEndpoint(input: { baseUrlSetting: string; modelSetting: string; storedKey: string | undefined; env: NodeJS.ProcessEnv }): ResolvedEndpoint {
  const baseUrl = input.baseUrlSetting.trim() || input.env.OPENAI_BASE_URL || '';
  const model = input.modelSetting.trim() || input.env.OPENAI_MODEL || '';
  const apiKey = input.storedKey || input.env.OPENAI_API_KEY || '';
  const resolved: ResolvedEndpoint = { baseUrl, model, apiKey };
  if (!baseUrl) {
    return { ...resolved, problem: 'No model endpoint configured: set "apollo.baseUrl" (or OPENAI_BASE_URL).', action: openSetting('apollo.baseUrl') };
  }
  if (!model) return { ...resolved, problem: 'No model configured: set "apollo.model" (or OPENAI_MODEL).', action: openSetting('apollo.model') };
  if (!apiKey) {
    return {
      ...resolved,
      problem: 'No API key: run "Apollo: Set API Key" (or set OPENAI_API_KEY). A local server that needs no key accepts any text.',
      action: SET_API_KEY,
    };
  }
  return resolved;
}
