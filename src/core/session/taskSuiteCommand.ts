/**
 * "Run Task Suite…" in the editor: K runs of each task of a folder of tasks in Harbor's layout,
 * each in a fresh working copy of its environment, at most apollo.sample.concurrency at a time in
 * the window, each verified as it ends. The suite itself is startTaskSuite (as `apollo sample
 * --task-dir` runs it); this flow asks for the folder and the count through the editor's UI, lists
 * the runs in the panel with their task and reward, and shows the suite's progress in a
 * notification that can cancel it.
 */
import path from 'node:path';
import { primaryReward } from '../dataset/events';
import type { EditorUi, Log } from '../ui';
import { ConfigError, openSetting } from './errors';
import { findTaskDirs } from './harborTask';
import type { HostToWebview } from './panelViews';
import type { RunRegistry, SamplePosition } from './registry';
import type { RunSession } from './runSession';
import type { ConcurrencyLimit } from './sample';
import type { ApolloSettings } from './settings';
import { describeReward } from './taskRuns';
import { type SuiteProgress, type SuiteRunOptions, type TaskSuite, type TaskSuiteResult, startTaskSuite } from './taskSuite';

const TITLE = 'Apollo: Run Task Suite';

/** More runs of each task than this is a batch job for the CLI (`apollo sample --task-dir`). */
export const MAX_RUNS_PER_TASK = 20;

/** The progress line: "3 of 4 runs started · 1 ended · 1 verified". */
export function suiteProgressText(progress: SuiteProgress): string {
  const parts = [`${progress.started} of ${progress.total} run${progress.total === 1 ? '' : 's'} started`, `${progress.ended} ended`, `${progress.verified} verified`];
  if (progress.failed) parts.push(`${progress.failed} could not start`);
  return parts.join(' · ');
}

/** The refusal notification: every refused task (its folder's name) and why, in one message. */
export function refusalMessage(refused: readonly { dir: string; reason: string }[], going: number): string {
  const list = refused.map((entry) => `${path.basename(entry.dir)}: ${entry.reason}`).join(' ');
  const rest = going ? ` The other ${going} task${going === 1 ? '' : 's'} go${going === 1 ? 'es' : ''} on.` : ' No task of the suite can run here.';
  return `Apollo refused ${refused.length} task${refused.length === 1 ? '' : 's'} of the suite.${rest} ${list}`;
}

/** What the suite came to, for its closing notification. */
export function suiteSummary(result: TaskSuiteResult): string {
  const rewarded = result.runs.filter((run) => run.reward);
  const solved = rewarded.filter((run) => !run.reward!.error && (primaryReward(run.reward!.rewards) ?? 0) >= 1).length;
  const noReward = rewarded.filter((run) => run.reward!.error).length;
  const notVerified = result.runs.length - rewarded.length;
  const tasks = new Set(result.runs.map((run) => run.taskId)).size;
  return [
    `the task suite has ended: ${tasks} task${tasks === 1 ? '' : 's'}, ${result.runs.length} run${result.runs.length === 1 ? '' : 's'}; ${solved} solved its task (reward 1)`,
    noReward ? `, ${noReward} got no reward` : '',
    notVerified ? `, ${notVerified} not verified (stopped or not started)` : '',
    '. Review the runs in the panel.',
  ].join('');
}

/** What the suite uses of the window's runs (the run controller gives it). */
export interface SuiteHost<Model> {
  runs: Pick<RunRegistry, 'setVerifying' | 'observe'>;
  log: Log;
  openWorkspace(need: { untrusted?: string; folder?: string }): Promise<{ folder: string; settings: ApolloSettings }>;
  checkWorkspace(): Promise<void>;
  chooseModel(settings: ApolloSettings, title: string): Promise<Model | undefined>;
  newRunOptions(settings: ApolloSettings, model: Model): SuiteRunOptions;
  /** The window's one limit of runs at once. */
  limit(max: number): ConcurrencyLimit;
  follow(session: RunSession, options: { sample?: SamplePosition; show?: boolean }): unknown;
  post(message: HostToWebview): void;
  report(error: unknown): void;
  postRuns(): unknown;
}

export type SuiteUi = Pick<
  EditorUi,
  'showFolderDialog' | 'showInputBox' | 'withNotificationProgress' | 'withCancellableProgress' | 'showInformationMessage' | 'showWarningMessage' | 'showErrorMessage'
>;

/** The number of runs of each task: given, else asked (undefined when dismissed). */
async function runsPerTask(ui: SuiteUi, tasks: number, settings: ApolloSettings, given?: number): Promise<number | undefined> {
  let count = given;
  if (count === undefined) {
    const answer = await ui.showInputBox({
      title: TITLE,
      prompt: `How many runs of each of the ${tasks} task${tasks === 1 ? '' : 's'}? At most ${settings.concurrency} go at once (apollo.sample.concurrency); each is verified as it ends.`,
      value: String(settings.sampleCount),
      ignoreFocusOut: true,
      validateInput: (value) => (/^\d+$/.test(value.trim()) && Number(value) >= 1 && Number(value) <= MAX_RUNS_PER_TASK ? undefined : `A whole number from 1 to ${MAX_RUNS_PER_TASK}`),
    });
    if (answer === undefined) return undefined;
    count = Number(answer.trim());
  }
  if (!Number.isInteger(count) || count < 1 || count > MAX_RUNS_PER_TASK) {
    throw new ConfigError(`The number of runs of each task must be a whole number from 1 to ${MAX_RUNS_PER_TASK} (more is a batch for apollo sample --task-dir).`, openSetting('apollo.sample.count'));
  }
  return count;
}

export async function runTaskSuite<Model>(host: SuiteHost<Model>, ui: SuiteUi, folderArgument?: string, countArgument?: number): Promise<TaskSuite | undefined> {
  try {
    const { folder, settings } = await host.openWorkspace({
      untrusted: 'run task suites in an untrusted workspace: each agent edits files and runs commands',
      folder: 'the runs of a suite are recorded in the dataset of a workspace folder.',
    });
    await host.checkWorkspace();
    const model = await host.chooseModel(settings, TITLE);
    if (!model) return undefined;
    const suiteDir = folderArgument ?? (await ui.showFolderDialog(`${TITLE}: a task (its folder holds task.toml) or a folder of tasks`, 'Run Suite', folder));
    if (suiteDir === undefined) return undefined;
    // Not a task and holding none: said before anything else is asked.
    const taskDirs = findTaskDirs(suiteDir);
    const n = await runsPerTask(ui, taskDirs.length, settings, countArgument);
    if (n === undefined) return undefined;
    let shown = false;
    let report: ((progress: SuiteProgress) => void) | undefined;
    const suite = await ui.withNotificationProgress(`${TITLE}: checking ${taskDirs.length} task${taskDirs.length === 1 ? '' : 's'}…`, () =>
      startTaskSuite({
        taskDirs,
        n,
        limit: host.limit(settings.concurrency),
        datasetDir: settings.datasetDir,
        runsDir: settings.runsDir,
        run: host.newRunOptions(settings, model),
        log: (line) => host.log.info(line),
        events: {
          refused: (dir, reason) => host.log.warn(`Task ${dir} refused: ${reason}`),
          runStarted: (run, session) => {
            // The first run is shown; the others wait in the live runs list.
            void host.follow(session, { sample: { taskId: run.taskId, index: run.index, count: run.count }, show: !shown });
            shown = true;
            host.log.info(`Run ${run.index} of ${run.count} of task ${run.task.name} started: ${session.runId}`);
          },
          runFailed: (run, error, cancelled) => (cancelled ? undefined : host.log.error(`A run of task ${run.task.name} could not start: ${error}`)),
          verifying: (run) => run.runId && host.runs.setVerifying(run.runId, true),
          rewarded: (run, reward) => {
            if (!run.runId) return;
            host.runs.setVerifying(run.runId, false);
            // The reward is written beside the run: its timeline takes it here.
            host.runs.observe(run.runId, reward);
            host.log[reward.error ? 'warn' : 'info'](`Run ${run.runId}: ${describeReward(reward)}`);
          },
          verifyFailed: (run, error) => {
            if (run.runId) host.runs.setVerifying(run.runId, false);
            host.log.error(`The verifier of run ${run.runId} (${run.task.name}) could not run: ${error}`);
          },
          progress: (progress) => report?.(progress),
        },
      }),
    );
    if (suite.refused.length) {
      const message = refusalMessage(suite.refused, suite.tasks.length);
      host.post({ type: 'notice', level: suite.tasks.length ? 'info' : 'error', message });
      void (suite.tasks.length ? ui.showWarningMessage(message) : ui.showErrorMessage(message));
    }
    if (!suite.tasks.length) return suite;
    host.post({
      type: 'notice',
      level: 'info',
      message: `Running ${suite.tasks.length} task${suite.tasks.length === 1 ? '' : 's'} of the suite, ${n} run${n === 1 ? '' : 's'} each, each in its own working copy and verified as it ends.`,
    });
    host.log.info(`Task suite ${suiteDir}: ${suite.tasks.map(({ task }) => task.name).join(', ')}; ${n} run(s) each; dataset ${settings.datasetDir}`);
    // Progress until every run is verified; cancelling stops the runs (their steps are kept).
    void ui.withCancellableProgress(TITLE, (say, onCancel) => {
      report = (progress) => say(suiteProgressText(progress));
      report(suite.progress);
      onCancel(() => {
        host.log.info('Task suite cancelled: stopping its runs.');
        void suite.stop();
      });
      return suite.done;
    });
    void suite.done.then(
      (result) => {
        void host.postRuns();
        void ui.showInformationMessage(`Apollo: ${suiteSummary(result)}`);
      },
      (error) => host.report(error),
    );
    return suite;
  } catch (error) {
    host.report(error);
    return undefined;
  }
}
