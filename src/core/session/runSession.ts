/**
 * One run from start to end: wires the dataset, the shadow store, the tools and the model into
 * the agent loop, and takes the annotator's interventions (hints, pause, stop, labels) while it
 * goes on. Used alike by the extension and the CLI.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type {
  DatasetEvent,
  HintKind,
  LabelAxis,
  LabelValue,
  RunEndedEvent,
  RunManifest,
  RunStartedEvent,
  RunStatus,
} from '../dataset/events';
import { HINT_KINDS, LABEL_AXES, LABEL_VALUES } from '../dataset/events';
import { newHintId, newRunId } from '../dataset/ids';
import { Redactor } from '../dataset/redaction';
import { DatasetStore, RunWriter } from '../dataset/store';
import { ShadowStore, shadowStoreDir } from '../grounding/shadowStore';
import { DeliverableHint, runAgentLoop } from '../agent/loop';
import { ModelClient } from '../agent/modelClient';
import { systemPrompt } from '../agent/prompt';
import { TOOL_DEFINITIONS, ToolRunner } from '../agent/tools';
import { WorkspaceGuard } from '../agent/workspaceGuard';

/** A problem with what the user asked for or configured; the message says how to fix it. */
export class ConfigError extends Error {}

export interface RunOptions {
  workspace: string;
  datasetDir: string;
  task: string;
  model: string;
  baseUrl: string;
  apiKey: string;
  maxSteps?: number;
  commandTimeoutMs?: number;
  log?: (line: string) => void;
}

export const DEFAULT_MAX_STEPS = 50;

export interface Disposable {
  dispose(): void;
}

const now = () => new Date().toISOString();

function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

async function validate(options: RunOptions): Promise<void> {
  if (!options.task || options.task.trim() === '') {
    throw new ConfigError('The task is empty: describe what the agent should do.');
  }
  if (!options.baseUrl) {
    throw new ConfigError('No model endpoint configured: set apollo.baseUrl (CLI: --base-url or OPENAI_BASE_URL).');
  }
  try {
    const url = new URL(options.baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new ConfigError(`The model endpoint "${options.baseUrl}" is not an http(s) URL: fix apollo.baseUrl (CLI: --base-url).`);
  }
  if (!options.model) {
    throw new ConfigError('No model configured: set apollo.model (CLI: --model or OPENAI_MODEL).');
  }
  if (!options.apiKey) {
    throw new ConfigError(
      'No API key configured: run "Apollo: Set API Key" (CLI: set OPENAI_API_KEY). A local server that needs no key accepts any text.',
    );
  }
  const stat = await fs.stat(options.workspace).catch(() => undefined);
  if (!stat?.isDirectory()) throw new ConfigError(`The workspace folder ${options.workspace} does not exist.`);
  const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
  if (!Number.isInteger(maxSteps) || maxSteps < 1) {
    throw new ConfigError(`The step limit must be a whole number of at least 1 (got ${maxSteps}): fix apollo.maxSteps (CLI: --max-steps).`);
  }
}

export class RunSession {
  readonly runId: string;
  private readonly recorded: DatasetEvent[] = [];
  private readonly listeners = new Set<(event: DatasetEvent) => void>();
  private readonly pendingHints: DeliverableHint[] = [];
  private readonly abort = new AbortController();
  private currentStatus: RunStatus = 'running';
  private pauseRequested = false;
  private wakeFromPause: (() => void) | undefined;
  private lastStep = 0;
  private tokens = { promptTokens: 0, completionTokens: 0 };
  done!: Promise<RunEndedEvent>;

  private constructor(
    readonly store: DatasetStore,
    readonly shadow: ShadowStore,
    private readonly writer: RunWriter,
    private readonly log: (line: string) => void,
  ) {
    this.runId = writer.runId;
  }

  /** Validates the options, records the run's start and starts the agent in the background. */
  static async start(options: RunOptions): Promise<RunSession> {
    await validate(options);
    const workspace = await fs.realpath(options.workspace);
    const datasetDir = path.resolve(workspace, options.datasetDir);
    const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;

    const redactor = new Redactor({ secrets: [options.apiKey] });
    for (const [name, value] of Object.entries(process.env)) {
      if (value && /KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL/i.test(name)) redactor.addSecret(value);
    }
    const store = new DatasetStore(datasetDir, { redactor });
    await store.init();
    const realDataset = await fs.realpath(datasetDir);
    const exclude = isInside(realDataset, workspace) ? [path.relative(workspace, realDataset)] : [];
    const shadow = new ShadowStore({ workspace, storeDir: shadowStoreDir(realDataset, workspace), exclude });
    await shadow.init();

    const runId = newRunId();
    const time = now();
    const manifest: RunManifest = {
      id: runId,
      task: options.task,
      workspace,
      model: options.model,
      baseUrl: options.baseUrl,
      status: 'running',
      steps: 0,
      createdAt: time,
      updatedAt: time,
      tokens: { promptTokens: 0, completionTokens: 0 },
    };
    const writer = await store.createRun(manifest);
    const session = new RunSession(store, shadow, writer, options.log ?? (() => undefined));
    const prompt = systemPrompt({ workspace, maxSteps });
    await session.record({
      type: 'run_started',
      time,
      version: 1,
      runId,
      task: options.task,
      workspace,
      model: options.model,
      baseUrl: options.baseUrl,
      maxSteps,
      systemPrompt: prompt,
      tools: TOOL_DEFINITIONS,
    });

    const guard = new WorkspaceGuard(workspace, [realDataset, shadow.storeDir]);
    const tools = new ToolRunner({ workspace, guard, commandTimeoutMs: options.commandTimeoutMs });
    const client = new ModelClient({ baseUrl: options.baseUrl, apiKey: options.apiKey, model: options.model });
    session.done = session.drive(() =>
      runAgentLoop({
        client,
        tools,
        shadow,
        systemPrompt: prompt,
        task: options.task,
        maxSteps,
        control: {
          record: (event) => session.record(event),
          takeHints: () => session.takeHints(),
          waitWhilePaused: () => session.waitWhilePaused(),
          signal: session.abort.signal,
        },
      }),
    );
    return session;
  }

  private async drive(loop: () => ReturnType<typeof runAgentLoop>): Promise<RunEndedEvent> {
    const outcome = await loop().catch((error: Error) => ({
      status: 'failed' as const,
      steps: this.lastStep,
      error: `The run failed: ${error.message}`,
      summary: undefined,
    }));
    const ended: RunEndedEvent = {
      type: 'run_ended',
      time: now(),
      status: outcome.status,
      steps: outcome.steps,
      ...(outcome.summary ? { summary: outcome.summary } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
    };
    this.currentStatus = outcome.status;
    try {
      await this.record(ended);
    } catch (error) {
      this.log(`Could not record the end of run ${this.runId}: ${(error as Error).message}`);
    }
    return ended;
  }

  get status(): RunStatus {
    return this.currentStatus;
  }

  /** Steps recorded so far. */
  get stepCount(): number {
    return this.lastStep;
  }

  get startedEvent(): RunStartedEvent {
    return this.recorded[0] as RunStartedEvent;
  }

  get isLive(): boolean {
    return this.currentStatus === 'running' || this.currentStatus === 'paused';
  }

  events(): readonly DatasetEvent[] {
    return this.recorded;
  }

  onEvent(listener: (event: DatasetEvent) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Appends to the dataset (flushed), keeps the manifest current, then tells listeners. */
  private async record(event: DatasetEvent): Promise<void> {
    await this.writer.append(event);
    this.recorded.push(event);
    if (event.type === 'step') {
      this.lastStep = event.step;
      if (event.usage) {
        this.tokens = {
          promptTokens: this.tokens.promptTokens + event.usage.promptTokens,
          completionTokens: this.tokens.completionTokens + event.usage.completionTokens,
        };
      }
      await this.writer.updateManifest({ steps: event.step, tokens: this.tokens });
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
        listener(event);
      } catch (error) {
        this.log(`An event listener failed: ${(error as Error).message}`);
      }
    }
  }

  /**
   * Queues a hint for the agent's next model request; the agent does not pause. Returns the
   * hint's id.
   */
  async injectHint(text: string, kind: HintKind = 'knowledge', source = 'human'): Promise<string> {
    if (typeof text !== 'string' || text.trim() === '') throw new ConfigError('The hint is empty: type what the agent should know.');
    if (!HINT_KINDS.includes(kind)) throw new ConfigError(`Unknown hint kind "${kind}": use ${HINT_KINDS.join(', ')}.`);
    if (!this.isLive) throw new ConfigError(`Run ${this.runId} has ended (${this.currentStatus}); a hint can no longer reach it.`);
    const hintId = newHintId();
    await this.record({ type: 'hint_queued', time: now(), hintId, text, kind, source });
    this.pendingHints.push({ hintId, text, kind });
    return hintId;
  }

  /** Hints from the panel and from other processes (`apollo hint`), each handed out once. */
  private async takeHints(): Promise<DeliverableHint[]> {
    for (const hint of await this.store.takeInboxHints(this.runId)) {
      await this.record({ type: 'hint_queued', time: now(), hintId: hint.hintId, text: hint.text, kind: hint.kind, source: hint.source });
      this.pendingHints.push({ hintId: hint.hintId, text: hint.text, kind: hint.kind });
    }
    return this.pendingHints.splice(0);
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

  private async waitWhilePaused(): Promise<void> {
    if (!this.pauseRequested || this.abort.signal.aborted) return;
    this.currentStatus = 'paused';
    await this.record({ type: 'run_state', time: now(), state: 'paused' });
    while (this.pauseRequested && !this.abort.signal.aborted) {
      await new Promise<void>((resolve) => (this.wakeFromPause = resolve));
    }
    this.wakeFromPause = undefined;
    if (this.abort.signal.aborted) return;
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
    if (!LABEL_VALUES.includes(label)) throw new ConfigError(`Unknown label "${label}": use ${LABEL_VALUES.join(', ')}.`);
    if (options.axis !== undefined && !LABEL_AXES.includes(options.axis)) {
      throw new ConfigError(`Unknown axis "${options.axis}": use ${LABEL_AXES.join(', ')}.`);
    }
    if (!Number.isInteger(step) || step < 1 || step > this.lastStep) {
      throw new ConfigError(`Run ${this.runId} has no step ${step} yet (it has ${this.lastStep}).`);
    }
    await this.record({
      type: 'label',
      time: now(),
      step,
      label,
      source: options.source ?? 'human',
      ...(options.axis ? { axis: options.axis } : {}),
      ...(options.reason ? { reason: options.reason } : {}),
    });
  }
}
