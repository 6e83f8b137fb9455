/** The writer of the one-file formats: each record redacted, validated, then written or left out with why. */
import type { FormatWriter, WriterContext } from './types';
import { FileOutput, JsonlSink } from './output';
import type { RunTree, Trajectory } from './trajectory';

export interface ExportRecord<T> {
  /** Names the record in the export report when it is left out. */
  id: string;
  record: T;
}

export interface JsonlWriter<T> extends FormatWriter {
  /** Writes records that belong to no one run (e.g. pairs across the runs of a task). */
  write(records: Iterable<ExportRecord<T>>): Promise<void>;
}

export async function openJsonlWriter<T>(
  context: WriterContext,
  records: (tree: RunTree, trajectories: Trajectory[]) => Iterable<ExportRecord<T>>,
  validate: (record: T) => string[],
): Promise<JsonlWriter<T>> {
  const output = await FileOutput.open(context.options.out);
  const sink = new JsonlSink(output.partial);
  const write = async (list: Iterable<ExportRecord<T>>) => {
    for (const { id, record } of list) {
      const redacted = context.redact(record);
      const problems = validate(redacted);
      if (problems.length) {
        context.skip(id, problems);
        continue;
      }
      await sink.write(redacted);
      context.written();
    }
  };
  return {
    write,
    async writeRun(tree, trajectories) {
      await write(records(tree, trajectories));
    },
    async finish() {
      await sink.close();
      await output.commit();
    },
    async discard() {
      sink.destroy();
      await output.discard();
    },
  };
}
