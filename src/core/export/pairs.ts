/**
 * `pairs`: preference pairs at the point where two trajectories part. The prompt is the context
 * they share there, as the model saw it (after a compaction: system, task, the summary and the
 * steps kept with it, then the steps since); `chosen` and `rejected` are the first assistant turn
 * on which they differ, one message each, never a tool result. Pairs whose two sides are the same
 * turn (same text, reasoning and calls) are left out. Two kinds:
 *
 * - `rewind`: from a rewind, the annotator's correction. `rejected` is the abandoned step,
 *   `chosen` the first step taken on the new branch. The annotator's correcting hint is not in
 *   the prompt: the pair teaches the model to take the better action without being told.
 * - `across_runs`: from the runs sampled for one task (`apollo sample`), every two of them. They
 *   part at the first step where their turns, results or hints differ; the sides are the two
 *   turns there, the better chosen: by those turns' effective labels (good over unlabelled or
 *   neutral over bad), then by the runs' outcome (`runScore`). The prompt is the chosen run's (each
 *   run's system prompt names its own working copy).
 *
 * Every pair's metadata has the same keys, whatever its kind (null where one does not apply), so
 * a JSON loader infers one schema.
 */
import type { FormatWriter, WriterContext } from './types';
import { type ChatMessage, continuation, segmentChat, validateChat } from './chat';
import { type ExportRecord, openJsonlWriter } from './jsonlWriter';
import { pathTo, type RunTree, segmentsOf, summariesOnPath, type Trajectory, trajectoriesOf, trajectoryStep, type TrajectoryStep } from './trajectory';
import { primaryReward, stepToolResults } from '../dataset/events';

export interface PairMetadata {
  kind: 'rewind' | 'across_runs';
  /** The task id the runs were sampled under; null for a run on its own. */
  task_id: string | null;
  /** The rewound run (rewind pairs); null across runs. */
  run_id: string | null;
  chosen_run: string;
  rejected_run: string;
  /** The runs' scores (across runs, null for a run that is not ranked); null for rewind pairs. */
  chosen_score: number | null;
  rejected_score: number | null;
  /** The runs' verifier rewards (tasks of a suite), null when not verified; null for rewind pairs. */
  chosen_reward: number | null;
  rejected_reward: number | null;
  /** The new branch (rewind pairs). */
  branch: string | null;
  /** The two steps the sides are (the abandoned step and the one that replaced it, for a rewind). */
  rejected_step: number | null;
  chosen_step: number | null;
  /**
   * What ranked the sides: `rewind` (the annotator's), `reward` (the runs' verifier rewards),
   * `labels` (the two turns'), `outcome` (the runs' ends and labels).
   */
  decided_by: 'rewind' | 'reward' | 'labels' | 'outcome';
  /** The annotator's correcting hint (rewind pairs). */
  correction: string | null;
}

export interface PreferencePair {
  prompt: ChatMessage[];
  chosen: ChatMessage[];
  rejected: ChatMessage[];
  tools: unknown[];
  metadata: PairMetadata;
}

/** A turn without its call ids, to tell whether two sides are the same. */
function turnKey(message: ChatMessage): string {
  if (message.role !== 'assistant') return JSON.stringify(message);
  return JSON.stringify([message.content, message.reasoning_content ?? '', (message.tool_calls ?? []).map((call) => [call.function.name, call.function.arguments])]);
}

export function sameSides(pair: Pick<PreferencePair, 'chosen' | 'rejected'>): boolean {
  return pair.chosen.length === pair.rejected.length && pair.chosen.every((message, index) => turnKey(message) === turnKey(pair.rejected[index]));
}

function callIdsOf(messages: readonly ChatMessage[]): Set<string> {
  const ids = new Set<string>();
  for (const message of messages) if (message.role === 'assistant') for (const call of message.tool_calls ?? []) ids.add(call.id);
  return ids;
}

/**
 * The context a step's request was sent in, on the trajectory `steps` (ending with that step) with
 * the compactions `summaries`, and that step's assistant turn. `withHints` false leaves the hints
 * delivered with the step itself out of the prompt.
 */
function contextOf(started: RunTree['started'], steps: TrajectoryStep[], summaries: Trajectory['summaries'], options: WriterContext['options'], withHints = true) {
  const last = steps[steps.length - 1];
  const trimmed = withHints ? steps : [...steps.slice(0, -1), { ...last, hints: [] }];
  const segment = segmentsOf({ steps: trimmed, summaries }).find((candidate) => candidate.steps.some((entry) => entry.event.step === last.event.step))!;
  const chat = segmentChat({ started }, segment, options, false);
  const index = chat.turns[chat.turns.length - 1].index;
  const prompt = chat.messages.slice(0, index);
  return { prompt, turn: chat.messages[index], usedIds: callIdsOf(prompt) };
}

/** Every pair a run's rewinds give: the abandoned step against the step that replaced it. */
export function pairsOf(tree: RunTree, options: WriterContext['options']): PreferencePair[] {
  const pairs: PreferencePair[] = [];
  const runId = tree.started.runId;
  for (const rewind of tree.rewinds) {
    const rejected = tree.steps.get(rewind.toStep);
    const chosen = [...tree.steps.values()].find((step) => step.branch === rewind.branch && step.parentStep === rewind.parentStep);
    if (!rejected || !chosen) continue;
    const path = [...pathTo(tree.steps, rewind.parentStep), chosen.step];
    const steps = path.map((step) => trajectoryStep(tree, step, options.policy));
    const correction = (tree.hintsByStep.get(chosen.step) ?? []).map((hint) => hint.text).join('\n');
    const context = contextOf(tree.started, steps, summariesOnPath(tree, path), options, false);
    const pair: PreferencePair = {
      prompt: context.prompt,
      chosen: [context.turn],
      rejected: [continuation(rejected, context.usedIds)],
      tools: tree.started.tools,
      metadata: {
        kind: 'rewind',
        task_id: tree.started.taskId ?? null,
        run_id: runId,
        chosen_run: runId,
        rejected_run: runId,
        chosen_score: null,
        rejected_score: null,
        chosen_reward: null,
        rejected_reward: null,
        branch: rewind.branch,
        rejected_step: rejected.step,
        chosen_step: chosen.step,
        decided_by: 'rewind',
        correction: correction || null,
      },
    };
    if (!sameSides(pair)) pairs.push(pair);
  }
  return pairs;
}

/** What a finished run adds to its score: any finished run outranks any run that did not finish. */
const FINISHED_BONUS = 3;

/**
 * How good a run is, to rank the runs of one task against each other (higher is better): 3 when
 * it finished (a run that stopped, failed or ran out of steps or budget gets 0), plus the share of
 * good minus the share of bad steps on its main line by their effective labels (−1 to 1;
 * unlabelled and neutral steps count as neither), rounded to four decimals. Undefined for a run
 * with no end on its main line (still going, or rewound and not resumed) or no step on it: such a
 * run is not ranked by outcome.
 */
export function runScore(trajectory: Trajectory): number | undefined {
  const steps = trajectory.steps.length;
  if (!trajectory.ended || !steps) return undefined;
  const count = (label: string) => trajectory.steps.filter((step) => step.effective?.label === label).length;
  const labels = (count('good') - count('bad')) / steps;
  return Math.round(((trajectory.ended.status === 'finished' ? FINISHED_BONUS : 0) + labels) * 10_000) / 10_000;
}

/** A step as the model saw it and answered it, ids aside: what two runs must share to share a context. */
function stepKey(step: TrajectoryStep, options: WriterContext['options']): string {
  const { assistant } = step.event;
  return JSON.stringify([
    options.hints ? step.hints.map((hint) => [hint.kind, hint.text]) : [],
    assistant.content ?? '',
    assistant.reasoning ?? '',
    assistant.toolCalls.map((call) => [call.name, call.arguments]),
    stepToolResults(step.event).map((result) => result.content),
  ]);
}

function hintsKey(step: TrajectoryStep, options: WriterContext['options']): string {
  return JSON.stringify(options.hints ? step.hints.map((hint) => [hint.kind, hint.text]) : []);
}

/** The summaries of a trajectory up to (and at) step index `upTo`, for comparing two contexts. */
function summariesKey(trajectory: Trajectory, upTo: number): string {
  const steps = new Set(trajectory.steps.slice(0, upTo + 1).map((step) => step.event.step));
  return JSON.stringify((trajectory.summaries ?? []).filter((summary) => steps.has(summary.step)).map((summary) => summary.text));
}

/** The index on both trajectories of the first step where they part; undefined when one is a prefix of the other. */
export function partingIndex(a: Trajectory, b: Trajectory, options: WriterContext['options']): number | undefined {
  const length = Math.min(a.steps.length, b.steps.length);
  for (let index = 0; index < length; index++) {
    if (stepKey(a.steps[index], options) !== stepKey(b.steps[index], options)) return index;
  }
  return undefined;
}

const LABEL_RANK: Record<string, number> = { good: 2, neutral: 1, unlabelled: 1, bad: 0 };

interface RankedRun {
  runId: string;
  score: number | undefined;
  /** The verifier's reward of the run's final workspace (a task of a suite). */
  reward?: number;
}

/**
 * The pairs across the runs of one task: every two runs, at the step where they part, the better
 * turn chosen: by the runs' verifier rewards when both were verified and they differ (the task's
 * own verdict on the outcome), else by the two turns' labels, then by the runs' scores; none
 * decides: no pair.
 * `trajectories` holds each run's main line. Two runs whose task texts differ (the same task id
 * given to different tasks) are not paired: they are listed in `mismatched`.
 */
export function pairsAcrossRuns(
  taskId: string,
  ranked: readonly RankedRun[],
  trajectories: ReadonlyMap<string, Trajectory>,
  options: WriterContext['options'],
): { pairs: ExportRecord<PreferencePair>[]; mismatched: string[] } {
  const order = [...ranked].sort((a, b) => (b.reward ?? -Infinity) - (a.reward ?? -Infinity) || (b.score ?? -Infinity) - (a.score ?? -Infinity) || (a.runId < b.runId ? -1 : 1));
  const pairs: ExportRecord<PreferencePair>[] = [];
  const mismatched: string[] = [];
  for (let i = 0; i < order.length; i++) {
    for (let j = i + 1; j < order.length; j++) {
      const [first, second] = [order[i], order[j]];
      const a = trajectories.get(first.runId);
      const b = trajectories.get(second.runId);
      if (!a || !b) continue;
      if (a.started.task !== b.started.task) {
        mismatched.push(`task ${taskId}: run ${first.runId} over ${second.runId}`);
        continue;
      }
      const index = partingIndex(a, b, options);
      if (index === undefined) continue;
      // The context must be the same up to the turns: same hints delivered with them, same compactions.
      if (hintsKey(a.steps[index], options) !== hintsKey(b.steps[index], options) || summariesKey(a, index) !== summariesKey(b, index)) continue;
      const rankOf = (trajectory: Trajectory) => LABEL_RANK[trajectory.steps[index].effective?.label ?? 'unlabelled'];
      let decidedBy: PairMetadata['decided_by'];
      let better: RankedRun;
      let worse: RankedRun;
      if (first.reward !== undefined && second.reward !== undefined && first.reward !== second.reward) {
        decidedBy = 'reward';
        [better, worse] = first.reward > second.reward ? [first, second] : [second, first];
      } else if (rankOf(a) !== rankOf(b)) {
        decidedBy = 'labels';
        [better, worse] = rankOf(a) > rankOf(b) ? [first, second] : [second, first];
      } else if (first.score !== undefined && second.score !== undefined && first.score !== second.score) {
        decidedBy = 'outcome';
        [better, worse] = first.score > second.score ? [first, second] : [second, first];
      } else continue;
      const chosen = trajectories.get(better.runId)!;
      const rejected = trajectories.get(worse.runId)!;
      const context = contextOf(chosen.started, chosen.steps.slice(0, index + 1), chosen.summaries, options);
      const record: PreferencePair = {
        prompt: context.prompt,
        chosen: [context.turn],
        rejected: [continuation(rejected.steps[index].event, context.usedIds)],
        tools: chosen.started.tools,
        metadata: {
          kind: 'across_runs',
          task_id: taskId,
          run_id: null,
          chosen_run: better.runId,
          rejected_run: worse.runId,
          chosen_score: better.score ?? null,
          rejected_score: worse.score ?? null,
          chosen_reward: better.reward ?? null,
          rejected_reward: worse.reward ?? null,
          branch: null,
          rejected_step: rejected.steps[index].event.step,
          chosen_step: chosen.steps[index].event.step,
          decided_by: decidedBy,
          correction: null,
        },
      };
      if (!sameSides(record)) pairs.push({ id: `task ${taskId}: run ${better.runId} over ${worse.runId}`, record });
    }
  }
  return { pairs, mismatched };
}

export async function openPairsWriter(context: WriterContext): Promise<FormatWriter> {
  const writer = await openJsonlWriter<PreferencePair>(
    context,
    (tree) => pairsOf(tree, context.options).map((pair) => ({ id: `${pair.metadata.run_id} step ${pair.metadata.rejected_step}`, record: pair })),
    (pair) => [
      ...validateChat(pair.prompt),
      ...validateChat(pair.chosen, { completion: true }).map((problem) => `chosen: ${problem}`),
      ...validateChat(pair.rejected, { completion: true }).map((problem) => `rejected: ${problem}`),
      ...[...pair.chosen, ...pair.rejected].filter((message) => message.role !== 'assistant').map((message) => `a side holds a ${message.role} message; a side is assistant turns only`),
    ],
  );
  /** The runs of each sampled task with their scores; the runs are read again at the end. */
  const tasks = new Map<string, RankedRun[]>();
  const mainLine = (tree: RunTree) => trajectoriesOf(tree, { branches: 'main', policy: context.options.policy })[0];
  return {
    async writeRun(tree, trajectories) {
      await writer.writeRun(tree, trajectories);
      const taskId = tree.started.taskId;
      if (taskId) {
        const line = mainLine(tree);
        const reward = primaryReward(line.rewards);
        tasks.set(taskId, [...(tasks.get(taskId) ?? []), { runId: tree.started.runId, score: runScore(line), ...(reward !== undefined ? { reward } : {}) }]);
      }
    },
    async flush() {
      for (const taskId of [...tasks.keys()].sort()) {
        const ranked = tasks.get(taskId)!;
        if (ranked.length < 2) continue;
        const trajectories = new Map<string, Trajectory>();
        for (const run of ranked) {
          const tree = await context.readRun(run.runId);
          if (tree) trajectories.set(run.runId, mainLine(tree));
        }
        const { pairs, mismatched } = pairsAcrossRuns(taskId, ranked, trajectories, context.options);
        for (const id of mismatched) context.skip(id, ['the two runs share a task id but not their task']);
        await writer.write(pairs);
      }
      tasks.clear();
    },
    finish: (summary) => writer.finish(summary),
    discard: () => writer.discard(),
  };
}
