/**
 * `pairs`: preference pairs, of two kinds.
 *
 * - `rewind`: from a rewind. The prompt is the context the two actions share (up to the step
 *   before the rewound one); `rejected` is the abandoned step, `chosen` the first step taken on
 *   the new branch. The annotator's correcting hint is not in the prompt: the pair teaches the
 *   model to take the better action without being told.
 * - `across_runs`: from the runs sampled for one task (`apollo sample`). The prompt is the start
 *   they share (system prompt and task; the chosen run's, as each run's system prompt names its
 *   own working copy); `chosen` and `rejected` are the whole continuations of the better and the
 *   worse run (assistant turns, tool results and, unless left out, hints), ranked by `runScore`.
 *
 * Every pair's metadata has the same keys, whatever its kind (null where one does not apply), so
 * a JSON loader infers one schema.
 */
import type { FormatWriter, WriterContext } from './exportDataset';
import { ChatMessage, continuation, promptMessages, validateChat } from './chat';
import { ExportRecord, openJsonlWriter } from './jsonlWriter';
import { pathTo, RunTree, Trajectory, trajectoriesOf, trajectoryStep } from './trajectory';

export interface PairMetadata {
  kind: 'rewind' | 'across_runs';
  /** The task id the runs were sampled under; null for a run on its own. */
  task_id: string | null;
  /** The rewound run (rewind pairs); null across runs. */
  run_id: string | null;
  chosen_run: string;
  rejected_run: string;
  /** The runs' scores (across runs); null for rewind pairs. */
  chosen_score: number | null;
  rejected_score: number | null;
  /** The new branch, the abandoned step and the one that replaced it (rewind pairs). */
  branch: string | null;
  rejected_step: number | null;
  chosen_step: number | null;
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

/** Every pair a run's rewinds give: the abandoned step against the step that replaced it. */
export function pairsOf(tree: RunTree, options: WriterContext['options']): PreferencePair[] {
  const pairs: PreferencePair[] = [];
  const runId = tree.started.runId;
  for (const rewind of tree.rewinds) {
    const rejected = tree.steps.get(rewind.toStep);
    const chosen = [...tree.steps.values()].find((step) => step.branch === rewind.branch && step.parentStep === rewind.parentStep);
    if (!rejected || !chosen) continue;
    const shared = pathTo(tree.steps, rewind.parentStep).map((step) => trajectoryStep(tree, step, options.policy));
    const correction = (tree.hintsByStep.get(chosen.step) ?? []).map((hint) => hint.text).join('\n');
    const prompt = promptMessages(tree, shared, options, false);
    pairs.push({
      prompt: prompt.messages,
      chosen: [continuation(chosen, prompt.usedIds)],
      rejected: [continuation(rejected, prompt.usedIds)],
      tools: tree.started.tools,
      metadata: {
        kind: 'rewind',
        task_id: tree.started.taskId ?? null,
        run_id: runId,
        chosen_run: runId,
        rejected_run: runId,
        chosen_score: null,
        rejected_score: null,
        branch: rewind.branch,
        rejected_step: rejected.step,
        chosen_step: chosen.step,
        correction: correction || null,
      },
    });
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
 * run is not ranked.
 */
export function runScore(trajectory: Trajectory): number | undefined {
  const steps = trajectory.steps.length;
  if (!trajectory.ended || !steps) return undefined;
  const count = (label: string) => trajectory.steps.filter((step) => step.effective?.label === label).length;
  const labels = (count('good') - count('bad')) / steps;
  return Math.round(((trajectory.ended.status === 'finished' ? FINISHED_BONUS : 0) + labels) * 10_000) / 10_000;
}

interface RankedRun {
  runId: string;
  score: number;
}

/**
 * The pairs across the runs of one task: every two runs whose scores differ, the better one
 * chosen. `trajectories` holds each run's main line. Two runs whose task texts differ (the same
 * task id given to different tasks) are not paired: they are listed in `mismatched`.
 */
export function pairsAcrossRuns(
  taskId: string,
  ranked: readonly RankedRun[],
  trajectories: ReadonlyMap<string, Trajectory>,
  options: WriterContext['options'],
): { pairs: ExportRecord<PreferencePair>[]; mismatched: string[] } {
  const order = [...ranked].sort((a, b) => b.score - a.score || (a.runId < b.runId ? -1 : 1));
  const continuations = new Map<string, ChatMessage[]>();
  const continuationOf = (trajectory: Trajectory) => {
    let messages = continuations.get(trajectory.runId);
    if (!messages) continuations.set(trajectory.runId, (messages = promptMessages(trajectory, trajectory.steps, options, false).messages.slice(2)));
    return messages;
  };
  const pairs: ExportRecord<PreferencePair>[] = [];
  const mismatched: string[] = [];
  for (let i = 0; i < order.length; i++) {
    for (let j = i + 1; j < order.length; j++) {
      const [better, worse] = [order[i], order[j]];
      if (better.score === worse.score) continue;
      const chosen = trajectories.get(better.runId);
      const rejected = trajectories.get(worse.runId);
      if (!chosen || !rejected) continue;
      const id = `task ${taskId}: run ${better.runId} over ${worse.runId}`;
      if (chosen.started.task !== rejected.started.task) {
        mismatched.push(id);
        continue;
      }
      pairs.push({
        id,
        record: {
          prompt: promptMessages(chosen, [], options, false).messages,
          chosen: continuationOf(chosen),
          rejected: continuationOf(rejected),
          tools: chosen.started.tools,
          metadata: {
            kind: 'across_runs',
            task_id: taskId,
            run_id: null,
            chosen_run: better.runId,
            rejected_run: worse.runId,
            chosen_score: better.score,
            rejected_score: worse.score,
            branch: null,
            rejected_step: null,
            chosen_step: null,
            correction: null,
          },
        },
      });
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
    ],
  );
  /** The ranked runs of each sampled task; only scores are kept, the runs are read again at the end. */
  const tasks = new Map<string, RankedRun[]>();
  const mainLine = (tree: RunTree) => trajectoriesOf(tree, { branches: 'main', policy: context.options.policy })[0];
  return {
    async writeRun(tree, trajectories) {
      await writer.writeRun(tree, trajectories);
      const taskId = tree.started.taskId;
      const score = taskId ? runScore(mainLine(tree)) : undefined;
      if (taskId && score !== undefined) tasks.set(taskId, [...(tasks.get(taskId) ?? []), { runId: tree.started.runId, score }]);
    },
    async finish(summary) {
      for (const taskId of [...tasks.keys()].sort()) {
        const ranked = tasks.get(taskId)!;
        if (new Set(ranked.map((run) => run.score)).size < 2) continue;
        const trajectories = new Map<string, Trajectory>();
        for (const run of ranked) {
          const tree = await context.readRun(run.runId);
          if (tree) trajectories.set(run.runId, mainLine(tree));
        }
        const { pairs, mismatched } = pairsAcrossRuns(taskId, ranked, trajectories, context.options);
        for (const id of mismatched) context.skip(id, ['the two runs share a task id but not their task']);
        await writer.write(pairs);
      }
      await writer.finish(summary);
    },
    discard: () => writer.discard(),
  };
}
