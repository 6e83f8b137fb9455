/** `apollo stats`: what a dataset holds, read from the events (the single source of truth). */
import path from 'node:path';
import { primaryReward } from '../dataset/events';
import { type DatasetStore, folderBytes } from '../dataset/store';
import { SHADOW_FOLDER } from '../grounding/shadowStore';
import { DEFAULT_MASK_POLICY, LabelBook, type MaskPolicy, maskOf } from '../supervision/labels';

type EffectiveCounts = Record<'good' | 'bad' | 'neutral' | 'unlabelled', number>;
type SourceCounts = Record<'human' | 'judge' | 'rule', number>;

export interface RunStats {
  id: string;
  status: string;
  /** The task id of a sampled run. */
  taskId?: string;
  /** A sampled run whose changes were applied to the workspace it was sampled from. */
  adopted?: boolean;
  /** The task of a suite the run was given (its name). */
  task?: string;
  /** The verifier's latest verdict: the run's reward (`reward`, else the mean of the named ones; 0 when the verifier gave none). */
  reward?: number;
  /** Hints delivered to the model. */
  hintsDelivered: number;
  /** Started with hints disabled on purpose (the control group). */
  hintsDisabled?: boolean;
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
      hintsDelivered: 0,
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
      if (event.type === 'run_started') {
        if (event.taskId) run.taskId = event.taskId;
        if (event.taskSource) run.task = event.taskSource.name;
        if (event.hintsDisabled) run.hintsDisabled = true;
      } else if (event.type === 'run_adopted') run.adopted = true;
      else if (event.type === 'reward') run.reward = primaryReward(event.rewards) ?? 0;
      else if (event.type === 'rewind') {
        run.annotatorActions++;
        run.reward = undefined; // the verdict was on the line the rewind left
      } else if (event.type === 'hint_delivered') run.hintsDelivered++;
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
  const total = <K extends string>(pick: (run: RunStats) => Record<K, number>, keys: K[]) => Object.fromEntries(keys.map((key) => [key, sum((run) => pick(run)[key])])) as Record<K, number>;
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
    `steps by effective label: ${Object.entries(stats.effectiveLabels)
      .map(([label, count]) => `${label} ${count}`)
      .join(', ')}`,
    `decided by: ${Object.entries(stats.labelSources)
      .map(([tier, count]) => `${tier} ${count}`)
      .join(', ')}`,
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

/** What one group of task runs (with hints, or without) achieved. */
export interface HintGroupStats {
  /** Verified runs in the group. */
  runs: number;
  /** Runs whose reward reached the success threshold. */
  solved: number;
  /** solved / runs (0 when there is no run). */
  successRate: number;
  meanReward: number;
  /**
   * pass@k for k = 1…K, the unbiased estimate 1 − C(n−c, k) / C(n, k) per task (n runs, c solved),
   * averaged over the tasks with at least k runs in the group. K is the most runs any task has.
   */
  passAtK: Record<number, number>;
  /** Hints, human labels and rewinds on the group's runs. */
  annotatorActions: number;
  /** Wall-clock minutes of the group's runs that had any annotator action: the time an annotator attended. */
  annotatorMinutes: number;
  /** Per solved task (a task with at least one solved run in the group); null when none was solved. */
  actionsPerSolvedTask: number | null;
  minutesPerSolvedTask: number | null;
  /** Tasks with a run in the group, and those of them solved at least once. */
  tasks: number;
  solvedTasks: number;
}

export interface HintComparison {
  /** A run counts as solved when its reward is at least this. */
  successThreshold: number;
  overall: { withHints: HintGroupStats; withoutHints: HintGroupStats };
  perTask: { task: string; withHints: HintGroupStats; withoutHints: HintGroupStats }[];
  /** Runs without hints that were started with hints disabled on purpose (the control group proper). */
  controlRuns: number;
  /** Task runs left out: never verified (still going, stopped before the verifier, or run before rewards were recorded). */
  unverifiedRuns: number;
}

/** C(n, k) / C(m, k) without overflow: the product of (n − i) / (m − i). */
function choiceRatio(n: number, m: number, k: number): number {
  let ratio = 1;
  for (let i = 0; i < k; i++) ratio *= (n - i) / (m - i);
  return ratio;
}

/** pass@k for one task: n runs, c of them solved (Chen et al. 2021, the unbiased estimator). */
export function passAtK(n: number, c: number, k: number): number {
  if (k > n) throw new RangeError(`pass@${k} needs at least ${k} runs (got ${n}).`);
  if (n - c < k) return 1;
  return 1 - choiceRatio(n - c, n, k);
}

const round = (value: number, places = 4) => Math.round(value * 10 ** places) / 10 ** places;

function groupStats(runs: RunStats[], threshold: number): HintGroupStats {
  const byTask = new Map<string, RunStats[]>();
  for (const run of runs) byTask.set(run.task!, [...(byTask.get(run.task!) ?? []), run]);
  const solvedRun = (run: RunStats) => (run.reward ?? 0) >= threshold;
  const solved = runs.filter(solvedRun).length;
  const maxRuns = Math.max(0, ...[...byTask.values()].map((list) => list.length));
  const pass: Record<number, number> = {};
  for (let k = 1; k <= maxRuns; k++) {
    const estimates = [...byTask.values()].filter((list) => list.length >= k).map((list) => passAtK(list.length, list.filter(solvedRun).length, k));
    pass[k] = round(estimates.reduce((sum, value) => sum + value, 0) / estimates.length);
  }
  const actions = runs.reduce((sum, run) => sum + run.hints + run.annotatorActions, 0);
  const minutes = runs.filter((run) => run.hints + run.annotatorActions > 0).reduce((sum, run) => sum + run.wallMs / 60_000, 0);
  const solvedTasks = [...byTask.values()].filter((list) => list.some(solvedRun)).length;
  return {
    runs: runs.length,
    solved,
    successRate: runs.length ? round(solved / runs.length) : 0,
    meanReward: runs.length ? round(runs.reduce((sum, run) => sum + (run.reward ?? 0), 0) / runs.length) : 0,
    passAtK: pass,
    annotatorActions: actions,
    annotatorMinutes: round(minutes, 2),
    actionsPerSolvedTask: solvedTasks ? round(actions / solvedTasks, 2) : null,
    minutesPerSolvedTask: solvedTasks ? round(minutes / solvedTasks, 2) : null,
    tasks: byTask.size,
    solvedTasks,
  };
}

/**
 * The comparison the paper makes, on the user's own tasks: verified runs that received hints
 * against those that did not, per task and overall.
 */
export function compareByHints(perRun: readonly RunStats[], successThreshold = 1): HintComparison {
  const taskRuns = perRun.filter((run) => run.task !== undefined);
  const verified = taskRuns.filter((run) => run.reward !== undefined);
  const hinted = (run: RunStats) => run.hintsDelivered > 0;
  const tasks = [...new Set(verified.map((run) => run.task!))].sort();
  return {
    successThreshold,
    overall: {
      withHints: groupStats(verified.filter(hinted), successThreshold),
      withoutHints: groupStats(
        verified.filter((run) => !hinted(run)),
        successThreshold,
      ),
    },
    perTask: tasks.map((task) => {
      const runs = verified.filter((run) => run.task === task);
      return {
        task,
        withHints: groupStats(runs.filter(hinted), successThreshold),
        withoutHints: groupStats(
          runs.filter((run) => !hinted(run)),
          successThreshold,
        ),
      };
    }),
    controlRuns: verified.filter((run) => !hinted(run) && run.hintsDisabled).length,
    unverifiedRuns: taskRuns.length - verified.length,
  };
}

function describeGroup(name: string, group: HintGroupStats): string {
  if (!group.runs) return `  ${name}: no verified run`;
  const pass = Object.entries(group.passAtK)
    .map(([k, value]) => `pass@${k} ${(value * 100).toFixed(1)}%`)
    .join(', ');
  const per = group.solvedTasks ? `; per solved task ${group.actionsPerSolvedTask} action(s), ${group.minutesPerSolvedTask} min` : '';
  return `  ${name}: ${group.runs} run(s), solved ${group.solved} (${(group.successRate * 100).toFixed(1)}%), mean reward ${group.meanReward}; ${pass}; annotator ${group.annotatorActions} action(s), ${group.annotatorMinutes} min${per}`;
}

export function formatHintComparison(comparison: HintComparison): string {
  const lines = [
    `runs with hints against runs without (solved: reward ≥ ${comparison.successThreshold})`,
    'overall',
    describeGroup('with hints', comparison.overall.withHints),
    describeGroup('without hints', comparison.overall.withoutHints),
  ];
  for (const task of comparison.perTask) lines.push(`task ${task.task}`, describeGroup('with hints', task.withHints), describeGroup('without hints', task.withoutHints));
  if (comparison.controlRuns) lines.push(`${comparison.controlRuns} run(s) without hints were started with hints disabled (--no-hints).`);
  if (comparison.unverifiedRuns) lines.push(`${comparison.unverifiedRuns} task run(s) left out: never verified (apollo verify --run ID).`);
  if (!comparison.perTask.length) lines.push('No verified task run: run tasks with apollo run --task-dir or apollo sample --task-dir.');
  return lines.join('\n') + '\n';
}
