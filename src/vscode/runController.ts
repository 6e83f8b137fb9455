/**
 * Owns the current run in the window: starts it from settings, forwards its events to the panel
 * as protocol messages, and carries out what the panel and the commands ask.
 */
import * as vscode from 'vscode';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DatasetEvent, HintKind, HintUrgency, LabelAxis, LabelValue, RewindEvent, StepEvent } from '../core/dataset/events';
import { DatasetStore } from '../core/dataset/store';
import { shadowStoreDir } from '../core/grounding/shadowStore';
import { ConfigError, RunSession } from '../core/session/runSession';
import { previewRewind, rewindRun } from '../core/session/rewind';
import type { AttentionFlag } from '../core/supervision/attention';
import type { CommandApprovalRequest } from '../core/agent/tools';
import { DEFAULT_MASK_POLICY } from '../core/supervision/labels';
import { HostToWebview, parseWebviewMessage, StepDetail } from '../protocol';
import { openStepDiff } from './diffProvider';
import { readSettings } from './settings';
import { TimelineModel, toTimelineStep } from './timeline';

export interface PanelChannel {
  post(message: HostToWebview): void;
  /** The number on the view's icon: steps that need the annotator. */
  setBadge?(value: number, tooltip: string): void;
}

/** The run the panel shows: the live session's, or a past run opened for reading. */
interface ViewedRun {
  runId: string;
  store: DatasetStore;
  model: TimelineModel;
  /** Set for the live session's run. */
  session?: RunSession;
}

const MAX_DETAIL_PATCH = 200_000;

function prettyArguments(raw: string): string {
  try {
    return JSON.stringify(JSON.parse(raw), null, 2);
  } catch {
    return raw;
  }
}

export class RunController implements vscode.Disposable {
  private session: RunSession | undefined;
  private viewed: ViewedRun | undefined;
  /** The user's edits the panel last showed in a rewind preview: a confirmation covers only those. */
  private previewed: { runId: string; step: number; userEdits: Set<string> } | undefined;
  private sandboxWarned = false;
  private subscription: { dispose(): void } | undefined;
  private readonly posted = new vscode.EventEmitter<HostToWebview>();
  readonly onDidPost = this.posted.event;
  private readonly statusBar: vscode.StatusBarItem;
  private panel: PanelChannel | undefined;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.statusBar = vscode.window.createStatusBarItem('apollo.runState', vscode.StatusBarAlignment.Left, 50);
    this.statusBar.name = 'Apollo Run';
    this.statusBar.command = 'apollo.panel.focus';
    this.updateStatus();
  }

  attachPanel(panel: PanelChannel): void {
    this.panel = panel;
  }

  currentSession(): RunSession | undefined {
    return this.session;
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
    void vscode.window.showErrorMessage(message, ...actions).then((choice) => {
      if (choice === 'Set API Key') void vscode.commands.executeCommand('apollo.setApiKey');
      if (choice === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'apollo.');
      if (choice === 'Manage Workspace Trust') void vscode.commands.executeCommand('workbench.trust.manage');
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
        else if (this.session) await this.attach(this.session);
        else this.post({ type: 'init', run: null, steps: [], hints: [], attention: [], unseen: 0 });
        await this.postRuns();
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
      case 'sendHint':
        await this.injectHint(message.text, message.kind, message.urgency);
        return;
      case 'pauseRun':
        this.pause();
        return;
      case 'resumeRun':
        await this.resume(message.runId);
        return;
      case 'stopRun':
        await this.stop();
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
      if (this.session?.isLive) {
        throw new ConfigError(`Run ${this.session.runId} is still going: stop it before starting another.`);
      }
      if (!vscode.workspace.isTrusted) {
        throw new ConfigError('Apollo does not start runs in an untrusted workspace: the agent edits files and runs commands. Trust this folder first.');
      }
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder || folder.uri.scheme !== 'file') throw new ConfigError('Open a folder first: the agent works inside a workspace folder.');
      if (!task || task.trim() === '') throw new ConfigError('The task is empty: describe what the agent should do.');
      const settings = await readSettings(this.secrets, folder.uri.fsPath);
      if (settings.endpoint.problem) throw new ConfigError(settings.endpoint.problem);
      const session = await RunSession.start({
        workspace: folder.uri.fsPath,
        datasetDir: settings.datasetDir,
        task,
        model: settings.endpoint.model,
        baseUrl: settings.endpoint.baseUrl,
        apiKey: settings.endpoint.apiKey,
        maxSteps: settings.maxSteps,
        ...(settings.contextBudget ? { contextBudget: settings.contextBudget } : {}),
        grounding: settings.grounding,
        judge: settings.judge,
        sandbox: settings.sandbox,
        secretsToModel: settings.secretsToModel,
        approveCommand: (request) => this.approveCommand(request),
        log: (line) => this.log.info(line),
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
   * Without a sandbox, a command the policy flags waits for the annotator: allow it once, allow
   * such commands from now on (added to apollo.sandbox.allow), or refuse it (the agent is told).
   */
  private async approveCommand(request: CommandApprovalRequest): Promise<'allow' | 'deny'> {
    this.post({ type: 'notice', level: 'info', message: `The agent wants to run a command that needs your answer: ${request.command}` });
    const choice = await vscode.window.showWarningMessage(
      `Apollo: allow the agent to run this command?`,
      { modal: true, detail: `${request.command}\n\n${request.reason}\n\nAlways Allow adds "${request.suggestedAllow}" to apollo.sandbox.allow.` },
      'Allow Once',
      'Always Allow',
      'Refuse',
    );
    if (choice === 'Always Allow') {
      const config = vscode.workspace.getConfiguration('apollo');
      const allow = config.get<string[]>('sandbox.allow', []);
      await config.update('sandbox.allow', [...allow, request.suggestedAllow], vscode.ConfigurationTarget.Global);
    }
    const verdict = choice === 'Allow Once' || choice === 'Always Allow' ? 'allow' : 'deny';
    this.log.info(`Command ${verdict === 'allow' ? 'allowed' : 'refused'} by the annotator: ${request.command}`);
    return verdict;
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

  /** Sends the panel only what the event changed, and says when the run needs the annotator. */
  private forward(event: DatasetEvent): void {
    const session = this.session;
    const viewed = this.viewed;
    if (!session || viewed?.session !== session) return;
    for (const message of viewed.model.observe(event)) {
      this.post(message);
      if (message.type === 'attention') this.raiseAttention(message.flag);
    }
    switch (event.type) {
      case 'model_retry':
        this.log.warn(`Step ${event.step}: model request failed (attempt ${event.attempt}): ${event.error}`);
        break;
      case 'external_change':
        this.log.warn(`The workspace changed outside the agent before step ${event.step}: ${event.grounding.files.map((file) => file.path).join(', ')}`);
        break;
      case 'judge_usage':
        if (event.error) this.log.warn(`The judge could not score steps ${event.steps.join(', ')}: ${event.error}`);
        break;
      case 'run_state':
        if (event.state === 'paused' && event.reason) {
          void vscode.window.showWarningMessage(`Apollo paused the run: ${event.reason}`, 'Resume', 'Send Hint').then((choice) => {
            if (choice === 'Resume') void this.resume();
            if (choice === 'Send Hint') void vscode.commands.executeCommand('apollo.injectHint');
          });
        }
        break;
      case 'run_ended':
        this.log.info(`Run ${session.runId} ${event.status} after ${event.steps} step(s)${event.error ? `: ${event.error}` : ''}`);
        if (event.status === 'failed') this.report(new Error(`Run failed: ${event.error ?? 'unknown error'} Its ${event.steps} step(s) are kept.`));
        void this.postRuns();
        break;
    }
    if (event.type === 'step' || event.type === 'run_state' || event.type === 'run_ended') this.updateStatus();
  }

  /** The view's badge, the status bar and (unless turned off) a notification. */
  private raiseAttention(flag: AttentionFlag): void {
    this.updateStatus();
    this.log.info(`Step ${flag.step} needs attention: ${flag.message}`);
    if (!vscode.workspace.getConfiguration('apollo').get<boolean>('attention.notify', true)) return;
    void vscode.window.showWarningMessage(`Apollo: step ${flag.step} needs attention: ${flag.message}`, 'Show', 'Send Hint').then((choice) => {
      if (choice === 'Show') void this.focusNextFlag();
      if (choice === 'Send Hint') void vscode.commands.executeCommand('apollo.injectHint');
    });
  }

  /** The annotator looked or acted: the badge clears. */
  private markAttentionSeen(): void {
    this.viewed?.model.markSeen();
    this.updateStatus();
  }

  /** Apollo: Go to the Next Step That Needs Attention — reveals the panel and moves to it. */
  async focusNextFlag(): Promise<void> {
    await vscode.commands.executeCommand('apollo.panel.focus');
    this.post({ type: 'focusNextFlag' });
    this.markAttentionSeen();
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
        ...(this.session?.isLive ? { liveRunId: this.session.runId } : {}),
      });
    } catch (error) {
      this.log.warn(`Could not list the dataset's runs: ${(error as Error).message}`);
    }
  }

  /** Opens a run of the dataset in the panel: the live one as it goes, any other for reading. */
  async openRun(runId: string): Promise<void> {
    try {
      if (this.session?.runId === runId) {
        await this.attach(this.session);
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
      const patch = event.grounding.patch;
      const detail: StepDetail = {
        step,
        thought: event.assistant.content ?? '',
        tool: event.action?.name ?? null,
        arguments: event.action ? prettyArguments(event.action.arguments) : '',
        observation: event.observation,
        isError: event.isError,
        hasFullOutput: !!event.fullOutput,
        files: event.grounding.files.map(({ path: file, status, additions, deletions, binary }) => ({ path: file, status, additions, deletions, binary })),
        patch: patch.length > MAX_DETAIL_PATCH ? patch.slice(0, MAX_DETAIL_PATCH) : patch,
        patchTruncated: !!event.grounding.patchTruncated || patch.length > MAX_DETAIL_PATCH,
      };
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

  private requireLiveSession(): RunSession {
    if (!this.session?.isLive) throw new ConfigError('No run is going: start one with "Apollo: Start Run".');
    return this.session;
  }

  async injectHint(text: string, kind: HintKind = 'knowledge', urgency: HintUrgency = 'next'): Promise<string | undefined> {
    try {
      const hintId = await this.requireLiveSession().injectHint(text, kind, 'human', urgency);
      this.markAttentionSeen();
      return hintId;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  pause(): void {
    try {
      this.requireLiveSession().pause();
      this.post({ type: 'notice', level: 'info', message: 'Pausing after the current step.' });
    } catch (error) {
      this.report(error);
    }
  }

  /** Resumes the paused run, or, with none going, continues a run interrupted by a crash. */
  async resume(runId?: string): Promise<void> {
    try {
      if (this.session?.isLive) {
        if (runId && runId !== this.session.runId) throw new ConfigError(`Run ${this.session.runId} is still going: stop it before resuming another.`);
        this.session.resume();
        this.markAttentionSeen();
        return;
      }
      const folder = vscode.workspace.workspaceFolders?.[0];
      if (!folder) throw new ConfigError('Open a folder first: runs are recorded in the workspace.');
      if (!vscode.workspace.isTrusted) throw new ConfigError('Apollo does not resume runs in an untrusted workspace. Trust this folder first.');
      const settings = await readSettings(this.secrets, folder.uri.fsPath);
      const interrupted = (await new DatasetStore(settings.datasetDir).listRuns()).filter((run) => run.status === 'running' || run.status === 'paused');
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
      const session = await RunSession.resume({
        datasetDir: settings.datasetDir,
        runId: chosen,
        apiKey: settings.endpoint.apiKey,
        ...(settings.endpoint.baseUrl ? { baseUrl: settings.endpoint.baseUrl } : {}),
        ...(settings.endpoint.model ? { model: settings.endpoint.model } : {}),
        ...(settings.contextBudget ? { contextBudget: settings.contextBudget } : {}),
        grounding: settings.grounding,
        judge: settings.judge,
        sandbox: settings.sandbox,
        secretsToModel: settings.secretsToModel,
        approveCommand: (request) => this.approveCommand(request),
        log: (line) => this.log.info(line),
      });
      await this.attach(session);
      void this.postRuns();
      void this.announceSandbox(session);
      this.log.info(`Run ${session.runId} resumed from step ${session.stepCount + 1}.`);
    } catch (error) {
      this.report(error);
    }
  }

  private async attach(session: RunSession): Promise<void> {
    this.subscription?.dispose();
    this.session = session;
    const folder = vscode.workspace.workspaceFolders?.[0];
    const policy = folder ? (await readSettings(this.secrets, folder.uri.fsPath)).maskPolicy : DEFAULT_MASK_POLICY;
    const model = new TimelineModel({ policy, readOnly: false });
    this.viewed = { runId: session.runId, store: session.store, model, session };
    // Subscribe before reading the history; events that arrive meanwhile wait, and those the
    // history already holds are skipped.
    let waiting: { event: DatasetEvent; sequence: number }[] | undefined = [];
    let replayedThrough = 0;
    this.subscription = session.onEvent((event, sequence) => {
      if (waiting) waiting.push({ event, sequence });
      else if (sequence > replayedThrough) this.forward(event);
    });
    const history = await session.history();
    replayedThrough = history.sequence;
    for (const event of history.events) model.observe(event);
    this.post(model.init());
    for (const { event, sequence } of waiting) if (sequence > replayedThrough) this.forward(event);
    waiting = undefined;
    this.updateStatus();
  }

  async stop(): Promise<void> {
    try {
      await this.requireLiveSession().stop();
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
      await openStepDiff(step, event.grounding, shadow);
    } catch (error) {
      this.report(error);
    }
  }

  private updateStatus(): void {
    const session = this.session;
    const status = session?.status;
    void vscode.commands.executeCommand('setContext', 'apollo.runState', status ?? 'none');
    void vscode.commands.executeCommand('setContext', 'apollo.runLive', session?.isLive ?? false);
    const unseen = this.viewed?.model.unseenFlags ?? 0;
    void vscode.commands.executeCommand('setContext', 'apollo.needsAttention', unseen > 0);
    this.panel?.setBadge?.(unseen, `${unseen} step${unseen === 1 ? '' : 's'} need${unseen === 1 ? 's' : ''} your attention`);
    if (!session) {
      this.statusBar.hide();
      return;
    }
    const steps = session.stepCount;
    const icon = status === 'running' ? '$(sync~spin)' : status === 'paused' ? '$(debug-pause)' : status === 'failed' ? '$(error)' : '$(check)';
    const attention = unseen > 0 ? ` · $(warning) ${unseen} need${unseen === 1 ? 's' : ''} attention` : '';
    this.statusBar.text = `${icon} Apollo: ${status} · ${steps} step${steps === 1 ? '' : 's'}${attention}`;
    this.statusBar.tooltip = `Run ${session.runId}: ${status}.${unseen ? ` ${unseen} flagged step(s) wait for you.` : ''} Click to open the Intervention panel.`;
    this.statusBar.command = unseen > 0 ? 'apollo.nextFlaggedStep' : 'apollo.panel.focus';
    this.statusBar.backgroundColor = unseen > 0 ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.statusBar.show();
  }

  dispose(): void {
    this.subscription?.dispose();
    void this.session?.stop();
    this.statusBar.dispose();
    this.posted.dispose();
  }
}
