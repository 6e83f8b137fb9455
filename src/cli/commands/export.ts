/** `apollo export`: a dataset in a training format. */
import path from 'node:path';
import { EXPORT_FORMATS, type ExportFormat, exportDataset, formatExportSummary } from '../../core/export/exportDataset';
import type { CliIo } from '../io';
import { UsageError, parseCommand, numberFlag, datasetFrom, maskPolicy } from '../options';

export async function commandExport(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    args,
    {
      dataset: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      branches: { type: 'string' },
      policy: { type: 'string' },
      'min-quality': { type: 'string' },
      'min-reward': { type: 'string' },
      run: { type: 'string', multiple: true },
      hints: { type: 'string' },
      'whole-trajectories': { type: 'boolean' },
      'allow-empty': { type: 'boolean' },
    },
    io,
  );
  if (!parsed) return 0;
  const { values } = parsed;
  const format = values.format as ExportFormat;
  if (!EXPORT_FORMATS.includes(format)) throw new UsageError(`apollo export needs --format ${EXPORT_FORMATS.join('|')}.`);
  if (!values.out) throw new UsageError('apollo export needs --out PATH (a file for openai, sharegpt and pairs; a new folder for hf, trl, llamafactory and atif).');
  if (values.branches !== undefined && values.branches !== 'main' && values.branches !== 'all') throw new UsageError('--branches takes main or all.');
  if (values.hints !== undefined && values.hints !== 'user' && values.hints !== 'omit') throw new UsageError('--hints takes user or omit.');
  const minQuality = values['min-quality'] === undefined ? undefined : Number(values['min-quality']);
  if (minQuality !== undefined && !(minQuality >= 0 && minQuality <= 1)) throw new UsageError('--min-quality takes a share between 0 and 1, e.g. 0.8.');
  const minReward = numberFlag(values['min-reward'], '--min-reward', 'a number, e.g. 1 for solved tasks');
  const store = datasetFrom(values.dataset, io);
  let lastReport = 0;
  const summary = await exportDataset(store, {
    format,
    out: path.resolve(io.cwd, values.out),
    branches: values.branches,
    policy: maskPolicy(values.policy),
    minQuality,
    minReward,
    runs: values.run,
    hints: values.hints !== 'omit',
    wholeTrajectories: values['whole-trajectories'] ?? false,
    allowEmpty: values['allow-empty'] ?? false,
    onProgress: ({ runsDone, runsTotal, records }) => {
      if (Date.now() - lastReport < 1000 && runsDone < runsTotal) return;
      lastReport = Date.now();
      io.stderr(`exported ${runsDone}/${runsTotal} run(s), ${records} record(s)\n`);
    },
  });
  io.stdout(formatExportSummary(summary));
  return summary.skipped.length ? 1 : 0;
}
