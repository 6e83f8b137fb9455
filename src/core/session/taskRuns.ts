/**
 * Runs of tasks in Harbor's layout (harborTask.ts): the checks before a run, the workspace a
 * task starts in, what the agent is told, and the verifier when the run has ended (verifier.ts),
 * whose rewards are recorded as a `reward` event of the run.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SandboxInfo } from '../agent/sandbox';
import { detectSandbox } from '../agent/sandbox';
import type { CommandSandboxOptions } from '../agent/tools';
import type { RewardEvent, RunStartedEvent, TaskSource } from '../dataset/events';
import { Redactor, secretEnvValues } from '../dataset/redaction';
import { DatasetStore } from '../dataset/store';
import type { HarborTask, TaskHost } from './harborTask';
import { remountCopy } from './overlayCopy';
import { loadTask, localTaskHost, prepareTaskWorkspace, TaskError, taskRefusal } from './harborTask';
import { rewardView } from './timeline';
import { runVerifier } from './verifier';

export interface RunnableTask {
  task: HarborTask;
  sandbox: SandboxInfo;
}

/** Loads a task and checks this host can run and verify it; throws TaskError with the reason otherwise. */
export async function loadRunnableTask(taskDir: string, options: { sandbox?: SandboxInfo; host?: TaskHost } = {}): Promise<RunnableTask> {
  const task = await loadTask(taskDir);
  const sandbox = options.sandbox ?? (await detectSandbox());
  const host = options.host ?? localTaskHost({ available: sandbox.kind === 'bwrap', reason: sandbox.kind === 'none' ? sandbox.reason : undefined });
  const refusal = taskRefusal(task, host);
  if (refusal) throw new TaskError(refusal);
  return { task, sandbox };
}

/** What the agent is given: the instruction, and where the task's working directory is. */
export function taskPrompt(task: HarborTask): string {
  return `${task.instruction}\n\n(Your workspace is this task's working directory, ${task.workdir}: commands also see it at ${task.workdir}; give file tools paths relative to the workspace.)`;
}

export function taskSourceOf(task: HarborTask): TaskSource {
  return { format: 'harbor', name: task.name, dir: task.dir };
}

/** A folder name from a task name ("org/fix-bug" → "org-fix-bug"). */
function folderName(name: string): string {
  return (
    name
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || 'task'
  );
}

/**
 * The workspace a task run starts in: the user's folder when given (used as it is), else a fresh
 * working copy of the files the task's Dockerfile puts in its WORKDIR, in `task-workspaces/` beside
 * `runsDir` (a sampling's runs folder may not hold the workspace its copies are made from).
 */
export async function taskWorkspace(task: HarborTask, runsDir: string, workspace?: string): Promise<{ workspace: string; fresh: boolean; files?: number }> {
  if (workspace) {
    if (!existsSync(workspace)) throw new TaskError(`The workspace ${workspace} does not exist.`);
    return { workspace: path.resolve(workspace), fresh: false };
  }
  const dir = path.join(path.dirname(path.resolve(runsDir)), 'task-workspaces', `${folderName(task.name)}-${randomBytes(4).toString('hex')}`);
  const { files } = await prepareTaskWorkspace(task, dir);
  return { workspace: dir, fresh: true, files };
}

/** The sandbox options of a task run: the workspace also at the task's WORKDIR; the network as the task allows. */
export function taskSandbox(task: HarborTask, sandbox: CommandSandboxOptions): CommandSandboxOptions {
  return { ...sandbox, network: sandbox.network && task.environment.allowInternet, workspaceAlias: task.workdir };
}

export interface VerifyOptions {
  task: HarborTask;
  workspace: string;
  sandbox: SandboxInfo;
  /** Run the task's solution first (on this workspace), then the verifier: is the task solvable here? */
  oracle?: boolean;
  timeoutMs?: number;
  home?: string;
  cacheDir?: string;
  redactor?: Redactor;
  signal?: AbortSignal;
}

/** Runs the verifier (after the oracle's solution when asked) and says the outcome as a `reward` event. */
export async function verifyWorkspace(options: VerifyOptions): Promise<RewardEvent> {
  const logs = mkdtempSync(path.join(os.tmpdir(), 'apollo-verifier-'));
  const redactor = options.redactor ?? new Redactor({ secrets: secretEnvValues() });
  const common = { task: options.task, workspace: options.workspace, sandbox: options.sandbox, home: options.home, cacheDir: options.cacheDir, redactor, signal: options.signal };
  try {
    let prefix = '';
    let durationMs = 0;
    if (options.oracle) {
      const solved = await runVerifier({ ...common, logsDir: path.join(logs, 'verifier'), script: 'oracle', timeoutMs: options.timeoutMs });
      durationMs += solved.durationMs;
      prefix = solved.output ? `${solved.output}\n` : '';
      if (solved.error) {
        return {
          type: 'reward',
          time: new Date().toISOString(),
          source: 'oracle',
          rewards: {},
          task: options.task.name,
          exitCode: solved.exitCode,
          ...(solved.timedOut ? { timedOut: true } : {}),
          durationMs,
          error: solved.error,
          output: solved.output,
        };
      }
    }
    const outcome = await runVerifier({ ...common, logsDir: path.join(logs, 'verifier'), timeoutMs: options.timeoutMs });
    return {
      type: 'reward',
      time: new Date().toISOString(),
      source: options.oracle ? 'oracle' : 'verifier',
      rewards: outcome.rewards ?? {},
      task: options.task.name,
      exitCode: outcome.exitCode,
      ...(outcome.timedOut ? { timedOut: true } : {}),
      durationMs: durationMs + outcome.durationMs,
      ...(outcome.error ? { error: outcome.error } : {}),
      output: (prefix + outcome.output).slice(-16_000),
    };
  } finally {
    await fs.rm(logs, { recursive: true, force: true });
  }
}

/** A run's task, from its run_started event; TaskError when it was not given one. */
export async function runTaskSource(store: DatasetStore, runId: string): Promise<{ started: RunStartedEvent; source: TaskSource }> {
  const { events } = await store.readEvents(runId);
  const started = events.find((event): event is RunStartedEvent => event.type === 'run_started');
  if (!started) throw new TaskError(`Run ${runId} has no run_started event.`);
  if (!started.taskSource) throw new TaskError(`Run ${runId} was not given a task of a suite (apollo run --task-dir): it has no verifier to run.`);
  return { started, source: started.taskSource };
}

/**
 * Runs a recorded run's verifier again on its workspace (e.g. after an adopt, or after fixing the
 * task's tests) and appends the `reward` event. Refused while the run is going.
 */
export async function verifyRun(options: {
  datasetDir: string;
  runId: string;
  sandbox?: SandboxInfo;
  host?: TaskHost;
  timeoutMs?: number;
  home?: string;
  cacheDir?: string;
  signal?: AbortSignal;
}): Promise<RewardEvent> {
  const redactor = new Redactor({ secrets: secretEnvValues() });
  const store = new DatasetStore(options.datasetDir, { redactor });
  const manifest = await store.readManifest(options.runId);
  if (manifest.status === 'running' || manifest.status === 'paused') throw new TaskError(`Run ${options.runId} is ${manifest.status}: verify it once it has ended.`);
  const { started, source } = await runTaskSource(store, options.runId);
  if (!existsSync(started.workspace)) throw new TaskError(`Run ${options.runId}'s workspace ${started.workspace} is gone: there is nothing to verify.`);
  // An overlay working copy whose sampling has ended is mounted again first.
  await remountCopy(started.workspace).catch((error: Error) => {
    throw new TaskError(`Run ${options.runId}'s workspace cannot be verified here: ${error.message}. The CLI mounts it in a namespace of its own: apollo verify --run ${options.runId}.`);
  });
  const { task, sandbox } = await loadRunnableTask(source.dir, { sandbox: options.sandbox, host: options.host });
  const event = await verifyWorkspace({ task, workspace: started.workspace, sandbox, timeoutMs: options.timeoutMs, home: options.home, cacheDir: options.cacheDir, redactor, signal: options.signal });
  await store.appendEvent(options.runId, event);
  // The manifest keeps the latest verdict, so that lists of runs show it without reading the events.
  const view = rewardView(event);
  await (await store.openRun(options.runId)).updateManifest({ reward: { ...(view.value !== undefined ? { value: view.value } : {}), ...(view.error ? { error: view.error } : {}), time: event.time } });
  return event;
}

/** `apollo verify --task-dir DIR --oracle`: the task's solution on a fresh working copy, then its verifier. */
export async function checkTaskSolvable(options: {
  taskDir: string;
  sandbox?: SandboxInfo;
  host?: TaskHost;
  timeoutMs?: number;
  home?: string;
  cacheDir?: string;
  signal?: AbortSignal;
}): Promise<RewardEvent> {
  const { task, sandbox } = await loadRunnableTask(options.taskDir, { sandbox: options.sandbox, host: options.host });
  if (!task.hasSolution) throw new TaskError(`Task ${task.name} has no solution/solve.sh to check it with.`);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'apollo-oracle-'));
  try {
    const workspace = path.join(scratch, 'workspace');
    await prepareTaskWorkspace(task, workspace);
    return await verifyWorkspace({ task, workspace, sandbox, oracle: true, timeoutMs: options.timeoutMs, home: options.home, cacheDir: options.cacheDir, signal: options.signal });
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** A reward event in one line for the CLI and the log. */
export function describeReward(event: RewardEvent): string {
  const names = Object.entries(event.rewards).map(([name, value]) => `${name}=${Number.isInteger(value) ? value : value.toFixed(3)}`);
  const took = `${(event.durationMs / 1000).toFixed(1)} s`;
  return event.error ? `${event.source} of ${event.task}: no reward (${event.error}) after ${took}` : `${event.source} of ${event.task}: ${names.join(' ')} in ${took}`;
}
