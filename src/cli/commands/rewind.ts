/** `apollo rewind`: a run's workspace back to before a step, on a new branch. */
import { rewindRun } from '../../core/session/rewind';
import type { CliIo } from '../io';
import { UsageError, parseCommand, datasetFrom } from '../options';

export async function commandRewind(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, run: { type: 'string' }, 'to-step': { type: 'string' }, force: { type: 'boolean' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.run) throw new UsageError('apollo rewind needs --run ID.');
  const toStep = Number(values['to-step']);
  if (!Number.isInteger(toStep) || toStep < 1) throw new UsageError('apollo rewind needs --to-step N, a step number of at least 1.');
  const store = datasetFrom(values.dataset, io, values.run);
  const { event, overwritten } = await rewindRun({ datasetDir: store.root, runId: values.run, toStep, force: values.force });
  if (overwritten.length) io.stderr(`warning: overwrote changes made since the last step (kept in the dataset): ${overwritten.join(', ')}\n`);
  const files = event.files.map((file) => `  ${file.status.padEnd(9)} ${file.path}`).join('\n');
  io.stdout(`rewound run ${values.run} to before step ${toStep}: ${event.files.length} file(s) restored${files ? `\n${files}` : ''}\n`);
  io.stdout(`new branch ${event.branch}; continue with: apollo run --resume ${values.run}\n`);
  return 0;
}
