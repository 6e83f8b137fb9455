/**
 * One run from start to end: wires the dataset, the shadow store, the tools and the model into
 * the agent loop, and takes the annotator's interventions (hints, pause, stop, labels) while it
 * goes on. A run interrupted by a crash is resumed from its events. Used alike by the extension
 * and the CLI.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type {
  BudgetKind,
  DatasetEvent,
  HintKind,
  HintUrgency,
  LabelAxis,
  LabelValue,
  RunBudget,
  RunEndedEvent,
  RunGrounding,
  RunStartedEvent,
  ReasoningInContext,
  RunStatus,
  SamplingOptions,
} from '../dataset/events';
import { EVENTS_FORMAT_VERSION, stepToolResults } from '../dataset/events';
import { newRunId } from '../dataset/ids';
import { remountCopy } from './overlayCopy';
import { Redactor, secretEnvValues, StreamRedactor } from '../dataset/redaction';
import { DatasetError, DatasetStore, isDiskFull, type RunWriter } from '../dataset/store';
import { datasetExclusions, ShadowStore, shadowStoreDir } from '../grounding/shadowStore';
import { WorkspaceWatcher } from '../grounding/watcher';
import { currentPath, lastIndexOf } from './branches';
import { ContextManager, DEFAULT_CONTEXT_WINDOW, defaultContextBudget } from '../agent/context';
import { type RequestHandle, runAgentLoop } from '../agent/loop';
import { type ChatModelClient, ModelClient } from '../agent/modelClient';
import { hintMessage, NO_TOOL_CALL_NUDGE, systemPrompt } from '../agent/prompt';
import { assistantContextMessage, keepsReasoning } from '../agent/reasoning';
import { type CommandSandboxOptions, type SandboxStatus, TOOL_DEFINITIONS, ToolRunner } from '../agent/tools';
import { WorkspaceGuard } from '../agent/workspaceGuard';
import { RuleEngine, toLabelEvent } from '../supervision/rules';
import { Judge, type JudgeOptions } from '../supervision/judge';

import { plural } from '../text';
import { ConfigError } from './errors';
import { labelStep } from './labelStep';
import { claimWorkspace, type WorkspaceClaim } from './workspaceClaim';
import { checkDatasetLocation } from './datasetLocation';
import { apolloHome } from '../paths';
import { HintInbox, type InFlightRequest, type PendingHint } from './hintInbox';

import {
  DEFAULT_MAX_STEPS,
  DEFAULT_SANDBOX,
  type EngineTuning,
  type ResumeOptions,
  type RunOptions,
  type SessionOptions,
  resolveGrounding,
  validateBudget,
  validateEndpoint,
  validateGrounding,
  validateJudge,
  validateLimits,
  validateReasoningInContext,
  validateRunOptions,
  validateSampling,
} from './runOptions';

export { ConfigError };
export { DEFAULT_MAX_STEPS, DEFAULT_SANDBOX, resolveGrounding, validateRunOptions, validateSampling };
export type { EngineTuning, GroundingOptions, ResumeOptions, RunOptions, SessionOptions } from './runOptions';

export interface Disposable {
  dispose(): void;
}

const now = () => new Date().toISOString();

/** Why a run stopped on a budget, in words. */
export function budgetSummary(kind: BudgetKind, budget: RunBudget, steps: number): string {
  const limit = kind === 'tokens' ? `token budget of ${(budget.maxTokens ?? 0).toLocaleString('en-US')}` : `time budget of ${plural(budget.maxMinutes ?? 0, 'minute')}`;
  return `Stopped: the run reached its ${limit} after ${plural(steps, 'step')}.`;
}

/**
 * Milliseconds a run was active before it was interrupted, from its events: from its start (or a
 * resume) to a pause, its end, or its last event before a crash. Paused time does not count.
 */
export function activeTimeOf(events: readonly DatasetEvent[]): number {
  let total = 0;
  let since: number | undefined;
  let last: number | undefined;
  for (const event of events) {
    const time = Date.parse(event.time);
    if (!Number.isFinite(time)) continue;
    if (event.type === 'run_started' || (event.type === 'run_state' && event.state === 'resumed')) {
      if (since !== undefined && last !== undefined) total += Math.max(0, last - since);
      since = time;
    } else if ((event.type === 'run_state' && event.state === 'paused') || event.type === 'run_ended') {
      if (since !== undefined) total += Math.max(0, time - since);
      since = undefined;
    }
    last = time;
  }
  if (since !== undefined && last !== undefined) total += Math.max(0, last - since);
  return total;
}

function secretRedactor(apiKey: string): Redactor {
  // The same definition of a secret-looking variable as the sandbox's; values also base64/hex-encoded.
  return new Redactor({ secrets: [apiKey, ...secretEnvValues(process.env)] });
}

interface Setup {
  /** The quality rules, primed with the run's earlier events when it resumes. */
  rules: RuleEngine;
  /** Set when the run goes on from a rewind. */
  branch?: { id: string; lastStep: number };
  store: DatasetStore;
  shadow: ShadowStore;
  watcher?: WorkspaceWatcher;
  /** The workspace is this run's until it ends: no other run, rewind or adopt works there meanwhile. */
  claim: WorkspaceClaim;
  writer: RunWriter;
  workspace: string;
  datasetRoot: string;
  model: string;
  baseUrl: string;
  apiKey: string;
  maxSteps: number;
  context: ContextManager;
  startedAt: number;
  /** Active (unpaused) milliseconds before this session, for the time budget. */
  activeMs: number;
  budget?: RunBudget;
  firstStep: number;
  lastSnapshot?: string;
  /** True when continuing an interrupted run. */
  resumed: boolean;
  commandTimeoutMs?: number;
  log: (line: string) => void;
  engine: EngineTuning;
  judge?: JudgeOptions;
  sandbox?: CommandSandboxOptions;
  approveCommand?: SessionOptions['approveCommand'];
  secretsToModel?: boolean;
  client?: ChatModelClient;
  outsideSaves?: SessionOptions['outsideSaves'];
  sampling?: SamplingOptions;
  reasoningInContext: ReasoningInContext;
  /** The prompt budget the user set (apollo.contextBudget, --context-budget), if any. */
  contextBudgetSetting?: number;
}

/** What a new run and a resumed one hand on to their session alike. */
function sessionTuning(options: SessionOptions) {
  return {
    commandTimeoutMs: options.commandTimeoutMs,
    log: options.log ?? (() => undefined),
    engine: options.engine ?? {},
    judge: options.judge,
    sandbox: options.sandbox,
    approveCommand: options.approveCommand,
    secretsToModel: options.secretsToModel,
    client: options.client,
    outsideSaves: options.outsideSaves,
    contextBudgetSetting: options.contextBudget,
  };
}

export class RunSession {
  readonly runId: string;
  /** Kept in memory for the session's lifetime; every other event lives only in the dataset, so memory stays flat however long the run. */
  private readonly started: RunStartedEvent;
  private readonly listeners = new Set<(event: DatasetEvent, sequence: number) => void>();
  private sequence = 0;
  private readonly hints: HintInbox;
  private readonly abort = new AbortController();
  private currentStatus: RunStatus = 'running';
  private pauseRequested = false;
  private pauseReason: string | undefined;
  private wakeFromPause: (() => void) | undefined;
  /** Set when the agent loop has returned: hints are refused from then on. */
  private ending = false;
  private lastStep = 0;
  /** The branch steps go on, after a rewind. */
  private branch: { id: string; lastStep: number } | undefined;
  private tokens = { promptTokens: 0, completionTokens: 0 };
  private readonly budget: RunBudget | undefined;
  private readonly clock: () => number;
  /** Active time before the current stretch; the stretch began at activeSince (undefined while paused). */
  private activeMs: number;
  private activeSince: number | undefined;
  readonly done: Promise<RunEndedEvent>;
  readonly store: DatasetStore;
  readonly shadow: ShadowStore;
  private readonly writer: RunWriter;
  private readonly log: (line: string) => void;
  private readonly tools: ToolRunner;
  /** Whether commands run in a sandbox, in words for the user; said once when the run starts. */
  readonly sandboxStatus: Promise<SandboxStatus>;
  private readonly rules: RuleEngine;
  private readonly judge: Judge | undefined;

  private constructor(setup: Setup, started: RunStartedEvent, pending: PendingHint[]) {
    this.store = setup.store;
    this.shadow = setup.shadow;
    this.writer = setup.writer;
    this.log = setup.log;
    this.runId = setup.writer.runId;
    this.rules = setup.rules;
    // Every dataset in the Apollo folder is hidden too: a run never reads another workspace's record.
    const guard = new WorkspaceGuard(setup.workspace, [setup.datasetRoot, setup.shadow.storeDir, path.join(apolloHome(), 'datasets')]);
    const jobLogs = new Map<string, StreamRedactor>();
    this.tools = new ToolRunner({
      workspace: setup.workspace,
      guard,
      sandbox: setup.sandbox ?? DEFAULT_SANDBOX,
      approveCommand: setup.approveCommand,
      commandTimeoutMs: setup.commandTimeoutMs,
      keepFullOutput: (name, text) => this.store.writeRunFile(this.runId, name, text),
      onNotice: (message) => void this.record({ type: 'notice', time: now(), message }).catch((error: Error) => this.log(`Could not record a notice: ${error.message}`)),
      onJobOutput: (job, text, ended) => {
        // A job's log grows chunk by chunk: a secret split between two chunks is completed before it is written.
        let stream = jobLogs.get(job);
        if (!stream) jobLogs.set(job, (stream = new StreamRedactor(this.store.redactor)));
        const safe = stream.push(text) + (ended ? stream.end() : '');
        if (ended) jobLogs.delete(job);
        if (!safe) return;
        void this.store.writeRunFile(this.runId, `job-${job}.log`, safe, { append: true }).catch((error: Error) => this.log(`Could not keep the output of job ${job}: ${error.message}`));
      },
    });
    this.sandboxStatus = this.tools.sandboxStatus();
    setup.watcher?.onGitMetadataChange(() => this.tools.gitMetadataChanged());
    this.judge = setup.judge ? new Judge(setup.judge, { task: started.task, record: (event) => this.record(event), log: setup.log, redact: (text) => setup.store.redactor.redact(text) }) : undefined;
    this.started = started;
    this.hints = new HintInbox(
      {
        runId: this.runId,
        hintsDisabled: started.hintsDisabled,
        takeInboxHints: () => this.store.takeInboxHints(this.runId),
        record: (event) => this.record(event),
        log: (line) => this.log(line),
        closed: () => (!this.isLive || this.ending ? `Run ${this.runId} has ended${this.ending ? '' : ` (${this.currentStatus})`}; a hint can no longer reach it.` : undefined),
        onQueued: () => {
          if (this.pauseReason && this.pauseRequested) this.resume();
        },
        inboxPollMs: setup.engine.inboxPollMs ?? 500,
      },
      pending,
    );
    const manifest = setup.writer.manifest();
    this.lastStep = setup.firstStep - 1;
    this.branch = setup.branch;
    this.tokens = { ...manifest.tokens };
    this.budget = setup.budget;
    this.clock = setup.engine.clock ?? Date.now;
    this.activeMs = setup.activeMs;
    this.activeSince = this.clock();
    this.done = this.drive(setup);
  }

  /** Validates the options, records the run's start and starts the agent in the background. */
  static async start(options: RunOptions): Promise<RunSession> {
    validateRunOptions(options);
    const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
    const stat = await fs.stat(options.workspace).catch(() => undefined);
    if (!stat?.isDirectory()) throw new ConfigError(`The workspace folder ${options.workspace} does not exist.`);

    const workspace = await fs.realpath(options.workspace);
    const runId = newRunId();
    const model = options.client?.model ?? options.model;
    const baseUrl = options.client ? '' : options.baseUrl;
    const provider = options.client?.provider ?? 'openai-compatible';
    const grounding = resolveGrounding(options.grounding);
    const stores = await RunSession.openStores(workspace, path.resolve(workspace, options.datasetDir), runId, options.apiKey, grounding, options.grounding?.watch);
    return RunSession.releasingOnFailure(stores, async () => {
      const time = now();
      const writer = await stores.store.createRun({
        id: runId,
        task: options.task,
        workspace,
        model,
        baseUrl,
        status: 'running',
        steps: 0,
        createdAt: time,
        updatedAt: time,
        tokens: { promptTokens: 0, completionTokens: 0 },
        ...(options.taskId ? { taskId: options.taskId } : {}),
        ...(options.origin ? { originWorkspace: options.origin.workspace } : {}),
        ...(options.taskSource ? { taskSource: { ...options.taskSource } } : {}),
      });
      await writer.reserveSpace();
      const prompt = systemPrompt({ workspace, maxSteps });
      const started: RunStartedEvent = {
        type: 'run_started',
        time,
        version: EVENTS_FORMAT_VERSION,
        runId,
        task: options.task,
        workspace,
        model,
        baseUrl,
        provider,
        maxSteps,
        systemPrompt: prompt,
        tools: TOOL_DEFINITIONS,
        grounding,
        ...(options.taskId ? { taskId: options.taskId } : {}),
        ...(options.origin ? { origin: { workspace: options.origin.workspace, snapshot: options.origin.snapshot } } : {}),
        ...(options.budget ? { budget: { ...options.budget } } : {}),
        ...(options.sampling ? { sampling: { ...options.sampling } } : {}),
        reasoningInContext: options.reasoningInContext ?? 'auto',
        ...(options.taskSource ? { taskSource: { ...options.taskSource } } : {}),
        ...(options.hintsDisabled ? { hintsDisabled: true } : {}),
      };
      await writer.append(started);
      const context = new ContextManager({ role: 'system', content: prompt }, { role: 'user', content: options.task }, options.contextBudget ?? defaultContextBudget());
      return new RunSession(
        {
          ...stores,
          rules: new RuleEngine(),
          writer,
          workspace,
          model,
          baseUrl,
          apiKey: options.apiKey,
          maxSteps,
          context,
          startedAt: Date.parse(time),
          activeMs: 0,
          budget: options.budget,
          firstStep: 1,
          resumed: false,
          ...sessionTuning(options),
          sampling: options.sampling,
          reasoningInContext: options.reasoningInContext ?? 'auto',
        },
        started,
        [],
      );
    });
  }

  /** Lets the workspace and the watcher go when a run cannot start after its stores were opened. */
  private static async releasingOnFailure<T>(stores: { watcher?: WorkspaceWatcher; claim: WorkspaceClaim }, build: () => Promise<T>): Promise<T> {
    try {
      return await build();
    } catch (error) {
      stores.watcher?.dispose();
      await stores.claim.release().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Continues a run that was interrupted (the process died): the model's context is rebuilt
   * from the events, hints that were queued but not delivered are queued again, and changes to
   * the workspace since the last snapshot are recorded as an external change.
   */
  static async resume(options: ResumeOptions): Promise<RunSession> {
    const probe = new DatasetStore(options.datasetDir);
    const manifest = await probe.readManifest(options.runId);
    const { events, problems } = await probe.readEvents(options.runId);
    for (const problem of problems) options.log?.(`warning: ${problem}`);
    const started = events.find((event): event is RunStartedEvent => event.type === 'run_started');
    if (!started) throw new DatasetError(`Run ${options.runId} has no run_started event; it cannot be resumed.`);
    if (started.importedFrom)
      throw new ConfigError(`Run ${options.runId} was imported (${started.importedFrom.format}): it has no workspace to go on in. Label and export it; to run the task again, start a new run.`);
    // A run that ended can go on only from a rewind recorded after its end.
    const lastEnd = lastIndexOf(events, (event) => event.type === 'run_ended');
    const lastRewind = lastIndexOf(events, (event) => event.type === 'rewind');
    const ended = events[lastEnd];
    if (ended?.type === 'run_ended' && lastRewind < lastEnd) {
      throw new ConfigError(`Run ${options.runId} already ended (${ended.status}); there is nothing to resume. Rewind it to a step to go on from there.`);
    }
    const endpoint = {
      baseUrl: options.client ? '' : (options.baseUrl ?? started.baseUrl),
      model: options.client?.model ?? options.model ?? started.model,
      apiKey: options.apiKey,
      client: options.client,
    };
    validateEndpoint(endpoint);
    const sampling = options.sampling ?? started.sampling;
    validateSampling(sampling);
    const reasoningInContext = options.reasoningInContext ?? started.reasoningInContext ?? 'auto';
    validateReasoningInContext(reasoningInContext);
    const maxSteps = options.maxSteps ?? started.maxSteps;
    validateLimits(maxSteps, options.contextBudget);
    const budget = options.budget ?? started.budget;
    validateBudget(budget);
    validateGrounding(options.grounding);
    validateJudge(options.judge);
    const workspace = started.workspace;
    const stat = await fs.stat(workspace).catch(() => undefined);
    if (!stat?.isDirectory()) throw new ConfigError(`The run's workspace ${workspace} no longer exists.`);
    // An overlay working copy whose sampling has ended is mounted again first.
    await remountCopy(workspace).catch((error: Error) => {
      throw new ConfigError(`Run ${options.runId}'s working copy cannot be mounted here: ${error.message}. The CLI mounts it in a namespace of its own: apollo run --resume ${options.runId}.`);
    });

    // The run snapshots as it did when it started; runs recorded before that was kept take the options given.
    const grounding = started.grounding ?? resolveGrounding(options.grounding);
    const stores = await RunSession.openStores(workspace, path.resolve(options.datasetDir), options.runId, options.apiKey, grounding, options.grounding?.watch);
    return RunSession.releasingOnFailure(stores, async () => {
      const writer = await stores.store.openRun(options.runId);
      await writer.reserveSpace();
      const context = new ContextManager({ role: 'system', content: started.systemPrompt }, { role: 'user', content: started.task }, options.contextBudget ?? defaultContextBudget());
      const queued = new Map<string, PendingHint>();
      const rules = new RuleEngine();
      for (const event of events) rules.observe(event);
      // After a rewind only the steps of the current branch are in the model's context.
      const branchPath = currentPath(events);
      const onPath = new Set(branchPath.steps.map((step) => step.step));
      let lastStep = 0;
      events.forEach((event, index) => {
        switch (event.type) {
          case 'hint_queued':
            queued.set(event.hintId, { hintId: event.hintId, text: event.text, kind: event.kind, urgency: event.urgency ?? 'next' });
            break;
          case 'hint_undelivered':
            // Already reported to the annotator as not delivered; a later branch does not get it by surprise.
            queued.delete(event.hintId);
            break;
          case 'hint_delivered': {
            const hint = queued.get(event.hintId);
            if (!hint) break;
            queued.delete(event.hintId);
            if (!onPath.has(event.step)) break; // delivered on an abandoned branch
            context.add(event.step, { role: 'user', content: hintMessage(hint.kind, hint.text) });
            context.noteHint({ step: event.step, kind: hint.kind, text: hint.text });
            break;
          }
          case 'step':
            lastStep = Math.max(lastStep, event.step);
            if (!onPath.has(event.step)) break;
            context.add(event.step, assistantContextMessage(event.assistant, keepsReasoning(reasoningInContext, endpoint.model), endpoint.model));
            if (event.assistant.toolCalls.length) {
              for (const result of stepToolResults(event)) context.add(event.step, { role: 'tool', tool_call_id: result.id, content: result.content });
            } else {
              context.add(event.step, { role: 'user', content: NO_TOOL_CALL_NUDGE });
            }
            break;
          case 'summary':
            if (index > lastRewind || onPath.has(event.step)) context.applyCompaction(event.text, event.keptFromStep);
            break;
          default:
            // The other events do not shape the resumed context.
            break;
        }
      });
      const lastSnapshot = branchPath.lastSnapshot;
      const branch = branchPath.branch ? { id: branchPath.branch, lastStep: branchPath.steps[branchPath.steps.length - 1]?.step ?? 0 } : undefined;
      if (manifest.steps !== lastStep) await writer.updateManifest({ steps: lastStep });
      // Going on again: what the manifest said about how it stopped (a full disk) no longer holds.
      if (manifest.error || manifest.endedAt || manifest.resumable) await writer.updateManifest({ error: undefined, endedAt: undefined, resumable: undefined });
      const session = new RunSession(
        {
          branch,
          rules,
          ...stores,
          writer,
          workspace,
          model: endpoint.model,
          baseUrl: endpoint.baseUrl,
          apiKey: options.apiKey,
          maxSteps,
          context,
          startedAt: Date.parse(started.time),
          activeMs: activeTimeOf(events),
          budget,
          firstStep: lastStep + 1,
          lastSnapshot,
          resumed: true,
          ...sessionTuning(options),
          sampling,
          reasoningInContext,
        },
        started,
        [...queued.values()],
      );
      return session;
    });
  }

  private static async openStores(workspace: string, datasetDir: string, runId: string, apiKey: string, grounding: RunGrounding, watch = true) {
    await checkDatasetLocation(workspace, datasetDir);
    const store = new DatasetStore(datasetDir, { redactor: secretRedactor(apiKey) });
    await store.init();
    const datasetRoot = await fs.realpath(datasetDir);
    const exclude = datasetExclusions(workspace, datasetRoot);
    const { excludePatterns, maxFileBytes } = grounding;
    let watcher: WorkspaceWatcher | undefined;
    if (watch) {
      const skipped = new Set(exclude.map((entry) => entry.split(path.sep).join('/')));
      const skippedNames = folderNames(excludePatterns);
      watcher = new WorkspaceWatcher(workspace, {
        skip: (dir, name) => skippedNames.has(name) || skipped.has(dir ? `${dir}/${name}` : name) || (!dir && name === '.apollo'),
      });
      await watcher.start();
    }
    const shadow = new ShadowStore({ workspace, storeDir: shadowStoreDir(datasetRoot, workspace), exclude, excludePatterns, maxFileBytes, changes: watcher, runId });
    let claim: WorkspaceClaim;
    try {
      await shadow.init();
      claim = await claimWorkspace(workspace, runId, 'run');
    } catch (error) {
      watcher?.dispose();
      throw error;
    }
    return { store, shadow, watcher, claim, datasetRoot };
  }

  private async drive(setup: Setup): Promise<RunEndedEvent> {
    // Let the caller subscribe before the first event of this session is recorded.
    await new Promise((resolve) => setImmediate(resolve));
    // Said once; the first model request does not wait for the sandbox check.
    void this.sandboxStatus.then((sandbox) => this.log(sandbox.active ? sandbox.description : `warning: ${sandbox.description}`));
    const client = setup.client ?? new ModelClient({ baseUrl: setup.baseUrl, apiKey: setup.apiKey, model: setup.model, timeoutMs: setup.engine.requestTimeoutMs });
    let outcome;
    try {
      if (setup.resumed) {
        await this.record({ type: 'run_state', time: now(), state: 'resumed', reason: `resumed after an interruption, from step ${setup.firstStep}` });
      }
      await this.learnContextWindow(client, setup);
      outcome = await runAgentLoop({
        client,
        tools: this.tools,
        grounder: setup.engine.grounder ?? this.shadow,
        context: setup.context,
        maxSteps: setup.maxSteps,
        firstStep: setup.firstStep,
        lastSnapshot: setup.lastSnapshot,
        startedAt: setup.startedAt,
        sampling: setup.sampling,
        keepReasoning: keepsReasoning(setup.reasoningInContext, setup.model),
        maxConsecutiveFailures: setup.engine.maxConsecutiveFailures,
        retryBaseMs: setup.engine.retryBaseMs,
        retryMaxMs: setup.engine.retryMaxMs,
        ...(setup.secretsToModel ? {} : { forModel: (text: string) => this.store.redactor.redact(text) }),
        ...(setup.outsideSaves ? { watchOutsideSaves: () => setup.outsideSaves!(setup.workspace) } : {}),
        control: {
          record: (event) => this.record(event),
          takeHints: () => this.hints.take(),
          hasPendingHints: () => this.hints.hasPending(),
          waitWhilePaused: () => this.waitWhilePaused(),
          pauseForErrors: (reason) => this.pauseForErrors(reason),
          beginRequest: () => this.beginRequest(),
          budgetReached: (steps) => this.budgetReached(steps),
          signal: this.abort.signal,
        },
      });
    } catch (error) {
      outcome = { status: 'failed' as const, steps: this.lastStep, error: `The run failed: ${(error as Error).message}` };
    }
    // From here no hint can reach the model: the ones still queued are said to be undelivered.
    this.ending = true;
    // A full disk: the run stops cleanly and can be resumed once there is space; hints still queued stay queued for then.
    const diskFull = this.writer.diskFull || (outcome.status === 'failed' && isDiskFull(outcome.error));
    if (!diskFull) await this.hints.recordUndelivered(outcome.status);
    await this.tools.dispose().catch(() => undefined);
    setup.watcher?.dispose();
    // The judge's last verdicts land before the run's end; it never throws.
    await this.judge?.drain();
    this.judge?.dispose();
    await this.shadow.settled().catch((error: Error) => this.log(`Could not store the run's last snapshot: ${error.message}`));
    await setup.claim.release().catch((error: Error) => this.log(`Could not let the workspace go: ${error.message}`));
    if (diskFull) return this.stopForFullDisk(outcome.steps, outcome.error);
    const ended: RunEndedEvent = {
      type: 'run_ended',
      time: now(),
      status: outcome.status,
      steps: outcome.steps,
      ...('summary' in outcome && outcome.summary ? { summary: outcome.summary } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
      ...('budget' in outcome && outcome.budget ? { budget: outcome.budget } : {}),
    };
    this.currentStatus = outcome.status;
    try {
      await this.record(ended);
    } catch (error) {
      this.log(`Could not record the end of run ${this.runId}: ${(error as Error).message}`);
    }
    await this.writer.releaseReserve().catch(() => undefined);
    return ended;
  }

  /**
   * Closes the run after a write found the disk full: the space set aside at the start is freed
   * to record why (a notice) and a manifest that is no longer "running". No run_ended is
   * recorded: the run did not end, and `--resume` continues it from its last whole step.
   */
  private async stopForFullDisk(steps: number, cause: string | undefined): Promise<RunEndedEvent> {
    const time = now();
    const error =
      `The disk holding the dataset (${this.store.root}) is full: run ${this.runId} stopped after step ${steps}; everything recorded until then is kept whole. ` +
      `Free some space on that disk, then resume it: apollo run --resume ${this.runId}.` +
      (cause ? ` (${cause.match(/\((E[A-Z]+: [^)]*)\)/)?.[1] ?? cause.replace(/^The run failed: /, '')})` : '');
    this.currentStatus = 'stopped';
    await this.writer.releaseReserve().catch(() => undefined);
    try {
      await this.record({ type: 'notice', time, message: error });
    } catch (failure) {
      this.log(`Could not record why run ${this.runId} stopped: ${(failure as Error).message}`);
    }
    await this.writer
      .updateManifest({ status: 'stopped', steps, endedAt: time, error, resumable: 'disk_full' })
      .catch((failure: Error) => this.log(`Could not close the manifest of run ${this.runId}: ${failure.message}`));
    return { type: 'run_ended', time, status: 'stopped', steps, error };
  }

  /**
   * The prompt budget: from the window the server says it serves (GET /v1/models and the like),
   * else the user's setting, else a cautious default; a setting above what the server serves is
   * brought down to fit. Recorded as a context_window event.
   */
  private async learnContextWindow(client: ChatModelClient, setup: Setup): Promise<void> {
    const reserve = setup.sampling?.maxOutputTokens;
    let served: { tokens: number; detail: string } | undefined;
    try {
      served = client.contextWindowDetail
        ? await client.contextWindowDetail(this.abort.signal)
        : await client.contextWindow?.(this.abort.signal).then((tokens) => (tokens ? { tokens, detail: `${client.provider ?? 'the provider'} says` } : undefined));
    } catch {
      served = undefined;
    }
    if (this.abort.signal.aborted) return;
    const setting = setup.contextBudgetSetting;
    const fromWindow = served ? defaultContextBudget(served.tokens, reserve) : undefined;
    let budgetTokens: number;
    let source: 'server' | 'setting' | 'default';
    let detail: string | undefined = served?.detail;
    if (setting !== undefined) {
      source = 'setting';
      budgetTokens = fromWindow !== undefined ? Math.min(setting, fromWindow) : setting;
      if (fromWindow !== undefined && setting > fromWindow) detail = `${served!.detail}; the context budget setting (${setting}) is more than that window holds`;
    } else if (fromWindow !== undefined) {
      source = 'server';
      budgetTokens = fromWindow;
    } else {
      source = 'default';
      budgetTokens = defaultContextBudget(DEFAULT_CONTEXT_WINDOW, reserve);
      detail = `the server does not say its context window; a ${DEFAULT_CONTEXT_WINDOW}-token window is assumed (set apollo.contextBudget, CLI --context-budget, for a larger one)`;
    }
    setup.context.setBudget(budgetTokens);
    await this.record({
      type: 'context_window',
      time: now(),
      ...(served ? { windowTokens: served.tokens } : {}),
      budgetTokens: setup.context.budgetTokens,
      source,
      ...(detail ? { detail } : {}),
    });
  }

  /** Milliseconds the run has been active (paused time not counted), across sessions. */
  get activeTime(): number {
    return this.activeMs + (this.activeSince === undefined ? 0 : this.clock() - this.activeSince);
  }

  /** The run's budget, when it has one. */
  get runBudget(): RunBudget | undefined {
    return this.budget;
  }

  /** The budget the run has reached, if any, after `steps` steps. */
  private budgetReached(steps: number): { kind: BudgetKind; summary: string } | undefined {
    const budget = this.budget;
    if (!budget) return undefined;
    let kind: BudgetKind | undefined;
    if (budget.maxTokens !== undefined && this.tokens.promptTokens + this.tokens.completionTokens >= budget.maxTokens) kind = 'tokens';
    else if (budget.maxMinutes !== undefined && this.activeTime >= budget.maxMinutes * 60_000) kind = 'time';
    return kind && { kind, summary: budgetSummary(kind, budget, steps) };
  }

  get status(): RunStatus {
    return this.currentStatus;
  }

  get isLive(): boolean {
    return this.currentStatus === 'running' || this.currentStatus === 'paused';
  }

  /** Steps recorded so far. */
  get stepCount(): number {
    return this.lastStep;
  }

  get startedEvent(): RunStartedEvent {
    return this.started;
  }

  /** Why the run is paused, when it paused itself (repeated errors). */
  get pausedBecause(): string | undefined {
    return this.currentStatus === 'paused' ? this.pauseReason : undefined;
  }

  /** The run's events so far, read back from the dataset (as written: secrets redacted). */
  async events(): Promise<DatasetEvent[]> {
    return (await this.history()).events;
  }

  /**
   * The events so far and the sequence number of the last of them: a listener that subscribed
   * before asking skips events numbered up to it, so nothing is missed or shown twice.
   */
  async history(): Promise<{ events: DatasetEvent[]; sequence: number }> {
    const sequence = this.sequence;
    const { events } = await this.writer.readEvents();
    return { events, sequence };
  }

  /** Listeners get each event after it is on disk, numbered in recording order. */
  onEvent(listener: (event: DatasetEvent, sequence: number) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Appends to the dataset (flushed), keeps the manifest current, then tells listeners. */
  private async record(event: DatasetEvent): Promise<void> {
    if (event.type === 'step' && this.branch) {
      // On a rewound branch each step names its branch and the step it follows.
      event = { ...event, branch: this.branch.id, parentStep: this.branch.lastStep };
      this.branch.lastStep = event.step;
    }
    // Numbered when queued for writing, so history() knows which events its read includes.
    const sequence = ++this.sequence;
    // Listeners see the event as recorded: secrets redacted.
    const recorded = await this.writer.append(event);
    if (event.type === 'step') {
      this.lastStep = event.step;
      if (event.usage) {
        this.tokens = {
          promptTokens: this.tokens.promptTokens + event.usage.promptTokens,
          completionTokens: this.tokens.completionTokens + event.usage.completionTokens,
        };
      }
      await this.writer.updateManifest({ steps: event.step, tokens: this.tokens });
    } else if (event.type === 'summary' && event.usage) {
      this.tokens = {
        promptTokens: this.tokens.promptTokens + event.usage.promptTokens,
        completionTokens: this.tokens.completionTokens + event.usage.completionTokens,
      };
      await this.writer.updateManifest({ tokens: this.tokens });
    } else if (event.type === 'run_ended') {
      await this.writer.updateManifest({
        status: event.status,
        steps: event.steps,
        endedAt: event.time,
        ...(event.error ? { error: event.error } : {}),
      });
    } else if (event.type === 'run_state') {
      await this.writer.updateManifest({ status: event.state === 'paused' ? 'paused' : 'running' });
    }
    for (const listener of this.listeners) {
      try {
        listener(recorded, sequence);
      } catch (error) {
        this.log(`An event listener failed: ${(error as Error).message}`);
      }
    }
    if (event.type === 'step') {
      // The rules label a step as soon as it lands; they look only at a short window of steps.
      for (const label of this.rules.observe(event)) await this.record(toLabelEvent(label, now()));
      this.judge?.enqueue(event);
    }
  }

  /**
   * Queues a hint. `next` (default) reaches the model in its next request; `now` interrupts the
   * request in flight and sends it again with the hint. The agent never pauses for a hint; a run
   * paused on errors resumes with it. Returns the hint's id.
   */
  injectHint(text: string, kind: HintKind = 'knowledge', source = 'human', urgency: HintUrgency = 'next'): Promise<string> {
    return this.hints.inject(text, kind, source, urgency);
  }

  private beginRequest(): RequestHandle {
    const request: InFlightRequest = { controller: new AbortController() };
    const onStop = () => request.controller.abort();
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    const unwatch = this.hints.watch(request);
    return {
      signal: request.controller.signal,
      interruptedBy: () => request.interruptedBy,
      end: () => {
        unwatch();
        this.abort.signal.removeEventListener('abort', onStop);
      },
    };
  }

  /** Pauses after the current step. */
  pause(): void {
    if (!this.isLive) return;
    this.pauseRequested = true;
  }

  resume(): void {
    if (!this.pauseRequested) return;
    this.pauseRequested = false;
    this.wakeFromPause?.();
  }

  private pauseForErrors(reason: string): void {
    this.pauseReason = reason;
    this.pauseRequested = true;
    this.log(`Run ${this.runId} paused: ${reason}. Resume it, or send a hint, to try again.`);
  }

  private async waitWhilePaused(): Promise<void> {
    if (!this.pauseRequested || this.abort.signal.aborted) return;
    this.currentStatus = 'paused';
    // Paused time does not count against the time budget.
    if (this.activeSince !== undefined) this.activeMs += this.clock() - this.activeSince;
    this.activeSince = undefined;
    await this.record({ type: 'run_state', time: now(), state: 'paused', ...(this.pauseReason ? { reason: this.pauseReason } : {}) });
    while (this.pauseRequested && !this.abort.signal.aborted) {
      // A hint from another process also answers a pause on errors.
      const poll = this.pauseReason ? setInterval(() => void this.hints.pull().catch(() => undefined), 1000) : undefined;
      await new Promise<void>((resolve) => (this.wakeFromPause = resolve));
      clearInterval(poll);
    }
    this.wakeFromPause = undefined;
    this.pauseReason = undefined;
    if (this.abort.signal.aborted) return;
    this.activeSince = this.clock();
    this.currentStatus = 'running';
    await this.record({ type: 'run_state', time: now(), state: 'resumed' });
  }

  /** Ends the run now: the in-flight model request or command is aborted. */
  stop(): Promise<RunEndedEvent> {
    if (!this.abort.signal.aborted) {
      this.abort.abort();
      this.wakeFromPause?.();
    }
    return this.done;
  }

  /** Labels a recorded step (a human label unless another source is given). */
  async label(step: number, label: LabelValue, options: { axis?: LabelAxis; reason?: string; source?: string } = {}): Promise<void> {
    await labelStep({ runId: this.runId, lastStep: () => this.lastStep, append: (event) => this.record(event) }, { step, label, ...options });
  }
}

/** Plain folder names excluded by gitignore patterns ("node_modules/") and not taken back: not worth watching. */
function folderNames(patterns: string[]): Set<string> {
  const plain = /^[^*?[\]!/]+\/$/;
  const names = new Set(patterns.filter((pattern) => plain.test(pattern)).map((pattern) => pattern.slice(0, -1)));
  for (const pattern of patterns) if (pattern.startsWith('!')) names.delete(pattern.slice(1).replace(/\/$/, ''));
  return names;
}
