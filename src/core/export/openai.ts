/**
 * `openai`: chat fine-tuning JSONL, one trajectory a line, `weight` 0|1 on every assistant message.
 * A sampled run's line also carries `task_id` (the published schema allows properties besides
 * messages and tools); other lines hold only messages and tools.
 */
import type { FormatWriter, WriterContext } from './exportDataset';
import { chatOf, validateChat } from './chat';
import { openJsonlWriter } from './jsonlWriter';

export function openOpenAiWriter(context: WriterContext): Promise<FormatWriter> {
  return openJsonlWriter(
    context,
    (_tree, trajectories) => trajectories.map((trajectory) => ({ id: trajectory.id, record: { messages: chatOf(trajectory, context.options), tools: trajectory.started.tools, ...(trajectory.started.taskId ? { task_id: trajectory.started.taskId } : {}) } })),
    (line) => validateChat(line.messages),
  );
}
