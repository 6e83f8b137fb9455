/** Composition root: builds the services, registers the commands and the Intervention panel. */
import * as vscode from 'vscode';
import { runExportCommand } from './core/export/exportCommand';
import { useEditorModels } from './core/session/chatModels';
import { askTask, collectGarbageCommand, labelArgs, numberArg, pickRecordedRun, revealDataset, stepArg, storeKey, stringArg } from './core/session/editorCommands';
import { offerLegacyMerge } from './core/session/legacyMerge';
import type { RunSession } from './core/session/runSession';
import type { HostToWebview, LiveRunItem } from './protocol';
import { SNAPSHOT_SCHEME, SnapshotContentProvider } from './vscode/diffProvider';
import { availableChatModels, trackChatModels } from './vscode/languageModels';
import { PANEL_VIEW_ID, PanelProvider } from './vscode/panelProvider';
import { RunController } from './vscode/runController';
import { readSettings, useExtensionStorage } from './vscode/settings';
import { SettingsGuard } from './vscode/settingsGuard';
import { runTaskSuite } from './vscode/taskSuiteCommand';
import * as commands from './vscode/vscodeApis/commands';
import * as window from './vscode/vscodeApis/window';
import * as workspace from './vscode/vscodeApis/workspace';

/** Returned by `activate`, so integration tests can drive the panel's message channel. */
export interface ApolloApi {
  readonly panel: {
    receive(message: unknown): Promise<void>;
    onDidPost(listener: (message: HostToWebview) => void): vscode.Disposable;
  };
  currentSession(): RunSession | undefined;
  /** Every session started or resumed in this window. */
  sessions(): RunSession[];
  /** The window's runs, most in need of the annotator first, as the panel lists them. */
  liveRuns(): LiveRunItem[];
  /** What Apollo said about settings: ignored workspace values of security settings, migrations. */
  settingsNotices(): readonly string[];
  /** Moves an old user-level `apollo.sandbox` value to `apollo.sandbox.mode` (also done at activation and when it changes). */
  migrateSettings(): Promise<void>;
  /** The "Always Allow" answer to a command question: adds the pattern to the user's own apollo.sandbox.allow. */
  alwaysAllow(pattern: string): Promise<void>;
  /** The dataset folder of the open workspace folder, as the settings name it (the extension's storage by default). */
  datasetDir(): Promise<string | undefined>;
}

export function activate(context: vscode.ExtensionContext): ApolloApi {
  const log = vscode.window.createOutputChannel('Apollo', { log: true });
  // Datasets default to the extension's storage, outside the workspace.
  useExtensionStorage((context.storageUri ?? context.globalStorageUri).fsPath);
  // The user's settings.json sits two folders above the extension's global storage.
  const guard = new SettingsGuard(log, vscode.Uri.joinPath(context.globalStorageUri, '..', '..', 'settings.json'));
  const controller = new RunController(context.secrets, log, guard);
  const panel = new PanelProvider(context.extensionUri, (message) => void controller.receive(message));
  controller.attachPanel(panel);

  /** The open workspace folder and its settings; undefined (after saying why) without one. */
  const folderSettings = () =>
    controller.openWorkspace({ folder: 'the dataset belongs to a workspace folder.' }).catch((error: unknown) => {
      controller.report(error);
      return undefined;
    });
  /** The dataset folder the settings name for the open workspace. */
  const configuredDatasetDir = async (): Promise<string | undefined> => (await folderSettings())?.settings.datasetDir;
  const firstFolder = vscode.workspace.workspaceFolders?.[0];
  if (firstFolder) {
    void readSettings(context.secrets, firstFolder.uri.fsPath)
      .then((settings) => offerLegacyMerge(firstFolder.uri.fsPath, settings.datasetDir, window, log))
      .catch((error: Error) => log.warn(`Could not look for runs left in the workspace by earlier versions: ${error.message}`));
  }

  /** Every command by its id; the arguments come from keybindings, tests and other extensions, unchecked. */
  const handlers: Record<string, (...args: unknown[]) => unknown> = {
    // The walkthrough's "use the models VS Code has": switches apollo.provider when there are some.
    'apollo.useVsCodeModels': async () => useEditorModels(await availableChatModels(), () => workspace.updateUserSetting('apollo.provider', 'vscode-lm'), window),
    'apollo.startRun': async (taskArgument) => {
      const task = await askTask(window, taskArgument);
      return task === undefined ? undefined : (await controller.startRun(task))?.runId;
    },
    'apollo.sampleRuns': async (task, count) => {
      const sampling = await controller.sampleRuns(stringArg(task), numberArg(count));
      return sampling && { taskId: sampling.taskId };
    },
    'apollo.runTaskSuite': async (folder, count) => {
      const suite = await runTaskSuite(controller, stringArg(folder), numberArg(count));
      return suite && { tasks: suite.tasks.map(({ task, sampling }) => ({ name: task.name, taskId: sampling.taskId })), refused: suite.refused };
    },
    'apollo.adoptRun': (runId) => controller.adoptRun(stringArg(runId)),
    'apollo.nextRunNeedingAttention': () => controller.focusNeediestRun(),
    'apollo.injectHint': (text, kind, urgency, runId) => controller.injectHintCommand(text, kind, urgency, runId),
    'apollo.pauseRun': () => controller.pause(),
    'apollo.resumeRun': (runId) => controller.resume(stringArg(runId)),
    'apollo.stopRun': () => controller.stop(),
    'apollo.rewindRun': (step) => controller.rewind(stepArg(step)),
    'apollo.nextFlaggedStep': () => controller.focusNextFlag(),
    'apollo.openRun': async (runId) => {
      if (typeof runId === 'string') return controller.openRun(runId);
      const datasetDir = await configuredDatasetDir();
      const picked = datasetDir === undefined ? undefined : await pickRecordedRun(datasetDir, window);
      if (picked === undefined) return undefined;
      await commands.executeCommand('apollo.panel.focus');
      return controller.openRun(picked);
    },
    'apollo.labelStep': (step, label, axis, reason) => controller.labelWithPrompts(labelArgs(step, label, axis, reason)),
    'apollo.setApiKey': () => storeKey(window, context.secrets, 'agent'),
    'apollo.setJudgeApiKey': () => storeKey(window, context.secrets, 'judge'),
    'apollo.exportDataset': async (request) => {
      const opened = await folderSettings();
      const options = opened && { datasetDir: opened.settings.datasetDir, workspace: opened.folder, policy: opened.settings.maskPolicy, request };
      return options && runExportCommand({ ...window, revealFile: commands.revealFile }, log, options);
    },
    'apollo.openDataset': async () => {
      const datasetDir = await configuredDatasetDir();
      if (datasetDir !== undefined) await revealDataset(datasetDir, { ...window, revealFile: commands.revealFile });
    },
    'apollo.collectGarbage': async () => {
      const datasetDir = await configuredDatasetDir();
      return datasetDir === undefined ? undefined : collectGarbageCommand(datasetDir, window);
    },
  };

  context.subscriptions.push(
    log,
    guard,
    controller,
    vscode.window.registerWebviewViewProvider(PANEL_VIEW_ID, panel),
    vscode.workspace.registerTextDocumentContentProvider(SNAPSHOT_SCHEME, new SnapshotContentProvider()),
    trackChatModels(),
    ...Object.entries(handlers).map(([id, handler]) => vscode.commands.registerCommand(id, handler)),
  );

  guard.start();

  return {
    panel: {
      receive: (message) => controller.receive(message),
      onDidPost: (listener) => controller.onDidPost(listener),
    },
    currentSession: () => controller.currentSession(),
    sessions: () => controller.sessions(),
    liveRuns: () => controller.liveRuns(),
    settingsNotices: () => [...guard.notices],
    migrateSettings: () => guard.migrateLegacySandbox(),
    alwaysAllow: (pattern) => controller.alwaysAllow(pattern),
    datasetDir: configuredDatasetDir,
  };
}

export function deactivate(): void {
  // Disposables registered on the context stop the run and release everything.
}
