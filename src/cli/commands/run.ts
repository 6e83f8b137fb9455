/** `apollo run`: one run, new or resumed, or of a task folder (`--task-dir`). */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { RunEndedEvent, SamplingOptions } from '../../core/dataset/events';
import { DatasetStore } from '../../core/dataset/store';
import { resolveDataset } from '../datasets';
import { RunSession } from '../../core/session/runSession';
import { describeReward, loadRunnableTask, taskPrompt, taskSandbox, taskSourceOf, taskWorkspace, verifyRun } from '../../core/session/taskRuns';
import type { CliIo } from '../io';
import { UsageError, parseCommand, SESSION_FLAGS, sessionFlags, type SessionFlags, suiteDatasetDir, runsDirFrom, datasetForNewRuns, newRunOptions } from '../options';
import { describeStep, describeContextWindow, describeTrouble, CLEAN_ENDS, endLine } from '../output';

/** The sampling a run recorded when it started; flags given to --resume replace its values one by one. */
async function recordedSampling(datasetDir: string, runId: string): Promise<SamplingOptions | undefined> {
  const { events } = await new DatasetStore(datasetDir).readEvents(runId);
  const started = events.find((event) => event.type === 'run_started');
  return started?.type === 'run_started' ? started.sampling : undefined;
}

export async function commandRun(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    args,
    { ...SESSION_FLAGS, workspace: { type: 'string' }, task: { type: 'string' }, resume: { type: 'string' }, 'task-dir': { type: 'string' }, 'runs-dir': { type: 'string' } },
    io,
  );
  if (!parsed) return 0;
  const { values } = parsed;
  const flags = sessionFlags(values, io);
  if (values['task-dir'] !== undefined) {
    if (values.task !== undefined || values.resume !== undefined) throw new UsageError('--task-dir gives the task (its instruction.md): leave out --task and --resume.');
    return commandRunTask(values['task-dir'], values, flags, io);
  }
  if (values['runs-dir'] !== undefined) throw new UsageError('--runs-dir goes with --task-dir (apollo run) or apollo sample.');
  const { maxSteps, budget, contextBudget, grounding, judgeFor, sandbox, secretsToModel } = flags;
  const log = (line: string) => io.stderr(`${line}\n`);
  let session: RunSession;
  if (values.resume !== undefined) {
    if (values.task !== undefined) throw new UsageError('--resume continues a run with its own task; leave out --task.');
    const datasetDir = resolveDataset({ dataset: values.dataset, runId: values.resume, workspace: values.workspace, cwd: io.cwd, env: io.env });
    const recorded = values.judge ? await new DatasetStore(datasetDir).readManifest(values.resume) : undefined;
    session = await RunSession.resume({
      datasetDir,
      runId: values.resume,
      apiKey: flags.apiKey,
      baseUrl: values['base-url'] ?? undefined,
      model: values.model ?? undefined,
      maxSteps,
      budget,
      contextBudget,
      grounding,
      judge: recorded && judgeFor({ baseUrl: values['base-url'] ?? recorded.baseUrl, model: values.model ?? recorded.model }),
      sandbox,
      secretsToModel,
      sampling: flags.sampling && { ...(await recordedSampling(datasetDir, values.resume)), ...flags.sampling },
      reasoningInContext: flags.reasoningInContext,
      log,
    });
  } else {
    if (!values.workspace) throw new UsageError('apollo run needs --workspace DIR.');
    if (values.task === undefined) throw new UsageError('apollo run needs --task TEXT.');
    const workspace = path.resolve(io.cwd, values.workspace);
    session = await RunSession.start({
      workspace,
      datasetDir: datasetForNewRuns(values.dataset, workspace, io),
      task: values.task,
      ...newRunOptions(flags),
      log,
    });
  }
  return followRun(session, flags, io);
}

/** Prints a run's id, then its steps as they come, and returns the exit status its end gives. */
async function followRun(session: RunSession, flags: { verbose: boolean }, io: CliIo, afterEnd?: (ended: RunEndedEvent) => Promise<void>): Promise<number> {
  io.stdout(`${session.runId}\n`);
  const subscription = session.onEvent((event) => {
    if (event.type === 'step') io.stdout(`${describeStep(event, flags.verbose)}\n`);
    else if (event.type === 'context_window') io.stdout(`${describeContextWindow(event)}\n`);
    else if (event.type === 'hint_delivered') io.stdout(`hint ${event.hintId} delivered at step ${event.step}\n`);
    else if (event.type === 'hint_queued') io.stdout(`hint ${event.hintId} queued (${event.kind}): ${event.text.replace(/\s+/g, ' ').slice(0, 80)}\n`);
    else if (event.type === 'summary') io.stdout(`context summarized before step ${event.step} (${event.tokensBefore} -> ${event.tokensAfter} tokens)\n`);
    else describeTrouble(event, session.runId, io);
  });
  const release = io.onInterrupt?.(() => void session.stop());
  const ended = await session.done;
  release?.();
  subscription.dispose();
  const line = endLine(session.runId, ended);
  const clean = CLEAN_ENDS.has(ended.status);
  if (clean) io.stdout(line);
  else io.stderr(line);
  await afterEnd?.(ended);
  return clean ? 0 : 1;
}

/** `apollo run --task-dir DIR`: one run of a task in Harbor's layout, then its verifier. */
export async function commandRunTask(taskDir: string, values: { workspace?: string; dataset?: string; 'runs-dir'?: string }, flags: SessionFlags, io: CliIo): Promise<number> {
  const { task, sandbox: sandboxInfo } = await loadRunnableTask(path.resolve(io.cwd, taskDir));
  const { workspace, fresh, files } = await taskWorkspace(task, runsDirFrom(values['runs-dir'], io), values.workspace && path.resolve(io.cwd, values.workspace));
  if (fresh) io.stderr(`task ${task.name}: a fresh working copy with the environment's ${files} file(s) in ${workspace}\n`);
  const session = await RunSession.start({
    workspace,
    datasetDir: suiteDatasetDir(values, [taskDir], io),
    task: taskPrompt(task),
    taskSource: taskSourceOf(task),
    ...newRunOptions(flags),
    budget: flags.budget ?? (task.agent.timeoutSec ? { maxMinutes: task.agent.timeoutSec / 60 } : undefined),
    sandbox: taskSandbox(task, flags.sandbox),
    log: (line) => io.stderr(`${line}\n`),
  }).catch(async (error: Error) => {
    // Nothing was recorded: the fresh working copy goes too.
    if (fresh) await rm(workspace, { recursive: true, force: true });
    throw error;
  });
  return followRun(session, flags, io, async (ended) => {
    if (ended.status === 'stopped') {
      io.stderr(`not verified: the run was stopped (verify it later with apollo verify --run ${session.runId})\n`);
      return;
    }
    io.stderr(`verifying ${task.name} (tests/test.sh, timeout ${task.verifier.timeoutSec} s)…\n`);
    const reward = await verifyRun({ datasetDir: session.store.root, runId: session.runId, sandbox: sandboxInfo });
    io.stdout(`${describeReward(reward)}\n`);
  });
}
