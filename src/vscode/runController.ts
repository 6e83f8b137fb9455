/**
 * The window's side of the runs: prompts, notifications, the status bar and the panel's
 * messages. Which run an action is for, what the panel shows and what a confirmation covers are
 * the registry's (src/core/session/registry.ts); VS Code is called through src/vscode/vscodeApis,
 * so the decisions made here are tested in plain Node too.
 */
import type * as vscode from 'vscode';
import type { DatasetEvent, HintKind, HintUrgency, LabelAxis, LabelValue, RewindEvent, RunAdoptedEvent, RunManifest } from '../core/dataset/events';
import { HINT_KINDS, HINT_URGENCIES, REASONING_IN_CONTEXT, stepGrounding } from '../core/dataset/events';
import { DatasetStore } from '../core/dataset/store';
import { ConfigError, MANAGE_TRUST, openSetting, type ErrorAction } from '../core/session/errors';
import { HINT_DEFAULTS, HINT_PLACEHOLDER, type HintInput, describeHintInput, hintOptions, parseHintInput } from '../core/session/hintInput';
import { adoptConfirmation, listPaths, type LiveRun, rewindConfirmation, runEventLog, RunRegistry, type SamplePosition } from '../core/session/registry';
import { RunSession, type SessionOptions, validateSampling } from '../core/session/runSession';
import type { ChatModelClient } from '../core/agent/modelClient';
import { previewRewind, rewindRun } from '../core/session/rewind';
import type { AttentionFlag } from '../core/supervision/attention';
import { ConcurrencyLimit, type Sampling, startSampling } from '../core/session/sample';
import { adoptRun } from '../core/session/adopt';
import type { CommandApprovalRequest } from '../core/agent/tools';
import { toTimelineStep } from '../core/session/timeline';
import { type HostToWebview, type LiveRunItem, parseWebviewMessage, type RunListItem, type StepDetail } from '../protocol';
import { openAdoptPreview, openStepDiff } from './diffProvider';
import { type ApolloSettings, readMaskPolicy, readSettings, userAllowList } from './settings';
import type { SettingsGuard } from './settingsGuard';
import { LanguageModelClient, VSCODE_LM_PROVIDER } from './languageModelClient';
import { pickChatModel } from './languageModels';
import * as commands from './vscodeApis/commands';
import * as window from './vscodeApis/window';
import * as workspace from './vscodeApis/workspace';
import { watchEditorSaves } from './editorSaves';

/** A suite run's task and verdict, as its manifest keeps them, for the runs list. */
function suiteTaskOf(run: RunManifest): Pick<RunListItem, 'suiteTask'> {
  if (!run.taskSource) return {};
  const reward = run.reward && { rewards: {}, ...(run.reward.value !== undefined ? { value: run.reward.value } : {}), ...(run.reward.error ? { error: run.reward.error } : {}) };
  return { suiteTask: { name: run.taskSource.name, ...(reward ? { reward } : {}) } };
}

export interface PanelChannel {
  post(message: HostToWebview): void;
  /** The number on the view's icon: steps that need the annotator. */
  setBadge?(value: number, tooltip: string): void;
}

/** More runs of one task than this is a batch job for the CLI, not a window's worth to supervise. */
const MAX_SAMPLES = 20;

const firstLine = (text: string) => {
  const line = text.split('\n')[0].trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
};
const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

/** The model a run talks to: an OpenAI-compatible endpoint, or a client VS Code serves (no URL or key). */
interface ModelChoice {
  model: string;
  baseUrl: string;
  apiKey: string;
  client?: ChatModelClient;
}

/** What a command needs of the workspace: a folder on disk (`folder` says why), trusted when `untrusted` says what is refused there. */
export interface WorkspaceNeed {
  folder?: string;
  /** "start runs in an untrusted workspace: …" */
  untrusted?: string;
}

export class RunController {
  private readonly runs: RunRegistry;
  /** Runs beyond this many at once wait their turn (apollo.sample.concurrency). */
  private limit: ConcurrencyLimit | undefined;
  private sandboxWarned = false;
  private readonly listeners = new Set<(message: HostToWebview) => void>();
  private readonly statusBar: vscode.StatusBarItem;
  private panel: PanelChannel | undefined;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
    /** Says when the workspace sets security settings; asked again before each run starts. */
    private readonly guard?: Pick<SettingsGuard, 'checkWorkspace'>,
  ) {
    this.runs = new RunRegistry<RunSession>({
      post: (message) => this.post(message),
      policy: () => readMaskPolicy(workspace.getConfiguration()),
      event: (run, event) => this.onRunEvent(run, event),
      attention: (run, flag) => this.onAttention(run, flag),
      changed: () => this.updateStatus(),
      needOrder: () => ({ verifierFailuresFirst: workspace.getConfiguration().get<boolean>('attention.verifierFailuresFirst', false) === true }),
    });
    this.statusBar = window.createStatusBarItem('apollo.runState', 50);
    this.statusBar.name = 'Apollo Run';
    this.statusBar.command = 'apollo.panel.focus';
    this.updateStatus();
  }

  attachPanel(panel: PanelChannel): void {
    this.panel = panel;
  }

  onDidPost(listener: (message: HostToWebview) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** The session of the run the panel shows, or else the one started last. */
  currentSession(): RunSession | undefined {
    return this.runs.currentSession();
  }

  /** Every session started or resumed in this window, live or ended. */
  sessions(): RunSession[] {
    return this.runs.sessions();
  }

  /** The window's runs, most in need of the annotator first. */
  liveRuns(): LiveRunItem[] {
    return this.runs.liveRuns();
  }

  private post(message: HostToWebview): void {
    this.panel?.post(message);
    for (const listener of this.listeners) listener(message);
  }

  /**
   * The open folder and its settings, or a ConfigError with its fix: no folder (on disk), or an
   * untrusted one when the command changes the workspace. One preamble for every command.
   */
  async openWorkspace(need: WorkspaceNeed = {}): Promise<{ folder: string; settings: ApolloSettings }> {
    if (need.untrusted && !workspace.isTrusted()) throw new ConfigError(`Apollo does not ${need.untrusted}. Trust this folder first.`, MANAGE_TRUST);
    const folder = workspace.firstFolder();
    if (!folder || !folder.onDisk) throw new ConfigError(`Open a folder first: ${need.folder ?? 'runs are recorded for a workspace folder.'}`);
    return { folder: folder.path, settings: await readSettings(this.secrets, folder.path) };
  }

  /** Tells the user, in a notification and in the panel, what went wrong and offers the fix the error carries. */
  report(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.log.error(message);
    this.post({ type: 'notice', level: 'error', message });
    const action = error instanceof ConfigError ? error.action : undefined;
    void window.showErrorMessage(message, ...(action ? [action.label] : [])).then((choice) => (action && choice === action.label ? this.fix(action) : undefined));
  }

  private async fix(action: ErrorAction): Promise<void> {
    if ('command' in action) {
      await commands.executeCommand(action.command);
      return;
    }
    if (action.write) await workspace.updateUserSetting(action.write.setting, action.write.value);
    await commands.openSettings(action.setting);
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
        this.post(this.runs.init());
        await this.postRuns();
        this.runs.postLiveRuns();
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
        this.runs.markSeen();
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
      this.runs.requireWorkspaceFree('starting');
      const { folder, settings } = await this.openWorkspace({
        untrusted: 'start runs in an untrusted workspace: the agent edits files and runs commands',
        folder: 'the agent works inside a workspace folder.',
      });
      if (!task || task.trim() === '') throw new ConfigError('The task is empty: describe what the agent should do.');
      await this.guard?.checkWorkspace();
      const model = await this.chooseModel(settings, 'Apollo: Start Run');
      if (!model) return undefined;
      const session = await RunSession.start({ ...this.newRunOptions(settings, model), workspace: folder, task });
      await this.follow(session);
      this.log.info(`Run ${session.runId} started: ${task}`);
      return session;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  /** Follows a session started or resumed here, lists it and says whether its commands are sandboxed. */
  private async follow(session: RunSession, options: { sample?: SamplePosition; show?: boolean } = {}): Promise<void> {
    await this.runs.attach(session, options);
    void this.postRuns();
    if (options.show !== false) void this.announceSandbox(session);
  }

  /**
   * Apollo: Sample Runs… — N runs of one task, each in its own working copy outside the
   * workspace, under one task id. The first run is shown; the others are in the live runs list.
   */
  async sampleRuns(taskArgument?: string, countArgument?: number): Promise<Sampling | undefined> {
    try {
      const { folder, settings } = await this.openWorkspace({
        untrusted: 'sample runs in an untrusted workspace: each agent edits files and runs commands',
        folder: 'sampled runs work in copies of a workspace folder.',
      });
      await this.guard?.checkWorkspace();
      const model = await this.chooseModel(settings, 'Apollo: Sample Runs');
      if (!model) return undefined;
      const task =
        taskArgument ?? (await window.showInputBox({ title: 'Apollo: Sample Runs', prompt: 'The task every run works on', placeHolder: 'What should the agents do?', ignoreFocusOut: true }));
      if (task === undefined) return undefined;
      if (task.trim() === '') throw new ConfigError('The task is empty: describe what the agents should do.');
      let count = countArgument;
      if (count === undefined) {
        const answer = await window.showInputBox({
          title: 'Apollo: Sample Runs',
          prompt: `How many runs of this task? At most ${settings.concurrency} go at once (apollo.sample.concurrency); the others wait their turn.`,
          value: String(settings.sampleCount),
          ignoreFocusOut: true,
          validateInput: (value) => (/^\d+$/.test(value.trim()) && Number(value) >= 1 && Number(value) <= MAX_SAMPLES ? undefined : `A whole number from 1 to ${MAX_SAMPLES}`),
        });
        if (answer === undefined) return undefined;
        count = Number(answer.trim());
      }
      if (!Number.isInteger(count) || count < 1 || count > MAX_SAMPLES)
        throw new ConfigError(`The number of runs must be a whole number from 1 to ${MAX_SAMPLES}.`, openSetting('apollo.sample.count'));
      // One limit for the window: samplings started one after another share it (a changed
      // setting applies to samplings started from now on).
      if (this.limit?.max !== settings.concurrency) this.limit = new ConcurrencyLimit(settings.concurrency);
      const total = count;
      const limit = this.limit;
      const sampling = await window.withNotificationProgress(`Apollo: taking a snapshot of the workspace for ${plural(total, 'run')}…`, () =>
        startSampling({ workspace: folder, ...this.newRunOptions(settings, model), runsDir: settings.runsDir, task, n: total, concurrency: settings.concurrency, limit }),
      );
      let shown = false;
      const attached = new Set<string>();
      const follow = (session: RunSession, index: number) => {
        if (attached.has(session.runId)) return;
        attached.add(session.runId);
        // The first run is shown; the others wait in the live runs list.
        void this.follow(session, { sample: { taskId: sampling.taskId, index: index + 1, count: total }, show: !shown });
        shown = true;
        this.log.info(`Run ${index + 1} of ${total} of task ${sampling.taskId} started: ${session.runId}`);
      };
      sampling.onRunStarted(follow);
      for (const run of sampling.runs) if (run.session) follow(run.session, run.index);
      void sampling.done.then(
        (results) => {
          const failed = results.filter((result) => result.error);
          for (const result of failed) this.log.error(`A run of task ${sampling.taskId} could not start: ${result.error}`);
          const notStarted = failed.length ? ` (${failed.length} could not start; see the log)` : '';
          void window
            .showInformationMessage(`Apollo: the ${total} runs of "${firstLine(task)}" have ended${notStarted}. Review them in the panel and adopt the best.`, 'Adopt a Run…')
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

  /** What a command that starts runs of its own (taskSuiteCommand.ts) uses of this window's. */
  runHost() {
    return {
      runs: this.runs,
      log: this.log,
      openWorkspace: (need: WorkspaceNeed) => this.openWorkspace(need),
      checkWorkspace: async () => void (await this.guard?.checkWorkspace()),
      chooseModel: (settings: ApolloSettings, title: string) => this.chooseModel(settings, title),
      newRunOptions: (settings: ApolloSettings, model: ModelChoice) => this.newRunOptions(settings, model),
      /** The window's one limit (a changed apollo.sample.concurrency applies to what starts from now on). */
      limit: (max: number) => (this.limit?.max === max ? this.limit : (this.limit = new ConcurrencyLimit(max))),
      follow: (session: RunSession, options: { sample?: SamplePosition; show?: boolean }) => this.follow(session, options),
      post: (message: HostToWebview) => this.post(message),
      report: (error: unknown) => this.report(error),
      postRuns: () => this.postRuns(),
    };
  }

  /** The workspace's dataset and what adopting the run would do. */
  private async adoptable(runId: string) {
    const { settings } = await this.openWorkspace({ untrusted: "write a run's changes into an untrusted workspace", folder: 'adopting writes into the folder the runs were sampled from.' });
    return { preview: await this.runs.adoptable(settings.datasetDir, runId), datasetDir: settings.datasetDir };
  }

  /** The panel's Adopt: the multi-diff editor shows the run's change, the panel asks to confirm. */
  async previewAdoptInPanel(runId: string): Promise<void> {
    try {
      const { preview } = await this.adoptable(runId);
      if (!preview.files.length) {
        this.post({ type: 'notice', level: 'info', message: `Run ${runId} left no change to adopt.` });
        return;
      }
      const message = this.runs.adoptPreviewShown(preview);
      await openAdoptPreview(preview);
      this.post(message);
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
      const runId = runIdArgument ?? (await this.pickAdoptable());
      if (runId === undefined) return undefined;
      const { preview, datasetDir } = await this.adoptable(runId);
      if (!preview.files.length) {
        void window.showInformationMessage(`Apollo: run ${runId} left no change to adopt.`);
        return undefined;
      }
      let overwrite: boolean;
      if (how.confirmed) overwrite = this.runs.confirmAdoptFromPanel(preview, how.overwrite);
      else {
        await openAdoptPreview(preview);
        const ask = adoptConfirmation(preview);
        if ((await window.showModalWarning(ask.message, ask.detail, ask.action)) !== ask.action) return undefined;
        overwrite = this.runs.confirmAdoptAgain(preview, await this.runs.adoptable(datasetDir, runId));
      }
      const { event } = await adoptRun(datasetDir, runId, { overwrite });
      this.runs.adopted();
      if (!event) {
        void window.showInformationMessage(`Apollo: your workspace already holds every change of run ${runId}.`);
        return undefined;
      }
      this.runs.observe(runId, event);
      void this.postRuns();
      const summary = `Adopted run ${runId}: ${plural(event.files.length, 'file')} changed in your workspace${event.overwritten.length ? `, overwriting your changes to ${listPaths(event.overwritten)}` : ''}.`;
      this.log.info(summary);
      this.post({ type: 'notice', level: 'info', message: summary });
      void window.showInformationMessage(`Apollo: ${summary}`);
      return event;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  /** The sampled runs of this workspace that ended and were not adopted yet, to pick from. */
  private async pickAdoptable(): Promise<string | undefined> {
    const { folder, settings } = await this.openWorkspace({ folder: 'adopting writes into the folder the runs were sampled from.' });
    const candidates = await this.runs.adoptCandidates(settings.datasetDir, folder);
    const picked = await window.showQuickPick(
      candidates.map((run) => ({ label: firstLine(run.task), description: `${run.status} · ${run.steps} steps · ${run.id}`, detail: run.taskId ? `task ${run.taskId}` : undefined, id: run.id })),
      { title: "Adopt which run's changes?", matchOnDescription: true },
    );
    return picked?.id;
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
      outsideSaves: watchEditorSaves,
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
      throw new ConfigError(`Unknown apollo.reasoning.keepInContext "${String(settings.reasoningInContext)}": use ${REASONING_IN_CONTEXT.join(', ')}.`, openSetting('apollo.reasoning.keepInContext'));
    }
    if (settings.provider === VSCODE_LM_PROVIDER) return this.chooseLanguageModel(settings.endpoint.model, title);
    if (settings.endpoint.problem) throw new ConfigError(settings.endpoint.problem, settings.endpoint.action);
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
    const detail = `${request.command}\n\n${request.reason}\n\nAlways Allow adds "${request.suggestedAllow}" to apollo.sandbox.allow in your user settings.`;
    const choice = await window.showModalWarning('Apollo: allow the agent to run this command?', detail, 'Allow Once', 'Always Allow', 'Refuse');
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
    const allow = userAllowList(workspace.getConfiguration());
    if (allow.includes(pattern)) return;
    await workspace.updateUserSetting('apollo.sandbox.allow', [...allow, pattern]);
    this.log.info(`Added "${pattern}" to apollo.sandbox.allow in your user settings.`);
  }

  /** Says once, in the panel and a notification, when commands are not sandboxed. */
  private async announceSandbox(session: RunSession): Promise<void> {
    const status = await session.sandboxStatus;
    this.log.info(status.description);
    if (status.active || this.sandboxWarned) return;
    this.sandboxWarned = true;
    this.post({ type: 'notice', level: 'info', message: status.description });
    void window.showWarningMessage(`Apollo: ${status.description}`);
  }

  /** What the log and the notifications say about an event of a live run. */
  private onRunEvent(run: LiveRun<RunSession>, event: DatasetEvent): void {
    const name = this.runs.runName(run);
    const runId = run.session.runId;
    const line = runEventLog(name, event);
    if (line) this.log[line.level](line.text);
    if (event.type === 'run_state' && event.state === 'paused' && event.reason) {
      void window.showWarningMessage(`Apollo paused ${name}: ${event.reason}`, 'Resume', 'Show').then((choice) => {
        if (choice === 'Resume') void this.resume(runId);
        if (choice === 'Show') void this.openRun(runId);
      });
    }
    if (event.type === 'run_ended') {
      if (event.status === 'failed') this.report(new Error(`${name} failed: ${event.error ?? 'unknown error'} Its ${event.steps} step(s) are kept.`));
      void this.postRuns();
    }
  }

  /** A flag: the view's badge and the status bar (the registry), and unless turned off a notification. */
  private onAttention(run: LiveRun<RunSession>, flag: AttentionFlag): void {
    const name = this.runs.runName(run);
    this.log.info(`Step ${flag.step} of ${name} needs attention: ${flag.message}`);
    if (!workspace.getConfiguration().get<boolean>('attention.notify', true)) return;
    const where = this.runs.size > 1 ? ` of ${name}` : '';
    void window.showWarningMessage(`Apollo: step ${flag.step}${where} needs attention: ${flag.message}`, 'Show', 'Send Hint').then(async (choice) => {
      if (choice !== 'Show' && choice !== 'Send Hint') return;
      if (this.runs.viewed?.runId !== run.session.runId) await this.openRun(run.session.runId);
      if (choice === 'Show') await this.focusNextFlag();
      else await commands.executeCommand('apollo.injectHint');
    });
  }

  /** Apollo: Go to the Next Step That Needs Attention — reveals the panel and moves to it. */
  async focusNextFlag(): Promise<void> {
    await commands.executeCommand('apollo.panel.focus');
    this.post({ type: 'focusNextFlag' });
    this.runs.markSeen();
  }

  /** Apollo: Go to the Run That Needs You Most — opens it in the panel at its flagged step. */
  async focusNeediestRun(): Promise<string | undefined> {
    const top = this.runs.liveRuns()[0];
    if (!top) {
      void window.showInformationMessage('Apollo: no run is going in this window.');
      return undefined;
    }
    await commands.executeCommand('apollo.panel.focus');
    if (this.runs.viewed?.runId !== top.runId) await this.openRun(top.runId);
    if (top.unseen) this.post({ type: 'focusNextFlag' });
    this.runs.markSeen();
    return top.runId;
  }

  /** The runs of the dataset, newest first, for the panel's runs list. */
  private async postRuns(): Promise<void> {
    if (!workspace.firstFolder()) return;
    try {
      const { settings } = await this.openWorkspace();
      const runs = await new DatasetStore(settings.datasetDir).listRuns();
      const live = this.runs.workspaceRun();
      this.post({
        type: 'runs',
        runs: runs.slice(0, 200).map((run) => ({ runId: run.id, task: run.task, status: run.status, steps: run.steps, createdAt: run.createdAt, ...suiteTaskOf(run) })),
        ...(live ? { liveRunId: live.runId } : {}),
      });
    } catch (error) {
      this.log.warn(`Could not list the dataset's runs: ${(error as Error).message}`);
    }
  }

  /** Opens a run of the dataset in the panel: the live one as it goes, any other for reading. */
  async openRun(runId: string): Promise<void> {
    try {
      const problems = await this.runs.open(runId, async () => (await this.openWorkspace({ folder: 'runs are recorded in the workspace.' })).settings.datasetDir);
      for (const problem of problems) this.log.warn(problem);
    } catch (error) {
      this.report(error);
    }
  }

  /** Everything about one step, for the panel's detail view. */
  async showStep(step: number): Promise<StepDetail | undefined> {
    try {
      const detail = await this.runs.stepDetail(step);
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
      await window.showFile(await this.runs.fullOutputPath(step));
    } catch (error) {
      this.report(error);
    }
  }

  /** Apollo: Inject Hint — with the text given (scripts, keybindings) at once, else through one input box. */
  async injectHintCommand(text?: unknown, kind?: unknown, urgency?: unknown, runId?: unknown): Promise<string | undefined> {
    const target = typeof runId === 'string' ? runId : undefined;
    if (typeof text === 'string') {
      return this.injectHint(
        text,
        HINT_KINDS.includes(kind as HintKind) ? (kind as HintKind) : 'knowledge',
        HINT_URGENCIES.includes(urgency as HintUrgency) ? (urgency as HintUrgency) : 'next',
        target,
      );
    }
    const hint = await this.askHint();
    return hint && this.injectHint(hint.text, hint.kind, hint.urgency, target);
  }

  /**
   * One input box: the hint, its kind and urgency typed as prefixes (the placeholder says how)
   * or chosen through its Options… button; the prompt says what Enter will send.
   */
  private askHint(): Promise<HintInput | undefined> {
    const box = window.createInputBox();
    const options = window.inputButton('settings-gear', 'Options… (kind and urgency)');
    let defaults = { ...HINT_DEFAULTS };
    let choosing = false;
    box.title = 'Apollo: Inject Hint';
    box.placeholder = HINT_PLACEHOLDER;
    box.ignoreFocusOut = true;
    box.buttons = [options];
    const update = () => {
      box.prompt = describeHintInput(parseHintInput(box.value, defaults)).message;
      box.validationMessage = undefined;
    };
    update();
    return new Promise((resolve) => {
      let done = false;
      const finish = (hint: HintInput | undefined) => {
        if (done) return;
        done = true;
        box.dispose();
        resolve(hint);
      };
      box.onDidChangeValue(update);
      box.onDidAccept(() => {
        const hint = parseHintInput(box.value, defaults);
        if (hint.text) finish(hint);
        else box.validationMessage = describeHintInput(hint).message;
      });
      box.onDidTriggerButton(async (button) => {
        if (button !== options) return;
        // The pick hides the box for a moment; it comes back with the hint as typed.
        choosing = true;
        defaults = (await this.pickHintOptions(defaults)) ?? defaults;
        choosing = false;
        update();
        box.show();
      });
      box.onDidHide(() => {
        if (!choosing) finish(undefined);
      });
      box.show();
    });
  }

  /** The kind and urgency, in one pick (the current choice first). */
  private async pickHintOptions(current: Omit<HintInput, 'text'>): Promise<Omit<HintInput, 'text'> | undefined> {
    const items = hintOptions(current);
    const picked = await window.showQuickPick(items, { title: 'Apollo: Inject Hint — kind and urgency', placeHolder: 'Prefixes typed in the hint ("strategy:", "!") still win' });
    return picked?.hint;
  }

  async injectHint(text: string, kind: HintKind = 'knowledge', urgency: HintUrgency = 'next', runId?: string): Promise<string | undefined> {
    try {
      const session = this.runs.target(runId);
      const hintId = await session.injectHint(text, kind, 'human', urgency);
      if (this.runs.viewed?.runId === session.runId) this.runs.markSeen();
      return hintId;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  pause(runId?: string): void {
    try {
      this.runs.target(runId).pause();
      this.post({ type: 'notice', level: 'info', message: 'Pausing after the current step.' });
    } catch (error) {
      this.report(error);
    }
  }

  /** Resumes the paused run, or, with none going, continues a run interrupted by a crash. */
  async resume(runId?: string): Promise<void> {
    try {
      // A live run that is paused goes on; a run going on needs nothing.
      const known = this.runs.liveToResume(runId);
      if (known) {
        known.resume();
        if (this.runs.viewed?.runId === known.runId) this.runs.markSeen();
        return;
      }
      const { settings } = await this.openWorkspace({ untrusted: 'resume runs in an untrusted workspace', folder: 'runs are recorded in the workspace.' });
      const interrupted = await this.runs.interrupted(settings.datasetDir);
      let chosen = runId;
      if (!chosen) {
        if (interrupted.length === 0) throw new ConfigError('No interrupted run to resume: every recorded run has ended.');
        const picked = await window.showQuickPick(
          interrupted.map((run) => ({ label: run.task.split('\n')[0].slice(0, 80), description: `${run.steps} steps · ${run.id}`, id: run.id })),
          { title: 'Resume an interrupted run' },
        );
        if (!picked) return;
        chosen = picked.id;
      }
      const manifest = interrupted.find((run) => run.id === chosen);
      const started = await this.runs.checkResume(settings.datasetDir, chosen, manifest);
      // A run on one of VS Code's models goes on with the model it recorded, if VS Code still has it.
      let languageModel: ModelChoice | undefined;
      if (started.provider === VSCODE_LM_PROVIDER) {
        languageModel = await this.chooseLanguageModel(started.model ?? '', 'Apollo: Resume Run');
        if (!languageModel) return;
      }
      const endpoint = settings.endpoint;
      const session = await RunSession.resume({
        datasetDir: settings.datasetDir,
        runId: chosen,
        ...(languageModel
          ? { apiKey: '', model: languageModel.model, client: languageModel.client }
          : { apiKey: endpoint.apiKey, ...(endpoint.baseUrl ? { baseUrl: endpoint.baseUrl } : {}), ...(endpoint.model ? { model: endpoint.model } : {}) }),
        // The budget stays the one the run started with (kept in run_started).
        ...this.sessionOptions(settings),
      });
      const sample = await this.runs.samplePosition(settings.datasetDir, session.runId, manifest);
      await this.follow(session, sample ? { sample } : {});
      this.log.info(`Run ${session.runId} resumed from step ${session.stepCount + 1}.`);
    } catch (error) {
      this.report(error);
    }
  }

  async stop(runId?: string): Promise<void> {
    try {
      await this.runs.target(runId).stop();
    } catch (error) {
      this.report(error);
    }
  }

  /** Records the annotator's label on a step of the run the panel shows; false (after saying why) when it cannot. */
  async label(step: number, label: LabelValue, details: { axis?: LabelAxis; reason?: string } = {}): Promise<boolean> {
    try {
      await this.runs.label(step, label, details);
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
    let { step, label, axis, reason } = given;
    try {
      this.runs.requireViewed('No run is open to label: start or resume one, or open one from the runs list.');
      step ??= await this.pickStep('Label which step?', true);
    } catch (error) {
      this.report(error);
      return false;
    }
    if (step === undefined) return false;
    if (label === undefined) {
      const picked = await window.showQuickPick(
        [
          { label: 'good', description: 'train on it', value: 'good' as const },
          { label: 'bad', description: 'keep it as context only: masked out of the training loss', value: 'bad' as const },
          { label: 'neutral', description: 'no verdict', value: 'neutral' as const },
        ],
        { title: `Label step ${step}` },
      );
      if (!picked) return false;
      label = picked.value;
      const axisPick = await window.showQuickPick(
        [
          { label: 'Both', description: 'the step as a whole', value: undefined },
          { label: 'Decision', description: 'was this the right thing to do?', value: 'decision' as const },
          { label: 'Execution', description: 'was it done right?', value: 'execution' as const },
        ],
        { title: `What is step ${step} ${label} at?` },
      );
      if (!axisPick) return false;
      axis = axisPick.value;
      reason ??= await window.showInputBox({ title: `Why is step ${step} ${label}? (optional)`, prompt: 'Press Enter to skip.', ignoreFocusOut: true });
      if (reason === undefined) return false;
    }
    return this.label(step, label, { ...(axis ? { axis } : {}), ...(reason?.trim() ? { reason: reason.trim() } : {}) });
  }

  /** A step of the run on screen, newest first. */
  private async pickStep(title: string, withDetail = false): Promise<number | undefined> {
    const steps = await this.runs.viewedSteps();
    const picked = await window.showQuickPick(
      steps
        .map((event) => ({ label: `Step ${event.step}`, description: event.action?.name ?? '(no tool call)', ...(withDetail ? { detail: toTimelineStep(event).args } : {}), step: event.step }))
        .reverse(),
      { title, matchOnDetail: withDetail },
    );
    return picked?.step;
  }

  /** What a rewind to the step would change, for the panel to confirm. */
  async previewRewind(step: number): Promise<void> {
    try {
      const viewed = this.runs.requireViewed('There is no run to rewind: start or resume one, or open one from the runs list.');
      const preview = await previewRewind({ datasetDir: viewed.store.root, runId: viewed.runId, toStep: step });
      this.post(this.runs.rewindPreviewShown(step, preview));
    } catch (error) {
      this.report(error);
    }
  }

  /**
   * Puts the workspace back to how it stood before `step` of the open run; the run then goes on
   * from there on a new branch when resumed. One confirmation says what will change on disk:
   * the files written or removed, the user's own edits that would be overwritten (they are
   * recorded first), and that a live run stops.
   */
  async rewind(stepArgument?: number, how: { confirmed?: boolean } = {}): Promise<RewindEvent | undefined> {
    try {
      const viewed = this.runs.requireViewed('There is no run to rewind: start or resume one, or open one from the runs list.');
      const step = stepArgument ?? (await this.pickStep('Rewind the workspace to before which step?'));
      if (step === undefined) return undefined;
      const options = { datasetDir: viewed.store.root, runId: viewed.runId, toStep: step };
      const preview = await previewRewind(options);
      // Edits made after the panel's preview were not shown: those are asked about here.
      if (this.runs.rewindNeedsConfirmation(step, preview, !!how.confirmed)) {
        const choice = await window.showModalWarning(`Rewind the workspace to before step ${step}?`, rewindConfirmation(preview, !!viewed.session?.isLive), 'Rewind');
        if (choice !== 'Rewind') return undefined;
      }
      if (viewed.session?.isLive) {
        await viewed.session.stop();
        await viewed.session.done;
      }
      const { event } = await rewindRun({ ...options, force: preview.userEdits.length > 0 });
      // The rewind is written beside the run, not through its session: the panel's model takes it here.
      this.runs.observe(viewed.runId, event);
      this.runs.markSeen();
      this.post({ type: 'notice', level: 'info', message: `Rewound to before step ${step}: ${event.files.length} file(s) restored. Resume to go on from there.` });
      void window
        .showInformationMessage(
          `Apollo: workspace rewound to before step ${step} (${event.files.length} file(s) restored). Resume the run to go on from there; a hint sent after resuming reaches its next step.`,
          'Resume',
        )
        .then((picked) => (picked === 'Resume' ? this.resume(viewed.runId) : undefined));
      return event;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  async openDiff(step: number): Promise<void> {
    try {
      const event = await this.runs.findStep(step);
      await openStepDiff(step, stepGrounding(event), await this.runs.shadowOfViewed());
    } catch (error) {
      this.report(error);
    }
  }

  private updateStatus(): void {
    const view = this.runs.status();
    void commands.setContext('apollo.runState', view.state);
    void commands.setContext('apollo.runLive', view.live);
    void commands.setContext('apollo.needsAttention', view.unseen > 0);
    void commands.setContext('apollo.runsGoing', view.going);
    this.panel?.setBadge?.(view.unseen, `${view.unseen} step${view.unseen === 1 ? '' : 's'} need${view.unseen === 1 ? 's' : ''} your attention`);
    if (!view.item) {
      this.statusBar.hide();
      return;
    }
    this.statusBar.text = view.item.text;
    this.statusBar.tooltip = view.item.tooltip;
    this.statusBar.command = view.item.command;
    this.statusBar.backgroundColor = view.item.warning ? window.warningBackground() : undefined;
    this.statusBar.show();
  }

  dispose(): void {
    this.runs.dispose();
    for (const session of this.runs.sessions()) void session.stop();
    this.statusBar.dispose();
    this.listeners.clear();
  }
}
