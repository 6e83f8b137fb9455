/**
 * `openai`: chat fine-tuning JSONL, one trajectory a line, `weight` 0|1 on every assistant message.
 * Lines hold only messages and tools, the keys the fine-tuning format documents: a key beyond them
 * risks a refused upload, so the task id of sampled runs travels in the other formats (hf, atif,
 * sharegpt, pairs).
 */
import type { FormatWriter, WriterContext } from './exportDataset';
import { chatOf, validateChat } from './chat';
import { openJsonlWriter } from './jsonlWriter';

export function openOpenAiWriter(context: WriterContext): Promise<FormatWriter> {
  return openJsonlWriter(
    context,
    (_tree, trajectories) => trajectories.map((trajectory) => ({ id: trajectory.id, record: { messages: chatOf(trajectory, context.options), tools: trajectory.started.tools } })),
    (line) => validateChat(line.messages),
  );
}
