/** Composition root: builds the services, registers the commands and the Intervention panel. */
import * as vscode from 'vscode';
import { promises as fs } from 'node:fs';
import { LABEL_AXES, LABEL_VALUES, type LabelAxis, type LabelValue } from './core/dataset/events';
import type { LiveRunItem } from './protocol';
import type { RunSession } from './core/session/runSession';
import type { HostToWebview } from './protocol';
import { SNAPSHOT_SCHEME, SnapshotContentProvider } from './vscode/diffProvider';
import { PANEL_VIEW_ID, PanelProvider } from './vscode/panelProvider';
import { RunController } from './vscode/runController';
import { readSettings, useExtensionStorage } from './vscode/settings';
import { API_KEY_SECRET, JUDGE_API_KEY_SECRET } from './core/session/settings';
import { offerLegacyMerge } from './core/session/legacyMerge';
import { runTaskSuite } from './vscode/taskSuiteCommand';
import { runExportCommand } from './core/export/exportCommand';
import * as commands from './vscode/vscodeApis/commands';
import * as window from './vscode/vscodeApis/window';
import { DatasetStore } from './core/dataset/store';
import { collectGarbage, formatGarbageReport } from './core/session/gc';
import { availableChatModels, trackChatModels } from './vscode/languageModels';
import { SettingsGuard } from './vscode/settingsGuard';

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

  /** Asks for a key and keeps it in VS Code's secret storage. */
  const storeKey = async (secret: string, title: string, what: string): Promise<void> => {
    const key = await vscode.window.showInputBox({
      title,
      prompt: "Stored in VS Code's secret storage, never in settings or the dataset.",
      password: true,
      ignoreFocusOut: true,
      validateInput: (value) => (value.trim() ? undefined : 'The key is empty.'),
    });
    if (key === undefined) return;
    await context.secrets.store(secret, key.trim());
    void vscode.window.showInformationMessage(`Apollo: ${what} saved.`);
  };

  context.subscriptions.push(
    log,
    guard,
    controller,
    vscode.window.registerWebviewViewProvider(PANEL_VIEW_ID, panel),
    vscode.workspace.registerTextDocumentContentProvider(SNAPSHOT_SCHEME, new SnapshotContentProvider()),
    trackChatModels(),

    // The walkthrough's "use the models VS Code has": switches apollo.provider when there are some.
    vscode.commands.registerCommand('apollo.useVsCodeModels', async () => {
      const models = await availableChatModels();
      if (!models.length) {
        void vscode.window.showWarningMessage(
          'Apollo: VS Code has no language models yet. Install and sign in to an extension that provides them (e.g. GitHub Copilot Chat), or use an OpenAI-compatible endpoint.',
        );
        return 0;
      }
      await vscode.workspace.getConfiguration('apollo').update('provider', 'vscode-lm', vscode.ConfigurationTarget.Global);
      const names =
        models
          .slice(0, 5)
          .map((model) => model.name)
          .join(', ') + (models.length > 5 ? `, and ${models.length - 5} more` : '');
      void vscode.window.showInformationMessage(
        `Apollo: runs now use VS Code's language models (${models.length} found: ${names}). A run asks which one, unless apollo.model names one by id or family.`,
      );
      return models.length;
    }),

    vscode.commands.registerCommand('apollo.startRun', async (taskArgument?: unknown) => {
      let task = typeof taskArgument === 'string' ? taskArgument : undefined;
      if (task === undefined) {
        task = await vscode.window.showInputBox({
          title: 'Apollo: Start Run',
          prompt: 'What should the agent do in this workspace?',
          placeHolder: 'e.g. Make the failing test in tests/ pass',
          ignoreFocusOut: true,
          validateInput: (value) => (value.trim() ? undefined : 'Describe the task.'),
        });
        if (task === undefined) return undefined;
      }
      return (await controller.startRun(task))?.runId;
    }),

    vscode.commands.registerCommand('apollo.sampleRuns', async (taskArgument?: unknown, countArgument?: unknown) => {
      const task = typeof taskArgument === 'string' ? taskArgument : undefined;
      const count = typeof countArgument === 'number' ? countArgument : undefined;
      const sampling = await controller.sampleRuns(task, count);
      return sampling && { taskId: sampling.taskId };
    }),
    vscode.commands.registerCommand('apollo.runTaskSuite', async (folderArgument?: unknown, countArgument?: unknown) => {
      const suite = await runTaskSuite(controller, typeof folderArgument === 'string' ? folderArgument : undefined, typeof countArgument === 'number' ? countArgument : undefined);
      return suite && { tasks: suite.tasks.map(({ task, sampling }) => ({ name: task.name, taskId: sampling.taskId })), refused: suite.refused };
    }),
    vscode.commands.registerCommand('apollo.adoptRun', (runId?: unknown) => controller.adoptRun(typeof runId === 'string' ? runId : undefined)),
    vscode.commands.registerCommand('apollo.nextRunNeedingAttention', () => controller.focusNeediestRun()),

    vscode.commands.registerCommand('apollo.injectHint', (text?: unknown, kind?: unknown, urgency?: unknown, runId?: unknown) => controller.injectHintCommand(text, kind, urgency, runId)),

    vscode.commands.registerCommand('apollo.pauseRun', () => controller.pause()),
    vscode.commands.registerCommand('apollo.resumeRun', (runId?: unknown) => controller.resume(typeof runId === 'string' ? runId : undefined)),
    vscode.commands.registerCommand('apollo.stopRun', () => controller.stop()),
    vscode.commands.registerCommand('apollo.rewindRun', (step?: unknown) => controller.rewind(typeof step === 'number' && Number.isInteger(step) && step >= 1 ? step : undefined)),

    vscode.commands.registerCommand('apollo.nextFlaggedStep', () => controller.focusNextFlag()),
    vscode.commands.registerCommand('apollo.openRun', async (runId?: unknown) => {
      if (typeof runId === 'string') return controller.openRun(runId);
      const datasetDir = await configuredDatasetDir();
      if (!datasetDir) return undefined;
      const runs = await new DatasetStore(datasetDir).listRuns();
      if (!runs.length) {
        void vscode.window.showInformationMessage('Apollo: no runs recorded yet in this workspace.');
        return undefined;
      }
      const picked = await vscode.window.showQuickPick(
        runs.map((run) => ({
          label: run.task.split('\n')[0].slice(0, 80),
          description: `${run.status} · ${run.steps} steps`,
          detail: `${run.id} · ${run.createdAt.slice(0, 16).replace('T', ' ')}`,
          id: run.id,
        })),
        { title: 'Apollo: Open Run', matchOnDescription: true, matchOnDetail: true },
      );
      if (!picked) return undefined;
      await vscode.commands.executeCommand('apollo.panel.focus');
      return controller.openRun(picked.id);
    }),
    vscode.commands.registerCommand('apollo.labelStep', (step?: unknown, label?: unknown, axis?: unknown, reason?: unknown) =>
      controller.labelWithPrompts({
        step: typeof step === 'number' && Number.isInteger(step) && step >= 1 ? step : undefined,
        label: LABEL_VALUES.includes(label as LabelValue) ? (label as LabelValue) : undefined,
        axis: LABEL_AXES.includes(axis as LabelAxis) ? (axis as LabelAxis) : undefined,
        reason: typeof reason === 'string' ? reason : undefined,
      }),
    ),

    vscode.commands.registerCommand('apollo.setApiKey', () => storeKey(API_KEY_SECRET, 'Apollo: Set API Key', 'API key')),
    vscode.commands.registerCommand('apollo.setJudgeApiKey', () => storeKey(JUDGE_API_KEY_SECRET, 'Apollo: Set Judge API Key', 'judge API key')),

    vscode.commands.registerCommand('apollo.exportDataset', async (request?: unknown) => {
      const opened = await folderSettings();
      if (!opened) return undefined;
      return runExportCommand({ ...window, revealFile: commands.revealFile }, log, { datasetDir: opened.settings.datasetDir, workspace: opened.folder, policy: opened.settings.maskPolicy, request });
    }),

    vscode.commands.registerCommand('apollo.openDataset', async () => {
      const datasetDir = await configuredDatasetDir();
      if (!datasetDir) return;
      const exists = await fs.stat(datasetDir).then(
        (stat) => stat.isDirectory(),
        () => false,
      );
      if (!exists) {
        void vscode.window.showInformationMessage(`No dataset yet: the first run creates ${datasetDir}.`);
        return;
      }
      await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(datasetDir));
    }),

    vscode.commands.registerCommand('apollo.collectGarbage', async () => {
      const datasetDir = await configuredDatasetDir();
      if (!datasetDir) return undefined;
      try {
        const report = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Apollo: reclaiming the snapshot space of deleted runs…' }, () =>
          collectGarbage(datasetDir),
        );
        void vscode.window.showInformationMessage(`Apollo: ${formatGarbageReport(report).trim().replace(/\n/g, ' ')}`);
        return report;
      } catch (error) {
        void vscode.window.showErrorMessage(`Apollo: ${(error as Error).message}`);
        return undefined;
      }
    }),
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
