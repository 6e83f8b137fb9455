/** `apollo hint`: a hint for a run another process is executing. */
import type { HintKind } from '../../core/dataset/events';
import { HINT_KINDS } from '../../core/dataset/events';
import { newHintId } from '../../core/dataset/ids';
import { DatasetError } from '../../core/dataset/store';
import type { CliIo } from '../io';
import { UsageError, parseCommand, datasetFrom } from '../options';

const now = () => new Date().toISOString();

export async function commandHint(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, run: { type: 'string' }, kind: { type: 'string' }, now: { type: 'boolean' } }, io, true);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (!values.run) throw new UsageError('apollo hint needs --run ID.');
  const text = positionals.join(' ');
  if (text.trim() === '') throw new UsageError('apollo hint needs the hint text: apollo hint --run ID "what the agent should know".');
  const kind = (values.kind ?? 'knowledge') as HintKind;
  if (!HINT_KINDS.includes(kind)) throw new UsageError(`--kind takes ${HINT_KINDS.join(', ')}.`);
  const store = datasetFrom(values.dataset, io, values.run);
  const manifest = await store.readManifest(values.run);
  if (manifest.status !== 'running' && manifest.status !== 'paused') {
    throw new DatasetError(`Run ${values.run} has ended (${manifest.status}); a hint can no longer reach it.`);
  }
  const hintId = newHintId();
  await store.queueHintFile(values.run, { hintId, text, kind, source: 'cli', time: now(), urgency: values.now ? 'now' : 'next' });
  io.stdout(`${hintId}\n`);
  return 0;
}
