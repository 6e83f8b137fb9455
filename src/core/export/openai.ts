/**
 * `openai`: chat fine-tuning JSONL, one trajectory a line, `weight` 0|1 on every assistant message.
 * Lines hold only messages and tools, the keys the fine-tuning format documents: a key beyond them
 * risks a refused upload, so the task id of sampled runs travels in the other formats (hf, atif,
 * sharegpt, pairs). The fine-tuning format has no field for a turn's reasoning, so it is left out:
 * the assistant messages hold the visible content and the tool calls only.
 */
import type { FormatWriter, WriterContext } from './exportDataset';
import { ChatMessage, chatOf, validateChat } from './chat';
import { openJsonlWriter } from './jsonlWriter';

/** The conversation without what the fine-tuning schema has no place for (a turn's reasoning). */
export function openAiMessages(messages: ChatMessage[]): ChatMessage[] {
  return messages.map((message) => {
    if (message.role !== 'assistant' || message.reasoning_content === undefined) return message;
    const { reasoning_content: _reasoning, ...rest } = message;
    return rest;
  });
}

export function openOpenAiWriter(context: WriterContext): Promise<FormatWriter> {
  return openJsonlWriter(
    context,
    (_tree, trajectories) => trajectories.map((trajectory) => ({ id: trajectory.id, record: { messages: openAiMessages(chatOf(trajectory, context.options)), tools: trajectory.started.tools } })),
    (line) => validateChat(line.messages),
  );
}
