/** `apollo adopt`: a sampled run's changes into the user's workspace. */
import { adoptRefusal, adoptRun, type AdoptPreview, previewAdopt } from '../../core/session/adopt';
import type { CliIo } from '../io';
import { UsageError, parseCommand, datasetFrom } from '../options';

function describeAdopt(preview: AdoptPreview): string {
  const conflicts = new Set(preview.conflicts);
  const upToDate = new Set(preview.upToDate);
  const blocked = new Map(preview.blocked.map((entry) => [entry.path, entry.reason]));
  const lines = [
    `run ${preview.runId}${preview.taskId ? ` (task ${preview.taskId})` : ''}, ${preview.status}: ${preview.files.length} file(s) changed from snapshot ${preview.base.slice(0, 12)} to ${preview.final.slice(0, 12)}, into ${preview.workspace}`,
    ...preview.files.map((file) => {
      const note = conflicts.has(file.path) ? '  [changed in the workspace too]' : upToDate.has(file.path) ? '  [already so]' : blocked.has(file.path) ? `  [blocked: ${blocked.get(file.path)}]` : '';
      return `  ${file.status.padEnd(10)} ${file.path}${note}`;
    }),
  ];
  if (preview.conflicts.length) lines.push(`conflicts (changed in the workspace too): ${preview.conflicts.join(', ')}`);
  if (preview.adoptedAt) lines.push(`adopted before, at ${preview.adoptedAt}`);
  return lines.join('\n') + '\n';
}

export async function commandAdopt(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, run: { type: 'string' }, force: { type: 'boolean' }, 'dry-run': { type: 'boolean' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.run) throw new UsageError('apollo adopt needs --run ID.');
  const store = datasetFrom(values.dataset, io, values.run);
  if (values['dry-run']) {
    const preview = await previewAdopt(store.root, values.run);
    io.stdout(describeAdopt(preview));
    io.stdout('dry run: nothing written\n');
    const refusal = adoptRefusal(preview, { overwrite: values.force });
    if (refusal) {
      io.stderr(`apollo: ${refusal.message.replace(/ Nothing was written\.?/, '')}\n`);
      return 1;
    }
    return 0;
  }
  const result = await adoptRun(store.root, values.run, { overwrite: values.force });
  io.stdout(describeAdopt(result.preview));
  if (result.overwritten.length) io.stderr(`warning: overwrote your changes to ${result.overwritten.join(', ')}\n`);
  io.stdout(
    result.event
      ? `adopted run ${values.run}: ${result.written.length} file(s) written or removed in ${result.preview.workspace}\n`
      : `run ${values.run} was adopted before and ${result.preview.workspace} already holds its changes; nothing written\n`,
  );
  return 0;
}
