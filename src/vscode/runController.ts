/**
 * Owns the current run in the window: starts it from settings, forwards its events to the panel
 * as protocol messages, and carries out what the panel and the commands ask.
 */
import * as vscode from 'vscode';
import type { DatasetEvent, HintKind, HintUrgency, LabelAxis, LabelValue, RewindEvent, StepEvent } from '../core/dataset/events';
import { DatasetStore } from '../core/dataset/store';
import { ConfigError, RunSession } from '../core/session/runSession';
import { rewindRun, UnsavedChangesError } from '../core/session/rewind';
import { HostToWebview, parseWebviewMessage, RunView } from '../protocol';
import { openStepDiff } from './diffProvider';
import { readSettings } from './settings';
import { buildTimeline, labelBadge, toTimelineStep } from './timeline';

export interface PanelChannel {
  post(message: HostToWebview): void;
}

export class RunController implements vscode.Disposable {
  private session: RunSession | undefined;
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
        // The panel (re)loaded: give it the whole timeline again.
        if (this.session) await this.attach(this.session);
        else this.post({ type: 'init', ...buildTimeline([]) });
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
        await this.resume();
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
      case 'rewind':
        await this.rewind(message.step);
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
        log: (line) => this.log.info(line),
      });
      await this.attach(session);
      this.log.info(`Run ${session.runId} started: ${task}`);
      return session;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  /** Sends the panel only what the event changed. */
  private forward(event: DatasetEvent): void {
    const session = this.session;
    if (!session) return;
    switch (event.type) {
      case 'step':
        this.post({ type: 'stepAdded', step: toTimelineStep(event) });
        break;
      case 'hint_queued':
        this.post({ type: 'hintQueued', hint: { hintId: event.hintId, text: event.text, kind: event.kind } });
        break;
      case 'hint_delivered':
        this.post({ type: 'hintDelivered', hintId: event.hintId, step: event.step });
        break;
      case 'label':
        this.post({ type: 'labelAdded', step: event.step, badge: labelBadge(event) });
        break;
      case 'summary':
        this.post({ type: 'notice', level: 'info', message: `Context summarized before step ${event.step} (${event.tokensBefore} → ${event.tokensAfter} tokens); every hint is kept.` });
        break;
      case 'model_retry':
        this.log.warn(`Step ${event.step}: model request failed (attempt ${event.attempt}): ${event.error}`);
        break;
      case 'external_change':
        this.log.warn(`The workspace changed outside the agent before step ${event.step}: ${event.grounding.files.map((file) => file.path).join(', ')}`);
        break;
      case 'run_state':
        if (event.state === 'paused' && event.reason) {
          void vscode.window.showWarningMessage(`Apollo paused the run: ${event.reason}`, 'Resume', 'Send Hint').then((choice) => {
            if (choice === 'Resume') this.resume();
            if (choice === 'Send Hint') void vscode.commands.executeCommand('apollo.injectHint');
          });
        }
        break;
      case 'run_ended':
        this.log.info(`Run ${session.runId} ${event.status} after ${event.steps} step(s)${event.error ? `: ${event.error}` : ''}`);
        if (event.status === 'failed') this.report(new Error(`Run failed: ${event.error ?? 'unknown error'} Its ${event.steps} step(s) are kept.`));
        break;
    }
    if (event.type === 'step' || event.type === 'run_state' || event.type === 'run_ended') {
      this.post({ type: 'runUpdated', run: this.runView(session, event.type === 'run_ended' ? event.error : undefined) });
      this.updateStatus();
    }
  }

  private runView(session: RunSession, error?: string): RunView {
    const { task, model } = session.startedEvent;
    const pausedReason = session.pausedBecause;
    return { runId: session.runId, task, model, status: session.status, steps: session.stepCount, ...(error ? { error } : {}), ...(pausedReason ? { pausedReason } : {}) };
  }

  private requireLiveSession(): RunSession {
    if (!this.session?.isLive) throw new ConfigError('No run is going: start one with "Apollo: Start Run".');
    return this.session;
  }

  async injectHint(text: string, kind: HintKind = 'knowledge', urgency: HintUrgency = 'next'): Promise<string | undefined> {
    try {
      return await this.requireLiveSession().injectHint(text, kind, 'human', urgency);
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
        this.session.resume();
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
        log: (line) => this.log.info(line),
      });
      await this.attach(session);
      this.log.info(`Run ${session.runId} resumed from step ${session.stepCount + 1}.`);
    } catch (error) {
      this.report(error);
    }
  }

  private async attach(session: RunSession): Promise<void> {
    this.subscription?.dispose();
    this.session = session;
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
    this.post({ type: 'init', ...buildTimeline(history.events) });
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

  /** Records the annotator's label on a step of the open run; false (after saying why) when it cannot. */
  async label(step: number, label: LabelValue, details: { axis?: LabelAxis; reason?: string } = {}): Promise<boolean> {
    try {
      if (!this.session) throw new ConfigError('No run is open to label: start or resume one first.');
      await this.session.label(step, label, { source: 'human', ...details });
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
    const session = this.session;
    if (!session) {
      this.report(new ConfigError('No run is open to label: start or resume one first.'));
      return false;
    }
    let { step, label, axis, reason } = given;
    if (step === undefined) {
      const steps = (await session.events()).filter((event): event is StepEvent => event.type === 'step');
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
   * from there on a new branch when resumed. A live run is stopped first, after asking; the
   * user's own edits since the last step are overwritten only after asking.
   */
  async rewind(step?: number): Promise<RewindEvent | undefined> {
    try {
      const session = this.session;
      if (!session) throw new ConfigError('There is no run to rewind: start or resume one first.');
      if (step === undefined) {
        const steps = (await session.events()).filter((event): event is StepEvent => event.type === 'step');
        const picked = await vscode.window.showQuickPick(
          steps.map((event) => ({ label: `Step ${event.step}`, description: event.action?.name ?? '(no tool call)', step: event.step })).reverse(),
          { title: 'Rewind the workspace to before which step?' },
        );
        if (!picked) return undefined;
        step = picked.step;
      }
      if (session.isLive) {
        const choice = await vscode.window.showWarningMessage(
          `Rewinding stops run ${session.runId} and puts the workspace back to how it stood before step ${step}.`,
          { modal: true },
          'Stop and Rewind',
        );
        if (choice !== 'Stop and Rewind') return undefined;
        await session.stop();
        await session.done;
      }
      // The dataset the run is recorded in, whatever the settings say now.
      const options = { datasetDir: session.store.root, runId: session.runId, toStep: step };
      let result;
      try {
        result = await rewindRun(options);
      } catch (error) {
        if (!(error instanceof UnsavedChangesError)) throw error;
        const choice = await vscode.window.showWarningMessage(
          `You changed ${error.files.length} file(s) since the run's last step: ${error.files.slice(0, 5).join(', ')}${error.files.length > 5 ? ', …' : ''}. Rewinding overwrites them (they stay recorded in the dataset).`,
          { modal: true },
          'Overwrite and Rewind',
        );
        if (choice !== 'Overwrite and Rewind') return undefined;
        result = await rewindRun({ ...options, force: true });
      }
      const { event } = result;
      this.post({ type: 'notice', level: 'info', message: `Rewound to before step ${step}: ${event.files.length} file(s) restored. Resume to go on from there.` });
      void vscode.window
        .showInformationMessage(`Apollo: workspace rewound to before step ${step} (${event.files.length} file(s) restored). Resume the run to go on from there; a hint sent after resuming reaches its next step.`, 'Resume')
        .then((choice) => (choice === 'Resume' ? this.resume(session.runId) : undefined));
      return event;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  async openDiff(step: number): Promise<void> {
    try {
      const session = this.session;
      const event = (await session?.events())?.find((candidate): candidate is StepEvent => candidate.type === 'step' && candidate.step === step);
      if (!session || !event) throw new ConfigError(`Step ${step} is not in the open run.`);
      await openStepDiff(step, event.grounding, session.shadow);
    } catch (error) {
      this.report(error);
    }
  }

  private updateStatus(): void {
    const session = this.session;
    const status = session?.status;
    void vscode.commands.executeCommand('setContext', 'apollo.runState', status ?? 'none');
    void vscode.commands.executeCommand('setContext', 'apollo.runLive', session?.isLive ?? false);
    if (!session) {
      this.statusBar.hide();
      return;
    }
    const steps = session.stepCount;
    const icon = status === 'running' ? '$(sync~spin)' : status === 'paused' ? '$(debug-pause)' : status === 'failed' ? '$(error)' : '$(check)';
    this.statusBar.text = `${icon} Apollo: ${status} · ${steps} step${steps === 1 ? '' : 's'}`;
    this.statusBar.tooltip = `Run ${session.runId}: ${status}. Click to open the Intervention panel.`;
    this.statusBar.show();
  }

  dispose(): void {
    this.subscription?.dispose();
    void this.session?.stop();
    this.statusBar.dispose();
    this.posted.dispose();
  }
}
