/**
 * The Intervention panel. Controls come from @vscode/webview-ui-toolkit (loaded as its own
 * script); every text from the model or the workspace is set with textContent, never as HTML.
 *
 * Layout, top to bottom: the run's header (status, figures, notices), the runs of the dataset
 * (collapsed), the task and run controls, the attention bar, the timeline (virtualized: see
 * virtualList.ts and stepRows.ts), the rewind confirmation and the step detail when open, and
 * the hint composer with the hints sent.
 *
 * Messages from the host are incremental (a step, a label, a hint); only `init` replaces
 * everything. The view state (drafts, position, a bounded copy of the timeline) is saved at
 * most once a second, never per message.
 */
import { firstLine, HINT_KINDS, type HintKind, type HostToWebview, LABEL_AXES, type LiveRunItem, oneOf, plural, type RunListItem, type TimelineHint, type WebviewToHost } from '../src/protocol';
import { el, isTyping, setDisabled, setText, type ToolkitControl, vsButton, vsDropdown, vsTextBox } from './dom';
import { elapsedMs, formatDate, formatDuration, formatTokens, statusText, suiteTaskText } from './format';
import { AdoptPane, RewindPane, StepDetailPane } from './panes';
import { buildReasonForm, StepRow, StepRows } from './stepRows';
import { InitPayload, TimelineData } from './timelineData';
import { VirtualList } from './virtualList';

interface PanelState {
  version: 2;
  taskDraft: string;
  hintDraft: string;
  hintKind: string;
  hintUrgency: string;
  runsOpen: boolean;
  /** The step at the top of the timeline, to come back to the same place. */
  position?: { runId: string; step: number; delta: number; follow: boolean };
  selectedStep?: number;
  /** The last timeline, bounded: enough to paint at once on reload, until the host's `init`. */
  timeline?: InitPayload;
}

interface VsCodeApi {
  postMessage(message: WebviewToHost): void;
  getState(): unknown;
  setState(state: PanelState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const SAVE_DELAY_MS = 1000;
const SAVE_MAX_WAIT_MS = 10_000;
/** Steps kept in the saved state: serializing 10,000 steps would cost tens of milliseconds a save. */
const MAX_SAVED_STEPS = 2000;
const MAX_SENT_HINTS_SHOWN = 50;

const vscode = acquireVsCodeApi();
const post = (message: WebviewToHost) => vscode.postMessage(message);
const saved = readState(vscode.getState());
const data = new TimelineData();

let runs: RunListItem[] = [];
/** The window's runs, most in need of the annotator first (host-ordered). */
let liveRuns: LiveRunItem[] = [];
let liveRunId: string | undefined;
let runsStale = true;
let runsRenderedFor: string | undefined;
let selectedStep: number | undefined = saved.selectedStep;
let pendingPosition = saved.position;
let reason: { step: number; label: 'good' | 'bad' } | undefined;
let focusDetailWhenShown = false;
let lastFlagIndex: number | undefined;

function readState(raw: unknown): PanelState {
  const fallback: PanelState = { version: 2, taskDraft: '', hintDraft: '', hintKind: 'knowledge', hintUrgency: 'next', runsOpen: false };
  if (typeof raw !== 'object' || raw === null) return fallback;
  const state = raw as Partial<PanelState>;
  const text = (value: unknown, otherwise: string) => (typeof value === 'string' ? value : otherwise);
  return {
    version: 2,
    taskDraft: text(state.taskDraft, ''),
    hintDraft: text(state.hintDraft, ''),
    hintKind: text(state.hintKind, 'knowledge'),
    hintUrgency: text(state.hintUrgency, 'next'),
    runsOpen: state.runsOpen === true,
    ...(state.position && typeof state.position.runId === 'string' ? { position: state.position } : {}),
    ...(typeof state.selectedStep === 'number' ? { selectedStep: state.selectedStep } : {}),
    ...(state.version === 2 && state.timeline && Array.isArray(state.timeline.steps) ? { timeline: state.timeline } : {}),
  };
}

// ---- header: the run, its figures, notices ------------------------------------------------

const app = document.getElementById('app') ?? document.body.appendChild(el('div'));
app.classList.add('app');

const header = el('header', 'header');
const runTitle = el('div', 'run-title');
const statusLine = el('div', 'status');
statusLine.setAttribute('role', 'status');
const stats = el('div', 'stats');
const elapsedStat = el('span', 'stat elapsed');
const tokensStat = el('span', 'stat tokens');
const hintsStat = el('span', 'stat hints-given');
const maskedStat = el('span', 'stat masked');
const redactionsStat = el('span', 'stat redactions');
redactionsStat.title = 'Secrets replaced by [REDACTED:…] in what the run recorded';
const readOnlyTag = el('span', 'tag read-only', 'read-only');
stats.append(elapsedStat, tokensStat, hintsStat, maskedStat, redactionsStat, readOnlyTag);
const noticeRow = el('div', 'notice-row');
const noticeText = el('div', 'notice');
noticeText.setAttribute('role', 'alert');
const dismissNotice = vsButton('✕', () => showNotice(undefined), 'icon', 'dismiss');
dismissNotice.setAttribute('aria-label', 'Dismiss notice');
dismissNotice.title = 'Dismiss';
noticeRow.append(noticeText, dismissNotice);
header.append(runTitle, statusLine, stats, noticeRow);

// ---- runs of the dataset ------------------------------------------------------------------

const runsDetails = el('details', 'runs');
const runsSummary = el('summary', 'runs-summary');
const runsSummaryText = el('span', undefined, 'Runs');
const runsCount = el('vscode-badge', 'runs-count');
runsSummary.append(runsSummaryText, runsCount);
const runsList = el('ul', 'runs-list');
runsList.setAttribute('role', 'list');
runsList.setAttribute('aria-label', 'Runs');
runsDetails.append(runsSummary, runsList);
runsDetails.open = saved.runsOpen;
runsDetails.addEventListener('toggle', () => {
  if (runsDetails.open && runsStale) renderRuns();
  scheduleSave();
});

// ---- live runs: several agents at once, the one needing you most on top --------------------

const liveSection = el('section', 'live-runs');
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

// ---- task and run controls ----------------------------------------------------------------

const taskBox = vsTextBox('area', 'Task', 'What should the agent do?', 'task');
taskBox.setAttribute('rows', '2');
taskBox.setAttribute('resize', 'vertical');
const startButton = vsButton('Start run', startRun, 'primary');
const sampleButton = vsButton('Sample runs', sampleRuns, 'secondary');
sampleButton.title = 'Several runs of this task, each in its own working copy of the workspace';
// Controls act on the run on screen only, named so the host never guesses.
const onViewed = <T extends 'pauseRun' | 'resumeRun' | 'stopRun'>(type: T) => (data.run ? { type, runId: data.run.runId } : { type });
const pauseButton = vsButton('Pause', () => post(onViewed('pauseRun')));
const resumeButton = vsButton('Resume', () => post(onViewed('resumeRun')));
const stopButton = vsButton('Stop', () => post(onViewed('stopRun')));
const adoptButton = vsButton('Adopt', () => data.run && post({ type: 'previewAdopt', runId: data.run.runId }), 'primary');
adoptButton.title = "Apply this run's changes to your workspace, after a preview";
adoptButton.hidden = true;
const controls = el('div', 'controls');
controls.append(startButton, sampleButton, pauseButton, resumeButton, stopButton, adoptButton);
const runSection = el('section', 'run-controls');
runSection.setAttribute('aria-label', 'Run');
runSection.append(taskBox, controls);

// ---- attention ----------------------------------------------------------------------------

const attentionBar = el('div', 'attention');
attentionBar.setAttribute('role', 'status');
const attentionText = el('span', 'attention-text');
const nextFlagButton = vsButton('Next flagged step', () => nextFlag(), 'secondary');
nextFlagButton.title = 'Go to the next step that needs attention (n)';
attentionBar.append(attentionText, nextFlagButton);

// ---- timeline -----------------------------------------------------------------------------

const scroller = el('div', 'timeline-scroller');
const emptyNote = el('p', 'empty', 'No steps yet. Type a task and press Start run.');
const timelineList = el('ul', 'timeline');
timelineList.setAttribute('role', 'list');
timelineList.setAttribute('aria-label', 'Timeline');
const measureHost = el('div', 'measure');
measureHost.setAttribute('aria-hidden', 'true');
measureHost.inert = true;
scroller.append(emptyNote, timelineList, measureHost);

const reasonForm = buildReasonForm(saveReason, () => closeReason(true));

const rows = new StepRows(
  data,
  {
    readOnly: () => !!data.run?.readOnly,
    selectedStep: () => selectedStep,
    form: () => (reason ? { step: reason.step, node: reasonForm.node } : undefined),
  },
  {
    label: (row, label) => {
      // The verdict is recorded at the click; the reason and axis can follow.
      post({ type: 'labelStep', step: row.step, label });
      openReason(row, label);
    },
    rewind: (step) => {
      if (data.run?.readOnly) return;
      rewindPane.waiting(step);
      list.keepInView(data.indexOf(step) ?? -1);
      post({ type: 'previewRewind', step });
    },
    openDiff: (step) => post({ type: 'openDiff', step }),
    showStep: (step) => showStep(step, false),
  },
  measureHost,
  timelineList,
  () => list.remeasure(),
);
const list = new VirtualList<StepRow>(scroller, timelineList, rows);
scroller.addEventListener('scroll', () => scheduleSave(), { passive: true });

timelineList.addEventListener('keydown', (event) => {
  const target = event.target;
  if (!(target instanceof HTMLLIElement) || !target.classList.contains('step')) return;
  const index = Number(target.getAttribute('aria-posinset')) - 1;
  const step = Number(target.dataset.step);
  const go = (to: number) => {
    event.preventDefault();
    list.focusIndex(Math.max(0, Math.min(data.count - 1, to)));
  };
  switch (event.key) {
    case 'Enter':
    case ' ':
      event.preventDefault();
      showStep(step, true);
      break;
    case 'ArrowDown':
      go(index + 1);
      break;
    case 'ArrowUp':
      go(index - 1);
      break;
    case 'PageDown':
      go(index + Math.max(1, list.lastVisibleIndex() - list.firstVisibleIndex()));
      break;
    case 'PageUp':
      go(index - Math.max(1, list.lastVisibleIndex() - list.firstVisibleIndex()));
      break;
    case 'Home':
      go(0);
      break;
    case 'End':
      go(data.count - 1);
      break;
  }
});

// ---- rewind confirmation and step detail --------------------------------------------------

const rewindPane = new RewindPane({
  confirm: (step) => {
    post({ type: 'rewind', step });
    rewindPane.close();
    list.focusIndex(data.indexOf(step) ?? -1);
  },
  cancel: () => {
    const step = rewindPane.step;
    rewindPane.close();
    if (step !== undefined) list.focusIndex(data.indexOf(step) ?? -1);
  },
});

const adoptPane = new AdoptPane({
  confirm: (runId, overwrite) => {
    post({ type: 'adoptRun', runId, overwrite });
    adoptPane.close();
  },
  cancel: () => adoptPane.close(),
});

const detail = new StepDetailPane({
  openDiff: (step) => post({ type: 'openDiff', step }),
  openFullOutput: (step) => post({ type: 'openFullOutput', step }),
  close: () => closeDetail(true),
});

// ---- hint composer ------------------------------------------------------------------------

const hintBox = vsTextBox('field', 'Hint', 'Knowledge, strategy or correction for the agent', 'hint');
const hintKind = vsDropdown(
  'Hint kind',
  HINT_KINDS.map((kind) => [kind, kind] as const),
  'hint-kind',
  saved.hintKind,
);
const hintWhen = vsDropdown(
  'When',
  [
    ['next', 'next step'],
    ['now', 'now (interrupts)'],
  ],
  'hint-when',
  saved.hintUrgency,
);
const sendHintButton = vsButton('Send hint', sendHint, 'primary');
const hintRow = el('div', 'hint-row');
hintRow.append(hintKind, hintWhen, sendHintButton);
const sentHeading = el('div', 'sent-heading');
const sentList = el('ul', 'sent-hints');
sentList.setAttribute('role', 'list');
sentList.setAttribute('aria-label', 'Sent hints');
const hintSection = el('section', 'hints');
hintSection.setAttribute('aria-label', 'Hints');
hintSection.append(hintBox, hintRow, sentHeading, sentList);

app.append(header, liveSection, runsDetails, runSection, attentionBar, scroller, rewindPane.node, adoptPane.node, detail.node, hintSection);

// ---- actions ------------------------------------------------------------------------------

function startRun(): void {
  const task = taskBox.value.trim();
  if (!task) return showNotice({ level: 'error', message: 'The task is empty: describe what the agent should do.' });
  post({ type: 'startRun', task });
}

function sampleRuns(): void {
  const task = taskBox.value.trim();
  if (!task) return showNotice({ level: 'error', message: 'The task is empty: describe what the agents should do.' });
  post({ type: 'sampleRuns', task });
}

/** Opens the run at the top of the live runs list: the one that needs the annotator most. */
function goToNeediestRun(): void {
  const top = liveRuns[0];
  if (!top) return;
  if (top.runId !== data.run?.runId) post({ type: 'openRun', runId: top.runId });
  else if (top.unseen) nextFlag();
}

function sendHint(): void {
  const text = hintBox.value.trim();
  if (!text || !viewedRunLive() || !data.run) return;
  const kind = oneOf(HINT_KINDS, hintKind.value) ? hintKind.value : 'knowledge';
  // The hint goes to the run on screen and to no other.
  post({ type: 'sendHint', text, kind, urgency: hintWhen.value === 'now' ? 'now' : 'next', runId: data.run.runId });
  hintBox.value = '';
  updateControls();
  scheduleSave();
}

function showStep(step: number, focusWhenShown: boolean): void {
  selectStep(step);
  focusDetailWhenShown = focusWhenShown;
  if (detail.step !== step || !detail.open) detail.loading(step);
  list.keepInView(data.indexOf(step) ?? -1);
  post({ type: 'showStep', step });
}

function selectStep(step: number | undefined): void {
  if (step === selectedStep) return;
  const previous = selectedStep;
  selectedStep = step;
  for (const changed of [previous, step]) {
    const index = changed === undefined ? undefined : data.indexOf(changed);
    if (index !== undefined) list.contentChanged(index);
  }
  scheduleSave();
}

function closeDetail(returnFocus: boolean): void {
  const step = detail.step;
  detail.close();
  selectStep(undefined);
  if (returnFocus && step !== undefined) list.focusIndex(data.indexOf(step) ?? -1);
}

function openReason(row: StepRow, label: 'good' | 'bad'): void {
  // One reason at a time: the form of an earlier click goes (its label is already recorded).
  reason = { step: row.step, label };
  // The toolkit names its inner input after the label slot (the element's text).
  reasonForm.field.textContent = `Reason for step ${row.step}`;
  reasonForm.field.setAttribute('placeholder', `Why is it ${label}? (optional)`);
  reasonForm.field.value = '';
  reasonForm.axis.value = '';
  list.setFormRow(row.index);
  list.scrollToIndex(row.index, 'nearest');
  list.render();
  reasonForm.field.focus();
}

function saveReason(): void {
  if (!reason) return;
  const text = reasonForm.field.value.trim();
  const axis = reasonForm.axis.value;
  if (text || oneOf(LABEL_AXES, axis)) {
    post({ type: 'labelStep', step: reason.step, label: reason.label, ...(text ? { reason: text } : {}), ...(oneOf(LABEL_AXES, axis) ? { axis } : {}) });
  }
  closeReason(true);
}

function closeReason(returnFocus: boolean): void {
  if (!reason) return;
  const step = reason.step;
  const hadFocus = reasonForm.node.contains(document.activeElement);
  reason = undefined;
  reasonForm.node.remove();
  list.setFormRow(-1);
  const index = data.indexOf(step);
  if (index !== undefined) list.contentChanged(index);
  list.render();
  if (returnFocus && hadFocus && index !== undefined) list.rowOf(index)?.node.focus({ preventScroll: true });
}

/** Scrolls to and focuses the next flagged step after the current position, wrapping round. */
function nextFlag(): void {
  const focused = list.indexOfNode(document.activeElement);
  let from: number;
  let inclusive = false;
  if (focused !== undefined) from = focused;
  else if (lastFlagIndex !== undefined && lastFlagIndex >= list.firstVisibleIndex() && lastFlagIndex <= list.lastVisibleIndex()) from = lastFlagIndex;
  else {
    from = list.firstVisibleIndex();
    inclusive = true;
  }
  const index = data.nextFlagged(from, inclusive);
  if (index === undefined) return;
  lastFlagIndex = index;
  list.focusIndex(index, 'center');
  post({ type: 'attentionSeen' });
  data.unseen = 0;
  renderAttention();
}

document.addEventListener('keydown', (event) => {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === 'n' && !isTyping(event)) {
    event.preventDefault();
    nextFlag();
  } else if (event.key === 'j' && !isTyping(event) && liveRuns.length) {
    event.preventDefault();
    goToNeediestRun();
  } else if (event.key === 'Escape') {
    if (adoptPane.open) {
      adoptPane.close();
    } else if (rewindPane.open) {
      rewindPane.close();
    } else if (detail.open) {
      closeDetail(true);
    }
  }
});

taskBox.addEventListener('input', () => scheduleSave());
hintBox.addEventListener('input', () => {
  updateControls();
  scheduleSave();
});
hintBox.addEventListener('keydown', (event) => {
  if ((event as KeyboardEvent).key === 'Enter') sendHint();
});
hintKind.addEventListener('change', () => scheduleSave());
hintWhen.addEventListener('change', () => scheduleSave());

// ---- rendering ----------------------------------------------------------------------------

function viewedRunLive(): boolean {
  const run = data.run;
  return !!run && run.live && !run.readOnly && (run.status === 'running' || run.status === 'paused');
}

function updateControls(): void {
  const run = data.run;
  const live = viewedRunLive();
  const writable = !!run && !run.readOnly;
  // A run on the workspace blocks another there; sampled runs work in copies and block nothing.
  setDisabled(startButton, (live && !run?.taskId) || liveRunId !== undefined);
  adoptButton.hidden = !(run && run.originWorkspace && !run.adoptedAt && run.status !== 'running' && run.status !== 'paused');
  setDisabled(pauseButton, !(live && run?.status === 'running'));
  // Resume also continues a rewound run, which waits paused and not live.
  setDisabled(resumeButton, !(writable && run.status === 'paused'));
  setDisabled(stopButton, !live);
  setDisabled(sendHintButton, !live || hintBox.value.trim() === '');
}

let ticker = 0;

function renderHeader(): void {
  const run = data.run;
  setText(statusLine, statusText(run));
  statusLine.dataset.status = run?.status ?? 'none';
  setText(runTitle, run ? firstLine(run.task) : 'Apollo');
  runTitle.title = run?.task ?? '';
  stats.hidden = !run;
  if (run) {
    setText(tokensStat, `${formatTokens(run.tokens)} tokens`);
    setText(hintsStat, plural(run.hints, 'hint'));
    setText(maskedStat, `${Math.round(run.maskedShare * 100)}% masked`);
    maskedStat.title = 'Share of steps kept out of training under the mask policy';
    const redactions = typeof run.redactions === 'number' ? run.redactions : 0;
    redactionsStat.hidden = redactions === 0;
    setText(redactionsStat, `${plural(redactions, 'secret')} redacted`);
    readOnlyTag.hidden = !run.readOnly;
    readOnlyTag.title = run.readOnly ? 'A past run opened for reading: controls do not act on it; labels still can.' : '';
  }
  const ticking = viewedRunLive() && !run?.endedAt;
  if (ticking && !ticker) ticker = window.setInterval(renderElapsed, 1000);
  if (!ticking && ticker) {
    clearInterval(ticker);
    ticker = 0;
  }
  renderElapsed();
}

function renderElapsed(): void {
  const run = data.run;
  if (!run) return;
  const live = viewedRunLive();
  const ms = run.endedAt || live ? elapsedMs(run, Date.now()) : undefined;
  setText(elapsedStat, ms === undefined ? `started ${formatDate(run.startedAt)}` : `${formatDuration(ms)} elapsed`);
  elapsedStat.title = `Started ${formatDate(run.startedAt)}${run.endedAt ? `, ended ${formatDate(run.endedAt)}` : ''}`;
}

function showNotice(notice: { level: 'info' | 'error'; message: string } | undefined): void {
  setText(noticeText, notice?.message ?? '');
  noticeText.dataset.level = notice?.level ?? '';
  noticeRow.hidden = !notice;
}

function renderAttention(): void {
  const flagged = data.flaggedCount;
  attentionBar.hidden = flagged === 0;
  setText(attentionText, flagged ? `${plural(flagged, 'step')} need${flagged === 1 ? 's' : ''} attention${data.unseen ? ` · ${data.unseen} new` : ''}` : '');
}

const sentItems = new Map<string, { item: HTMLLIElement; where: HTMLElement }>();

function sentHintItem(hint: TimelineHint): HTMLLIElement {
  const item = el('li', 'sent-hint');
  const meta = el('div', 'sent-meta');
  const where = el('span', 'where');
  meta.append(el('span', 'tag kind', hint.kind), where);
  if (hint.urgency === 'now') meta.append(el('span', 'tag now', 'now'));
  const text = el('div', 'sent-text', hint.text);
  text.title = hint.text;
  item.append(meta, text);
  sentItems.set(hint.hintId, { item, where });
  updateSentHint(hint);
  return item;
}

function updateSentHint(hint: TimelineHint): void {
  const entry = sentItems.get(hint.hintId);
  if (!entry) return;
  const undelivered = hint.deliveredAtStep === undefined && hint.undelivered !== undefined;
  setText(entry.where, undelivered ? `Hint not delivered: ${hint.undelivered}` : hint.deliveredAtStep === undefined ? 'queued' : `reached step ${hint.deliveredAtStep}`);
  entry.where.title = undelivered ? `Hint not delivered: ${hint.undelivered}` : '';
  entry.where.classList.toggle('queued', hint.deliveredAtStep === undefined && !undelivered);
  entry.where.classList.toggle('undelivered', undelivered);
}

function renderSentHeading(): void {
  const count = data.hints.length;
  sentHeading.hidden = count === 0;
  setText(sentHeading, `Sent hints (${count})${count > MAX_SENT_HINTS_SHOWN ? `, latest ${MAX_SENT_HINTS_SHOWN}` : ''}`);
}

/** The hints sent, newest first (the latest few dozen). */
function renderSentHints(): void {
  sentItems.clear();
  sentList.replaceChildren(...data.hints.slice(-MAX_SENT_HINTS_SHOWN).reverse().map(sentHintItem));
  renderSentHeading();
}

function sentHintAdded(hint: TimelineHint): void {
  sentList.prepend(sentHintItem(hint));
  while (sentList.children.length > MAX_SENT_HINTS_SHOWN) {
    const last = sentList.lastElementChild!;
    for (const [id, entry] of sentItems) if (entry.item === last) sentItems.delete(id);
    last.remove();
  }
  renderSentHeading();
}

function renderRunsSummary(): void {
  setText(runsCount, String(runs.length));
  runsCount.setAttribute('aria-label', plural(runs.length, 'run'));
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
function renderLiveRuns(): void {
  liveSection.hidden = liveRuns.length < 2 && !liveRuns.some((run) => run.sample);
  if (liveSection.hidden) return;
  const waiting = liveRuns.filter((run) => run.need.kind !== 'running' && run.need.kind !== 'ended').length;
  setText(liveHeadingText, `Live runs (${liveRuns.length})${waiting ? ` · ${waiting} need${waiting === 1 ? 's' : ''} you` : ''}`);
  setDisabled(neediestButton, !liveRuns.length);
  liveList.replaceChildren(
    ...liveRuns.map((run) => {
      const item = el('li', 'live-item');
      const open = run.runId === data.run?.runId;
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

function renderRuns(): void {
  runsStale = false;
  runsRenderedFor = data.run?.runId;
  if (!runs.length) {
    runsList.replaceChildren(el('li', 'muted', 'No runs recorded yet.'));
    return;
  }
  runsList.replaceChildren(
    ...runs.map((run) => {
      const item = el('li', 'run-item');
      const live = run.runId === liveRunId;
      const open = run.runId === data.run?.runId;
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

// ---- state --------------------------------------------------------------------------------

let saveTimer = 0;
let firstPendingSave = 0;

/** Saves the view state 1 s after the last change (at most 10 s after the first). */
function scheduleSave(): void {
  const now = Date.now();
  if (!saveTimer) firstPendingSave = now;
  else clearTimeout(saveTimer);
  const wait = Math.max(0, Math.min(SAVE_DELAY_MS, firstPendingSave + SAVE_MAX_WAIT_MS - now));
  saveTimer = window.setTimeout(flushSave, wait);
}

function flushSave(): void {
  if (saveTimer) clearTimeout(saveTimer);
  saveTimer = 0;
  const anchor = list.topAnchor();
  const run = data.run;
  const top = anchor && data.steps[anchor.index];
  vscode.setState({
    version: 2,
    taskDraft: taskBox.value ?? '',
    hintDraft: hintBox.value ?? '',
    hintKind: hintKind.value || 'knowledge',
    hintUrgency: hintWhen.value || 'next',
    runsOpen: runsDetails.open,
    ...(run && top ? { position: { runId: run.runId, step: top.step, delta: anchor.delta, follow: list.follow } } : {}),
    ...(selectedStep !== undefined ? { selectedStep } : {}),
    ...(run || data.count ? { timeline: data.snapshot(MAX_SAVED_STEPS) } : {}),
  });
}

const flushIfPending = () => {
  if (saveTimer) flushSave();
};
window.addEventListener('pagehide', flushIfPending);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') flushIfPending();
});

// ---- messages from the host ---------------------------------------------------------------

/** Replaces everything: a new run, a reconnect, or a rewind that reshaped the timeline. */
function applyInit(payload: InitPayload, restoring: boolean): void {
  const previousRun = data.run?.runId;
  const nextRun = payload.run?.runId;
  let position: { step: number; delta: number; follow: boolean } | undefined;
  // The saved place wins until the host's first `init` (the restored timeline may be cut short).
  const resumingSaved = !!pendingPosition && pendingPosition.runId === nextRun;
  if (resumingSaved) {
    position = pendingPosition;
  } else if (previousRun && previousRun === nextRun) {
    const anchor = list.topAnchor();
    const top = anchor && data.steps[anchor.index];
    if (top) position = { step: top.step, delta: anchor.delta, follow: list.follow };
  }
  if (!restoring) pendingPosition = undefined;
  const focused = list.indexOfNode(document.activeElement);
  const focusedStep = focused !== undefined ? data.steps[focused]?.step : undefined;

  if (reason) {
    reason = undefined;
    reasonForm.node.remove();
  }
  if (previousRun !== nextRun && !restoring && !resumingSaved) {
    selectedStep = undefined;
    if (detail.open) detail.close();
    if (rewindPane.open) rewindPane.close();
  }
  lastFlagIndex = undefined;
  data.reset(payload);
  list.reset();

  const live = viewedRunLive();
  if (position && !position.follow) {
    list.follow = false;
    list.scrollToIndex(nearestIndex(position.step), 'start', position.delta);
  } else if (position?.follow || live) {
    list.scrollToBottom();
  } else {
    list.follow = false;
    list.scrollToIndex(0, 'start');
  }
  emptyNote.hidden = data.count > 0;
  list.render();
  if (focusedStep !== undefined) {
    const index = data.indexOf(focusedStep);
    if (index !== undefined) list.focusIndex(index);
  }

  renderHeader();
  updateControls();
  renderSentHints();
  renderAttention();
  renderLiveRuns();
  if (runsRenderedFor !== nextRun) {
    runsStale = true;
    if (runsDetails.open) renderRuns();
  }
  if (!restoring) {
    showNotice(undefined);
    scheduleSave();
    // The step open before the view reloaded opens again.
    if (resumingSaved && selectedStep !== undefined && data.indexOf(selectedStep) !== undefined && !detail.open) showStep(selectedStep, false);
  }
}

/** The index of the step, or of the first step after it when it is gone. */
function nearestIndex(step: number): number {
  const exact = data.indexOf(step);
  if (exact !== undefined) return exact;
  const after = data.steps.findIndex((candidate) => candidate.step > step);
  return after === -1 ? Math.max(0, data.count - 1) : after;
}

function onMessage(message: HostToWebview): void {
  switch (message.type) {
    case 'init':
      applyInit(message, false);
      break;
    case 'runUpdated': {
      const wasReadOnly = data.run?.readOnly;
      // An info notice about the run's state ("Pausing after the current step.") is over once the state changes.
      if (data.run && data.run.status !== message.run.status && noticeText.dataset.level === 'info') showNotice(undefined);
      data.run = message.run;
      renderHeader();
      updateControls();
      if (wasReadOnly !== message.run.readOnly) list.refreshRendered();
      break;
    }
    case 'stepAdded': {
      const before = data.count;
      const { index, appended } = data.addStep(message.step);
      if (appended) list.appended();
      else if (data.count === before) {
        list.notesChanged(index);
        list.contentChanged(index);
      } else {
        list.shiftedFrom(index);
        if (reason) list.setFormRow(data.indexOf(reason.step) ?? -1);
      }
      emptyNote.hidden = true;
      break;
    }
    case 'hintQueued':
      if (data.hints.some((known) => known.hintId === message.hint.hintId)) break;
      data.addHint(message.hint);
      if (message.hint.deliveredAtStep !== undefined) notesChangedAt(message.hint.deliveredAtStep);
      sentHintAdded(message.hint);
      break;
    case 'hintDelivered': {
      const hint = data.hints.find((candidate) => candidate.hintId === message.hintId);
      const previous = hint?.deliveredAtStep;
      if (data.deliverHint(message.hintId, message.step)) {
        if (previous !== undefined) notesChangedAt(previous);
        notesChangedAt(message.step);
        if (hint) updateSentHint(hint);
      }
      break;
    }
    case 'hintUndelivered': {
      const hint = data.undeliverHint(message.hintId, message.reason);
      if (hint) updateSentHint(hint);
      break;
    }
    case 'timelineNote': {
      const index = data.addNote(message.note);
      if (index !== undefined) list.notesChanged(index);
      break;
    }
    case 'labelAdded': {
      const index = data.addLabel(message.step, message.badge);
      if (index !== undefined) list.contentChanged(index);
      break;
    }
    case 'summaryAdded': {
      const index = data.addSummary(message.step, message.tokensBefore, message.tokensAfter);
      if (index !== undefined) list.notesChanged(index);
      break;
    }
    case 'attention': {
      const index = data.addFlag(message.flag, message.unseen);
      if (index !== undefined) list.notesChanged(index);
      renderAttention();
      break;
    }
    case 'liveRuns':
      liveRuns = Array.isArray(message.runs) ? message.runs : [];
      renderLiveRuns();
      break;
    case 'runs':
      runs = Array.isArray(message.runs) ? message.runs : [];
      liveRunId = message.liveRunId;
      renderRunsSummary();
      runsStale = true;
      if (runsDetails.open) renderRuns();
      updateControls();
      break;
    case 'stepDetail':
      if (detail.open && detail.step !== undefined && detail.step !== message.detail.step) break; // an answer overtaken by a later click
      detail.show(message.detail);
      selectStep(message.detail.step);
      list.keepInView(data.indexOf(message.detail.step) ?? -1);
      if (focusDetailWhenShown) detail.focus();
      focusDetailWhenShown = false;
      break;
    case 'stepDetailFailed':
      if (detail.open && detail.step === message.step) detail.close();
      showNotice({ level: 'error', message: message.message });
      break;
    case 'adoptPreview':
      adoptPane.show(message.preview);
      adoptPane.focus();
      break;
    case 'rewindPreview':
      rewindPane.show(message.preview);
      list.keepInView(data.indexOf(message.preview.step) ?? -1);
      rewindPane.focus();
      break;
    case 'focusNextFlag':
      nextFlag();
      break;
    case 'notice':
      showNotice({ level: message.level, message: message.message });
      break;
  }
}

function notesChangedAt(step: number): void {
  const index = data.indexOf(step);
  if (index !== undefined) list.notesChanged(index);
}

window.addEventListener('message', (event: MessageEvent) => {
  const message = event.data as HostToWebview | undefined;
  if (!message || typeof message !== 'object' || typeof message.type !== 'string') return;
  onMessage(message);
});

// ---- start --------------------------------------------------------------------------------

taskBox.value = saved.taskDraft;
hintBox.value = saved.hintDraft;
renderRunsSummary();
showNotice(undefined);
if (saved.timeline) {
  applyInit(saved.timeline, true);
} else {
  renderHeader();
  renderAttention();
  renderSentHints();
  emptyNote.hidden = false;
  list.render();
}
updateControls();
post({ type: 'ready' });
