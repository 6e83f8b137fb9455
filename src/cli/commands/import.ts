/** `apollo import`: ATIF trajectories become runs. */
import path from 'node:path';
import { formatImportReport, importAtif } from '../../core/session/importAtif';
import type { CliIo } from '../io';
import { UsageError, parseCommand, datasetFrom } from '../options';

/** `apollo import --format atif SRC… [--dataset DIR]`: ATIF trajectories (files or folders) become runs. */
export async function commandImport(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, format: { type: 'string' } }, io, true);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (values.format !== 'atif') throw new UsageError('apollo import needs --format atif (the format Harbor writes its trajectories in).');
  if (!positionals.length) throw new UsageError('apollo import needs the ATIF files or folders to bring in.');
  const report = await importAtif(
    datasetFrom(values.dataset, io),
    positionals.map((source) => path.resolve(io.cwd, source)),
  );
  io.stdout(formatImportReport(report));
  return report.failed.length ? 1 : 0;
}
