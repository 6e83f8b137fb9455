/** `apollo relabel`: the quality rules run again over recorded runs. */
import { relabelRuns } from '../../core/supervision/relabel';
import type { CliIo } from '../io';
import { parseCommand, datasetFrom } from '../options';

export async function commandRelabel(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, run: { type: 'string', multiple: true } }, io);
  if (!parsed) return 0;
  const results = await relabelRuns(datasetFrom(parsed.values.dataset, io), { runs: parsed.values.run });
  for (const result of results) {
    if (result.skipped) io.stdout(`${result.runId}: skipped, ${result.skipped}\n`);
    else io.stdout(`${result.runId}: ${result.flagged} new rule label(s), ${result.cleared} taken back\n`);
  }
  return 0;
}
