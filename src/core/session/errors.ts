/**
 * What fixes a problem, for a UI to offer as a button: open a setting (after writing `write` to
 * the user's settings, when given), or run a command. The CLI says the same in words.
 */
export type ErrorAction = { label: string; setting: string; write?: { setting: string; value: unknown } } | { label: string; command: string };

/** A problem with what the user asked for or configured; the message says how to fix it, `action` offers the fix. */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly action?: ErrorAction,
  ) {
    super(message);
  }
}

/** Opens the settings at one setting (`apollo.baseUrl`). */
export const openSetting = (setting: string): ErrorAction => ({ label: 'Open Settings', setting });
export const SET_API_KEY: ErrorAction = { label: 'Set API Key', command: 'apollo.setApiKey' };
export const MANAGE_TRUST: ErrorAction = { label: 'Manage Workspace Trust', command: 'workbench.trust.manage' };
/** Back from VS Code's language models to an endpoint: apollo.provider switched, apollo.baseUrl shown. */
export const USE_ENDPOINT: ErrorAction = { label: 'Use an OpenAI-Compatible Endpoint', setting: 'apollo.baseUrl', write: { setting: 'apollo.provider', value: 'openai-compatible' } };
