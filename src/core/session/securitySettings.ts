/**
 * Keeping the security settings the user's: which security settings a workspace sets (Apollo
 * ignores them) and what is said about it, and the move of the old `apollo.sandbox` string to
 * `apollo.sandbox.mode`. The editor reads and writes the files and shows the notices.
 */
import { LEGACY_SANDBOX_SETTING, SECURITY_SETTINGS, type SettingsSource } from './settings';

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

const GUARDED = [...SECURITY_SETTINGS, LEGACY_SANDBOX_SETTING];

/** The security settings (and the old `apollo.sandbox`) a parsed settings object sets, flat (`apollo.baseUrl`) or nested. */
export function securityKeysIn(settings: Record<string, unknown>): string[] {
  const wanted = GUARDED.map((key) => `apollo.${key}`);
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

/** A settings file and the security settings it sets. */
export interface SecurityFinding {
  file: string;
  keys: string[];
}

/** What the workspace's settings files hold: undefined when a file cannot be read. */
export interface WorkspaceSettingsFiles {
  /** Each folder's `.vscode/settings.json`. */
  folders: { name: string; text: string | undefined }[];
  /** The `.code-workspace` file, whose `settings` object holds its settings. */
  workspaceFile?: { name: string; text: string | undefined };
}

const WORKSPACE_SETTINGS = 'the workspace settings';

/**
 * Where the open workspace sets security settings: each settings file and the keys it sets, then
 * the ones only `config` shows as a workspace's (a VS Code that does not filter machine-scoped
 * values out of the workspace).
 */
export function workspaceSecurityValues(files: WorkspaceSettingsFiles, config: Pick<SettingsSource, 'inspect'>): SecurityFinding[] {
  const found: SecurityFinding[] = [];
  const add = (file: string, text: string | undefined, pick: (settings: Record<string, unknown>) => unknown) => {
    const parsed = text === undefined ? undefined : parseSettingsText(text);
    const settings = parsed && pick(parsed);
    const keys = settings && typeof settings === 'object' ? securityKeysIn(settings as Record<string, unknown>) : [];
    if (keys.length) found.push({ file, keys });
  };
  for (const folder of files.folders) add(files.folders.length > 1 ? `${folder.name}/.vscode/settings.json` : '.vscode/settings.json', folder.text, (settings) => settings);
  if (files.workspaceFile) add(files.workspaceFile.name, files.workspaceFile.text, (settings) => settings.settings);
  const elsewhere = GUARDED.filter((key) => {
    const inspected = config.inspect(key);
    return inspected?.workspaceValue !== undefined || inspected?.workspaceFolderValue !== undefined;
  })
    .map((key) => `apollo.${key}`)
    .filter((key) => !found.some((entry) => entry.keys.includes(key)));
  if (elsewhere.length) found.push({ file: WORKSPACE_SETTINGS, keys: elsewhere });
  return found;
}

/**
 * What to say about workspace values of security settings: every key not said before goes to the
 * log, and the first time any is found, one notification names them all.
 */
export class SecurityNotices {
  private warned = false;
  /** The keys already logged, so a file saved again is not logged again. */
  private readonly logged = new Set<string>();

  next(found: readonly SecurityFinding[]): { log?: string; notice?: string } {
    const fresh = found.map((entry) => ({ ...entry, keys: entry.keys.filter((key) => !this.logged.has(`${entry.file}:${key}`)) })).filter((entry) => entry.keys.length);
    if (!fresh.length) return {};
    for (const entry of fresh) for (const key of entry.keys) this.logged.add(`${entry.file}:${key}`);
    const sentence = (entries: readonly SecurityFinding[]) =>
      entries.map((entry) => `${entry.file === WORKSPACE_SETTINGS ? entry.file : `The workspace's ${entry.file}`} sets ${entry.keys.join(', ')}`).join('; ');
    const log = `${sentence(fresh)}; Apollo ignores workspace values of security settings and uses yours.`;
    if (this.warned) return { log };
    this.warned = true;
    return { log, notice: `Apollo: ${sentence(found)}; Apollo ignores workspace values of security settings and uses yours.` };
  }
}

/** The button of the notice, and the command it runs. */
export const OPEN_WORKSPACE_SETTINGS = { label: 'Open Workspace Settings', command: 'workbench.action.openWorkspaceSettingsFile' };

/** What the move of `apollo.sandbox` reads and writes: the user's settings.json (VS Code no longer shows a key it does not know) and the user's values. */
export interface LegacySandboxStore {
  readUserSettings(): PromiseLike<string | undefined>;
  writeUserSettings(text: string): PromiseLike<void>;
  /** The user's value of a setting under `apollo.`. */
  userValue(key: string): unknown;
  /** Writes (undefined: removes) a user value under `apollo.`. */
  updateUser(key: string, value: unknown): PromiseLike<void>;
}

/** Where the move came to: no message when there was nothing to move; `fallback` when the old value could not be moved (it still applies). */
export interface LegacySandboxMove {
  moved: boolean;
  message?: string;
  fallback?: 'auto' | 'off';
}

/** Takes the `"apollo.sandbox": "…"` line out of a settings.json text, leaving the rest as it was. */
export function withoutLegacySandbox(text: string): string {
  const edited = text.replace(/^[ \t]*"apollo\.sandbox"[ \t]*:[ \t]*"(?:[^"\\\n]|\\.)*"[ \t]*,?[ \t]*(?:\/\/[^\n]*)?\r?\n?/m, '');
  if (edited === text) throw new Error('the old key was not found on a line of its own');
  if (parseSettingsText(edited)?.[`apollo.${LEGACY_SANDBOX_SETTING}`] !== undefined) throw new Error('the old key appears more than once');
  return edited;
}

/**
 * A user-level `apollo.sandbox` string becomes `apollo.sandbox.mode` (user level, unless that is
 * set already) and the old key goes. A workspace's old value is ignored like any workspace value
 * of a security setting.
 */
export async function moveLegacySandbox(store: LegacySandboxStore): Promise<LegacySandboxMove> {
  const text = await store.readUserSettings();
  const fromFile = text === undefined ? undefined : parseSettingsText(text)?.[`apollo.${LEGACY_SANDBOX_SETTING}`];
  const fromApi = store.userValue(LEGACY_SANDBOX_SETTING);
  // An object there is the new settings under `apollo.sandbox.*`, not the old string.
  const legacy = typeof fromFile === 'string' ? fromFile : typeof fromApi === 'string' ? fromApi : undefined;
  if (legacy === undefined) return { moved: false };
  const mode = legacy === 'off' ? 'off' : 'auto';
  try {
    if (store.userValue('sandbox.mode') === undefined) await store.updateUser('sandbox.mode', mode);
    if (typeof fromApi === 'string') await store.updateUser(LEGACY_SANDBOX_SETTING, undefined);
    if (typeof fromFile === 'string') {
      const current = await store.readUserSettings();
      if (current === undefined) throw new Error('the user settings file could not be read');
      await store.writeUserSettings(withoutLegacySandbox(current));
    }
  } catch (error) {
    const message = `Could not move apollo.sandbox to apollo.sandbox.mode in your settings: ${(error as Error).message}. Your old value "${legacy}" still applies.`;
    return { moved: false, fallback: mode, message };
  }
  return { moved: true, message: `Apollo: the setting apollo.sandbox is now apollo.sandbox.mode; your value "${legacy}" was moved to it in your user settings.` };
}
