/** `apollo verify`: a run's task verifier, again, or a task checked with its solution. */
import path from 'node:path';
import { checkTaskSolvable, describeReward, verifyRun } from '../../core/session/taskRuns';
import type { CliIo } from '../io';
import { UsageError, parseCommand, datasetFrom } from '../options';

/** `apollo verify --run ID` (again, on the run's workspace) or `apollo verify --task-dir DIR --oracle`. */
export async function commandVerify(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { run: { type: 'string' }, dataset: { type: 'string' }, 'task-dir': { type: 'string' }, oracle: { type: 'boolean' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  let reward;
  if (values.oracle) {
    if (!values['task-dir'] || values.run) throw new UsageError('apollo verify --oracle takes --task-dir DIR (the solution runs on a fresh copy of the task), not --run.');
    reward = await checkTaskSolvable({ taskDir: path.resolve(io.cwd, values['task-dir']) });
  } else {
    if (!values.run) throw new UsageError('apollo verify needs --run ID (or --task-dir DIR --oracle to check a task with its solution).');
    if (values['task-dir']) throw new UsageError('apollo verify --run uses the task the run was given; leave out --task-dir.');
    reward = await verifyRun({ datasetDir: datasetFrom(values.dataset, io).root, runId: values.run });
  }
  io.stdout(`${describeReward(reward)}\n`);
  if (reward.error) io.stderr(reward.output ? `${reward.output.trimEnd()}\n` : '');
  return reward.error ? 1 : 0;
}
