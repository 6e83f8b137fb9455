/** `openai`: chat fine-tuning JSONL, one trajectory a line, `weight` 0|1 on every assistant message. */
import type { FormatWriter, WriterContext } from './exportDataset';
import { chatOf, validateChat } from './chat';
import { FileOutput, JsonlSink } from './output';

export async function openOpenAiWriter(context: WriterContext): Promise<FormatWriter> {
  const output = await FileOutput.open(context.options.out);
  const sink = new JsonlSink(output.partial);
  return {
    async writeRun(_tree, trajectories) {
      for (const trajectory of trajectories) {
        const line = context.redact({ messages: chatOf(trajectory, context.options), tools: trajectory.started.tools });
        const problems = validateChat(line.messages);
        if (problems.length) {
          context.skip(trajectory.id, problems);
          continue;
        }
        await sink.write(line);
        context.written();
      }
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
