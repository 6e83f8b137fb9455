/**
 * Keeps the security settings the user's: moves the old `apollo.sandbox` string to
 * `apollo.sandbox.mode`, and says (once per window, and in the log) when the workspace sets a
 * security setting that Apollo ignores. What is moved and said is core/session/securitySettings.ts.
 */
import * as vscode from 'vscode';
import { moveLegacySandbox, OPEN_WORKSPACE_SETTINGS, SecurityNotices } from '../core/session/securitySettings';
import { setLegacySandboxFallback, workspaceSecurityValues } from './settings';

export class SettingsGuard implements vscode.Disposable {
  /** The notifications this guard showed, in order (the test API reads them). */
  readonly notices: string[] = [];
  private readonly said = new SecurityNotices();
  private migrating: Promise<void> | undefined;
  private checking: Promise<void> = Promise.resolve();
  private readonly disposables: vscode.Disposable[] = [];
  private watchers: vscode.Disposable[] = [];

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
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        // VS Code may not report a key it no longer knows, so any change to Apollo's settings looks again.
        if (event.affectsConfiguration('apollo')) void this.migrateLegacySandbox();
        if (event.affectsConfiguration('apollo')) void this.checkWorkspace();
      }),
      vscode.workspace.onDidChangeWorkspaceFolders(() => {
        this.watchSettingsFiles();
        void this.checkWorkspace();
      }),
    );
    this.watchSettingsFiles();
  }

  /** The workspace settings files: the agent can write them mid-run, and VS Code may not report a machine-scoped value. */
  private watchSettingsFiles(): void {
    for (const watcher of this.watchers) watcher.dispose();
    const check = () => void this.checkWorkspace();
    const patterns: vscode.GlobPattern[] = (vscode.workspace.workspaceFolders ?? []).map((folder) => new vscode.RelativePattern(folder, '.vscode/settings.json'));
    const workspaceFile = vscode.workspace.workspaceFile;
    if (workspaceFile?.scheme === 'file') patterns.push(new vscode.RelativePattern(vscode.Uri.joinPath(workspaceFile, '..'), workspaceFile.path.split('/').pop()!));
    this.watchers = patterns.map((pattern) => {
      const watcher = vscode.workspace.createFileSystemWatcher(pattern);
      watcher.onDidCreate(check);
      watcher.onDidChange(check);
      return watcher;
    });
  }

  /** Moves a user-level `apollo.sandbox` string to `apollo.sandbox.mode`; a workspace's is ignored. */
  migrateLegacySandbox(): Promise<void> {
    this.migrating ??= this.migrate().finally(() => (this.migrating = undefined));
    return this.migrating;
  }

  private async migrate(): Promise<void> {
    const config = vscode.workspace.getConfiguration('apollo');
    const file = this.userSettings;
    const move = await moveLegacySandbox({
      readUserSettings: async () =>
        file
          ? vscode.workspace.fs.readFile(file).then(
              (bytes) => new TextDecoder().decode(bytes),
              () => undefined,
            )
          : undefined,
      writeUserSettings: (text) => vscode.workspace.fs.writeFile(file!, new TextEncoder().encode(text)),
      userValue: (key) => config.inspect<unknown>(key)?.globalValue,
      updateUser: (key, value) => config.update(key, value, vscode.ConfigurationTarget.Global),
    });
    if (!move.message) return;
    // The old user value still applies (settings.ts) until it can be moved.
    setLegacySandboxFallback(move.fallback);
    if (!move.moved) return this.log.warn(move.message);
    this.log.info(move.message);
    this.notices.push(move.message);
    void vscode.window.showInformationMessage(move.message);
  }

  /** Says once per window when the workspace sets security settings, naming them and the file; logs every new one. */
  checkWorkspace(): Promise<void> {
    this.checking = this.checking.then(() => this.check()).catch((error) => this.log.warn(`Could not read the workspace settings: ${(error as Error).message}`));
    return this.checking;
  }

  private async check(): Promise<void> {
    const { log, notice } = this.said.next(await workspaceSecurityValues());
    if (log) this.log.warn(log);
    if (!notice) return;
    this.notices.push(notice);
    void vscode.window.showWarningMessage(notice, OPEN_WORKSPACE_SETTINGS.label).then((choice) => {
      if (choice === OPEN_WORKSPACE_SETTINGS.label) void vscode.commands.executeCommand(OPEN_WORKSPACE_SETTINGS.command);
    });
  }

  dispose(): void {
    for (const disposable of [...this.disposables, ...this.watchers]) disposable.dispose();
  }
}
