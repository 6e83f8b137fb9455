/** `apollo merge`: datasets merged into one. */
import path from 'node:path';
import { formatMergeReport, mergeDatasets } from '../../core/dataset/merge';
import type { CliIo } from '../io';
import { UsageError, parseCommand } from '../options';

export async function commandMerge(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { into: { type: 'string' } }, io, true);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (!values.into) throw new UsageError('apollo merge needs --into DIR, the dataset folder to merge into.');
  if (!positionals.length) throw new UsageError('apollo merge needs the dataset folders to merge: apollo merge A B --into C.');
  const into = path.resolve(io.cwd, values.into);
  const report = await mergeDatasets(
    positionals.map((source) => path.resolve(io.cwd, source)),
    into,
  );
  io.stdout(formatMergeReport(report, into));
  return report.conflicts.length ? 1 : 0;
}
