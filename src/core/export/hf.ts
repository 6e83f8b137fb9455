/**
 * `hf`: a folder `datasets.load_dataset(path)` loads: `data/train.jsonl` (each run's final line),
 * `data/abandoned.jsonl` (branches left by rewinds, when asked for) and a `README.md` dataset card
 * whose YAML `configs` names them. A row is one context the model saw (a run is cut at each
 * compaction; `wholeTrajectories`: one row per trajectory). Every row has the same columns and
 * every message the same keys, so the JSON loader infers one schema. Tool-call arguments are
 * objects (the HF chat-template convention), `content` always a string, the tool schemas one JSON
 * string. Assistant messages carry `weight` 0|1 and axolotl's per-message `training` flag.
 * An assistant message's `reasoning_content` holds the model's reasoning for that turn (null when
 * it gave none, and on other roles): the key Qwen3's and GLM-4.5's chat templates read and render
 * inside `<think>…</think>` (gpt-oss's template reads `thinking`: rename the column for it).
 */
import { primaryReward } from '../dataset/events';
import type { ExportSummary, FormatWriter, WriterContext } from './types';
import { argumentsObject, type ChatMessage, type SegmentChat, segmentChats, segmentId, validateChat } from './chat';
import { SplitFolder } from './output';
import type { Trajectory } from './trajectory';
import { MASK_POLICY_DESCRIPTIONS } from '../supervision/labels';

export interface HfToolCall {
  id: string;
  type: string;
  function: { name: string; arguments: Record<string, unknown> };
}

export interface HfMessage {
  role: string;
  content: string;
  reasoning_content: string | null;
  tool_calls: HfToolCall[];
  tool_call_id: string | null;
  weight: number | null;
  /** axolotl's per-message training flag (`message_field_training: training`); null off assistant messages. */
  training: boolean | null;
}

/** Tool calls with their arguments as objects, as HF chat templates iterate over them. */
export function hfToolCalls(message: ChatMessage): HfToolCall[] {
  if (message.role !== 'assistant') return [];
  return (message.tool_calls ?? []).map((call) => ({ id: call.id, type: call.type, function: { name: call.function.name, arguments: argumentsObject(call.function.arguments) } }));
}

function hfMessage(message: ChatMessage): HfMessage {
  const weight = message.role === 'assistant' ? (message.weight ?? null) : null;
  return {
    role: message.role,
    content: message.content,
    reasoning_content: message.role === 'assistant' ? (message.reasoning_content ?? null) : null,
    tool_calls: hfToolCalls(message),
    tool_call_id: message.role === 'tool' ? message.tool_call_id : null,
    weight,
    training: weight === null ? null : weight === 1,
  };
}

export function hfRow(trajectory: Trajectory, chat: Pick<SegmentChat, 'segment'>, messages: ChatMessage[], policy: string) {
  const { segment } = chat;
  const entry = (step: Trajectory['steps'][number], carried: boolean) => ({
    step: step.event.step,
    tool: step.event.action?.name ?? null,
    label: step.effective?.label ?? null,
    label_source: step.effective?.sources.join(',') ?? null,
    mask: carried ? 0 : step.mask,
    carried,
  });
  return {
    id: segmentId(trajectory, segment),
    trajectory_id: trajectory.id,
    segment: segment.index,
    run_id: trajectory.runId,
    task_id: trajectory.started.taskId ?? null,
    abandoned: trajectory.abandoned,
    task: trajectory.started.task,
    model: trajectory.started.model,
    status: trajectory.ended?.status ?? null,
    reward: primaryReward(trajectory.rewards) ?? null,
    rewards: trajectory.rewards ? JSON.stringify(trajectory.rewards) : null,
    mask_policy: policy,
    messages: messages.map(hfMessage),
    tools: JSON.stringify(trajectory.started.tools),
    steps: [...segment.carried.map((step) => entry(step, true)), ...segment.steps.map((step) => entry(step, false))],
  };
}

function percent(part: number, whole: number): string {
  return whole ? `${((part / whole) * 100).toFixed(1)}%` : '0%';
}

/** The YAML head of a dataset card: the splits `load_dataset` reads, and the card's tags. */
export function cardHeader(options: { abandonedSplit: boolean }, tag: string): string[] {
  const splits = [{ split: 'train', path: 'data/train.jsonl' }];
  if (options.abandonedSplit) splits.push({ split: 'abandoned', path: 'data/abandoned.jsonl' });
  return [
    '---',
    'configs:',
    '- config_name: default',
    '  data_files:',
    ...splits.flatMap(({ split, path }) => [`  - split: ${split}`, `    path: ${path}`]),
    'task_categories:',
    '- text-generation',
    'tags:',
    '- agent',
    '- tool-use',
    `- ${tag}`,
    '- apollo',
    '---',
  ];
}

export function datasetCard(summary: ExportSummary, options: { abandonedSplit: boolean }): string {
  const yaml = cardHeader(options, 'trajectories');
  const labels = summary.effectiveLabels;
  return [
    ...yaml,
    '',
    '# Coding-agent trajectories recorded with Apollo',
    '',
    summary.wholeTrajectories
      ? 'Each row is one whole trajectory of a coding agent working in a real workspace (for long-context training): the system prompt, the task,'
      : 'Each row is one context a coding agent working in a real workspace saw: runs are cut at each compaction of the context. A row holds the system prompt, the task,',
    ...(summary.wholeTrajectories ? [] : ['the summary that stood for the older steps (after a compaction) and the steps carried over with it (weight 0: they were trained in the row before),']),
    "then per step the annotator's hints (as user messages) where they were delivered, the assistant turn with its tool calls and the",
    'tool results. Every assistant message carries `weight` (1 to train on it, 0 to keep it as context only) and the same as',
    "axolotl's per-message flag `training` (true/false). No step's assistant turn is lost by the cutting: each is the own turn of one row.",
    '',
    '## Training',
    '',
    'axolotl (`chat_template`) applies the per-message flag:',
    '',
    '```yaml',
    'datasets:',
    '  - path: <this folder>',
    '    type: chat_template',
    '    field_messages: messages',
    '    message_property_mappings:',
    '      role: role',
    '      content: content',
    '    roles_to_train: ["assistant"]',
    '    message_field_training: training',
    '```',
    '',
    'Tool calls are `{id, type, function: {name, arguments}}` with `arguments` an object, the key chat templates iterate over; a turn that only calls tools has `content` "" (never null). `reasoning_content` holds the turn\'s reasoning. `weight` is for trainers that read it (it is OpenAI\'s key); `datasets` itself applies no mask.',
    '',
    '## Contents',
    '',
    '| | count |',
    '| --- | ---: |',
    `| runs | ${summary.runs} |`,
    `| trajectories (\`train\`) | ${summary.trajectories - summary.abandonedTrajectories} |`,
    `| abandoned branches (\`abandoned\`) | ${summary.abandonedTrajectories} |`,
    `| steps | ${summary.steps} |`,
    `| left out below minimum quality ${summary.minQuality} | ${summary.belowQuality} |`,
    '',
    '## Labels and masks',
    '',
    `Mask policy \`${summary.policy}\`: ${MASK_POLICY_DESCRIPTIONS[summary.policy]}.`,
    "A step's effective label is its latest human label, else the LLM judge's, else the rules'.",
    '',
    '| effective label | steps | share |',
    '| --- | ---: | ---: |',
    ...(['good', 'bad', 'neutral', 'unlabelled'] as const).map((label) => `| ${label} | ${labels[label]} | ${percent(labels[label], summary.steps)} |`),
    '',
    '| decided by | steps |',
    '| --- | ---: |',
    ...(['human', 'judge', 'rule'] as const).map((tier) => `| ${tier} | ${summary.labelSources[tier]} |`),
    '',
    '| mask | steps | share |',
    '| --- | ---: | ---: |',
    `| trained (weight 1) | ${summary.trainedSteps} | ${percent(summary.trainedSteps, summary.steps)} |`,
    `| masked (weight 0) | ${summary.maskedSteps} | ${percent(summary.maskedSteps, summary.steps)} |`,
    '',
    '## Models',
    '',
    ...(summary.models.length ? summary.models.map((model) => `- \`${model}\``) : ['- (none)']),
    '',
    '## Columns',
    '',
    '- `id`: the row (`<trajectory>` for a context from the start, `<trajectory>#k` for the context opened by its k-th compaction); `trajectory_id`, `segment` (k), `run_id`; `abandoned`: a branch left by a rewind.',
    '- `task_id`: shared by the runs sampled for one task (several rollouts of it); null for a run on its own.',
    '- `task`, `model`, `status`: what the agent was asked, which model acted, how the run ended.',
    "- `messages`: `role`, `content` (always a string), `reasoning_content` (the model's reasoning for an assistant turn, else null), `tool_calls` (`arguments` as objects), `tool_call_id`, `weight` and `training` (assistant messages only, else null).",
    '- `tools`: the tool schemas offered to the model (OpenAI function tools), as one JSON string: `json.loads` it for `apply_chat_template(tools=…)`.',
    '- `steps`: per step of the row its number, tool, effective label, the sources that decided it, its mask in this row and `carried` (context carried over from the row before: mask 0).',
    '',
    `Hints ${summary.hints ? 'appear as user messages where they were delivered' : 'are left out'}.`,
    '',
  ].join('\n');
}

export async function openHfWriter(context: WriterContext): Promise<FormatWriter> {
  const folder = await SplitFolder.open(context.options.out);
  return {
    async writeRun(_tree, trajectories) {
      for (const trajectory of trajectories) {
        for (const chat of segmentChats(trajectory, context.options)) {
          const messages = context.redact(chat.messages);
          const problems = validateChat(messages);
          if (problems.length) {
            context.skip(segmentId(trajectory, chat.segment), problems);
            continue;
          }
          const row = hfRow(trajectory, chat, messages, context.options.policy);
          await folder.sink(trajectory.abandoned).write({ ...row, task: context.redact(row.task), tools: context.redact(row.tools) });
          context.written();
        }
      }
    },
    finish: (summary) => folder.commit({ 'README.md': datasetCard(summary, { abandonedSplit: folder.hasAbandoned }) }),
    discard: () => folder.discard(),
  };
}
