/**
 * `pairs`: preference pairs from rewinds. The prompt is the context the two actions share (up to
 * the step before the rewound one); `rejected` is the abandoned step, `chosen` the first step taken
 * on the new branch. The annotator's correcting hint is not in the prompt: the pair teaches the
 * model to take the better action without being told.
 */
import type { FormatWriter, WriterContext } from './exportDataset';
import { ChatMessage, continuation, promptMessages, validateChat } from './chat';
import { openJsonlWriter } from './jsonlWriter';
import { pathTo, RunTree, trajectoryStep } from './trajectory';

export interface PreferencePair {
  prompt: ChatMessage[];
  chosen: ChatMessage[];
  rejected: ChatMessage[];
  tools: unknown[];
  metadata: { run_id: string; branch: string; rejected_step: number; chosen_step: number; correction: string | null };
}

/** Every pair a run's rewinds give: the abandoned step against the step that replaced it. */
export function pairsOf(tree: RunTree, options: WriterContext['options']): PreferencePair[] {
  const pairs: PreferencePair[] = [];
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
      metadata: { run_id: tree.started.runId, branch: rewind.branch, rejected_step: rejected.step, chosen_step: chosen.step, correction: correction || null },
    });
  }
  return pairs;
}

export function openPairsWriter(context: WriterContext): Promise<FormatWriter> {
  return openJsonlWriter(
    context,
    (tree) => pairsOf(tree, context.options).map((pair) => ({ id: `${pair.metadata.run_id} step ${pair.metadata.rejected_step}`, record: pair })),
    (pair) => [
      ...validateChat(pair.prompt),
      ...validateChat(pair.chosen, { completion: true }).map((problem) => `chosen: ${problem}`),
      ...validateChat(pair.rejected, { completion: true }).map((problem) => `rejected: ${problem}`),
    ],
  );
}
