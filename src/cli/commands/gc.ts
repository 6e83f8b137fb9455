/** `apollo gc`: removes what no run needs any more. */
import { collectGarbage, formatGarbageReport, formatWorkingCopyReport, removeEndedWorkingCopies } from '../../core/session/gc';
import type { CliIo } from '../io';
import { parseCommand, datasetFrom } from '../options';

export async function commandGc(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, 'working-copies': { type: 'boolean' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  const root = datasetFrom(values.dataset, io).root;
  if (values['working-copies']) io.stdout(formatWorkingCopyReport(await removeEndedWorkingCopies(root)));
  io.stdout(formatGarbageReport(await collectGarbage(root)));
  return 0;
}
