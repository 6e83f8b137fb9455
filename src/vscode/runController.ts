/**
 * Owns the runs going on in the window: starts them from settings (one on the workspace, or N
 * sampled runs in working copies), keeps a timeline of each, forwards the events of the run the
 * panel shows as protocol messages, orders the live runs by how much they need the annotator,
 * and carries out what the panel and the commands ask — always on one run.
 */
import * as vscode from 'vscode';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { stepGrounding, type DatasetEvent, type HintKind, type HintUrgency, type LabelAxis, type LabelValue, type RewindEvent, type RunAdoptedEvent, type StepEvent } from '../core/dataset/events';
import { DatasetStore } from '../core/dataset/store';
import { shadowStoreDir } from '../core/grounding/shadowStore';
import { ConfigError, RunSession, SessionOptions, validateSampling } from '../core/session/runSession';
import type { ChatModelClient } from '../core/agent/modelClient';
import { REASONING_IN_CONTEXT } from '../core/dataset/events';
import { previewRewind, rewindRun } from '../core/session/rewind';
import { firstLine, plural } from '../core/text';
import { AttentionFlag, orderByNeed } from '../core/supervision/attention';
import { ConcurrencyLimit, Sampling, startSampling } from '../core/session/sample';
import { AdoptPreview, adoptRefusal, adoptRun, previewAdopt } from '../core/session/adopt';
import type { CommandApprovalRequest } from '../core/agent/tools';
import { HostToWebview, LiveRunItem, parseWebviewMessage, StepDetail } from '../protocol';
import { openStepDiff, SnapshotContentProvider } from './diffProvider';
import { ApolloSettings, readMaskPolicy, readSettings, userAllowList } from './settings';
import type { SettingsGuard } from './settingsGuard';
import { LanguageModelClient, VSCODE_LM_PROVIDER } from './languageModelClient';
import { NO_CHAT_MODELS, pickChatModel } from './languageModels';
import { stepDetail, TimelineModel, toTimelineStep } from './timeline';

export interface PanelChannel {
  post(message: HostToWebview): void;
  /** The number on the view's icon: steps that need the annotator. */
  setBadge?(value: number, tooltip: string): void;
}

/** The run the panel shows: a live session's, or a past run opened for reading. */
interface ViewedRun {
  runId: string;
  store: DatasetStore;
  model: TimelineModel;
  /** Set for a run started or resumed in this window. */
  session?: RunSession;
}

/** A run started or resumed in this window; its timeline is kept current whether shown or not. */
interface LiveRun {
  session: RunSession;
  model: TimelineModel;
  subscription: { dispose(): void };
  /** A sampled run's place among the runs of its task. */
  sample?: { taskId: string; index: number; count: number };
}

/** More runs of one task than this is a batch job for the CLI, not a window's worth to supervise. */
const MAX_SAMPLES = 20;

/** A task in a message or a pick list: its first line, at most 80 characters. */
const taskLine = (text: string) => firstLine(text, 80);

/** The model a run talks to: an OpenAI-compatible endpoint, or a client VS Code serves (no URL or key). */
interface ModelChoice {
  model: string;
  baseUrl: string;
  apiKey: string;
  client?: ChatModelClient;
}

export class RunController implements vscode.Disposable {
  private readonly live = new Map<string, LiveRun>();
  /** The session started or resumed last, for callers that want "the" run (tests, the API). */
  private lastStarted: RunSession | undefined;
  private viewed: ViewedRun | undefined;
  /** Runs beyond this many at once wait their turn (apollo.sample.concurrency). */
  private limit: ConcurrencyLimit | undefined;
  private liveListTimer: ReturnType<typeof setTimeout> | undefined;
  /** The conflicts the panel last showed in an adopt preview: a confirmation overwrites only those. */
  private adoptPreviewed: { runId: string; conflicts: Set<string> } | undefined;
  /** The user's edits the panel last showed in a rewind preview: a confirmation covers only those. */
  private previewed: { runId: string; step: number; userEdits: Set<string> } | undefined;
  private sandboxWarned = false;
  private readonly posted = new vscode.EventEmitter<HostToWebview>();
  readonly onDidPost = this.posted.event;
  private readonly statusBar: vscode.StatusBarItem;
  private panel: PanelChannel | undefined;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
    /** Says when the workspace sets security settings; asked again before each run starts. */
    private readonly guard?: Pick<SettingsGuard, 'checkWorkspace'>,
  ) {
    this.statusBar = vscode.window.createStatusBarItem('apollo.runState', vscode.StatusBarAlignment.Left, 50);
    this.statusBar.name = 'Apollo Run';
    this.statusBar.command = 'apollo.panel.focus';
    this.updateStatus();
  }

  attachPanel(panel: PanelChannel): void {
    this.panel = panel;
  }

  /** The session of the run the panel shows, or else the one started last. */
  currentSession(): RunSession | undefined {
    return this.viewed?.session ?? this.lastStarted;
  }

  /** Every session started or resumed in this window, live or ended. */
  sessions(): RunSession[] {
    return [...this.live.values()].map((run) => run.session);
  }

  /** The live run working in the user's own workspace (not in a working copy), if any. */
  private workspaceRun(): RunSession | undefined {
    return [...this.live.values()].find((run) => !run.sample && run.session.isLive)?.session;
  }

  private post(message: HostToWebview): void {
    this.panel?.post(message);
    this.posted.fire(message);
  }

  /** Tells the user, in a notification and in the panel, what went wrong and what to do. */
  private report(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.log.error(message);
    this.post({ type: 'notice', level: 'error', message });
    const actions: string[] = [];
    if (/Set API Key/.test(message)) actions.push('Set API Key');
    if (/apollo\.(baseUrl|model)/.test(message)) actions.push('Open Settings');
    if (/untrusted/.test(message)) actions.push('Manage Workspace Trust');
    if (message === NO_CHAT_MODELS) actions.push('Use an OpenAI-Compatible Endpoint');
    void vscode.window.showErrorMessage(message, ...actions).then((choice) => {
      if (choice === 'Set API Key') void vscode.commands.executeCommand('apollo.setApiKey');
      if (choice === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'apollo.');
      if (choice === 'Manage Workspace Trust') void vscode.commands.executeCommand('workbench.trust.manage');
      if (choice === 'Use an OpenAI-Compatible Endpoint') {
        void Promise.resolve(vscode.workspace.getConfiguration('apollo').update('provider', 'openai-compatible', vscode.ConfigurationTarget.Global)).then(() =>
          vscode.commands.executeCommand('workbench.action.openSettings', 'apollo.baseUrl'),
        );
      }
    });
  }

  /** Handles one message from the webview; anything not in the protocol is dropped and logged. */
  async receive(raw: unknown): Promise<void> {
    const message = parseWebviewMessage(raw);
    if (!message) {
      this.log.warn(`Dropped a malformed message from the panel: ${JSON.stringify(raw)?.slice(0, 200)}`);
      return;
    }
    switch (message.type) {
      case 'ready':
        // The panel (re)loaded: give it the whole timeline again, and the runs to choose from.
        if (this.viewed) this.post(this.viewed.model.init());
        else this.post({ type: 'init', run: null, steps: [], hints: [], notes: [], attention: [], unseen: 0 });
        await this.postRuns();
        this.postLiveRuns();
        return;
      case 'showStep':
        await this.showStep(message.step);
        return;
      case 'openFullOutput':
        await this.openFullOutput(message.step);
        return;
      case 'openRun':
        await this.openRun(message.runId);
        return;
      case 'attentionSeen':
        this.markAttentionSeen();
        return;
      case 'startRun':
        await this.startRun(message.task);
        return;
      case 'sampleRuns':
        await this.sampleRuns(message.task);
        return;
      case 'previewAdopt':
        await this.previewAdoptInPanel(message.runId);
        return;
      case 'adoptRun':
        // The panel asked with the preview on screen: it is the confirmation.
        await this.adoptRun(message.runId, { confirmed: true, overwrite: message.overwrite });
        return;
      case 'sendHint':
        await this.injectHint(message.text, message.kind, message.urgency, message.runId);
        return;
      case 'pauseRun':
        this.pause(message.runId);
        return;
      case 'resumeRun':
        await this.resume(message.runId);
        return;
      case 'stopRun':
        await this.stop(message.runId);
        return;
      case 'labelStep':
        await this.label(message.step, message.label, { axis: message.axis, reason: message.reason });
        return;
      case 'openDiff':
        await this.openDiff(message.step);
        return;
      case 'previewRewind':
        await this.previewRewind(message.step);
        return;
      case 'rewind':
        // The panel asked with the preview on screen: it is the confirmation.
        await this.rewind(message.step, { confirmed: true });
        return;
    }
  }

  async startRun(task: string): Promise<RunSession | undefined> {
    try {
      const going = this.workspaceRun();
      if (going) throw new ConfigError(`Run ${going.runId} is still going in this workspace: stop it before starting another, or sample runs (each works in its own copy).`);
      if (!vscode.workspace.isTrusted) {
        throw new ConfigError('Apollo does not start runs in an untrusted workspace: the agent edits files and runs commands. Trust this folder first.');
      }
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder || folder.uri.scheme !== 'file') throw new ConfigError('Open a folder first: the agent works inside a workspace folder.');
      if (!task || task.trim() === '') throw new ConfigError('The task is empty: describe what the agent should do.');
      await this.guard?.checkWorkspace();
      const settings = await readSettings(this.secrets, folder.uri.fsPath);
      const model = await this.chooseModel(settings, 'Apollo: Start Run');
      if (!model) return undefined;
      const session = await RunSession.start({
        ...this.newRunOptions(settings, model),
        workspace: folder.uri.fsPath,
        task,
      });
      await this.attach(session);
      void this.postRuns();
      void this.announceSandbox(session);
      this.log.info(`Run ${session.runId} started: ${task}`);
      return session;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  /**
   * Apollo: Sample Runs… — N runs of one task, each in its own working copy outside the
   * workspace, under one task id. The first run is shown; the others are in the live runs list.
   */
  async sampleRuns(taskArgument?: string, countArgument?: number): Promise<Sampling | undefined> {
    try {
      if (!vscode.workspace.isTrusted) {
        throw new ConfigError('Apollo does not sample runs in an untrusted workspace: each agent edits files and runs commands. Trust this folder first.');
      }
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder || folder.uri.scheme !== 'file') throw new ConfigError('Open a folder first: sampled runs work in copies of a workspace folder.');
      await this.guard?.checkWorkspace();
      const settings = await readSettings(this.secrets, folder.uri.fsPath);
      const model = await this.chooseModel(settings, 'Apollo: Sample Runs');
      if (!model) return undefined;
      let task = taskArgument;
      if (task === undefined) {
        task = await vscode.window.showInputBox({ title: 'Apollo: Sample Runs', prompt: 'The task every run works on', placeHolder: 'What should the agents do?', ignoreFocusOut: true });
        if (task === undefined) return undefined;
      }
      if (task.trim() === '') throw new ConfigError('The task is empty: describe what the agents should do.');
      let count = countArgument;
      if (count === undefined) {
        const answer = await vscode.window.showInputBox({
          title: 'Apollo: Sample Runs',
          prompt: `How many runs of this task? At most ${settings.concurrency} go at once (apollo.sample.concurrency); the others wait their turn.`,
          value: String(settings.sampleCount),
          ignoreFocusOut: true,
          validateInput: (value) => (/^\d+$/.test(value.trim()) && Number(value) >= 1 && Number(value) <= MAX_SAMPLES ? undefined : `A whole number from 1 to ${MAX_SAMPLES}`),
        });
        if (answer === undefined) return undefined;
        count = Number(answer.trim());
      }
      if (!Number.isInteger(count) || count < 1 || count > MAX_SAMPLES) throw new ConfigError(`The number of runs must be a whole number from 1 to ${MAX_SAMPLES}.`);
      // One limit for the window: samplings started one after another share it (a changed
      // setting applies to samplings started from now on).
      if (this.limit?.max !== settings.concurrency) this.limit = new ConcurrencyLimit(settings.concurrency);
      const total = count;
      const sampling = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Apollo: taking a snapshot of the workspace for ${plural(total, 'run')}…` },
        () =>
          startSampling({
            workspace: folder.uri.fsPath,
            ...this.newRunOptions(settings, model),
            runsDir: settings.runsDir,
            task: task!,
            n: total,
            concurrency: settings.concurrency,
            limit: this.limit!,
          }),
      );
      let shown = false;
      const attached = new Set<string>();
      const follow = (session: RunSession, index: number) => {
        if (attached.has(session.runId)) return;
        attached.add(session.runId);
        const sample = { taskId: sampling.taskId, index: index + 1, count: total };
        // The first run is shown; the others wait in the live runs list.
        void this.attach(session, { sample, show: !shown }).then(() => void this.postRuns());
        if (!shown) void this.announceSandbox(session);
        shown = true;
        this.log.info(`Run ${index + 1} of ${total} of task ${sampling.taskId} started: ${session.runId}`);
      };
      sampling.onRunStarted(follow);
      for (const run of sampling.runs) if (run.session) follow(run.session, run.index);
      void sampling.done.then(
        (results) => {
          const failed = results.filter((result) => result.error);
          for (const result of failed) this.log.error(`A run of task ${sampling.taskId} could not start: ${result.error}`);
          void vscode.window
            .showInformationMessage(`Apollo: the ${total} runs of "${taskLine(task!)}" have ended${failed.length ? ` (${failed.length} could not start; see the log)` : ''}. Review them in the panel and adopt the best.`, 'Adopt a Run…')
            .then((choice) => (choice ? this.adoptRun() : undefined));
        },
        (error) => this.report(error),
      );
      this.post({ type: 'notice', level: 'info', message: `Sampling ${total} runs of this task, each in its own working copy (task ${sampling.taskId}).` });
      this.log.info(`Sampling ${total} runs of task ${sampling.taskId} in ${settings.runsDir}: ${task}`);
      return sampling;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  /** The panel's Adopt: the multi-diff editor shows the run's change, the panel asks to confirm. */
  async previewAdoptInPanel(runId: string): Promise<void> {
    try {
      const { preview } = await this.adoptable(runId);
      if (!preview.files.length) {
        this.post({ type: 'notice', level: 'info', message: `Run ${runId} left no change to adopt.` });
        return;
      }
      this.adoptPreviewed = { runId, conflicts: new Set(preview.conflicts) };
      await this.showAdoptPreview(preview);
      this.post({
        type: 'adoptPreview',
        preview: {
          runId,
          name: this.live.get(runId)?.sample ? `Run ${this.live.get(runId)!.sample!.index} of ${this.live.get(runId)!.sample!.count}` : `Run ${runId}`,
          written: preview.files.filter((file) => file.status !== 'deleted').map((file) => file.path),
          removed: preview.files.filter((file) => file.status === 'deleted').map((file) => file.path),
          conflicts: preview.conflicts,
        },
      });
    } catch (error) {
      this.report(error);
    }
  }

  /**
   * Apollo: Adopt Run… — applies an ended sampled run's net change to the workspace: the
   * multi-diff editor shows it first, one confirmation applies it, and the user's own changes to
   * the same files are only overwritten when they say so. `confirmed`: the panel's preview was
   * the confirmation (`overwrite` when it listed conflicts).
   */
  async adoptRun(runIdArgument?: string, how: { confirmed?: boolean; overwrite?: boolean } = {}): Promise<RunAdoptedEvent | undefined> {
    try {
      let runId = runIdArgument;
      if (runId === undefined) {
        runId = await this.pickAdoptable();
        if (runId === undefined) return undefined;
      }
      const { preview, datasetDir } = await this.adoptable(runId);
      const list = (paths: string[]) => paths.slice(0, 8).join(', ') + (paths.length > 8 ? `, and ${paths.length - 8} more` : '');
      if (!preview.files.length) {
        void vscode.window.showInformationMessage(`Apollo: run ${runId} left no change to adopt.`);
        return undefined;
      }
      let overwrite: boolean;
      if (how.confirmed) {
        // Only what the panel showed is overwritten: a conflict that appeared since stops it.
        const shown = this.adoptPreviewed?.runId === runId ? this.adoptPreviewed.conflicts : new Set<string>();
        const unseen = preview.conflicts.filter((file) => !how.overwrite || !shown.has(file));
        if (unseen.length) throw new ConfigError(`You changed ${list(unseen)} too; nothing was written. Press Adopt again to see the conflicts and choose to overwrite them.`);
        overwrite = preview.conflicts.length > 0;
      } else {
        await this.showAdoptPreview(preview);
        const written = preview.files.filter((file) => file.status !== 'deleted').map((file) => file.path);
        const removed = preview.files.filter((file) => file.status === 'deleted').map((file) => file.path);
        const detail = [
          written.length ? `Written: ${list(written)}.` : '',
          removed.length ? `Removed: ${list(removed)}.` : '',
          preview.conflicts.length ? `You changed these files too; adopting overwrites your changes: ${list(preview.conflicts)}.` : 'None of these files has changes of your own.',
          'The adoption is recorded in the run.',
        ]
          .filter(Boolean)
          .join('\n');
        const action = preview.conflicts.length ? 'Adopt and Overwrite My Changes' : 'Adopt';
        const choice = await vscode.window.showWarningMessage(`Adopt the ${plural(preview.files.length, 'file change')} of run ${runId} into your workspace?`, { modal: true, detail }, action);
        if (choice !== action) return undefined;
        // Edits made while the preview was open were not shown: those are not overwritten unasked.
        const again = (await this.adoptable(runId)).preview;
        const unseen = again.conflicts.filter((file) => !preview.conflicts.includes(file));
        if (unseen.length) throw new ConfigError(`You changed ${list(unseen)} while the preview was open; nothing was written. Adopt again to see the changes as they are now.`);
        overwrite = preview.conflicts.length > 0;
      }
      const { event } = await adoptRun(datasetDir, runId, { overwrite });
      this.adoptPreviewed = undefined;
      if (!event) {
        void vscode.window.showInformationMessage(`Apollo: your workspace already holds every change of run ${runId}.`);
        return undefined;
      }
      const model = this.live.get(runId)?.model ?? (this.viewed?.runId === runId ? this.viewed.model : undefined);
      for (const message of model?.observe(event) ?? []) if (this.viewed?.runId === runId) this.post(message);
      this.scheduleLiveRuns();
      void this.postRuns();
      const summary = `Adopted run ${runId}: ${plural(event.files.length, 'file')} changed in your workspace${event.overwritten.length ? `, overwriting your changes to ${list(event.overwritten)}` : ''}.`;
      this.log.info(summary);
      this.post({ type: 'notice', level: 'info', message: summary });
      void vscode.window.showInformationMessage(`Apollo: ${summary}`);
      return event;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  /** The workspace's dataset, and what adopting the run would do; refuses runs still going. */
  private async adoptable(runId: string): Promise<{ preview: AdoptPreview; datasetDir: string }> {
    if (!vscode.workspace.isTrusted) throw new ConfigError('Apollo does not write a run\'s changes into an untrusted workspace. Trust this folder first.');
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder || folder.uri.scheme !== 'file') throw new ConfigError('Open the folder the runs were sampled from first.');
    if (this.live.get(runId)?.session.isLive) throw new ConfigError(`Run ${runId} is still going: let it end, or stop it, before adopting its changes.`);
    const { datasetDir } = await readSettings(this.secrets, folder.uri.fsPath);
    const preview = await previewAdopt(datasetDir, runId);
    // What can never be adopted (a path into .git, a link in the way) is said before any preview.
    const refusal = adoptRefusal(preview, { overwrite: true });
    if (refusal) throw refusal;
    return { preview, datasetDir };
  }

  /** The sampled runs of this workspace that ended and were not adopted yet, to pick from. */
  private async pickAdoptable(): Promise<string | undefined> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder || folder.uri.scheme !== 'file') throw new ConfigError('Open the folder the runs were sampled from first.');
    const { datasetDir } = await readSettings(this.secrets, folder.uri.fsPath);
    const workspace = await fs.realpath(folder.uri.fsPath);
    const candidates = (await new DatasetStore(datasetDir).listRuns()).filter(
      (run) => run.originWorkspace === workspace && run.status !== 'running' && run.status !== 'paused' && !run.adoptedAt,
    );
    if (!candidates.length) throw new ConfigError('No sampled run of this workspace waits to be adopted: sample runs first ("Apollo: Sample Runs…").');
    const picked = await vscode.window.showQuickPick(
      candidates.map((run) => ({ label: taskLine(run.task), description: `${run.status} · ${run.steps} steps · ${run.id}`, detail: run.taskId ? `task ${run.taskId}` : undefined, id: run.id })),
      { title: 'Adopt which run\'s changes?', matchOnDescription: true },
    );
    return picked?.id;
  }

  /** The run's net change in VS Code's multi-diff editor: your file as it is now, against the run's. */
  private async showAdoptPreview(preview: AdoptPreview): Promise<void> {
    const base = { workspace: preview.workspace, store: preview.originStore, snapshot: preview.base };
    const result = { workspace: preview.workspace, store: preview.runStore, snapshot: preview.final };
    const resources = await Promise.all(
      preview.files.map(async (change) => {
        const target = vscode.Uri.file(path.join(preview.workspace, change.path));
        const exists = await fs.lstat(target.fsPath).then(() => true, () => false);
        // A file not on disk shows as empty: the base snapshot has no such path.
        const current = exists ? target : SnapshotContentProvider.uri(base, change.path, 'before');
        return [target, current, SnapshotContentProvider.uri(result, change.path, 'after')];
      }),
    );
    await vscode.commands.executeCommand('vscode.changes', `Adopt run ${preview.runId}`, resources);
  }

  /** What every session takes from the settings, started or resumed. */
  private sessionOptions(settings: ApolloSettings): SessionOptions {
    return {
      ...(settings.contextBudget ? { contextBudget: settings.contextBudget } : {}),
      grounding: settings.grounding,
      judge: settings.judge,
      sandbox: settings.sandbox,
      secretsToModel: settings.secretsToModel,
      approveCommand: (request) => this.approveCommand(request),
      log: (line) => this.log.info(line),
    };
  }

  /**
   * Checks the request settings and finds the model a new run uses, before anything starts:
   * the endpoint (complete, or a ConfigError that says what is missing), or one of VS Code's
   * language models (apollo.model names it, else the user picks; undefined when dismissed).
   */
  private async chooseModel(settings: ApolloSettings, title: string): Promise<ModelChoice | undefined> {
    validateSampling(settings.sampling);
    if (!REASONING_IN_CONTEXT.includes(settings.reasoningInContext)) {
      throw new ConfigError(`Unknown apollo.reasoning.keepInContext "${String(settings.reasoningInContext)}": use ${REASONING_IN_CONTEXT.join(', ')}.`);
    }
    if (settings.provider === VSCODE_LM_PROVIDER) return this.chooseLanguageModel(settings.endpoint.model, title);
    if (settings.endpoint.problem) throw new ConfigError(settings.endpoint.problem);
    return { model: settings.endpoint.model, baseUrl: settings.endpoint.baseUrl, apiKey: settings.endpoint.apiKey };
  }

  /** One of VS Code's language models: no base URL, no key. */
  private async chooseLanguageModel(wanted: string, title: string): Promise<ModelChoice | undefined> {
    const chat = await pickChatModel(wanted, title);
    if (!chat) return undefined;
    this.log.info(`Model: ${chat.name} (${chat.id}, ${chat.vendor}) from VS Code's language models; sampling settings are recorded but not sent to it.`);
    // The engine learns the prompt budget from the model's input limit (contextWindowDetail).
    return { model: chat.id, baseUrl: '', apiKey: '', client: new LanguageModelClient(chat) };
  }

  /** The options of a new run (alone or sampled) besides its task and workspace. */
  private newRunOptions(settings: ApolloSettings, choice: ModelChoice) {
    return {
      ...this.sessionOptions(settings),
      datasetDir: settings.datasetDir,
      model: choice.model,
      baseUrl: choice.baseUrl,
      apiKey: choice.apiKey,
      ...(choice.client ? { client: choice.client } : {}),
      ...(settings.sampling ? { sampling: settings.sampling } : {}),
      reasoningInContext: settings.reasoningInContext,
      maxSteps: settings.maxSteps,
      ...(Object.keys(settings.budget).length ? { budget: settings.budget } : {}),
    };
  }

  /**
   * Without a sandbox, a command the policy flags waits for the annotator: allow it once, allow
   * such commands from now on (added to apollo.sandbox.allow), or refuse it (the agent is told).
   */
  private async approveCommand(request: CommandApprovalRequest): Promise<'allow' | 'deny'> {
    this.post({ type: 'notice', level: 'info', message: `The agent wants to run a command that needs your answer: ${request.command}` });
    const choice = await vscode.window.showWarningMessage(
      `Apollo: allow the agent to run this command?`,
      { modal: true, detail: `${request.command}\n\n${request.reason}\n\nAlways Allow adds "${request.suggestedAllow}" to apollo.sandbox.allow in your user settings.` },
      'Allow Once',
      'Always Allow',
      'Refuse',
    );
    if (choice === 'Always Allow') await this.alwaysAllow(request.suggestedAllow);
    const verdict = choice === 'Allow Once' || choice === 'Always Allow' ? 'allow' : 'deny';
    this.log.info(`Command ${verdict === 'allow' ? 'allowed' : 'refused'} by the annotator: ${request.command}`);
    return verdict;
  }

  /**
   * Adds a pattern to the user's own apollo.sandbox.allow: their user value and the new pattern,
   * never the merged value (a workspace's list would be copied into the user's settings).
   */
  async alwaysAllow(pattern: string): Promise<void> {
    const config = vscode.workspace.getConfiguration('apollo');
    const allow = userAllowList(config);
    if (allow.includes(pattern)) return;
    await config.update('sandbox.allow', [...allow, pattern], vscode.ConfigurationTarget.Global);
    this.log.info(`Added "${pattern}" to apollo.sandbox.allow in your user settings.`);
  }

  /** Says once, in the panel and a notification, when commands are not sandboxed. */
  private async announceSandbox(session: RunSession): Promise<void> {
    const status = await session.sandboxStatus;
    this.log.info(status.description);
    if (status.active || this.sandboxWarned) return;
    this.sandboxWarned = true;
    this.post({ type: 'notice', level: 'info', message: status.description });
    void vscode.window.showWarningMessage(`Apollo: ${status.description}`);
  }

  /** Keeps the run's timeline current; the panel hears only about the run it shows. */
  private forward(run: LiveRun, event: DatasetEvent): void {
    const session = run.session;
    const shown = this.viewed?.runId === session.runId;
    for (const message of run.model.observe(event)) {
      if (shown) this.post(message);
      if (message.type === 'attention') this.raiseAttention(run, message.flag);
    }
    const name = this.runName(run);
    switch (event.type) {
      case 'model_retry':
        this.log.warn(`${name}, step ${event.step}: model request failed (attempt ${event.attempt}): ${event.error}`);
        break;
      case 'external_change':
        this.log.warn(`The workspace of ${name} changed outside the agent before step ${event.step}: ${event.grounding.files.map((file) => file.path).join(', ')}`);
        break;
      case 'judge_usage':
        if (event.error) this.log.warn(`The judge could not score steps ${event.steps.join(', ')} of ${name}: ${event.error}`);
        break;
      case 'run_state':
        if (event.state === 'paused' && event.reason) {
          void vscode.window.showWarningMessage(`Apollo paused ${name}: ${event.reason}`, 'Resume', 'Show').then((choice) => {
            if (choice === 'Resume') void this.resume(session.runId);
            if (choice === 'Show') void this.openRun(session.runId);
          });
        }
        break;
      case 'run_ended':
        this.log.info(`${name} ${event.status} after ${event.steps} step(s)${event.error ? `: ${event.error}` : ''}${event.status === 'budget' && event.summary ? `: ${event.summary}` : ''}`);
        if (event.status === 'failed') this.report(new Error(`${name} failed: ${event.error ?? 'unknown error'} Its ${event.steps} step(s) are kept.`));
        void this.postRuns();
        break;
      default:
        // The other events are not logged.
        break;
    }
    if (event.type === 'step' || event.type === 'run_state' || event.type === 'run_ended' || event.type === 'label') {
      if (shown) this.updateStatus();
      this.scheduleLiveRuns();
    }
  }

  /** "Run 2 of 3" for a sampled run, "Run <id>" otherwise: how messages name a run. */
  private runName(run: LiveRun): string {
    return run.sample ? `run ${run.sample.index} of ${run.sample.count} (${run.session.runId})` : `run ${run.session.runId}`;
  }

  /** The view's badge, the status bar and (unless turned off) a notification. */
  private raiseAttention(run: LiveRun, flag: AttentionFlag): void {
    this.updateStatus();
    this.scheduleLiveRuns();
    const name = this.runName(run);
    this.log.info(`Step ${flag.step} of ${name} needs attention: ${flag.message}`);
    if (!vscode.workspace.getConfiguration('apollo').get<boolean>('attention.notify', true)) return;
    const where = this.live.size > 1 ? ` of ${name}` : '';
    void vscode.window.showWarningMessage(`Apollo: step ${flag.step}${where} needs attention: ${flag.message}`, 'Show', 'Send Hint').then(async (choice) => {
      if (choice === 'Show' || choice === 'Send Hint') {
        if (this.viewed?.runId !== run.session.runId) await this.openRun(run.session.runId);
        if (choice === 'Show') await this.focusNextFlag();
        else await vscode.commands.executeCommand('apollo.injectHint');
      }
    });
  }

  /** The annotator looked or acted: the run's flags count as seen. */
  private markAttentionSeen(): void {
    this.viewed?.model.markSeen();
    this.updateStatus();
    this.scheduleLiveRuns();
  }

  /** Apollo: Go to the Next Step That Needs Attention — reveals the panel and moves to it. */
  async focusNextFlag(): Promise<void> {
    await vscode.commands.executeCommand('apollo.panel.focus');
    this.post({ type: 'focusNextFlag' });
    this.markAttentionSeen();
  }

  /** The window's runs, most in need of the annotator first. */
  liveRuns(): LiveRunItem[] {
    // Sampled runs stay listed after they end (to review or adopt); a run on the workspace leaves the list.
    const runs = [...this.live.values()].filter((run) => run.model.runView && (run.sample || run.session.isLive));
    const byId = new Map(runs.map((run) => [run.session.runId, run]));
    return orderByNeed(
      runs.map((run) => {
        const view = run.model.runView!;
        // The session's id: a recorded run_started may name another (a run copied before it was resumed).
        return { runId: run.session.runId, status: view.status, ...(view.pausedReason ? { pausedReason: view.pausedReason } : {}), unseen: run.model.unseenFlagList(), startedAt: view.startedAt };
      }),
    ).map((need) => {
      const run = byId.get(need.runId)!;
      const view = run.model.runView!;
      const ended = !(view.status === 'running' || view.status === 'paused');
      return {
        runId: need.runId,
        task: view.task,
        status: view.status,
        steps: view.steps,
        ...(run.sample ? { sample: run.sample } : {}),
        need: { kind: need.kind, message: need.message },
        unseen: run.model.unseenFlags,
        adoptable: ended && !!view.originWorkspace && !view.adoptedAt,
      };
    });
  }

  /** Apollo: Go to the Run That Needs You Most — opens it in the panel at its flagged step. */
  async focusNeediestRun(): Promise<string | undefined> {
    const top = this.liveRuns()[0];
    if (!top) {
      void vscode.window.showInformationMessage('Apollo: no run is going in this window.');
      return undefined;
    }
    await vscode.commands.executeCommand('apollo.panel.focus');
    if (this.viewed?.runId !== top.runId) await this.openRun(top.runId);
    if (top.unseen) this.post({ type: 'focusNextFlag' });
    this.markAttentionSeen();
    return top.runId;
  }

  /** Posts the live runs list soon, once for a burst of events. */
  private scheduleLiveRuns(): void {
    if (this.liveListTimer) return;
    this.liveListTimer = setTimeout(() => {
      this.liveListTimer = undefined;
      this.postLiveRuns();
    }, 150);
  }

  private postLiveRuns(): void {
    this.post({ type: 'liveRuns', runs: this.liveRuns() });
  }

  /** The runs of the dataset, newest first, for the panel's runs list. */
  private async postRuns(): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) return;
    try {
      const settings = await readSettings(this.secrets, folder.uri.fsPath);
      const runs = await new DatasetStore(settings.datasetDir).listRuns();
      this.post({
        type: 'runs',
        runs: runs.slice(0, 200).map((run) => ({ runId: run.id, task: run.task, status: run.status, steps: run.steps, createdAt: run.createdAt })),
        ...(this.workspaceRun() ? { liveRunId: this.workspaceRun()!.runId } : {}),
      });
    } catch (error) {
      this.log.warn(`Could not list the dataset's runs: ${(error as Error).message}`);
    }
  }

  /** Opens a run of the dataset in the panel: the live one as it goes, any other for reading. */
  async openRun(runId: string): Promise<void> {
    try {
      // A run going on in this window, a sampled one still listed, or the one started last (a
      // rewound run waits there to be resumed) is shown as it is kept; any other run is read
      // from the dataset, for reading.
      const live = this.live.get(runId);
      if (live && (live.session.isLive || live.sample || live.session === this.lastStarted)) {
        this.view(live);
        return;
      }
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder) throw new ConfigError('Open a folder first: runs are recorded in the workspace.');
      const settings = await readSettings(this.secrets, folder.uri.fsPath);
      const store = new DatasetStore(settings.datasetDir);
      const { events, problems } = await store.readEvents(runId);
      for (const problem of problems) this.log.warn(problem);
      const model = new TimelineModel({ policy: settings.maskPolicy, readOnly: true });
      for (const event of events) model.observe(event);
      model.markSeen();
      this.viewed = { runId, store, model };
      this.post(model.init());
      this.updateStatus();
      this.postLiveRuns();
    } catch (error) {
      this.report(error);
    }
  }

  /** The events of the run the panel shows. */
  private async viewedEvents(): Promise<DatasetEvent[]> {
    const viewed = this.viewed;
    if (!viewed) throw new ConfigError('No run is open: start one, or open one from the runs list.');
    if (viewed.session) return viewed.session.events();
    return (await viewed.store.readEvents(viewed.runId)).events;
  }

  private async findStep(step: number): Promise<StepEvent> {
    const event = (await this.viewedEvents()).find((candidate): candidate is StepEvent => candidate.type === 'step' && candidate.step === step);
    if (!event) throw new ConfigError(`Step ${step} is not in the open run.`);
    return event;
  }

  /** Everything about one step, for the panel's detail view. */
  async showStep(step: number): Promise<StepDetail | undefined> {
    try {
      if (!this.viewed) throw new ConfigError('No run is open.');
      const event = await this.findStep(step);
      const detail = stepDetail(event);
      this.post({ type: 'stepDetail', detail });
      return detail;
    } catch (error) {
      this.post({ type: 'stepDetailFailed', step, message: (error as Error).message });
      this.log.warn((error as Error).message);
      return undefined;
    }
  }

  /** Opens the full output a long command printed, kept beside the run. */
  async openFullOutput(step: number): Promise<void> {
    try {
      const event = await this.findStep(step);
      if (!event.fullOutput) throw new ConfigError(`Step ${step} kept no separate output: its observation is complete.`);
      const file = path.resolve(this.viewed!.store.runDir(this.viewed!.runId), event.fullOutput);
      if (!file.startsWith(this.viewed!.store.runDir(this.viewed!.runId) + path.sep)) throw new ConfigError(`Step ${step}'s output path points outside its run.`);
      await fs.access(file);
      const document = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
      await vscode.window.showTextDocument(document, { preview: true });
    } catch (error) {
      this.report(error);
    }
  }

  /**
   * The live run an action is for: the one named, else the one the panel shows, else the only one
   * going. With several going and none shown, the annotator must pick: an action never guesses.
   */
  private target(runId?: string): RunSession {
    if (runId !== undefined) {
      const session = this.live.get(runId)?.session;
      if (!session?.isLive) throw new ConfigError(`Run ${runId} is not going in this window.`);
      return session;
    }
    if (this.viewed?.session?.isLive) return this.viewed.session;
    const going = [...this.live.values()].filter((run) => run.session.isLive);
    if (going.length === 1) return going[0].session;
    if (going.length === 0) throw new ConfigError('No run is going: start one with "Apollo: Start Run".');
    throw new ConfigError(`${going.length} runs are going: open the one you mean in the Apollo panel (the live runs list), then try again.`);
  }

  async injectHint(text: string, kind: HintKind = 'knowledge', urgency: HintUrgency = 'next', runId?: string): Promise<string | undefined> {
    try {
      const session = this.target(runId);
      const hintId = await session.injectHint(text, kind, 'human', urgency);
      if (this.viewed?.runId === session.runId) this.markAttentionSeen();
      return hintId;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  pause(runId?: string): void {
    try {
      this.target(runId).pause();
      this.post({ type: 'notice', level: 'info', message: 'Pausing after the current step.' });
    } catch (error) {
      this.report(error);
    }
  }

  /** Resumes the paused run, or, with none going, continues a run interrupted by a crash. */
  async resume(runId?: string): Promise<void> {
    try {
      // A live run that is paused goes on; a run going on needs nothing.
      const known = runId ? this.live.get(runId)?.session : this.viewed?.session;
      if (known?.isLive) {
        known.resume();
        if (this.viewed?.runId === known.runId) this.markAttentionSeen();
        return;
      }
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder) throw new ConfigError('Open a folder first: runs are recorded in the workspace.');
      if (!vscode.workspace.isTrusted) throw new ConfigError('Apollo does not resume runs in an untrusted workspace. Trust this folder first.');
      const settings = await readSettings(this.secrets, folder.uri.fsPath);
      const interrupted = (await new DatasetStore(settings.datasetDir).listRuns()).filter((run) => (run.status === 'running' || run.status === 'paused') && !this.live.get(run.id)?.session.isLive);
      let chosen = runId;
      if (!chosen) {
        if (interrupted.length === 0) throw new ConfigError('No interrupted run to resume: every recorded run has ended.');
        const picked = await vscode.window.showQuickPick(
          interrupted.map((run) => ({ label: run.task.split('\n')[0].slice(0, 80), description: `${run.steps} steps · ${run.id}`, id: run.id })),
          { title: 'Resume an interrupted run' },
        );
        if (!picked) return;
        chosen = picked.id;
      }
      const manifest = interrupted.find((run) => run.id === chosen);
      const going = this.workspaceRun();
      // Two agents in one folder would trip over each other; a sampled run has a folder of its own.
      if (going && !manifest?.originWorkspace) throw new ConfigError(`Run ${going.runId} is still going in this workspace: stop it before resuming another.`);
      // A run on one of VS Code's models goes on with the model it recorded, if VS Code still has it.
      const started = (await new DatasetStore(settings.datasetDir).readEvents(chosen)).events.find((event) => event.type === 'run_started');
      let languageModel: ModelChoice | undefined;
      if (started?.type === 'run_started' && started.provider === VSCODE_LM_PROVIDER) {
        languageModel = await this.chooseLanguageModel(started.model, 'Apollo: Resume Run');
        if (!languageModel) return;
      }
      const session = await RunSession.resume({
        datasetDir: settings.datasetDir,
        runId: chosen,
        ...(languageModel
          ? { apiKey: '', model: languageModel.model, client: languageModel.client }
          : {
              apiKey: settings.endpoint.apiKey,
              ...(settings.endpoint.baseUrl ? { baseUrl: settings.endpoint.baseUrl } : {}),
              ...(settings.endpoint.model ? { model: settings.endpoint.model } : {}),
            }),
        // The budget stays the one the run started with (kept in run_started).
        ...this.sessionOptions(settings),
      });
      // A sampled run keeps its place among the runs of its task.
      let sample: LiveRun['sample'];
      if (manifest?.taskId) {
        const siblings = (await new DatasetStore(settings.datasetDir).listRuns()).filter((run) => run.taskId === manifest.taskId).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
        sample = { taskId: manifest.taskId, index: siblings.findIndex((run) => run.id === session.runId) + 1, count: siblings.length };
      }
      await this.attach(session, sample ? { sample } : {});
      void this.postRuns();
      void this.announceSandbox(session);
      this.log.info(`Run ${session.runId} resumed from step ${session.stepCount + 1}.`);
    } catch (error) {
      this.report(error);
    }
  }

  /**
   * Follows a session from now on: its timeline is kept whether the panel shows it or not. The
   * panel switches to it unless `show` is false and another live run is on screen.
   */
  private async attach(session: RunSession, options: { sample?: LiveRun['sample']; show?: boolean } = {}): Promise<LiveRun> {
    const previous = this.live.get(session.runId);
    previous?.subscription.dispose();
    // Nothing is awaited before the subscription: a fast first step must not slip past it.
    const policy = readMaskPolicy();
    const sample = options.sample ?? previous?.sample;
    const run: LiveRun = { session, model: new TimelineModel({ policy, readOnly: false }), subscription: { dispose: () => undefined }, ...(sample ? { sample } : {}) };
    // Subscribe before reading the history; events that arrive meanwhile wait, and those the
    // history already holds are skipped.
    let waiting: { event: DatasetEvent; sequence: number }[] | undefined = [];
    let replayedThrough = 0;
    run.subscription = session.onEvent((event, sequence) => {
      if (waiting) waiting.push({ event, sequence });
      else if (sequence > replayedThrough) this.forward(run, event);
    });
    this.live.set(session.runId, run);
    this.lastStarted = session;
    const history = await session.history();
    replayedThrough = history.sequence;
    for (const event of history.events) run.model.observe(event);
    const arrived = waiting;
    waiting = undefined;
    for (const { event, sequence } of arrived) if (sequence > replayedThrough) this.forward(run, event);
    if (options.show !== false || !this.viewed?.session?.isLive) this.view(run);
    else this.scheduleLiveRuns();
    return run;
  }

  /** Shows a run of this window in the panel. */
  private view(run: LiveRun): void {
    this.viewed = { runId: run.session.runId, store: run.session.store, model: run.model, session: run.session };
    this.post(run.model.init());
    this.updateStatus();
    this.postLiveRuns();
  }

  async stop(runId?: string): Promise<void> {
    try {
      await this.target(runId).stop();
    } catch (error) {
      this.report(error);
    }
  }

  /** Records the annotator's label on a step of the run the panel shows; false (after saying why) when it cannot. */
  async label(step: number, label: LabelValue, details: { axis?: LabelAxis; reason?: string } = {}): Promise<boolean> {
    try {
      const viewed = this.viewed;
      if (!viewed) throw new ConfigError('No run is open to label: start or resume one, or open one from the runs list.');
      if (viewed.session) {
        await viewed.session.label(step, label, { source: 'human', ...details });
      } else {
        // A past run: the label is appended to its events like any other.
        await this.findStep(step);
        const event = { type: 'label' as const, time: new Date().toISOString(), step, label, source: 'human', ...details };
        await viewed.store.appendEvent(viewed.runId, event);
        for (const message of viewed.model.observe(event)) this.post(message);
      }
      this.markAttentionSeen();
      return true;
    } catch (error) {
      this.report(error);
      return false;
    }
  }

  /**
   * Apollo: Label a Step… — what is not given is picked: the step (newest first), good, bad or
   * neutral, the axis (both by default) and an optional reason.
   */
  async labelWithPrompts(given: { step?: number; label?: LabelValue; axis?: LabelAxis; reason?: string }): Promise<boolean> {
    if (!this.viewed) {
      this.report(new ConfigError('No run is open to label: start or resume one, or open one from the runs list.'));
      return false;
    }
    let { step, label, axis, reason } = given;
    if (step === undefined) {
      const steps = (await this.viewedEvents()).filter((event): event is StepEvent => event.type === 'step');
      const picked = await vscode.window.showQuickPick(
        steps.map((event) => ({ label: `Step ${event.step}`, description: event.action?.name ?? '(no tool call)', detail: toTimelineStep(event).args, step: event.step })).reverse(),
        { title: 'Label which step?', matchOnDetail: true },
      );
      if (!picked) return false;
      step = picked.step;
    }
    if (label === undefined) {
      const picked = await vscode.window.showQuickPick(
        [
          { label: 'good', description: 'train on it', value: 'good' as const },
          { label: 'bad', description: 'keep it as context only: masked out of the training loss', value: 'bad' as const },
          { label: 'neutral', description: 'no verdict', value: 'neutral' as const },
        ],
        { title: `Label step ${step}` },
      );
      if (!picked) return false;
      label = picked.value;
      const axisPick = await vscode.window.showQuickPick(
        [
          { label: 'Both', description: 'the step as a whole', value: undefined },
          { label: 'Decision', description: 'was this the right thing to do?', value: 'decision' as const },
          { label: 'Execution', description: 'was it done right?', value: 'execution' as const },
        ],
        { title: `What is step ${step} ${label} at?` },
      );
      if (!axisPick) return false;
      axis = axisPick.value;
      if (reason === undefined) {
        reason = await vscode.window.showInputBox({ title: `Why is step ${step} ${label}? (optional)`, prompt: 'Press Enter to skip.', ignoreFocusOut: true });
        if (reason === undefined) return false;
      }
    }
    return this.label(step, label, { ...(axis ? { axis } : {}), ...(reason?.trim() ? { reason: reason.trim() } : {}) });
  }

  /**
   * Puts the workspace back to how it stood before `step` of the open run; the run then goes on
   * from there on a new branch when resumed. One confirmation says what will change on disk:
   * the files written or removed, the user's own edits that would be overwritten (they are
   * recorded first), and that a live run stops.
   */
  /** What a rewind to the step would change, for the panel to confirm. */
  async previewRewind(step: number): Promise<void> {
    try {
      const viewed = this.viewed;
      if (!viewed) throw new ConfigError('There is no run to rewind: start or resume one, or open one from the runs list.');
      const preview = await previewRewind({ datasetDir: viewed.store.root, runId: viewed.runId, toStep: step });
      this.previewed = { runId: viewed.runId, step, userEdits: new Set(preview.userEdits) };
      this.post({
        type: 'rewindPreview',
        preview: {
          step,
          // The diff runs from the workspace now to the state before the step: what it deletes goes.
          written: preview.files.filter((file) => file.status !== 'deleted').map((file) => file.path),
          removed: preview.files.filter((file) => file.status === 'deleted').map((file) => file.path),
          userEdits: preview.userEdits,
          stopsRun: !!viewed.session?.isLive,
        },
      });
    } catch (error) {
      this.report(error);
    }
  }

  async rewind(step?: number, how: { confirmed?: boolean } = {}): Promise<RewindEvent | undefined> {
    try {
      const viewed = this.viewed;
      if (!viewed) throw new ConfigError('There is no run to rewind: start or resume one, or open one from the runs list.');
      if (step === undefined) {
        const steps = (await this.viewedEvents()).filter((event): event is StepEvent => event.type === 'step');
        const picked = await vscode.window.showQuickPick(
          steps.map((event) => ({ label: `Step ${event.step}`, description: event.action?.name ?? '(no tool call)', step: event.step })).reverse(),
          { title: 'Rewind the workspace to before which step?' },
        );
        if (!picked) return undefined;
        step = picked.step;
      }
      const options = { datasetDir: viewed.store.root, runId: viewed.runId, toStep: step };
      const preview = await previewRewind(options);
      const list = (paths: string[]) => paths.slice(0, 8).join(', ') + (paths.length > 8 ? `, and ${paths.length - 8} more` : '');
      const written = preview.files.filter((file) => file.status !== 'deleted').map((file) => file.path);
      const removed = preview.files.filter((file) => file.status === 'deleted').map((file) => file.path);
      const detail = [
        preview.files.length === 0 ? 'No file changes on disk: the workspace already matches.' : '',
        written.length ? `Written back: ${list(written)}.` : '',
        removed.length ? `Removed: ${list(removed)}.` : '',
        preview.userEdits.length ? `Your own changes since the last step are overwritten (they stay recorded in the dataset): ${list(preview.userEdits)}.` : '',
        viewed.session?.isLive ? 'The run stops first.' : '',
        'The steps from this one on stay in the dataset as an abandoned branch; resume to go on from here.',
      ]
        .filter(Boolean)
        .join('\n');
      // Edits made after the panel's preview were not shown: those are asked about here.
      const shown = this.previewed?.runId === viewed.runId && this.previewed.step === step ? this.previewed.userEdits : new Set<string>();
      if (!how.confirmed || preview.userEdits.some((file) => !shown.has(file))) {
        const choice = await vscode.window.showWarningMessage(`Rewind the workspace to before step ${step}?`, { modal: true, detail }, 'Rewind');
        if (choice !== 'Rewind') return undefined;
      }
      if (viewed.session?.isLive) {
        await viewed.session.stop();
        await viewed.session.done;
      }
      const { event } = await rewindRun({ ...options, force: preview.userEdits.length > 0 });
      // The rewind is written beside the run, not through its session: the panel's model takes it here.
      for (const message of viewed.model.observe(event)) this.post(message);
      this.markAttentionSeen();
      this.post({ type: 'notice', level: 'info', message: `Rewound to before step ${step}: ${event.files.length} file(s) restored. Resume to go on from there.` });
      void vscode.window
        .showInformationMessage(`Apollo: workspace rewound to before step ${step} (${event.files.length} file(s) restored). Resume the run to go on from there; a hint sent after resuming reaches its next step.`, 'Resume')
        .then((picked) => (picked === 'Resume' ? this.resume(viewed.runId) : undefined));
      return event;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  async openDiff(step: number): Promise<void> {
    try {
      const viewed = this.viewed;
      const event = await this.findStep(step);
      let shadow: { workspace: string; storeDir: string };
      if (viewed?.session) shadow = viewed.session.shadow;
      else {
        const started = (await this.viewedEvents()).find((candidate) => candidate.type === 'run_started');
        if (!viewed || started?.type !== 'run_started') throw new ConfigError('The run has no start recorded; its snapshots cannot be found.');
        shadow = { workspace: started.workspace, storeDir: shadowStoreDir(await fs.realpath(viewed.store.root), started.workspace) };
      }
      await openStepDiff(step, stepGrounding(event), shadow);
    } catch (error) {
      this.report(error);
    }
  }

  private updateStatus(): void {
    const session = this.viewed?.session ?? this.lastStarted;
    const status = session?.status;
    void vscode.commands.executeCommand('setContext', 'apollo.runState', status ?? 'none');
    void vscode.commands.executeCommand('setContext', 'apollo.runLive', session?.isLive ?? false);
    const going = [...this.live.values()].filter((run) => run.session.isLive);
    // The badge counts what waits in every run, not just the one on screen.
    const unseen = [...this.live.values()].reduce((sum, run) => sum + run.model.unseenFlags, 0) + (this.viewed && !this.viewed.session ? this.viewed.model.unseenFlags : 0);
    const unseenHere = this.viewed?.model.unseenFlags ?? 0;
    void vscode.commands.executeCommand('setContext', 'apollo.needsAttention', unseen > 0);
    void vscode.commands.executeCommand('setContext', 'apollo.runsGoing', going.length);
    this.panel?.setBadge?.(unseen, `${unseen} step${unseen === 1 ? '' : 's'} need${unseen === 1 ? 's' : ''} your attention`);
    if (!session) {
      this.statusBar.hide();
      return;
    }
    const attention = unseen > 0 ? ` · $(warning) ${unseen} need${unseen === 1 ? 's' : ''} attention` : '';
    if (going.length > 1) {
      const paused = going.filter((run) => run.session.status === 'paused').length;
      this.statusBar.text = `$(sync~spin) Apollo: ${going.length} runs${paused ? ` (${paused} paused)` : ''}${attention}`;
      this.statusBar.tooltip = `${going.length} runs are going in this window.${unseen ? ` ${unseen} flagged step(s) wait for you.` : ''} Click to go to the run that needs you most.`;
      this.statusBar.command = 'apollo.nextRunNeedingAttention';
    } else {
      const steps = session.stepCount;
      const icon = status === 'running' ? '$(sync~spin)' : status === 'paused' ? '$(debug-pause)' : status === 'failed' ? '$(error)' : '$(check)';
      this.statusBar.text = `${icon} Apollo: ${status} · ${steps} step${steps === 1 ? '' : 's'}${attention}`;
      this.statusBar.tooltip = `Run ${session.runId}: ${status}.${unseen ? ` ${unseen} flagged step(s) wait for you.` : ''} Click to open the Intervention panel.`;
      this.statusBar.command = unseen > 0 ? (unseenHere > 0 ? 'apollo.nextFlaggedStep' : 'apollo.nextRunNeedingAttention') : 'apollo.panel.focus';
    }
    this.statusBar.backgroundColor = unseen > 0 ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.statusBar.show();
  }

  dispose(): void {
    if (this.liveListTimer) clearTimeout(this.liveListTimer);
    for (const run of this.live.values()) {
      run.subscription.dispose();
      void run.session.stop();
    }
    this.statusBar.dispose();
    this.posted.dispose();
  }
}
