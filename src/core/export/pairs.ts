/**
 * `pairs`: preference pairs from rewinds. The prompt is the context the two actions share (up to
 * the step before the rewound one); `rejected` is the abandoned step, `chosen` the first step taken
 * on the new branch. The annotator's correcting hint is not in the prompt: the pair teaches the
 * model to take the better action without being told.
 */
import type { FormatWriter, WriterContext } from './exportDataset';
import { ChatMessage, continuation, promptMessages, validateChat } from './chat';
import { FileOutput, JsonlSink } from './output';
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

export async function openPairsWriter(context: WriterContext): Promise<FormatWriter> {
  const output = await FileOutput.open(context.options.out);
  const sink = new JsonlSink(output.partial);
  return {
    async writeRun(tree) {
      for (const pair of pairsOf(tree, context.options)) {
        const record = context.redact(pair);
        const problems = [
          ...validateChat(record.prompt),
          ...validateChat(record.chosen, { completion: true }).map((problem) => `chosen: ${problem}`),
          ...validateChat(record.rejected, { completion: true }).map((problem) => `rejected: ${problem}`),
        ];
        if (problems.length) {
          context.skip(`${record.metadata.run_id} step ${record.metadata.rejected_step}`, problems);
          continue;
        }
        await sink.write(record);
        context.written();
      }
    },
    async finish() {
      await sink.close();
      await output.commit();
    },
    async discard() {
      sink.destroy();
      await output.discard();
    },
  };
}
