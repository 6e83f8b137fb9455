/**
 * Sampling: N runs of one task, each in its own isolated working copy of the user's workspace
 * (see workingCopy.ts), at most K at a time. The runs share a task id and record the workspace and
 * snapshot they started from; the user's workspace itself is never written to.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { RunEndedEvent, SamplingOptions } from '../dataset/events';
import { newRunId } from '../dataset/ids';
import { openSetting } from './errors';
import { ConfigError, type Disposable, type RunOptions, RunSession, validateRunOptions, validateSampling } from './runSession';
import { checkRunsDir, type OriginSnapshot, prepareOverlayBase, prepareOverlayCopy, prepareWorkingCopy, snapshotOrigin, workingCopyDir } from './workingCopy';
import { checkOverlayPaths, layersRoot, overlaySupport, unmountCopies } from './overlayCopy';

/**
 * A limit on how many runs go on at once. One instance can be shared by every sampling of a
 * process (the extension passes one), on top of each sampling's own concurrency.
 */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new ConfigError(`The concurrency must be a whole number of at least 1 (got ${max}) (CLI: --concurrency).`, openSetting('apollo.sample.concurrency'));
  }

  /** Slots in use. */
  get running(): number {
    return this.active;
  }

  /** Callers waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Resolves with the function that gives the slot back once one is free (first come, first
   * served); with undefined when `signal` aborts first.
   */
  acquire(signal?: AbortSignal): Promise<(() => void) | undefined> {
    if (signal?.aborted) return Promise.resolve(undefined);
    const release = () => {
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.active--;
        this.waiting.shift()?.();
      };
    };
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve(release());
    }
    return new Promise((resolve) => {
      const grant = () => {
        signal?.removeEventListener('abort', cancel);
        this.active++;
        resolve(release());
      };
      const cancel = () => {
        const index = this.waiting.indexOf(grant);
        if (index >= 0) this.waiting.splice(index, 1);
        resolve(undefined);
      };
      this.waiting.push(grant);
      signal?.addEventListener('abort', cancel, { once: true });
    });
  }
}

export interface SampleOptions extends Omit<RunOptions, 'taskId' | 'origin'> {
  /** How many runs of the task. */
  n: number;
  /** How many of them go on at once; default all. */
  concurrency?: number;
  /** Where the working copies are made: `<runsDir>/<taskId>/<index>`. Must lie outside the workspace and the dataset folder. */
  runsDir: string;
  /** A limit shared with other samplings of the process. */
  limit?: ConcurrencyLimit;
  /**
   * With a seed in `sampling`: every run gets that same seed. By default run i (0-based) gets
   * seed + i, so the N runs differ and each one can be replayed.
   */
  sameSeed?: boolean;
  /**
   * How the working copies are made. `plain` (the default): copies of their own, reflinked where
   * the file system can, which stay readable once the process ends. `auto`: overlay mounts over one
   * base copy where this process may mount them (overlayCopy.ts; the CLI runs in a mount namespace
   * of its own for this), else plain copies.
   */
  copies?: 'auto' | 'plain';
}

/**
 * The sampling of the run at `index` (0-based) of a sampling: without a seed, `sampling` as it is;
 * with seed S, S + index unless `sameSeed`.
 */
export function seedFor(index: number, sampling: SamplingOptions | undefined, sameSeed = false): SamplingOptions | undefined {
  if (sampling?.seed === undefined || sameSeed) return sampling;
  return { ...sampling, seed: sampling.seed + index };
}

/**
 * queued: waiting for its working copy to be made, or for a free slot; preparing: its copy is
 * being made, or its run is starting; running; ended (the run recorded its end, whatever its
 * status); failed: the run could not be prepared or started, or the sampling was stopped before
 * it started (`cancelled`).
 */
export type SampledRunState = 'queued' | 'preparing' | 'running' | 'ended' | 'failed';

export interface SampledRun {
  /** 0-based: the position in `Sampling.runs`; the working copy's folder is numbered from 1. */
  readonly index: number;
  /** The run's working copy folder. */
  readonly workingCopy: string;
  runId?: string;
  session?: RunSession;
  state: SampledRunState;
  /** Why the run failed (state `failed`). */
  error?: string;
  /** The sampling was stopped before this run started. */
  cancelled?: boolean;
  /** How the run ended (state `ended`). */
  ended?: RunEndedEvent;
}

export interface SampledRunResult {
  index: number;
  workingCopy: string;
  runId?: string;
  state: 'ended' | 'failed';
  ended?: RunEndedEvent;
  error?: string;
  cancelled?: boolean;
}

export class Sampling {
  readonly runs: SampledRun[];
  readonly done: Promise<SampledRunResult[]>;
  private readonly startedListeners = new Set<(session: RunSession, index: number) => void>();
  private readonly changeListeners = new Set<(run: SampledRun) => void>();
  private readonly abort = new AbortController();
  private readonly own: ConcurrencyLimit;

  constructor(
    private readonly options: SampleOptions,
    private readonly origin: OriginSnapshot,
    readonly runsDir: string,
  ) {
    this.runs = Array.from({ length: options.n }, (_, index) => ({ index, workingCopy: workingCopyDir(runsDir, origin.taskId, index), state: 'queued' as const }));
    this.own = new ConcurrencyLimit(options.concurrency ?? options.n);
    this.done = this.drive();
  }

  /** Shared by the sampling's runs (run_started.taskId, the manifests' taskId). */
  get taskId(): string {
    return this.origin.taskId;
  }

  /** The snapshot of the user's workspace every working copy was made from (in the workspace's shadow store). */
  get baseSnapshot(): string {
    return this.origin.snapshot;
  }

  /** The user's workspace (real path). */
  get workspace(): string {
    return this.origin.workspace;
  }

  /** The dataset folder the runs are recorded in (real path). */
  get datasetDir(): string {
    return this.origin.datasetRoot;
  }

  /** The folder holding this sampling's working copies. */
  get copiesDir(): string {
    return path.join(this.runsDir, this.origin.taskId);
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** Called as each run starts, with its session (subscribe to its events there) and its index. */
  onRunStarted(listener: (session: RunSession, index: number) => void): Disposable {
    this.startedListeners.add(listener);
    return { dispose: () => this.startedListeners.delete(listener) };
  }

  /** Called whenever a run's state changes. */
  onRunChanged(listener: (run: SampledRun) => void): Disposable {
    this.changeListeners.add(listener);
    return { dispose: () => this.changeListeners.delete(listener) };
  }

  /** Stops the runs going on and cancels those not started yet; resolves when all are done. */
  stop(): Promise<SampledRunResult[]> {
    if (!this.abort.signal.aborted) {
      this.abort.abort();
      for (const run of this.runs) if (run.session?.isLive) void run.session.stop();
    }
    return this.done;
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private set(run: SampledRun, state: SampledRunState, extra: Partial<SampledRun> = {}): void {
    Object.assign(run, extra, { state });
    for (const listener of this.changeListeners) {
      try {
        listener(run);
      } catch (error) {
        this.log(`A sampling listener failed: ${(error as Error).message}`);
      }
    }
  }

  private cancel(run: SampledRun): void {
    this.set(run, 'failed', { cancelled: true, error: 'Not started: the sampling was stopped first.' });
  }

  private async drive(): Promise<SampledRunResult[]> {
    // Let the caller subscribe before the first state changes.
    await new Promise((resolve) => setImmediate(resolve));
    const total = this.runs.length;
    await this.prepareOverlays();
    const overlay = this.overlayCopies;
    // Every copy is made before any run starts: copies after the first are copied from one no run has touched yet.
    let pristine: string | undefined;
    for (const run of this.runs) {
      if (this.stopped) {
        this.cancel(run);
        continue;
      }
      this.set(run, 'preparing');
      try {
        const copy = overlay ? await prepareOverlayCopy(this.origin, run.workingCopy) : await prepareWorkingCopy(this.origin, run.workingCopy, pristine);
        pristine ??= copy.dir;
        this.log(`working copy ${run.index + 1}/${total} ready: ${run.workingCopy}${copy.git ? ' (with its own .git)' : ''}`);
        this.set(run, 'queued');
      } catch (error) {
        const message = `Could not prepare working copy ${run.index + 1}/${total} at ${run.workingCopy}: ${(error as Error).message}`;
        this.log(message);
        if (!(error instanceof ConfigError)) {
          if (overlay) await unmountCopies([run.workingCopy]).catch(() => undefined);
          await fs.rm(run.workingCopy, { recursive: true, force: true }).catch(() => undefined);
        }
        this.set(run, 'failed', { error: message });
      }
    }
    await Promise.all(this.runs.filter((run) => run.state === 'queued').map((run) => this.runOne(run)));
    return this.runs.map((run) => ({
      index: run.index,
      workingCopy: run.workingCopy,
      state: run.state === 'ended' ? 'ended' : 'failed',
      ...(run.runId ? { runId: run.runId } : {}),
      ...(run.ended ? { ended: run.ended } : {}),
      ...(run.error ? { error: run.error } : {}),
      ...(run.cancelled ? { cancelled: true } : {}),
    }));
  }

  /**
   * Makes the base of overlay copies when they are to be used and this process may mount them;
   * otherwise (plain copies) says why in the log. A base that could not be made whole is removed.
   */
  private async prepareOverlays(): Promise<void> {
    if (this.options.copies !== 'auto') return;
    const refused = await overlaySupport(this.runsDir);
    if (refused) return this.log(`working copies: plain copies (${refused})`);
    try {
      checkOverlayPaths(this.copiesDir);
      await prepareOverlayBase(this.origin, this.copiesDir);
      this.overlayCopies = true;
      this.log(`working copies: overlay mounts over one base copy in ${this.copiesDir}`);
    } catch (error) {
      await fs.rm(layersRoot(this.copiesDir), { recursive: true, force: true }).catch(() => undefined);
      this.log(`working copies: plain copies (the base for overlay copies could not be made: ${(error as Error).message})`);
    }
  }

  private overlayCopies = false;

  /** Whether the working copies are overlay mounts (overlayCopy.ts). */
  get overlay(): boolean {
    return this.overlayCopies;
  }

  /**
   * Unmounts the sampling's overlay copies once nothing more runs in them (the runs and their
   * verifiers are done); their layers stay, and a resume or `apollo verify --run` mounts them
   * again. Nothing to do for plain copies.
   */
  async unmount(): Promise<void> {
    if (this.overlayCopies) await unmountCopies(this.runs.map((run) => run.workingCopy));
  }

  private async runOne(run: SampledRun): Promise<void> {
    const signal = this.abort.signal;
    const releaseOwn = await this.own.acquire(signal);
    if (!releaseOwn) return this.cancel(run);
    const releaseShared = this.options.limit ? await this.options.limit.acquire(signal) : () => undefined;
    if (!releaseShared) {
      releaseOwn();
      return this.cancel(run);
    }
    try {
      this.set(run, 'preparing');
      const { n: _n, concurrency: _concurrency, runsDir: _runsDir, limit: _limit, sameSeed, copies: _copies, ...runOptions } = this.options;
      const session = await RunSession.start({
        ...runOptions,
        sampling: seedFor(run.index, runOptions.sampling, sameSeed),
        workspace: run.workingCopy,
        datasetDir: this.origin.datasetRoot,
        taskId: this.origin.taskId,
        origin: { workspace: this.origin.workspace, snapshot: this.origin.snapshot },
        log: this.options.log && ((line) => this.options.log!(`[run ${run.index + 1}] ${line}`)),
      });
      if (this.stopped) void session.stop();
      this.set(run, 'running', { session, runId: session.runId });
      for (const listener of this.startedListeners) {
        try {
          listener(session, run.index);
        } catch (error) {
          this.log(`A sampling listener failed: ${(error as Error).message}`);
        }
      }
      const ended = await session.done;
      this.set(run, 'ended', { ended });
    } catch (error) {
      const message = `Run ${run.index + 1}/${this.runs.length} could not start: ${(error as Error).message}`;
      this.log(message);
      this.set(run, 'failed', { error: message });
    } finally {
      releaseShared();
      releaseOwn();
    }
  }
}

/**
 * Validates the options, snapshots the user's workspace (pinned as the task's base snapshot) and
 * starts making the working copies and the runs in the background. Bad options are refused with a
 * ConfigError before anything is written.
 */
export async function startSampling(options: SampleOptions): Promise<Sampling> {
  if (!Number.isInteger(options.n) || options.n < 1) throw new ConfigError(`The number of runs must be a whole number of at least 1 (got ${options.n}) (CLI: --n).`);
  if (options.concurrency !== undefined && (!Number.isInteger(options.concurrency) || options.concurrency < 1)) {
    throw new ConfigError(`The concurrency must be a whole number of at least 1 (got ${options.concurrency}) (CLI: --concurrency).`);
  }
  validateRunOptions({ ...options });
  // The last run's seed must be valid too.
  validateSampling(seedFor(options.n - 1, options.sampling, options.sameSeed));
  if (!options.runsDir) throw new ConfigError('No folder for the working copies given (CLI: --runs-dir).');
  const stat = await fs.stat(options.workspace).catch(() => undefined);
  if (!stat?.isDirectory()) throw new ConfigError(`The workspace folder ${options.workspace} does not exist.`);
  const workspace = await fs.realpath(options.workspace);
  const datasetDir = path.resolve(workspace, options.datasetDir);
  const runsDir = path.resolve(options.runsDir);
  await checkRunsDir(runsDir, workspace, datasetDir);
  const taskId = newRunId();
  const origin = await snapshotOrigin({ workspace, datasetDir, taskId, grounding: options.grounding });
  await fs.mkdir(runsDir, { recursive: true });
  return new Sampling({ ...options, workspace, datasetDir }, origin, await fs.realpath(runsDir));
}
