/** `apollo validate`: checks a dataset. */
import { formatValidationReport, validateDataset } from '../../core/dataset/validate';
import type { CliIo } from '../io';
import { parseCommand, datasetFrom } from '../options';

export async function commandValidate(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' } }, io);
  if (!parsed) return 0;
  const report = await validateDataset(datasetFrom(parsed.values.dataset, io));
  io.stdout(formatValidationReport(report));
  return report.errors ? 1 : 0;
}
