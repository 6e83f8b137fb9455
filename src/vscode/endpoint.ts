/** Pure resolution of the model endpoint (unit-tested without VS Code). */
export interface ResolvedEndpoint {
  baseUrl: string;
  model: string;
  apiKey: string;
  /** What is missing, phrased as what to do; undefined when the endpoint is complete. */
  problem?: string;
  /** The action that fixes the problem. */
  fix?: 'openSettings' | 'setApiKey';
}

export function resolveEndpoint(input: {
  baseUrlSetting: string;
  modelSetting: string;
  storedKey: string | undefined;
  env: NodeJS.ProcessEnv;
}): ResolvedEndpoint {
  const baseUrl = input.baseUrlSetting.trim() || input.env.OPENAI_BASE_URL || '';
  const model = input.modelSetting.trim() || input.env.OPENAI_MODEL || '';
  const apiKey = input.storedKey || input.env.OPENAI_API_KEY || '';
  const resolved: ResolvedEndpoint = { baseUrl, model, apiKey };
  if (!baseUrl) {
    return { ...resolved, problem: 'No model endpoint configured: set "apollo.baseUrl" (or OPENAI_BASE_URL).', fix: 'openSettings' };
  }
  if (!model) return { ...resolved, problem: 'No model configured: set "apollo.model" (or OPENAI_MODEL).', fix: 'openSettings' };
  if (!apiKey) {
    return {
      ...resolved,
      problem: 'No API key: run "Apollo: Set API Key" (or set OPENAI_API_KEY). A local server that needs no key accepts any text.',
      fix: 'setApiKey',
    };
  }
  return resolved;
}
