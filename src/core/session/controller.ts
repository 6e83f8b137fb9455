/**
 * The runs of one editor window and what the annotator's commands and the panel's messages do
 * with them: start, sample, resume, adopt, rewind, label, hint, and what the window says about a
 * run's events. Every flow is decided here; the editor's side (notifications, questions, pickers,
 * input boxes, the diff editor, the settings) is behind ControllerUi (controllerUi.ts), which the
 * VS Code layer implements in a line or two each, and tests with fakes that record what is shown
 * and answer what is asked. Which run an action is for, what the panel shows and what a confirmation covers
 * are the registry's (registry.ts).
 */
import type { DatasetEvent, HintKind, HintUrgency, LabelAxis, LabelValue, RewindEvent, RunAdoptedEvent } from '../dataset/events';
import { REASONING_IN_CONTEXT, stepGrounding } from '../dataset/events';
import { DatasetStore } from '../dataset/store';
import { plural } from '../text';
import type { CommandApprovalRequest } from '../agent/tools';
import type { AttentionFlag } from '../supervision/attention';
import { adoptRun } from './adopt';
import type { ControllerUi, ModelChoice, PanelChannel, WorkspaceNeed } from './controllerUi';
import {
  adoptedSummary,
  adoptItems,
  approvalDetail,
  attentionMessage,
  attentionTooltip,
  AXIS_ITEMS,
  checkSampleCount,
  hintFromArguments,
  LABEL_ITEMS,
  resumeItems,
  rewoundTexts,
  runListItems,
  sampleCountProblem,
  sampleCountPrompt,
  samplingEndedMessage,
  stepItems,
} from './controllerTexts';
import { ConfigError, type ErrorAction, MANAGE_TRUST, openSetting } from './errors';
import type { HostToWebview, LiveRunItem, StepDetail, WebviewToHost } from './panelViews';
import { adoptConfirmation, type LiveRun, rewindConfirmation, runEventLog, RunRegistry, type SamplePosition } from './registry';
import { previewRewind, rewindRun } from './rewind';
import { type EngineTuning, RunSession, type SessionOptions, validateSampling } from './runSession';
import { ConcurrencyLimit, type Sampling, startSampling } from './sample';
import type { ApolloSettings } from './settings';

export type * from './controllerUi';

export class SessionController {
  protected readonly runs: RunRegistry<RunSession>;
  /** Runs beyond this many at once wait their turn (apollo.sample.concurrency). */
  private limit: ConcurrencyLimit | undefined;
  private sandboxWarned = false;
  private readonly listeners = new Set<(message: HostToWebview) => void>();
  private panel: PanelChannel | undefined;

  constructor(
    protected readonly ui: ControllerUi,
    /** The engine's fault handling, for every run started or resumed (tests shorten it). */
    private readonly engine?: EngineTuning,
  ) {
    this.runs = new RunRegistry<RunSession>({
      post: (message) => this.post(message),
      policy: () => ui.maskPolicy(),
      event: (run, event) => this.onRunEvent(run, event),
      attention: (run, flag) => this.onAttention(run, flag),
      changed: () => this.updateStatus(),
      needOrder: () => ({ verifierFailuresFirst: ui.setting<boolean>('attention.verifierFailuresFirst', false) === true }),
    });
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

  protected post(message: HostToWebview): void {
    this.panel?.post(message);
    for (const listener of this.listeners) listener(message);
  }

  /**
   * The open folder and its settings, or a ConfigError with its fix: no folder (on disk), or an
   * untrusted one when the command changes the workspace. One preamble for every command.
   */
  async openWorkspace(need: WorkspaceNeed = {}): Promise<{ folder: string; settings: ApolloSettings }> {
    if (need.untrusted && !this.ui.isTrusted()) throw new ConfigError(`Apollo does not ${need.untrusted}. Trust this folder first.`, MANAGE_TRUST);
    const folder = this.ui.firstFolder();
    if (!folder || !folder.onDisk) throw new ConfigError(`Open a folder first: ${need.folder ?? 'runs are recorded for a workspace folder.'}`);
    return { folder: folder.path, settings: await this.ui.settings(folder.path) };
  }

  /** Tells the user, in a notification and in the panel, what went wrong and offers the fix the error carries. */
  report(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.ui.log.error(message);
    this.post({ type: 'notice', level: 'error', message });
    const action = error instanceof ConfigError ? error.action : undefined;
    void this.ui.showErrorMessage(message, ...(action ? [action.label] : [])).then((choice) => (action && choice === action.label ? this.fix(action) : undefined));
  }

  private async fix(action: ErrorAction): Promise<void> {
    if ('command' in action) {
      await this.ui.command(action.command);
      return;
    }
    if (action.write) await this.ui.writeUserSetting(action.write.setting, action.write.value);
    await this.ui.openSettings(action.setting);
  }

  /** What each message from the panel asks for: the command of the same name, with the message's fields. */
  private readonly panelMessages: { [T in WebviewToHost['type']]: (message: Extract<WebviewToHost, { type: T }>) => unknown } = {
    ready: async () => {
      // The panel (re)loaded: give it the whole timeline again, and the runs to choose from.
      this.post(this.runs.init());
      await this.postRuns();
      this.runs.postLiveRuns();
    },
    showStep: (message) => this.showStep(message.step),
    openFullOutput: (message) => this.openFullOutput(message.step),
    openRun: (message) => this.openRun(message.runId),
    attentionSeen: () => this.runs.markSeen(),
    startRun: (message) => this.startRun(message.task),
    sampleRuns: (message) => this.sampleRuns(message.task),
    previewAdopt: (message) => this.previewAdoptInPanel(message.runId),
    // The panel asked with the preview on screen: it is the confirmation.
    adoptRun: (message) => this.adoptRun(message.runId, { confirmed: true, overwrite: message.overwrite }),
    sendHint: (message) => this.injectHint(message.text, message.kind, message.urgency, message.runId),
    pauseRun: (message) => this.pause(message.runId),
    resumeRun: (message) => this.resume(message.runId),
    stopRun: (message) => this.stop(message.runId),
    labelStep: (message) => this.label(message.step, message.label, { axis: message.axis, reason: message.reason }),
    openDiff: (message) => this.openDiff(message.step),
    previewRewind: (message) => this.previewRewind(message.step),
    // The panel asked with the preview on screen: it is the confirmation.
    rewind: (message) => this.rewind(message.step, { confirmed: true }),
  };

  /** Does what a message from the panel asks (a message the protocol checked). */
  async handle(message: WebviewToHost): Promise<void> {
    // The table is keyed by the message's type, so each entry takes its own message.
    await (this.panelMessages[message.type] as (message: WebviewToHost) => unknown)(message);
  }

  async startRun(task: string): Promise<RunSession | undefined> {
    try {
      this.runs.requireWorkspaceFree('starting');
      const { folder, settings } = await this.openWorkspace({
        untrusted: 'start runs in an untrusted workspace: the agent edits files and runs commands',
        folder: 'the agent works inside a workspace folder.',
      });
      if (!task || task.trim() === '') throw new ConfigError('The task is empty: describe what the agent should do.');
      await this.ui.checkWorkspace?.();
      const model = await this.chooseModel(settings, 'Apollo: Start Run');
      if (!model) return undefined;
      const session = await RunSession.start({ ...this.newRunOptions(settings, model), workspace: folder, task });
      await this.follow(session);
      this.ui.log.info(`Run ${session.runId} started: ${task}`);
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
      await this.ui.checkWorkspace?.();
      const model = await this.chooseModel(settings, 'Apollo: Sample Runs');
      if (!model) return undefined;
      const task =
        taskArgument ?? (await this.ui.showInputBox({ title: 'Apollo: Sample Runs', prompt: 'The task every run works on', placeHolder: 'What should the agents do?', ignoreFocusOut: true }));
      if (task === undefined) return undefined;
      if (task.trim() === '') throw new ConfigError('The task is empty: describe what the agents should do.');
      let count = countArgument;
      if (count === undefined) {
        const answer = await this.ui.showInputBox({
          title: 'Apollo: Sample Runs',
          prompt: sampleCountPrompt(settings.concurrency),
          value: String(settings.sampleCount),
          ignoreFocusOut: true,
          validateInput: sampleCountProblem,
        });
        if (answer === undefined) return undefined;
        count = Number(answer.trim());
      }
      checkSampleCount(count);
      const total = count;
      const limit = this.sharedLimit(settings.concurrency);
      const sampling = await this.ui.withNotificationProgress(`Apollo: taking a snapshot of the workspace for ${plural(total, 'run')}…`, () =>
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
        this.ui.log.info(`Run ${index + 1} of ${total} of task ${sampling.taskId} started: ${session.runId}`);
      };
      sampling.onRunStarted(follow);
      for (const run of sampling.runs) if (run.session) follow(run.session, run.index);
      void sampling.done.then(
        (results) => {
          const failed = results.filter((result) => result.error);
          for (const result of failed) this.ui.log.error(`A run of task ${sampling.taskId} could not start: ${result.error}`);
          void this.ui.showInformationMessage(samplingEndedMessage(total, task, failed.length), 'Adopt a Run…').then((choice) => (choice ? this.adoptRun() : undefined));
        },
        (error) => this.report(error),
      );
      this.post({ type: 'notice', level: 'info', message: `Sampling ${total} runs of this task, each in its own working copy (task ${sampling.taskId}).` });
      this.ui.log.info(`Sampling ${total} runs of task ${sampling.taskId} in ${settings.runsDir}: ${task}`);
      return sampling;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  /**
   * One limit for the window: samplings started one after another share it (a changed
   * apollo.sample.concurrency applies to what starts from now on).
   */
  private sharedLimit(max: number): ConcurrencyLimit {
    if (this.limit?.max !== max) this.limit = new ConcurrencyLimit(max);
    return this.limit;
  }

  /** What a command that starts runs of its own (Run Task Suite…) uses of this window's. */
  runHost() {
    return {
      runs: this.runs,
      log: this.ui.log,
      openWorkspace: (need: WorkspaceNeed) => this.openWorkspace(need),
      checkWorkspace: async () => void (await this.ui.checkWorkspace?.()),
      chooseModel: (settings: ApolloSettings, title: string) => this.chooseModel(settings, title),
      newRunOptions: (settings: ApolloSettings, model: ModelChoice) => this.newRunOptions(settings, model),
      /** The window's one limit (a changed apollo.sample.concurrency applies to what starts from now on). */
      limit: (max: number) => this.sharedLimit(max),
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
      await this.ui.openAdoptPreview(preview);
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
        void this.ui.showInformationMessage(`Apollo: run ${runId} left no change to adopt.`);
        return undefined;
      }
      let overwrite: boolean;
      if (how.confirmed) overwrite = this.runs.confirmAdoptFromPanel(preview, how.overwrite);
      else {
        await this.ui.openAdoptPreview(preview);
        const ask = adoptConfirmation(preview);
        if ((await this.ui.showModalWarning(ask.message, ask.detail, ask.action)) !== ask.action) return undefined;
        overwrite = this.runs.confirmAdoptAgain(preview, await this.runs.adoptable(datasetDir, runId));
      }
      const { event } = await adoptRun(datasetDir, runId, { overwrite });
      this.runs.adopted();
      if (!event) {
        void this.ui.showInformationMessage(`Apollo: your workspace already holds every change of run ${runId}.`);
        return undefined;
      }
      this.runs.observe(runId, event);
      void this.postRuns();
      const summary = adoptedSummary(runId, event);
      this.ui.log.info(summary);
      this.post({ type: 'notice', level: 'info', message: summary });
      void this.ui.showInformationMessage(`Apollo: ${summary}`);
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
    const picked = await this.ui.showQuickPick(adoptItems(candidates), { title: "Adopt which run's changes?", matchOnDescription: true });
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
      log: (line) => this.ui.log.info(line),
      ...(this.ui.outsideSaves ? { outsideSaves: this.ui.outsideSaves } : {}),
      ...(this.engine ? { engine: this.engine } : {}),
    };
  }

  /**
   * Checks the request settings and finds the model a new run uses, before anything starts:
   * the endpoint (complete, or a ConfigError that says what is missing), or one the editor
   * serves (apollo.model names it, else the user picks; undefined when dismissed).
   */
  private async chooseModel(settings: ApolloSettings, title: string): Promise<ModelChoice | undefined> {
    validateSampling(settings.sampling);
    if (!REASONING_IN_CONTEXT.includes(settings.reasoningInContext)) {
      throw new ConfigError(`Unknown apollo.reasoning.keepInContext "${String(settings.reasoningInContext)}": use ${REASONING_IN_CONTEXT.join(', ')}.`, openSetting('apollo.reasoning.keepInContext'));
    }
    if (this.ui.hostModels && settings.provider === this.ui.hostModels.provider) return this.ui.hostModels.choose(settings.endpoint.model, title);
    if (settings.endpoint.problem) throw new ConfigError(settings.endpoint.problem, settings.endpoint.action);
    return { model: settings.endpoint.model, baseUrl: settings.endpoint.baseUrl, apiKey: settings.endpoint.apiKey };
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
    const choice = await this.ui.showModalWarning('Apollo: allow the agent to run this command?', approvalDetail(request), 'Allow Once', 'Always Allow', 'Refuse');
    if (choice === 'Always Allow') await this.alwaysAllow(request.suggestedAllow);
    const verdict = choice === 'Allow Once' || choice === 'Always Allow' ? 'allow' : 'deny';
    this.ui.log.info(`Command ${verdict === 'allow' ? 'allowed' : 'refused'} by the annotator: ${request.command}`);
    return verdict;
  }

  /**
   * Adds a pattern to the user's own apollo.sandbox.allow: their user value and the new pattern,
   * never the merged value (a workspace's list would be copied into the user's settings).
   */
  async alwaysAllow(pattern: string): Promise<void> {
    const allow = this.ui.userAllowList();
    if (allow.includes(pattern)) return;
    await this.ui.writeUserSetting('apollo.sandbox.allow', [...allow, pattern]);
    this.ui.log.info(`Added "${pattern}" to apollo.sandbox.allow in your user settings.`);
  }

  /** Says once, in the panel and a notification, when commands are not sandboxed. */
  private async announceSandbox(session: RunSession): Promise<void> {
    const status = await session.sandboxStatus;
    this.ui.log.info(status.description);
    if (status.active || this.sandboxWarned) return;
    this.sandboxWarned = true;
    this.post({ type: 'notice', level: 'info', message: status.description });
    void this.ui.showWarningMessage(`Apollo: ${status.description}`);
  }

  /** What the log and the notifications say about an event of a live run. */
  private onRunEvent(run: LiveRun<RunSession>, event: DatasetEvent): void {
    const name = this.runs.runName(run);
    const runId = run.session.runId;
    const line = runEventLog(name, event);
    if (line) this.ui.log[line.level](line.text);
    if (event.type === 'run_state' && event.state === 'paused' && event.reason) {
      void this.ui.showWarningMessage(`Apollo paused ${name}: ${event.reason}`, 'Resume', 'Show').then((choice) => {
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
    this.ui.log.info(`Step ${flag.step} of ${name} needs attention: ${flag.message}`);
    if (!this.ui.setting<boolean>('attention.notify', true)) return;
    void this.ui.showWarningMessage(attentionMessage(flag, name, this.runs.size > 1), 'Show', 'Send Hint').then(async (choice) => {
      if (choice !== 'Show' && choice !== 'Send Hint') return;
      if (this.runs.viewed?.runId !== run.session.runId) await this.openRun(run.session.runId);
      if (choice === 'Show') await this.focusNextFlag();
      else await this.ui.command('apollo.injectHint');
    });
  }

  /** Apollo: Go to the Next Step That Needs Attention — reveals the panel and moves to it. */
  async focusNextFlag(): Promise<void> {
    await this.ui.command('apollo.panel.focus');
    this.post({ type: 'focusNextFlag' });
    this.runs.markSeen();
  }

  /** Apollo: Go to the Run That Needs You Most — opens it in the panel at its flagged step. */
  async focusNeediestRun(): Promise<string | undefined> {
    const top = this.runs.liveRuns()[0];
    if (!top) {
      void this.ui.showInformationMessage('Apollo: no run is going in this window.');
      return undefined;
    }
    await this.ui.command('apollo.panel.focus');
    if (this.runs.viewed?.runId !== top.runId) await this.openRun(top.runId);
    if (top.unseen) this.post({ type: 'focusNextFlag' });
    this.runs.markSeen();
    return top.runId;
  }

  /** The runs of the dataset, newest first, for the panel's runs list. */
  private async postRuns(): Promise<void> {
    if (!this.ui.firstFolder()) return;
    try {
      const { settings } = await this.openWorkspace();
      const runs = await new DatasetStore(settings.datasetDir).listRuns();
      const live = this.runs.workspaceRun();
      this.post({ type: 'runs', runs: runListItems(runs), ...(live ? { liveRunId: live.runId } : {}) });
    } catch (error) {
      this.ui.log.warn(`Could not list the dataset's runs: ${(error as Error).message}`);
    }
  }

  /** Opens a run of the dataset in the panel: the live one as it goes, any other for reading. */
  async openRun(runId: string): Promise<void> {
    try {
      const problems = await this.runs.open(runId, async () => (await this.openWorkspace({ folder: 'runs are recorded in the workspace.' })).settings.datasetDir);
      for (const problem of problems) this.ui.log.warn(problem);
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
      this.ui.log.warn((error as Error).message);
      return undefined;
    }
  }

  /** Opens the full output a long command printed, kept beside the run. */
  async openFullOutput(step: number): Promise<void> {
    try {
      await this.ui.showFile(await this.runs.fullOutputPath(step));
    } catch (error) {
      this.report(error);
    }
  }

  /** Apollo: Inject Hint — with the text given (scripts, keybindings) at once, else asked for. */
  async injectHintCommand(text?: unknown, kind?: unknown, urgency?: unknown, runId?: unknown): Promise<string | undefined> {
    const target = typeof runId === 'string' ? runId : undefined;
    const hint = typeof text === 'string' ? hintFromArguments(text, kind, urgency) : await this.ui.askHint();
    return hint && this.injectHint(hint.text, hint.kind, hint.urgency, target);
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
        const picked = await this.ui.showQuickPick(resumeItems(interrupted), { title: 'Resume an interrupted run' });
        if (!picked) return;
        chosen = picked.id;
      }
      const manifest = interrupted.find((run) => run.id === chosen);
      const started = await this.runs.checkResume(settings.datasetDir, chosen, manifest);
      // A run on one of the editor's models goes on with the model it recorded, if the editor still has it.
      let hostModel: ModelChoice | undefined;
      if (this.ui.hostModels && started.provider === this.ui.hostModels.provider) {
        hostModel = await this.ui.hostModels.choose(started.model ?? '', 'Apollo: Resume Run');
        if (!hostModel) return;
      }
      const endpoint = settings.endpoint;
      const session = await RunSession.resume({
        datasetDir: settings.datasetDir,
        runId: chosen,
        ...(hostModel
          ? { apiKey: '', model: hostModel.model, client: hostModel.client }
          : { apiKey: endpoint.apiKey, ...(endpoint.baseUrl ? { baseUrl: endpoint.baseUrl } : {}), ...(endpoint.model ? { model: endpoint.model } : {}) }),
        // The budget stays the one the run started with (kept in run_started).
        ...this.sessionOptions(settings),
      });
      const sample = await this.runs.samplePosition(settings.datasetDir, session.runId, manifest);
      await this.follow(session, sample ? { sample } : {});
      this.ui.log.info(`Run ${session.runId} resumed from step ${session.stepCount + 1}.`);
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
      const picked = await this.ui.showQuickPick(LABEL_ITEMS, { title: `Label step ${step}` });
      if (!picked) return false;
      label = picked.value;
      const axisPick = await this.ui.showQuickPick(AXIS_ITEMS, { title: `What is step ${step} ${label} at?` });
      if (!axisPick) return false;
      axis = axisPick.value;
      reason ??= await this.ui.showInputBox({ title: `Why is step ${step} ${label}? (optional)`, prompt: 'Press Enter to skip.', ignoreFocusOut: true });
      if (reason === undefined) return false;
    }
    return this.label(step, label, { ...(axis ? { axis } : {}), ...(reason?.trim() ? { reason: reason.trim() } : {}) });
  }

  /** A step of the run on screen, newest first. */
  private async pickStep(title: string, withDetail = false): Promise<number | undefined> {
    const picked = await this.ui.showQuickPick(stepItems(await this.runs.viewedSteps(), withDetail), { title, matchOnDetail: withDetail });
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
        const choice = await this.ui.showModalWarning(`Rewind the workspace to before step ${step}?`, rewindConfirmation(preview, !!viewed.session?.isLive), 'Rewind');
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
      const texts = rewoundTexts(step, event.files.length);
      this.post({ type: 'notice', level: 'info', message: texts.notice });
      void this.ui.showInformationMessage(texts.message, 'Resume').then((picked) => (picked === 'Resume' ? this.resume(viewed.runId) : undefined));
      return event;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  async openDiff(step: number): Promise<void> {
    try {
      const event = await this.runs.findStep(step);
      await this.ui.openStepDiff(step, stepGrounding(event), await this.runs.shadowOfViewed());
    } catch (error) {
      this.report(error);
    }
  }

  private updateStatus(): void {
    const view = this.runs.status();
    this.ui.status(view);
    this.panel?.setBadge?.(view.unseen, attentionTooltip(view.unseen));
  }

  dispose(): void {
    this.runs.dispose();
    for (const session of this.runs.sessions()) void session.stop();
    this.ui.dispose?.();
    this.listeners.clear();
  }
}
