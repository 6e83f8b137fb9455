/**
 * `hf`: a folder `datasets.load_dataset(path)` loads: `data/train.jsonl` (each run's final line),
 * `data/abandoned.jsonl` (branches left by rewinds, when asked for) and a `README.md` dataset card
 * whose YAML `configs` names them. Every row has the same columns and every message the same
 * keys, so the JSON loader infers one schema; tool schemas and arguments stay JSON strings.
 * An assistant message's `reasoning_content` holds the model's reasoning for that turn (null when
 * it gave none, and on other roles): the key Qwen3's and GLM-4.5's chat templates read and render
 * inside `<think>…</think>` (gpt-oss's template reads `thinking`: rename the column for it).
 */
import { promises as fs } from 'node:fs';
import type { ExportSummary, FormatWriter, WriterContext } from './exportDataset';
import { ChatMessage, chatOf, validateChat } from './chat';
import { FolderOutput, JsonlSink } from './output';
import type { Trajectory } from './trajectory';
import { MASK_POLICY_DESCRIPTIONS } from '../supervision/labels';

interface HfMessage {
  role: string;
  content: string | null;
  reasoning_content: string | null;
  tool_calls: { id: string; type: string; function: { name: string; arguments: string } }[];
  tool_call_id: string | null;
  weight: number | null;
}

function hfMessage(message: ChatMessage): HfMessage {
  return {
    role: message.role,
    content: message.content,
    reasoning_content: message.role === 'assistant' ? (message.reasoning_content ?? null) : null,
    tool_calls: message.role === 'assistant' ? (message.tool_calls ?? []) : [],
    tool_call_id: message.role === 'tool' ? message.tool_call_id : null,
    weight: message.role === 'assistant' ? (message.weight ?? null) : null,
  };
}

export function hfRow(trajectory: Trajectory, messages: ChatMessage[], policy: string) {
  return {
    id: trajectory.id,
    run_id: trajectory.runId,
    task_id: trajectory.started.taskId ?? null,
    abandoned: trajectory.abandoned,
    task: trajectory.started.task,
    model: trajectory.started.model,
    status: trajectory.ended?.status ?? null,
    mask_policy: policy,
    messages: messages.map(hfMessage),
    tools: JSON.stringify(trajectory.started.tools),
    steps: trajectory.steps.map((step) => ({
      step: step.event.step,
      tool: step.event.action?.name ?? null,
      label: step.effective?.label ?? null,
      label_source: step.effective?.sources.join(',') ?? null,
      mask: step.mask,
    })),
  };
}

function percent(part: number, whole: number): string {
  return whole ? `${((part / whole) * 100).toFixed(1)}%` : '0%';
}

export function datasetCard(summary: ExportSummary, options: { abandonedSplit: boolean }): string {
  const splits = [{ split: 'train', path: 'data/train.jsonl' }];
  if (options.abandonedSplit) splits.push({ split: 'abandoned', path: 'data/abandoned.jsonl' });
  const yaml = [
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
    '- trajectories',
    '- apollo',
    '---',
  ];
  const labels = summary.effectiveLabels;
  return [
    ...yaml,
    '',
    '# Coding-agent trajectories recorded with Apollo',
    '',
    'Each row is one trajectory of a coding agent working in a real workspace: the system prompt, the task,',
    "then per step the annotator's hints (as user messages), the assistant turn with its tool call and the",
    'tool result. Every assistant message carries `weight`: 1 to train on it, 0 to keep it as context only.',
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
    '- `id`, `run_id`: the trajectory and its run; `abandoned`: a branch left by a rewind.',
    '- `task_id`: shared by the runs sampled for one task (several rollouts of it); null for a run on its own.',
    '- `task`, `model`, `status`: what the agent was asked, which model acted, how the run ended.',
    '- `messages`: `role`, `content`, `reasoning_content` (the model\'s reasoning for an assistant turn, else null), `tool_calls` (arguments as JSON strings), `tool_call_id`, `weight` (assistant messages only).',
    '- `tools`: the tool schemas offered to the model, as a JSON string.',
    '- `steps`: per step its number, tool, effective label, the sources that decided it and its mask.',
    '',
    `Hints ${summary.hints ? 'appear as user messages where they were delivered' : 'are left out'}.`,
    '',
  ].join('\n');
}

export async function openHfWriter(context: WriterContext): Promise<FormatWriter> {
  const output = await FolderOutput.open(context.options.out);
  await fs.mkdir(output.file('data'));
  const train = new JsonlSink(output.file('data', 'train.jsonl'));
  let abandoned: JsonlSink | undefined;
  return {
    async writeRun(_tree, trajectories) {
      for (const trajectory of trajectories) {
        const messages = context.redact(chatOf(trajectory, context.options));
        const problems = validateChat(messages);
        if (problems.length) {
          context.skip(trajectory.id, problems);
          continue;
        }
        const sink = trajectory.abandoned ? (abandoned ??= new JsonlSink(output.file('data', 'abandoned.jsonl'))) : train;
        const row = hfRow(trajectory, messages, context.options.policy);
        await sink.write({ ...row, task: context.redact(row.task), tools: context.redact(row.tools) });
        context.written();
      }
    },
    async finish(summary) {
      await train.close();
      await abandoned?.close();
      await fs.writeFile(output.file('README.md'), datasetCard(summary, { abandonedSplit: abandoned !== undefined }));
      await output.commit();
    },
    async discard() {
      train.destroy();
      abandoned?.destroy();
      await output.discard();
    },
  };
}
