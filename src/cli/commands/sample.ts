/** `apollo sample`: N runs of one task, or of each task of a suite (`--task-dir`). */
import path from 'node:path';
import { cliApolloHome } from '../datasets';
import type { Disposable } from '../../core/session/runSession';
import { startSampling } from '../../core/session/sample';
import { startTaskSuite, uncleanRuns } from '../../core/session/taskSuite';
import { findTaskDirs, parseShard, shardOf } from '../../core/session/harborTask';
import { describeReward } from '../../core/session/taskRuns';
import type { CliIo } from '../io';
import { UsageError, parseCommand, SESSION_FLAGS, type SessionFlagValues, sessionFlags, suiteDatasetDir, runsDirFrom, datasetForNewRuns, newRunOptions } from '../options';
import { describeStep, describeContextWindow, describeTrouble, CLEAN_ENDS, endLine } from '../output';

export async function commandSample(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    args,
    {
      ...SESSION_FLAGS,
      workspace: { type: 'string' },
      task: { type: 'string' },
      n: { type: 'string' },
      concurrency: { type: 'string' },
      'runs-dir': { type: 'string' },
      'same-seed': { type: 'boolean' },
      'task-dir': { type: 'string', multiple: true },
      shard: { type: 'string' },
      'plain-copies': { type: 'boolean' },
    },
    io,
  );
  if (!parsed) return 0;
  const { values } = parsed;
  if (values['task-dir']?.length) {
    if (values.task !== undefined) throw new UsageError('--task-dir gives the tasks (their instruction.md): leave out --task.');
    return commandSampleTasks(values['task-dir'], values, io);
  }
  if (values.shard !== undefined) throw new UsageError("--shard goes with --task-dir (it deals a suite's tasks out to machines).");
  if (!values.workspace) throw new UsageError('apollo sample needs --workspace DIR.');
  if (values.task === undefined) throw new UsageError('apollo sample needs --task TEXT.');
  const n = Number(values.n);
  if (values.n === undefined || !Number.isInteger(n) || n < 1) throw new UsageError('apollo sample needs --n N, a whole number of runs of at least 1.');
  const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) throw new UsageError('--concurrency takes a whole number of at least 1.');
  const flags = sessionFlags(values, io);
  if (values['same-seed'] && flags.sampling?.seed === undefined) throw new UsageError('--same-seed goes with --seed S.');
  const workspace = path.resolve(io.cwd, values.workspace);
  const runsDir = values['runs-dir'] ? path.resolve(io.cwd, values['runs-dir']) : path.join(cliApolloHome(io.env), 'runs');
  const sampling = await startSampling({
    workspace,
    datasetDir: datasetForNewRuns(values.dataset, workspace, io),
    task: values.task,
    ...newRunOptions(flags),
    sameSeed: values['same-seed'],
    n,
    concurrency,
    runsDir,
    copies: values['plain-copies'] ? 'plain' : 'auto',
    log: (line) => io.stderr(`${line}\n`),
  });
  io.stderr(`task ${sampling.taskId}: ${n} run(s) of a snapshot of ${sampling.workspace} (${sampling.baseSnapshot.slice(0, 12)}), working copies in ${sampling.copiesDir}\n`);
  const subscriptions: Disposable[] = [];
  sampling.onRunStarted((session) => {
    io.stdout(`${session.runId}\n`);
    subscriptions.push(
      session.onEvent((event) => {
        if (event.type === 'step') io.stderr(`${session.runId} ${describeStep(event, flags.verbose)}\n`);
        else if (event.type === 'context_window') io.stderr(`${session.runId} ${describeContextWindow(event)}\n`);
        else describeTrouble(event, session.runId, io, `${session.runId} `);
      }),
    );
  });
  sampling.onRunChanged((run) => {
    if (run.state === 'ended' && run.ended && run.runId) io.stderr(endLine(run.runId, run.ended));
    else if (run.state === 'failed' && !run.cancelled) io.stderr(`${run.error}\n`);
  });
  const release = io.onInterrupt?.(() => void sampling.stop());
  const results = await sampling.done;
  release?.();
  await sampling.unmount().catch((error: Error) => io.stderr(`could not unmount the working copies: ${error.message}\n`));
  for (const subscription of subscriptions) subscription.dispose();
  const clean = results.filter((result) => result.ended && CLEAN_ENDS.has(result.ended.status)).length;
  const cancelled = results.filter((result) => result.cancelled).length;
  io.stderr(`${clean} of ${results.length} run(s) ended cleanly${cancelled ? `, ${cancelled} not started` : ''}; working copies in ${sampling.copiesDir}\n`);
  return clean === results.length ? 0 : 1;
}

/**
 * `apollo sample --task-dir DIR… --n K`: K runs of each task of a suite (DIR is a task, or a folder
 * of tasks), each in its own working copy of the task's environment, verified as it ends.
 */
export async function commandSampleTasks(
  dirs: string[],
  values: SessionFlagValues & { workspace?: string; dataset?: string; n?: string; concurrency?: string; 'runs-dir'?: string; 'same-seed'?: boolean; shard?: string; 'plain-copies'?: boolean },
  io: CliIo,
): Promise<number> {
  const n = Number(values.n);
  if (values.n === undefined || !Number.isInteger(n) || n < 1) throw new UsageError('apollo sample needs --n N, a whole number of runs of each task, at least 1.');
  const concurrency = values.concurrency === undefined ? n : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError('--concurrency takes a whole number of at least 1.');
  const shard = values.shard === undefined ? undefined : parseShard(values.shard);
  const flags = sessionFlags(values, io);
  const taskDirs = shardOf(
    dirs.flatMap((dir) => findTaskDirs(path.resolve(io.cwd, dir))),
    shard,
  );
  if (!taskDirs.length) throw new UsageError(`shard ${values.shard} holds no task: there are fewer tasks than shards.`);
  const datasetDir = suiteDatasetDir(values, dirs, io);
  io.stderr(`${taskDirs.length} task(s)${shard ? ` (shard ${shard.index}/${shard.count})` : ''}, ${n} run(s) each, ${concurrency} at a time; dataset ${datasetDir}\n`);
  const stops: (() => void)[] = [];
  const release = io.onInterrupt?.(() => stops.forEach((stop) => stop()));
  const suite = await startTaskSuite({
    taskDirs,
    n,
    limit: concurrency,
    datasetDir,
    runsDir: runsDirFrom(values['runs-dir'], io),
    workspace: values.workspace && path.resolve(io.cwd, values.workspace),
    run: {
      ...newRunOptions(flags),
      sameSeed: values['same-seed'],
      copies: values['plain-copies'] ? 'plain' : 'auto',
    },
    events: {
      refused: (_dir, reason) => io.stderr(`refused: ${reason}\n`),
      runStarted: (_run, session) => io.stdout(`${session.runId}\n`),
      runFailed: (run, error, cancelled) => (cancelled ? undefined : io.stderr(`${run.task.name}: ${error}\n`)),
      runEnded: (run, ended) => io.stderr(`${run.task.name} ${endLine(run.runId ?? '', ended)}`),
      rewarded: (run, reward) => io.stderr(`${run.runId} ${describeReward(reward)}\n`),
      verifyFailed: (run, error) => io.stderr(`${run.runId}: the verifier could not run: ${error}\n`),
    },
    log: (line) => io.stderr(`${line}\n`),
  });
  stops.push(() => void suite.stop());
  const result = await suite.done;
  release?.();
  const refused = result.refused.length;
  io.stderr(`done: ${taskDirs.length - refused} task(s) sampled${refused ? `, ${refused} refused` : ''}; compare with: apollo stats --dataset ${datasetDir} --by hints\n`);
  return refused || uncleanRuns(result).length ? 1 : 0;
}
