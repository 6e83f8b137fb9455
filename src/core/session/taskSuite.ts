/**
 * A task suite: K runs of each task of a folder of tasks in Harbor's layout (taskRuns.ts), each in
 * a fresh working copy of the task's environment, at most C at a time across the suite, each run
 * verified as it ends (its `reward` event appended to the run). The CLI (`apollo sample
 * --task-dir`) and the editor ("Run Task Suite…") both start suites here and only say what happens.
 *
 * Every task is checked before any run starts: a task this host cannot run is refused with its
 * reason and the others go on.
 */
import path from 'node:path';
import type { SandboxInfo } from '../agent/sandbox';
import { detectSandbox } from '../agent/sandbox';
import type { RewardEvent, RunEndedEvent } from '../dataset/events';
import type { HarborTask, TaskHost } from './harborTask';
import { ConfigError, type RunSession } from './runSession';
import { ConcurrencyLimit, type SampleOptions, type Sampling, startSampling } from './sample';
import { loadRunnableTask, taskPrompt, taskSandbox, taskSourceOf, taskWorkspace, verifyRun } from './taskRuns';

/** Statuses a run ends with that count as success: it stopped where it was meant to. */
export const CLEAN_ENDS: ReadonlySet<string> = new Set(['finished', 'max_steps', 'budget']);

/** One run of the suite: which task, and its place among that task's runs (1-based). */
export interface SuiteRun {
  task: HarborTask;
  taskId: string;
  index: number;
  count: number;
  runId?: string;
}

export interface SuiteProgress {
  /** Runs the suite will make: K for every task not refused. */
  total: number;
  started: number;
  ended: number;
  /** Verifiers that ran (a reward, or the reason there is none). */
  verified: number;
  /** Runs that could not start, or were cancelled before they started. */
  failed: number;
}

/** What the suite says as it goes; every hook is optional and a failing hook never stops the suite. */
export interface TaskSuiteEvents {
  /** A task this host cannot run (or whose folder cannot be read): not run, with the reason. */
  refused?(dir: string, reason: string): void;
  /** The working copies of a task's runs are being made. */
  taskStarted?(task: HarborTask, sampling: Sampling): void;
  runStarted?(run: SuiteRun, session: RunSession): void;
  runEnded?(run: SuiteRun, ended: RunEndedEvent): void;
  /** A run that could not start (`cancelled`: the suite was stopped first). */
  runFailed?(run: SuiteRun, error: string, cancelled: boolean): void;
  /** The verifier starts on an ended run's workspace. */
  verifying?(run: SuiteRun): void;
  /** The verifier ran; the reward event (with its rewards, or its error) is in the run's events. */
  rewarded?(run: SuiteRun, reward: RewardEvent): void;
  /** The verifier could not run at all (the task folder went, the run is still going…). */
  verifyFailed?(run: SuiteRun, error: string): void;
  progress?(progress: SuiteProgress): void;
}

/** What every run of the suite shares: the endpoint, limits, sandbox and sampling of a run. */
export type SuiteRunOptions = Omit<SampleOptions, 'workspace' | 'datasetDir' | 'task' | 'taskSource' | 'n' | 'concurrency' | 'limit' | 'runsDir' | 'log'>;

export interface TaskSuiteOptions {
  /** Task folders, or folders of tasks (findTaskDirs has already been applied: each is a task). */
  taskDirs: string[];
  /** Runs of each task. */
  n: number;
  /** Runs going at once across the whole suite (a limit shared with other samplings, or a number). */
  limit: ConcurrencyLimit | number;
  datasetDir: string;
  /** Where the fresh working copies are made (see taskWorkspace and startSampling). */
  runsDir: string;
  /** Sample from this folder instead of a fresh copy of each task's environment. */
  workspace?: string;
  run: SuiteRunOptions;
  events?: TaskSuiteEvents;
  log?: (line: string) => void;
  /** Detected once for the suite unless given (tests). */
  sandbox?: SandboxInfo;
  host?: TaskHost;
}

export interface SuiteRunResult {
  task: string;
  taskId: string;
  index: number;
  runId?: string;
  ended?: RunEndedEvent;
  reward?: RewardEvent;
  /** Could not start, or its verifier could not run. */
  error?: string;
  cancelled?: boolean;
}

export interface TaskSuiteResult {
  runs: SuiteRunResult[];
  refused: { dir: string; reason: string }[];
}

export class TaskSuite {
  readonly refused: { dir: string; reason: string }[] = [];
  readonly tasks: { task: HarborTask; sampling: Sampling }[] = [];
  private readonly results = new Map<string, SuiteRunResult>();
  private readonly abort = new AbortController();
  private readonly counts: SuiteProgress = { total: 0, started: 0, ended: 0, verified: 0, failed: 0 };
  private finished: Promise<TaskSuiteResult> = Promise.resolve({ runs: [], refused: [] });

  constructor(private readonly options: TaskSuiteOptions) {}

  get progress(): SuiteProgress {
    return { ...this.counts };
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** Resolves once every run has ended and every verifier has run (or the suite was stopped). */
  get done(): Promise<TaskSuiteResult> {
    return this.finished;
  }

  /** Stops the runs going, cancels those not started and the verifiers running; resolves when all are done. */
  stop(): Promise<TaskSuiteResult> {
    if (!this.abort.signal.aborted) {
      this.abort.abort();
      for (const { sampling } of this.tasks) void sampling.stop();
    }
    return this.finished;
  }

  private emit<K extends keyof TaskSuiteEvents>(name: K, ...args: Parameters<NonNullable<TaskSuiteEvents[K]>>): void {
    const hook = this.options.events?.[name] as ((...values: unknown[]) => void) | undefined;
    try {
      hook?.(...args);
    } catch (error) {
      this.options.log?.(`A task suite listener failed: ${(error as Error).message}`);
    }
  }

  private changed(): void {
    this.emit('progress', this.progress);
  }

  /** Checks every task, then starts the samplings of those that can run. */
  async start(): Promise<void> {
    const { options } = this;
    const limit = typeof options.limit === 'number' ? new ConcurrencyLimit(options.limit) : options.limit;
    if (!Number.isInteger(options.n) || options.n < 1) throw new ConfigError(`The number of runs of each task must be a whole number of at least 1 (got ${options.n}) (CLI: --n).`);
    const sandbox = options.sandbox ?? (await detectSandbox());
    const runnable: { task: HarborTask; sandbox: SandboxInfo }[] = [];
    for (const dir of options.taskDirs) {
      try {
        runnable.push(await loadRunnableTask(dir, { sandbox, host: options.host }));
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        this.refused.push({ dir, reason: error.message });
        this.emit('refused', dir, error.message);
      }
    }
    this.counts.total = runnable.length * options.n;
    this.changed();
    const verifying: Promise<void>[] = [];
    const samplings: Promise<unknown>[] = [];
    try {
      for (const { task } of runnable) {
        if (this.stopped) break;
        const base = await taskWorkspace(task, options.runsDir, options.workspace);
        const sampling = await startSampling({
          ...options.run,
          workspace: base.workspace,
          datasetDir: options.datasetDir,
          task: taskPrompt(task),
          taskSource: taskSourceOf(task),
          budget: options.run.budget ?? (task.agent.timeoutSec ? { maxMinutes: task.agent.timeoutSec / 60 } : undefined),
          sandbox: taskSandbox(task, options.run.sandbox ?? { mode: 'auto', network: true }),
          n: options.n,
          limit,
          runsDir: options.runsDir,
          log: options.log && ((line) => options.log!(`${task.name} ${line}`)),
        });
        this.tasks.push({ task, sampling });
        const suiteRun = (index: number): SuiteRun => ({
          task,
          taskId: sampling.taskId,
          index: index + 1,
          count: options.n,
          ...(sampling.runs[index].runId ? { runId: sampling.runs[index].runId } : {}),
        });
        const result = (index: number): SuiteRunResult => {
          const key = `${sampling.taskId}/${index}`;
          let entry = this.results.get(key);
          if (!entry) this.results.set(key, (entry = { task: task.name, taskId: sampling.taskId, index: index + 1 }));
          return entry;
        };
        for (let index = 0; index < options.n; index++) result(index);
        this.emit('taskStarted', task, sampling);
        sampling.onRunStarted((session, index) => {
          result(index).runId = session.runId;
          this.counts.started++;
          this.emit('runStarted', suiteRun(index), session);
          this.changed();
        });
        sampling.onRunChanged((run) => {
          const entry = result(run.index);
          if (run.state === 'failed') {
            entry.error = run.error;
            if (run.cancelled) entry.cancelled = true;
            this.counts.failed++;
            this.emit('runFailed', suiteRun(run.index), run.error ?? 'could not start', !!run.cancelled);
            this.changed();
            return;
          }
          if (run.state !== 'ended' || !run.ended || !run.runId) return;
          const runId = run.runId;
          entry.ended = run.ended;
          this.counts.ended++;
          this.emit('runEnded', suiteRun(run.index), run.ended);
          this.changed();
          // A stopped run is not judged: it did not get to finish (`apollo verify --run` later).
          if (run.ended.status === 'stopped') return;
          this.emit('verifying', suiteRun(run.index));
          verifying.push(
            verifyRun({ datasetDir: sampling.datasetDir, runId, sandbox, host: options.host, signal: this.abort.signal }).then(
              (reward) => {
                entry.reward = reward;
                this.counts.verified++;
                this.emit('rewarded', suiteRun(run.index), reward);
                this.changed();
              },
              (error: Error) => {
                entry.error = `the verifier could not run: ${error.message}`;
                this.counts.verified++;
                this.emit('verifyFailed', suiteRun(run.index), error.message);
                this.changed();
              },
            ),
          );
        });
        samplings.push(sampling.done);
        if (this.stopped) void sampling.stop();
      }
    } catch (error) {
      // A task that cannot be sampled at all (a bad option, no room for copies) stops the suite.
      this.abort.abort();
      await Promise.all(this.tasks.map(({ sampling }) => sampling.stop()));
      throw error;
    }
    this.finished = (async () => {
      await Promise.all(samplings);
      // Verifiers are pushed as runs end; wait until none is added any more.
      for (let seen = -1; seen !== verifying.length;) {
        seen = verifying.length;
        await Promise.all(verifying);
      }
      // Nothing more runs in the working copies: overlay copies are unmounted (their layers stay).
      for (const { task, sampling } of this.tasks) await sampling.unmount().catch((error: Error) => options.log?.(`${task.name} could not unmount its working copies: ${error.message}`));
      return { runs: [...this.results.values()], refused: [...this.refused] };
    })();
  }
}

/** Checks the tasks and starts the suite; resolves once every task not refused is being sampled. */
export async function startTaskSuite(options: TaskSuiteOptions): Promise<TaskSuite> {
  const suite = new TaskSuite({ ...options, taskDirs: options.taskDirs.map((dir) => path.resolve(dir)) });
  await suite.start();
  return suite;
}

/** Runs that did not end cleanly or could not start (not counting those cancelled by a stop). */
export function uncleanRuns(result: TaskSuiteResult): SuiteRunResult[] {
  return result.runs.filter((run) => (run.ended ? !CLEAN_ENDS.has(run.ended.status) : !run.cancelled));
}
