/** `apollo stats`: what a dataset holds, read from the events (the single source of truth). */
import path from 'node:path';
import { DatasetStore, folderBytes } from '../dataset/store';
import { SHADOW_FOLDER } from '../grounding/shadowStore';
import { DEFAULT_MASK_POLICY, LabelBook, MaskPolicy, maskOf } from '../supervision/labels';

type EffectiveCounts = Record<'good' | 'bad' | 'neutral' | 'unlabelled', number>;
type SourceCounts = Record<'human' | 'judge' | 'rule', number>;

export interface RunStats {
  id: string;
  status: string;
  /** The task id of a sampled run. */
  taskId?: string;
  /** A sampled run whose changes were applied to the workspace it was sampled from. */
  adopted?: boolean;
  steps: number;
  promptTokens: number;
  completionTokens: number;
  modelMs: number;
  toolMs: number;
  groundingMs: number;
  wallMs: number;
  hints: number;
  summaries: number;
  retries: number;
  /** Human labels and rewinds: what the annotator did besides hints. */
  annotatorActions: number;
  /** Every step recorded, abandoned branches included, by its effective label. */
  effectiveLabels: EffectiveCounts;
  /** Which kind of source decided each labelled step. */
  labelSources: SourceCounts;
  maskedSteps: number;
  judgeRequests: number;
  judgeFailures: number;
  judgePromptTokens: number;
  judgeCompletionTokens: number;
}

export interface DatasetStats {
  runs: number;
  /** Sampled runs (runs with a task id), and how many task ids they share. */
  sampledRuns: number;
  tasks: number;
  adoptedRuns: number;
  steps: number;
  promptTokens: number;
  completionTokens: number;
  hints: number;
  hintsPerAgentHour: number;
  annotatorActions: number;
  /** Hints, human labels and rewinds per agent-hour. */
  annotatorActionsPerAgentHour: number;
  agentHours: number;
  effectiveLabels: EffectiveCounts;
  labelSources: SourceCounts;
  maskPolicy: MaskPolicy;
  maskedSteps: number;
  /** Share of steps kept as context only under the mask policy (0–1). */
  maskedShare: number;
  judge: { requests: number; failures: number; promptTokens: number; completionTokens: number };
  storeBytes: number;
  /** Of storeBytes, the shadow git stores that hold the snapshots. */
  snapshotBytes: number;
  problems: string[];
  perRun: RunStats[];
}

export async function datasetStats(store: DatasetStore, policy: MaskPolicy = DEFAULT_MASK_POLICY): Promise<DatasetStats> {
  const perRun: RunStats[] = [];
  const problems: string[] = [];
  for (const manifest of await store.listRuns()) {
    const { events, problems: runProblems } = await store.readEvents(manifest.id);
    problems.push(...runProblems);
    const run: RunStats = {
      id: manifest.id,
      status: manifest.status,
      steps: 0,
      promptTokens: 0,
      completionTokens: 0,
      modelMs: 0,
      toolMs: 0,
      groundingMs: 0,
      wallMs: 0,
      hints: 0,
      summaries: 0,
      retries: 0,
      annotatorActions: 0,
      effectiveLabels: { good: 0, bad: 0, neutral: 0, unlabelled: 0 },
      labelSources: { human: 0, judge: 0, rule: 0 },
      maskedSteps: 0,
      judgeRequests: 0,
      judgeFailures: 0,
      judgePromptTokens: 0,
      judgeCompletionTokens: 0,
    };
    const book = new LabelBook();
    const stepNumbers: number[] = [];
    for (const event of events) {
      if (event.type === 'run_started' && event.taskId) run.taskId = event.taskId;
      else if (event.type === 'run_adopted') run.adopted = true;
      else if (event.type === 'step') {
        stepNumbers.push(event.step);
        run.steps = Math.max(run.steps, event.step);
        run.promptTokens += event.usage?.promptTokens ?? 0;
        run.completionTokens += event.usage?.completionTokens ?? 0;
        run.modelMs += event.modelMs;
        run.toolMs += event.toolMs;
        run.groundingMs += event.groundingMs ?? 0;
      } else if (event.type === 'summary') {
        run.summaries++;
        run.promptTokens += event.usage?.promptTokens ?? 0;
        run.completionTokens += event.usage?.completionTokens ?? 0;
      } else if (event.type === 'hint_queued') run.hints++;
      else if (event.type === 'model_retry') run.retries++;
      else if (event.type === 'rewind') run.annotatorActions++;
      else if (event.type === 'label') {
        book.add(event);
        if (event.source === 'human') run.annotatorActions++;
      } else if (event.type === 'judge_usage') {
        run.judgeRequests++;
        if (event.error) run.judgeFailures++;
        run.judgePromptTokens += event.usage?.promptTokens ?? 0;
        run.judgeCompletionTokens += event.usage?.completionTokens ?? 0;
      }
    }
    for (const step of stepNumbers) {
      const effective = book.effective(step);
      run.effectiveLabels[effective?.label ?? 'unlabelled']++;
      if (effective) run.labelSources[effective.tier]++;
      if (!maskOf(effective, policy)) run.maskedSteps++;
    }
    if (events.length > 1) run.wallMs = Date.parse(events[events.length - 1].time) - Date.parse(events[0].time);
    perRun.push(run);
  }
  const sum = (pick: (run: RunStats) => number) => perRun.reduce((total, run) => total + pick(run), 0);
  const agentHours = sum((run) => run.wallMs) / 3_600_000;
  const perHour = (count: number) => (agentHours > 0 ? Math.round((count / agentHours) * 100) / 100 : 0);
  const hints = sum((run) => run.hints);
  const annotatorActions = hints + sum((run) => run.annotatorActions);
  const recordedSteps = sum((run) => Object.values(run.effectiveLabels).reduce((a, b) => a + b, 0));
  const maskedSteps = sum((run) => run.maskedSteps);
  const total = <K extends string>(pick: (run: RunStats) => Record<K, number>, keys: K[]) =>
    Object.fromEntries(keys.map((key) => [key, sum((run) => pick(run)[key])])) as Record<K, number>;
  const sampled = perRun.filter((run) => run.taskId !== undefined);
  return {
    runs: perRun.length,
    sampledRuns: sampled.length,
    tasks: new Set(sampled.map((run) => run.taskId)).size,
    adoptedRuns: perRun.filter((run) => run.adopted).length,
    steps: sum((run) => run.steps),
    promptTokens: sum((run) => run.promptTokens),
    completionTokens: sum((run) => run.completionTokens),
    hints,
    hintsPerAgentHour: perHour(hints),
    annotatorActions,
    annotatorActionsPerAgentHour: perHour(annotatorActions),
    agentHours: Math.round(agentHours * 1000) / 1000,
    effectiveLabels: total((run) => run.effectiveLabels, ['good', 'bad', 'neutral', 'unlabelled']),
    labelSources: total((run) => run.labelSources, ['human', 'judge', 'rule']),
    maskPolicy: policy,
    maskedSteps,
    maskedShare: recordedSteps ? Math.round((maskedSteps / recordedSteps) * 1000) / 1000 : 0,
    judge: {
      requests: sum((run) => run.judgeRequests),
      failures: sum((run) => run.judgeFailures),
      promptTokens: sum((run) => run.judgePromptTokens),
      completionTokens: sum((run) => run.judgeCompletionTokens),
    },
    storeBytes: await folderBytes(store.root),
    snapshotBytes: await folderBytes(path.join(store.root, SHADOW_FOLDER)),
    problems,
    perRun,
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function formatStats(stats: DatasetStats): string {
  const lines = [
    `runs: ${stats.runs}   steps: ${stats.steps}   hints: ${stats.hints} (${stats.hintsPerAgentHour} per agent-hour)`,
    ...(stats.sampledRuns ? [`sampled: ${stats.sampledRuns} run(s) of ${stats.tasks} task(s), ${stats.adoptedRuns} adopted`] : []),
    `tokens: ${stats.promptTokens} in, ${stats.completionTokens} out`,
    `annotator actions (hints, human labels, rewinds): ${stats.annotatorActions} (${stats.annotatorActionsPerAgentHour} per agent-hour over ${stats.agentHours} agent-hours)`,
    `steps by effective label: ${Object.entries(stats.effectiveLabels).map(([label, count]) => `${label} ${count}`).join(', ')}`,
    `decided by: ${Object.entries(stats.labelSources).map(([tier, count]) => `${tier} ${count}`).join(', ')}`,
    `masked: ${stats.maskedSteps} step(s), ${(stats.maskedShare * 100).toFixed(1)}% (policy ${stats.maskPolicy})`,
    `judge: ${stats.judge.requests} request(s), ${stats.judge.failures} failed, tokens ${stats.judge.promptTokens} in, ${stats.judge.completionTokens} out`,
    `dataset size: ${(stats.storeBytes / 1024 / 1024).toFixed(2)} MiB, of which snapshots ${(stats.snapshotBytes / 1024 / 1024).toFixed(2)} MiB ("apollo gc" reclaims those of deleted runs)`,
    '',
    'run                       status     steps  tokens in/out      model     tools     grounding wall',
  ];
  for (const run of stats.perRun) {
    lines.push(
      [
        run.id.padEnd(25),
        run.status.padEnd(10),
        String(run.steps).padStart(5),
        `${run.promptTokens}/${run.completionTokens}`.padStart(15),
        seconds(run.modelMs).padStart(9),
        seconds(run.toolMs).padStart(9),
        seconds(run.groundingMs).padStart(9),
        seconds(run.wallMs).padStart(9),
      ].join(' '),
    );
  }
  for (const problem of stats.problems) lines.push(`warning: ${problem}`);
  return lines.join('\n') + '\n';
}
