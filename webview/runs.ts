/** The runs of the dataset (collapsed) and the live runs: several agents at once, the one needing you most on top. */
import { firstLine, type LiveRunItem, plural } from '../src/protocol';
import { el, setDisabled, setText, vsButton } from './dom';
import { formatDate, suiteTaskText } from './format';
import { nextFlag } from './attention';
import { post, saved } from './host';
import { runsRendered, state } from './state';

// ---- runs of the dataset ------------------------------------------------------------------

export const runsDetails = el('details', 'runs');
const runsSummary = el('summary', 'runs-summary');
const runsSummaryText = el('span', undefined, 'Runs');
const runsCount = el('vscode-badge', 'runs-count');
runsSummary.append(runsSummaryText, runsCount);
const runsList = el('ul', 'runs-list');
runsList.setAttribute('role', 'list');
runsList.setAttribute('aria-label', 'Runs');
runsDetails.append(runsSummary, runsList);
runsDetails.open = saved.runsOpen;

// ---- live runs ----------------------------------------------------------------------------

export const liveSection = el('section', 'live-runs');
liveSection.setAttribute('aria-label', 'Live runs');
const liveHeading = el('div', 'live-heading');
const liveHeadingText = el('span', undefined, 'Live runs');
const neediestButton = vsButton('Go to the run that needs you most', () => goToNeediestRun(), 'secondary');
neediestButton.title = 'Open the run at the top of the list (j)';
liveHeading.append(liveHeadingText, neediestButton);
const liveList = el('ul', 'live-list');
liveList.setAttribute('role', 'list');
liveList.setAttribute('aria-label', 'Live runs');
liveSection.append(liveHeading, liveList);
liveSection.hidden = true;

/** Opens the run at the top of the live runs list: the one that needs the annotator most. */
export function goToNeediestRun(): void {
  const top = state.liveRuns[0];
  if (!top) return;
  if (top.runId !== state.data.run?.runId) post({ type: 'openRun', runId: top.runId });
  else if (top.unseen) nextFlag();
}

export function renderRunsSummary(): void {
  setText(runsCount, String(state.runs.length));
  runsCount.setAttribute('aria-label', plural(state.runs.length, 'run'));
}

/** Paints the runs list now when it is open, else when it opens. */
export function renderRunsIfOpen(): void {
  if (runsDetails.open) renderRuns();
}

const NEED_ICONS: Record<LiveRunItem['need']['kind'], string> = {
  paused: '⏸',
  question: '?',
  loop: '↻',
  no_progress: '…',
  failures: '✕',
  paused_by_you: '⏸',
  failed: '✕',
  verifier_failed: '✗',
  running: '▶',
  ended: '✓',
};

/** Shown once there is more than one run to keep an eye on, or any sampled run. */
export function renderLiveRuns(): void {
  const liveRuns = state.liveRuns;
  liveSection.hidden = liveRuns.length < 2 && !liveRuns.some((run) => run.sample);
  if (liveSection.hidden) return;
  const waiting = liveRuns.filter((run) => run.need.kind !== 'running' && run.need.kind !== 'ended').length;
  setText(liveHeadingText, `Live runs (${liveRuns.length})${waiting ? ` · ${waiting} need${waiting === 1 ? 's' : ''} you` : ''}`);
  setDisabled(neediestButton, !liveRuns.length);
  liveList.replaceChildren(
    ...liveRuns.map((run) => {
      const item = el('li', 'live-item');
      const open = run.runId === state.data.run?.runId;
      item.classList.toggle('open', open);
      item.dataset.need = run.need.kind;
      const icon = el('span', 'need-icon', NEED_ICONS[run.need.kind] ?? '•');
      icon.setAttribute('aria-hidden', 'true');
      const name = run.sample ? `Run ${run.sample.index} of ${run.sample.count}` : 'Run';
      const title = el('div', 'live-title');
      title.append(icon, el('span', 'live-name', name), el('span', 'live-need', run.need.message));
      title.title = run.task;
      const meta = el('div', 'run-meta');
      // A run of a suite's task: the task and what its verifier said.
      const verdict = run.suiteTask ? [el('div', 'suite-task', suiteTaskText(run.suiteTask))] : [];
      if (run.suiteTask && verdict[0]) {
        const reward = run.suiteTask.reward;
        verdict[0].dataset.verdict = run.suiteTask.verifying ? 'verifying' : !reward ? 'none' : reward.value === undefined ? 'error' : reward.value >= 1 ? 'pass' : 'fail';
        if (reward?.detail) verdict[0].title = reward.detail;
      }
      meta.append(el('span', undefined, `${plural(run.steps, 'step')} · ${run.status}`));
      if (run.unseen) meta.append(el('span', 'tag flags', `${run.unseen} new`));
      if (open) meta.append(el('span', 'tag open', 'open'));
      const actions = el('div', 'run-actions');
      const openButton = vsButton('Open', () => post({ type: 'openRun', runId: run.runId }));
      openButton.setAttribute('aria-label', `Open ${name.toLowerCase()}: ${run.need.message}`);
      actions.append(openButton);
      if (run.adoptable) {
        const adopt = vsButton('Adopt', () => post({ type: 'previewAdopt', runId: run.runId }));
        adopt.setAttribute('aria-label', `Adopt ${name.toLowerCase()}`);
        actions.append(adopt);
      }
      item.append(title, ...verdict, meta, actions);
      return item;
    }),
  );
}

export function renderRuns(): void {
  runsRendered();
  const { runs, liveRunId } = state;
  if (!runs.length) {
    runsList.replaceChildren(el('li', 'muted', 'No runs recorded yet.'));
    return;
  }
  runsList.replaceChildren(
    ...runs.map((run) => {
      const item = el('li', 'run-item');
      const live = run.runId === liveRunId;
      const open = run.runId === state.data.run?.runId;
      item.classList.toggle('live', live);
      item.classList.toggle('open', open);
      // A suite run is named by its task, with the verdict of its verifier.
      const task = el('div', 'run-task', run.suiteTask ? suiteTaskText(run.suiteTask) : firstLine(run.task));
      task.title = run.task;
      const meta = el('div', 'run-meta');
      // Steps first: the status line's text (/^finished · 5 steps/) stays the only one that starts so.
      meta.append(el('span', undefined, `${plural(run.steps, 'step')} · ${run.status} · ${formatDate(run.createdAt)}`));
      if (live) meta.append(el('span', 'tag live', 'live'));
      if (open) meta.append(el('span', 'tag open', 'open'));
      const actions = el('div', 'run-actions');
      actions.append(vsButton('Open', () => post({ type: 'openRun', runId: run.runId })));
      if ((run.status === 'running' || run.status === 'paused') && !live) {
        const resume = vsButton('Resume', () => post({ type: 'resumeRun', runId: run.runId }));
        if (liveRunId !== undefined) {
          resume.disabled = true;
          resume.title = 'Another run is going: stop it first.';
        }
        actions.append(resume);
      }
      item.append(task, meta, actions);
      return item;
    }),
  );
}
