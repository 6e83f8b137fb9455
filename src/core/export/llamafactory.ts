/**
 * `llamafactory`: a folder LLaMA-Factory trains on with exactly the unmasked assistant turns
 * supervised: `dataset_info.json` (the dataset's entry), `data/train.jsonl` (and
 * `data/abandoned.jsonl` for branches left by rewinds, when asked for) and a `README.md` with the
 * options to train with.
 *
 * One row per trained turn, in LLaMA-Factory's sharegpt format, whose conversation ENDS with that
 * turn: trained with `mask_history: true`, LLaMA-Factory supervises only the last turn of a row
 * (data/processor/supervised.py: the pairs are reversed, and every pair but the first, i.e. the
 * last turn, gets IGNORE_INDEX labels). The conversation is the context the model saw (after a
 * compaction: the task, the summary and the steps kept with it, then the steps since).
 *
 * Its converter (data/converter.py, SharegptDatasetConverter) keeps only each turn's role and
 * content and drops a row whose turns do not alternate human/observation (odd places) and
 * gpt/function_call (even places), or whose count is odd; so:
 * - the task and, after a compaction, the summary are one human turn;
 * - hints are user messages: they join the turn before them when that is on the same side (a
 *   hint after a tool result joins that observation turn, after a blank line), else open a
 *   human turn;
 * - a turn's tool calls are one `function_call` turn whose content is JSON `{"name", "arguments"}`
 *   (a list of them for several calls, LLaMA-Factory's form for parallel calls), arguments an
 *   object, and their results one `observation` turn (joined by blank lines). Its FunctionFormatter
 *   parses that content as JSON, so the visible text of a tool-calling turn has no place in it and
 *   is left out; so is the model's reasoning. A call whose arguments are not a JSON object (cut by
 *   the output limit) is left out with its result; a turn none of whose calls is left is its text
 *   (`gpt`), followed by what the model was told (`human`);
 * - a turn with no call is `gpt`, and the nudge that followed it `human`.
 * `tools` is a JSON string of function definitions (name, description, parameters), as its tool
 * formatters read it.
 */
import type { ExportSummary, FormatWriter, WriterContext } from './types';
import { hintMessage, NO_TOOL_CALL_NUDGE } from '../agent/prompt';
import { primaryReward, stepToolResults } from '../dataset/events';
import { argumentsObject } from './chat';
import { SplitFolder } from './output';
import { type ShareGptTurn, toolDefinitions, validateShareGpt } from './sharegpt';
import { segmentsOf, type Trajectory, type TrajectoryStep } from './trajectory';
import { MASK_POLICY_DESCRIPTIONS } from '../supervision/labels';

export const LLAMAFACTORY_DATASET = 'apollo';

export interface LlamaFactoryRow {
  id: string;
  conversations: { from: ShareGptTurn['from']; value: string }[];
  system: string;
  tools: string;
  /** The trajectory's verifier reward, else null; LLaMA-Factory reads only the columns dataset_info.json maps. */
  reward: number | null;
}

const ODD = new Set(['human', 'observation']);

function parsesAsObject(raw: string): boolean {
  try {
    const parsed: unknown = JSON.parse(raw);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed);
  } catch {
    return false;
  }
}

/** The rows of a trajectory: one per unmasked step, the conversation ending with its turn. */
export function llamaFactoryRows(trajectory: Trajectory, options: WriterContext['options']): LlamaFactoryRow[] {
  const rows: LlamaFactoryRow[] = [];
  const tools = JSON.stringify(toolDefinitions(trajectory.started.tools));
  for (const segment of segmentsOf(trajectory, { whole: options.wholeTrajectories })) {
    const turns: LlamaFactoryRow['conversations'] = [{ from: 'human', value: trajectory.started.task }];
    /** A user message joins the human/observation turn before it, else opens a human turn. */
    const say = (text: string) => {
      const last = turns[turns.length - 1];
      if (ODD.has(last.from)) last.value = `${last.value}\n\n${text}`;
      else turns.push({ from: 'human', value: text });
    };
    if (segment.summary) say(segment.summary.text);
    const ends: { step: TrajectoryStep; index: number }[] = [];
    const add = (step: TrajectoryStep, own: boolean) => {
      if (options.hints) for (const hint of step.hints) say(hintMessage(hint.kind, hint.text));
      const { event } = step;
      const calls = event.assistant.toolCalls.filter((call) => parsesAsObject(call.arguments));
      if (own) ends.push({ step, index: turns.length });
      if (calls.length) {
        const json = calls.map((call) => ({ name: call.name, arguments: argumentsObject(call.arguments) }));
        turns.push({ from: 'function_call', value: JSON.stringify(json.length === 1 ? json[0] : json) });
        const results = new Map(stepToolResults(event).map((result) => [result.id, result.content]));
        turns.push({ from: 'observation', value: calls.map((call) => results.get(call.id) ?? '').join('\n\n') });
      } else {
        turns.push({ from: 'gpt', value: event.assistant.content ?? '' });
        const told = event.assistant.toolCalls.length ? stepToolResults(event).map((result) => result.content) : [NO_TOOL_CALL_NUDGE];
        say(told.join('\n\n'));
      }
    };
    for (const step of segment.carried) add(step, false);
    for (const step of segment.steps) add(step, true);
    const base = segment.index ? `${trajectory.id}#${segment.index}` : trajectory.id;
    for (const { step, index } of ends) {
      if (!step.mask) continue;
      rows.push({
        id: `${base} step ${step.event.step}`,
        conversations: turns.slice(0, index + 1).map((turn) => ({ ...turn })),
        system: trajectory.started.systemPrompt,
        tools,
        reward: primaryReward(trajectory.rewards) ?? null,
      });
    }
  }
  return rows;
}

export function datasetInfo(options: { abandonedSplit: boolean }): Record<string, unknown> {
  const entry = (file: string) => ({
    file_name: file,
    formatting: 'sharegpt',
    columns: { messages: 'conversations', system: 'system', tools: 'tools' },
    tags: { role_tag: 'from', content_tag: 'value', user_tag: 'human', assistant_tag: 'gpt', observation_tag: 'observation', function_tag: 'function_call' },
  });
  return {
    [LLAMAFACTORY_DATASET]: entry('data/train.jsonl'),
    ...(options.abandonedSplit ? { [`${LLAMAFACTORY_DATASET}_abandoned`]: entry('data/abandoned.jsonl') } : {}),
  };
}

export function llamaFactoryReadme(summary: ExportSummary): string {
  return [
    '# Coding-agent turns recorded with Apollo, for LLaMA-Factory',
    '',
    `One row per trained assistant turn (${summary.trainedSteps} of ${summary.steps} steps; mask policy \`${summary.policy}\`: ${MASK_POLICY_DESCRIPTIONS[summary.policy]}),`,
    "in LLaMA-Factory's sharegpt format; each row's conversation is the context the model saw and ends with that turn.",
    'Train with `mask_history: true` so that only the last turn of each row is supervised: masked turns are never last,',
    'they only appear as context in later rows.',
    '',
    '`dataset_info.json` (in this folder) registers the data as `apollo`:',
    '',
    '```json',
    JSON.stringify(datasetInfo({ abandonedSplit: false }), null, 2),
    '```',
    '',
    'Training options (YAML):',
    '',
    '```yaml',
    'dataset: apollo',
    'dataset_dir: <this folder>',
    'template: qwen3            # the template of the model you train',
    'mask_history: true         # supervise the last turn of each row only',
    'train_on_prompt: false     # (mask_history refuses train_on_prompt)',
    'cutoff_len: 32768          # at least the longest row in tokens',
    '```',
    '',
    'With `mask_history` LLaMA-Factory keeps the last turns first when a row is longer than `cutoff_len`:',
    'the trained turn stays, but the start of its context (system prompt, task) is cut. Set `cutoff_len` above',
    'your longest row.',
    '',
    'Turns: the task (and, after a compaction, the summary) is one `human` turn; a hint joins the `human` or',
    '`observation` turn before it after a blank line (LLaMA-Factory drops rows whose turns do not alternate),',
    'else opens a `human` turn; tool calls are one `function_call` turn, JSON `{"name", "arguments"}` (a list for',
    'several calls, `arguments` an object) and their results one `observation` turn. The visible text of a',
    "tool-calling turn and the model's reasoning have no place in the format and are left out. `tools` is a JSON",
    'string of function definitions.',
    '',
  ].join('\n');
}

export async function openLlamaFactoryWriter(context: WriterContext): Promise<FormatWriter> {
  const folder = await SplitFolder.open(context.options.out);
  return {
    async writeRun(_tree, trajectories) {
      for (const trajectory of trajectories) {
        for (const row of llamaFactoryRows(trajectory, context.options)) {
          const redacted = context.redact(row);
          const problems = validateShareGpt(redacted);
          if (problems.length) {
            context.skip(row.id, problems);
            continue;
          }
          await folder.sink(trajectory.abandoned).write(redacted);
          context.written();
        }
      }
    },
    finish: (summary) =>
      folder.commit({
        'dataset_info.json': JSON.stringify(datasetInfo({ abandonedSplit: folder.hasAbandoned }), null, 2) + '\n',
        'README.md': llamaFactoryReadme(summary),
      }),
    discard: () => folder.discard(),
  };
}
