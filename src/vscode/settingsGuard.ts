/**
 * Keeps the security settings the user's: moves the old `apollo.sandbox` string to
 * `apollo.sandbox.mode`, and says (once per window, and in the log) when the workspace sets a
 * security setting that Apollo ignores. The values themselves are read in settings.ts.
 */
import * as vscode from 'vscode';
import { LEGACY_SANDBOX_SETTING, parseSettingsText, setLegacySandboxFallback, workspaceSecurityValues } from './settings';

export class SettingsGuard implements vscode.Disposable {
  /** The notifications this guard showed, in order (the test API reads them). */
  readonly notices: string[] = [];
  private warned = false;
  /** The keys already logged, so a file saved again is not logged again. */
  private readonly logged = new Set<string>();
  private migrating: Promise<void> | undefined;
  private checking: Promise<void> = Promise.resolve();
  private readonly disposables: vscode.Disposable[] = [];

  /**
   * @param userSettings the user's settings.json: VS Code no longer knows `apollo.sandbox`, so it
   * does not show its old value through the API; the migration reads and edits the file.
   */
  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly userSettings?: vscode.Uri,
  ) {}

  /** Migrates now and checks the workspace, then watches both. */
  start(): void {
    void this.migrateLegacySandbox();
    void this.checkWorkspace();
    const check = () => void this.checkWorkspace();
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        // VS Code may not report a key it no longer knows, so any change to Apollo's settings looks again.
        if (event.affectsConfiguration('apollo')) void this.migrateLegacySandbox();
        if (event.affectsConfiguration('apollo')) check();
      }),
      vscode.workspace.onDidChangeWorkspaceFolders(() => {
        this.watchSettingsFiles();
        check();
      }),
    );
    this.watchSettingsFiles();
  }

  private watchers: vscode.Disposable[] = [];

  /** The workspace settings files: the agent can write them mid-run, and VS Code may not report a machine-scoped value. */
  private watchSettingsFiles(): void {
    for (const watcher of this.watchers) watcher.dispose();
    this.watchers = [];
    const check = () => void this.checkWorkspace();
    const patterns: vscode.GlobPattern[] = (vscode.workspace.workspaceFolders ?? []).map((folder) => new vscode.RelativePattern(folder, '.vscode/settings.json'));
    const workspaceFile = vscode.workspace.workspaceFile;
    if (workspaceFile?.scheme === 'file') patterns.push(new vscode.RelativePattern(vscode.Uri.joinPath(workspaceFile, '..'), workspaceFile.path.split('/').pop()!));
    for (const pattern of patterns) {
      const watcher = vscode.workspace.createFileSystemWatcher(pattern);
      watcher.onDidCreate(check);
      watcher.onDidChange(check);
      this.watchers.push(watcher);
    }
  }

  /**
   * A user-level `apollo.sandbox` string becomes `apollo.sandbox.mode` (user level) and the old
   * key goes. A workspace's old value is ignored like any workspace value of a security setting.
   */
  migrateLegacySandbox(): Promise<void> {
    this.migrating ??= this.migrate().finally(() => (this.migrating = undefined));
    return this.migrating;
  }

  private async migrate(): Promise<void> {
    const config = vscode.workspace.getConfiguration('apollo');
    const text = await this.readUserSettings();
    const fromFile = text === undefined ? undefined : parseSettingsText(text)?.[`apollo.${LEGACY_SANDBOX_SETTING}`];
    const fromApi = config.inspect<unknown>(LEGACY_SANDBOX_SETTING)?.globalValue;
    // An object there is the new settings under `apollo.sandbox.*`, not the old string.
    const legacy = typeof fromFile === 'string' ? fromFile : typeof fromApi === 'string' ? fromApi : undefined;
    if (legacy === undefined) return;
    const mode = legacy === 'off' ? 'off' : 'auto';
    try {
      if (config.inspect<unknown>('sandbox.mode')?.globalValue === undefined) await config.update('sandbox.mode', mode, vscode.ConfigurationTarget.Global);
      if (typeof fromApi === 'string') await config.update(LEGACY_SANDBOX_SETTING, undefined, vscode.ConfigurationTarget.Global);
      if (typeof fromFile === 'string') await this.removeFromUserSettings();
    } catch (error) {
      // The old user value still applies (settings.ts) until it can be moved.
      setLegacySandboxFallback(mode);
      this.log.warn(`Could not move apollo.sandbox to apollo.sandbox.mode in your settings: ${(error as Error).message}. Your old value "${legacy}" still applies.`);
      return;
    }
    setLegacySandboxFallback(undefined);
    const message = `Apollo: the setting apollo.sandbox is now apollo.sandbox.mode; your value "${legacy}" was moved to it in your user settings.`;
    this.log.info(message);
    this.notices.push(message);
    void vscode.window.showInformationMessage(message);
  }

  private async readUserSettings(): Promise<string | undefined> {
    if (!this.userSettings) return undefined;
    try {
      return new TextDecoder().decode(await vscode.workspace.fs.readFile(this.userSettings));
    } catch {
      return undefined;
    }
  }

  /** Takes the `"apollo.sandbox": "…"` line out of the user's settings.json, leaving the rest as it was. */
  private async removeFromUserSettings(): Promise<void> {
    const text = await this.readUserSettings();
    if (text === undefined || !this.userSettings) throw new Error('the user settings file could not be read');
    const edited = text.replace(/^[ \t]*"apollo\.sandbox"[ \t]*:[ \t]*"(?:[^"\\\n]|\\.)*"[ \t]*,?[ \t]*(?:\/\/[^\n]*)?\r?\n?/m, '');
    if (edited === text) throw new Error('the old key was not found on a line of its own');
    const stillThere = parseSettingsText(edited)?.[`apollo.${LEGACY_SANDBOX_SETTING}`];
    if (stillThere !== undefined) throw new Error('the old key appears more than once');
    await vscode.workspace.fs.writeFile(this.userSettings, new TextEncoder().encode(edited));
  }

  /** Says once per window when the workspace sets security settings, naming them and the file; logs every new one. */
  checkWorkspace(): Promise<void> {
    this.checking = this.checking.then(() => this.check()).catch((error) => this.log.warn(`Could not read the workspace settings: ${(error as Error).message}`));
    return this.checking;
  }

  private async check(): Promise<void> {
    const found = await workspaceSecurityValues();
    const fresh = found.map((entry) => ({ ...entry, keys: entry.keys.filter((key) => !this.logged.has(`${entry.file}:${key}`)) })).filter((entry) => entry.keys.length);
    if (!fresh.length) return;
    for (const entry of fresh) for (const key of entry.keys) this.logged.add(`${entry.file}:${key}`);
    const sentence = (entries: typeof found) =>
      entries.map((entry) => `${entry.file === 'the workspace settings' ? entry.file : `The workspace's ${entry.file}`} sets ${entry.keys.join(', ')}`).join('; ');
    const message = `${sentence(fresh)}; Apollo ignores workspace values of security settings and uses yours.`;
    this.log.warn(message);
    if (this.warned) return;
    this.warned = true;
    const notice = `Apollo: ${sentence(found)}; Apollo ignores workspace values of security settings and uses yours.`;
    this.notices.push(notice);
    void vscode.window.showWarningMessage(notice, 'Open Workspace Settings').then((choice) => {
      if (choice === 'Open Workspace Settings') void vscode.commands.executeCommand('workbench.action.openWorkspaceSettingsFile');
    });
  }

  dispose(): void {
    for (const disposable of [...this.disposables, ...this.watchers]) disposable.dispose();
  }
}
