/**
 * `trl`: a Hugging Face dataset folder of conversational prompt-completion rows, one per trained
 * (unmasked) assistant turn:
 *
 *   {"prompt": [the messages before that turn, in the context it was sent in],
 *    "completion": [that one assistant message],
 *    "tools": [the function tools offered, as JSON schema objects]}
 *
 * TRL's SFTTrainer applies the chat template to prompt + completion and, with its default
 * options (`completion_only_loss` unset means true for prompt-completion data), puts the loss on
 * the completion's tokens only: exactly the unmasked turn. Masked turns are never a completion;
 * they stay in later prompts as context. The context is the one the model saw: after a
 * compaction, system, task, the summary and the steps carried over with it (see `segmentsOf`);
 * `wholeTrajectories` keeps every earlier step in the prompt instead.
 *
 * Every message has the same keys (`role`, `content`, `reasoning_content`, `tool_calls`,
 * `tool_call_id`), so Arrow infers one type: `content` is a string ("" when the turn only calls
 * tools), tool-call `arguments` are objects, `reasoning_content` null where there is none.
 */
import { primaryReward } from '../dataset/events';
import type { ExportSummary, FormatWriter, WriterContext } from './types';
import { type ChatMessage, functionTools, segmentChats, segmentId, validateChat } from './chat';
import { cardHeader, hfToolCalls, type HfToolCall } from './hf';
import { SplitFolder } from './output';
import type { Trajectory } from './trajectory';
import { MASK_POLICY_DESCRIPTIONS } from '../supervision/labels';

export interface TrlMessage {
  role: string;
  content: string;
  reasoning_content: string | null;
  tool_calls: HfToolCall[];
  tool_call_id: string | null;
}

export interface TrlRow {
  prompt: TrlMessage[];
  completion: TrlMessage[];
  tools: unknown[];
  /** The trajectory's verifier reward (a task of a suite), else null: a column SFTTrainer leaves alone. */
  reward: number | null;
}

export function trlMessage(message: ChatMessage): TrlMessage {
  return {
    role: message.role,
    content: message.content,
    reasoning_content: message.role === 'assistant' ? (message.reasoning_content ?? null) : null,
    tool_calls: hfToolCalls(message),
    tool_call_id: message.role === 'tool' ? message.tool_call_id : null,
  };
}

/** The rows of a trajectory: one per unmasked assistant turn, with the context it was sent in. */
export function trlRows(trajectory: Trajectory, options: WriterContext['options']): { id: string; messages: ChatMessage[]; row: TrlRow }[] {
  const tools = functionTools(trajectory.started.tools);
  const rows: { id: string; messages: ChatMessage[]; row: TrlRow }[] = [];
  for (const chat of segmentChats(trajectory, options, false)) {
    for (const { step, index } of chat.turns) {
      if (!step.mask) continue;
      const messages = chat.messages.slice(0, index + 1);
      rows.push({
        id: `${segmentId(trajectory, chat.segment)} step ${step.event.step}`,
        messages,
        row: { prompt: messages.slice(0, index).map(trlMessage), completion: [trlMessage(messages[index])], tools, reward: primaryReward(trajectory.rewards) ?? null },
      });
    }
  }
  return rows;
}

export function trlCard(summary: ExportSummary, options: { abandonedSplit: boolean }): string {
  return [
    ...cardHeader(options, 'trl'),
    '',
    '# Coding-agent turns recorded with Apollo, for TRL',
    '',
    'Conversational prompt-completion rows, one per trained assistant turn of a coding agent:',
    '`prompt` is every message the model had been sent before that turn, in the context it was sent in',
    "(after a compaction of the agent's context: system, task, the summary that stood for the older steps,",
    'the steps kept with it, then the steps since; hints as user messages where they were delivered),',
    '`completion` is that one assistant message, `tools` the function tools offered (JSON schema objects).',
    '',
    '## Why the loss falls on exactly the trained turns',
    '',
    '`SFTTrainer` with its defaults trains prompt-completion data with `completion_only_loss` (unset means',
    'true for this kind of data): the prompt tokens get no loss, the completion tokens do. A turn the mask',
    'excludes is never a completion, only context in later prompts, so it is never learnt.',
    '',
    '```python',
    'from datasets import load_dataset',
    'from trl import SFTTrainer',
    '',
    'trainer = SFTTrainer(model="Qwen/Qwen3-0.6B", train_dataset=load_dataset("<this folder>", split="train"))',
    '```',
    '',
    `Mask policy \`${summary.policy}\`: ${MASK_POLICY_DESCRIPTIONS[summary.policy]}. ${summary.trainedSteps} of ${summary.steps} steps are trained (one row each).`,
    '',
    '## Messages',
    '',
    'Every message has `role`, `content` (always a string: "" when the turn only calls tools), `reasoning_content`',
    "(the turn's reasoning, else null), `tool_calls` (`{id, type, function: {name, arguments}}`, `arguments` an object)",
    'and `tool_call_id` (tool messages, else null). Arrow gives argument objects of different tools one struct type',
    'whose missing keys read back as null: drop None values before rendering if your chat template prints them.',
    '',
  ].join('\n');
}

export async function openTrlWriter(context: WriterContext): Promise<FormatWriter> {
  const folder = await SplitFolder.open(context.options.out);
  return {
    async writeRun(_tree, trajectories) {
      for (const trajectory of trajectories) {
        for (const { id, messages, row } of trlRows(trajectory, context.options)) {
          const problems = validateChat(context.redact(messages), { completion: true });
          if (problems.length) {
            context.skip(id, problems);
            continue;
          }
          await folder.sink(trajectory.abandoned).write(context.redact(row));
          context.written();
        }
      }
    },
    finish: (summary) => folder.commit({ 'README.md': trlCard(summary, { abandonedSplit: folder.hasAbandoned }) }),
    discard: () => folder.discard(),
  };
}
