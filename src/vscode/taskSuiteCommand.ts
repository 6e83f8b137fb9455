/**
 * Apollo: Run Task Suite… — K runs of each task of a folder of tasks in Harbor's layout, each in
 * a fresh working copy of its environment, at most apollo.sample.concurrency at a time in this
 * window, each verified as it ends. The suite itself is core's (taskSuite.ts, as `apollo sample
 * --task-dir` runs it); this file asks for the folder and the count, lists the runs in the panel
 * with their task and reward, and shows the suite's progress in a notification that can cancel it.
 */
import path from 'node:path';
import { findTaskDirs } from '../core/session/harborTask';
import { ConfigError, openSetting } from '../core/session/errors';
import { describeReward } from '../core/session/taskRuns';
import { type SuiteProgress, type TaskSuite, type TaskSuiteResult, startTaskSuite } from '../core/session/taskSuite';
import { primaryReward } from '../core/dataset/events';
import type { RunController } from './runController';
import * as window from './vscodeApis/window';

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

export async function runTaskSuite(controller: RunController, folderArgument?: string, countArgument?: number): Promise<TaskSuite | undefined> {
  const host = controller.runHost();
  try {
    const { folder, settings } = await host.openWorkspace({
      untrusted: 'run task suites in an untrusted workspace: each agent edits files and runs commands',
      folder: 'the runs of a suite are recorded in the dataset of a workspace folder.',
    });
    await host.checkWorkspace();
    const model = await host.chooseModel(settings, TITLE);
    if (!model) return undefined;
    const suiteDir = folderArgument ?? (await window.showFolderDialog(`${TITLE}: a task (its folder holds task.toml) or a folder of tasks`, 'Run Suite', folder));
    if (suiteDir === undefined) return undefined;
    // Not a task and holding none: said before anything else is asked.
    const taskDirs = findTaskDirs(suiteDir);
    let count = countArgument;
    if (count === undefined) {
      const answer = await window.showInputBox({
        title: TITLE,
        prompt: `How many runs of each of the ${taskDirs.length} task${taskDirs.length === 1 ? '' : 's'}? At most ${settings.concurrency} go at once (apollo.sample.concurrency); each is verified as it ends.`,
        value: String(settings.sampleCount),
        ignoreFocusOut: true,
        validateInput: (value) => (/^\d+$/.test(value.trim()) && Number(value) >= 1 && Number(value) <= MAX_RUNS_PER_TASK ? undefined : `A whole number from 1 to ${MAX_RUNS_PER_TASK}`),
      });
      if (answer === undefined) return undefined;
      count = Number(answer.trim());
    }
    if (!Number.isInteger(count) || count < 1 || count > MAX_RUNS_PER_TASK) {
      throw new ConfigError(
        `The number of runs of each task must be a whole number from 1 to ${MAX_RUNS_PER_TASK} (more is a batch for apollo sample --task-dir).`,
        openSetting('apollo.sample.count'),
      );
    }
    const n = count;
    let shown = false;
    let report: ((progress: SuiteProgress) => void) | undefined;
    const suite = await window.withNotificationProgress(`${TITLE}: checking ${taskDirs.length} task${taskDirs.length === 1 ? '' : 's'}…`, () =>
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
      void (suite.tasks.length ? window.showWarningMessage(message) : window.showErrorMessage(message));
    }
    if (!suite.tasks.length) return suite;
    host.post({
      type: 'notice',
      level: 'info',
      message: `Running ${suite.tasks.length} task${suite.tasks.length === 1 ? '' : 's'} of the suite, ${n} run${n === 1 ? '' : 's'} each, each in its own working copy and verified as it ends.`,
    });
    host.log.info(`Task suite ${suiteDir}: ${suite.tasks.map(({ task }) => task.name).join(', ')}; ${n} run(s) each; dataset ${settings.datasetDir}`);
    // Progress until every run is verified; cancelling stops the runs (their steps are kept).
    void window.withCancellableProgress(TITLE, (say, onCancel) => {
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
        void window.showInformationMessage(`Apollo: ${suiteSummary(result)}`);
      },
      (error) => host.report(error),
    );
    return suite;
  } catch (error) {
    host.report(error);
    return undefined;
  }
}
