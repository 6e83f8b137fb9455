/** `apollo stats`: what a dataset holds. */
import { compareByHints, datasetStats, formatHintComparison, formatStats } from '../../core/session/stats';
import type { CliIo } from '../io';
import { UsageError, parseCommand, numberFlag, datasetFrom, maskPolicy } from '../options';

export async function commandStats(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, json: { type: 'boolean' }, policy: { type: 'string' }, by: { type: 'string' }, 'success-threshold': { type: 'string' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  if (values.by !== undefined && values.by !== 'hints') throw new UsageError('--by takes hints (runs that received hints against runs that did not).');
  const threshold = numberFlag(values['success-threshold'], '--success-threshold', 'a reward, e.g. 1 or 0.5');
  if (threshold !== undefined && values.by !== 'hints') throw new UsageError('--success-threshold goes with --by hints.');
  const store = datasetFrom(values.dataset, io);
  const stats = await datasetStats(store, maskPolicy(values.policy));
  if (values.by === 'hints') {
    const comparison = compareByHints(stats.perRun, threshold);
    io.stdout(values.json ? `${JSON.stringify(comparison, null, 2)}\n` : formatHintComparison(comparison));
    return 0;
  }
  io.stdout(values.json ? `${JSON.stringify(stats, null, 2)}\n` : formatStats(stats));
  return 0;
}
