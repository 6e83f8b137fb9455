/**
 * `openai`: chat fine-tuning JSONL, one context the model saw a line: a run is cut at each
 * compaction (see `segmentsOf`), the line holding system, task, the summary that stood for the
 * older steps, the steps carried over with it (weight 0: trained in the line before) and the
 * segment's own steps, `weight` 0|1 on every assistant message. `wholeTrajectories` gives one
 * line per trajectory instead. Lines hold only messages and tools, the keys the fine-tuning
 * format documents: a key beyond them risks a refused upload, so the task id of sampled runs
 * travels in the other formats (hf, atif, sharegpt, pairs). Tool-call `arguments` are JSON
 * strings, as the API sends them. The fine-tuning format has no field for a turn's reasoning, so
 * it is left out: the assistant messages hold the visible content ("" when the turn only called
 * tools) and the tool calls only.
 */
import type { FormatWriter, WriterContext } from './types';
import { type ChatMessage, segmentChats, segmentId, validateChat } from './chat';
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
    (_tree, trajectories) =>
      trajectories.flatMap((trajectory) =>
        segmentChats(trajectory, context.options).map((chat) => ({ id: segmentId(trajectory, chat.segment), record: { messages: openAiMessages(chat.messages), tools: trajectory.started.tools } })),
      ),
    (line) => validateChat(line.messages),
  );
}
