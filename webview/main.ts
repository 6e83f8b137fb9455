/**
 * The Intervention panel. Controls come from @vscode/webview-ui-toolkit (loaded as its own
 * script); every text from the model or the workspace is set with textContent, never as HTML.
 */
import type { HostToWebview, RunView, TimelineHint, TimelineStep, WebviewToHost } from '../src/protocol';

interface VsCodeApi {
  postMessage(message: WebviewToHost): void;
  getState(): PanelState | undefined;
  setState(state: PanelState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

interface PanelState {
  run: RunView | null;
  steps: TimelineStep[];
  hints: TimelineHint[];
  taskDraft: string;
  hintDraft: string;
  notice?: { level: 'info' | 'error'; message: string };
}

type ValueElement = HTMLElement & { value: string; disabled: boolean };

const vscode = acquireVsCodeApi();
let state: PanelState = vscode.getState() ?? { run: null, steps: [], hints: [], taskDraft: '', hintDraft: '' };
const stepItems = new Map<number, HTMLLIElement>();

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K];
function element(tag: string, className?: string, text?: string): HTMLElement;
function element(tag: string, className?: string, text?: string): HTMLElement {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label: string, onClick: () => void, appearance: 'primary' | 'secondary' | 'icon' = 'secondary'): ValueElement {
  const node = element('vscode-button') as ValueElement;
  node.textContent = label;
  node.setAttribute('appearance', appearance);
  node.addEventListener('click', () => {
    if (!node.disabled) onClick();
  });
  return node;
}

function save(): void {
  vscode.setState(state);
}

// ---- static layout -------------------------------------------------------------------------

const app = document.getElementById('app')!;

const taskBox = element('vscode-text-area', 'task') as ValueElement;
taskBox.textContent = 'Task';
taskBox.setAttribute('rows', '3');
taskBox.setAttribute('resize', 'vertical');
taskBox.setAttribute('placeholder', 'What should the agent do?');

const startButton = button('Start run', () => {
  const task = taskBox.value.trim();
  if (!task) return showNotice({ level: 'error', message: 'The task is empty: describe what the agent should do.' });
  vscode.postMessage({ type: 'startRun', task });
}, 'primary');
const pauseButton = button('Pause', () => vscode.postMessage({ type: 'pauseRun' }));
const resumeButton = button('Resume', () => vscode.postMessage({ type: 'resumeRun' }));
const stopButton = button('Stop', () => vscode.postMessage({ type: 'stopRun' }));

const controls = element('div', 'controls');
controls.append(startButton, pauseButton, resumeButton, stopButton);

const statusLine = element('div', 'status');
statusLine.setAttribute('role', 'status');
const noticeLine = element('div', 'notice');
noticeLine.setAttribute('role', 'alert');

const hintBox = element('vscode-text-field', 'hint') as ValueElement;
hintBox.textContent = 'Hint';
hintBox.setAttribute('placeholder', 'Knowledge, strategy or correction for the next step');
const hintKind = element('vscode-dropdown', 'hint-kind') as ValueElement;
hintKind.setAttribute('aria-label', 'Hint kind');
for (const kind of ['knowledge', 'strategy', 'correction']) {
  const option = element('vscode-option', undefined, kind);
  option.setAttribute('value', kind);
  hintKind.append(option);
}
const hintUrgency = element('vscode-dropdown', 'hint-urgency') as ValueElement;
hintUrgency.setAttribute('aria-label', 'When');
for (const [value, label] of [
  ['next', 'next step'],
  ['now', 'now (interrupt)'],
]) {
  const option = element('vscode-option', undefined, label);
  option.setAttribute('value', value);
  hintUrgency.append(option);
}
const sendHintButton = button('Send hint', sendHint);
const hintRow = element('div', 'hint-row');
hintRow.append(hintKind, hintUrgency, sendHintButton);
const queuedList = element('ul', 'queued');
queuedList.setAttribute('aria-label', 'Queued hints');

const timeline = element('ul', 'timeline');
timeline.setAttribute('aria-label', 'Timeline');
const emptyTimeline = element('p', 'empty', 'No steps yet. Type a task and press Start run.');

const runSection = element('section', 'run');
runSection.append(taskBox, controls, statusLine, noticeLine);
const hintSection = element('section', 'hints');
hintSection.append(hintBox, hintRow, queuedList);
app.append(runSection, hintSection, emptyTimeline, timeline);

function sendHint(): void {
  const text = hintBox.value.trim();
  if (!text) return;
  const kind = (hintKind.value || 'knowledge') as 'knowledge' | 'strategy' | 'correction';
  const urgency = hintUrgency.value === 'now' ? 'now' : 'next';
  vscode.postMessage({ type: 'sendHint', text, kind, urgency });
  hintBox.value = '';
  state.hintDraft = '';
  save();
  renderControls();
}

taskBox.addEventListener('input', () => {
  state.taskDraft = taskBox.value;
  save();
  renderControls();
});
hintBox.addEventListener('input', () => {
  state.hintDraft = hintBox.value;
  save();
  renderControls();
});
hintBox.addEventListener('keydown', (event) => {
  if ((event as KeyboardEvent).key === 'Enter') sendHint();
});

// ---- rendering ----------------------------------------------------------------------------

function isLive(): boolean {
  return state.run?.status === 'running' || state.run?.status === 'paused';
}

function renderControls(): void {
  const live = isLive();
  startButton.disabled = live;
  pauseButton.disabled = state.run?.status !== 'running';
  resumeButton.disabled = state.run?.status !== 'paused';
  stopButton.disabled = !live;
  sendHintButton.disabled = !live || hintBox.value.trim() === '';
  const run = state.run;
  statusLine.textContent = run
    ? `${run.status} · ${run.steps} step${run.steps === 1 ? '' : 's'} · ${run.model}${run.error ? ` · ${run.error}` : ''}${
        run.pausedReason ? ` · ${run.pausedReason}: resume or send a hint` : ''
      }`
    : 'No run yet.';
  statusLine.dataset.status = run?.status ?? 'none';
}

function showNotice(notice: PanelState['notice']): void {
  state.notice = notice;
  noticeLine.textContent = notice?.message ?? '';
  noticeLine.dataset.level = notice?.level ?? '';
  save();
}

function diffStat(step: TimelineStep): string {
  if (step.diff.files === 0) return 'no changes';
  return `${step.diff.files} file${step.diff.files === 1 ? '' : 's'} +${step.diff.additions} −${step.diff.deletions}`;
}

function renderHintsInto(item: HTMLLIElement, stepNumber: number): void {
  item.querySelectorAll('.delivered-hint').forEach((node) => node.remove());
  const delivered = state.hints.filter((hint) => hint.deliveredAtStep === stepNumber);
  for (const hint of delivered.reverse()) {
    const note = element('div', 'delivered-hint');
    note.append(element('span', 'hint-label', `Hint delivered at step ${stepNumber} (${hint.kind}): `), element('span', 'hint-text', hint.text));
    item.prepend(note);
  }
}

function renderLabels(container: HTMLElement, step: TimelineStep): void {
  // Labels are appended, never rewritten: each source's latest verdict per axis is what counts and what shows.
  const latest = new Map<string, (typeof step.labels)[number]>();
  for (const badge of step.labels) {
    const key = `${badge.source}|${badge.axis ?? ''}`;
    latest.delete(key);
    latest.set(key, badge);
  }
  container.replaceChildren(
    ...[...latest.values()].map((badge) => {
      const node = element('span', `badge ${badge.label}`, `${badge.label}${badge.axis ? ` (${badge.axis})` : ''} · ${badge.source}`);
      if (badge.reason) node.title = badge.reason;
      return node;
    }),
  );
}

/**
 * The label is recorded at the click; the reason and axis are optional and, when given, are
 * recorded as the same verdict with its details (labels are appended, the latest counts).
 */
function showReasonForm(item: HTMLElement, stepNumber: number, label: 'good' | 'bad'): void {
  // One reason at a time: the form of an earlier click goes (its label is already recorded).
  for (const open of timeline.querySelectorAll('.reason-form')) open.remove();
  const form = element('div', 'reason-form');
  const reason = element('vscode-text-field', 'reason') as ValueElement;
  // The toolkit names its inner input after the label slot (the element's text).
  reason.textContent = `Reason for step ${stepNumber}`;
  reason.setAttribute('placeholder', `Why is it ${label}? (optional)`);
  reason.setAttribute('maxlength', '2000');
  const axis = element('vscode-dropdown', 'axis') as ValueElement;
  axis.setAttribute('aria-label', 'Axis');
  for (const [value, text] of [
    ['', 'Both axes'],
    ['decision', 'Decision'],
    ['execution', 'Execution'],
  ]) {
    const option = element('vscode-option', undefined, text);
    option.setAttribute('value', value);
    axis.append(option);
  }
  const submit = () => {
    const text = reason.value.trim();
    if (!text && !axis.value) return form.remove();
    vscode.postMessage({ type: 'labelStep', step: stepNumber, label, ...(text ? { reason: text } : {}), ...(axis.value === 'decision' || axis.value === 'execution' ? { axis: axis.value } : {}) });
    form.remove();
  };
  reason.addEventListener('keydown', (event) => {
    if ((event as KeyboardEvent).key === 'Enter') submit();
    if ((event as KeyboardEvent).key === 'Escape') form.remove();
  });
  form.append(reason, axis, button('Save reason', submit), button('Skip', () => form.remove()));
  item.append(form);
  reason.focus();
}

function buildStepItem(step: TimelineStep): HTMLLIElement {
  const item = element('li', `step${step.isError ? ' error' : ''}`);
  item.dataset.step = String(step.step);
  item.setAttribute('aria-label', `Step ${step.step}: ${step.tool ?? 'no tool call'} ${step.args}`);

  const head = element('div', 'step-head');
  head.append(element('span', 'step-number', `#${step.step}`), element('span', 'tool', step.tool ?? '(no tool call)'), element('span', 'args', step.args));
  const observation = element('div', 'observation', step.observation);
  const meta = element('div', 'meta');
  const labels = element('span', 'labels');
  renderLabels(labels, step);
  meta.append(element('span', 'diffstat', diffStat(step)), labels);

  const actions = element('div', 'actions');
  actions.append(
    button('Mark good', () => {
      vscode.postMessage({ type: 'labelStep', step: step.step, label: 'good' });
      showReasonForm(item, step.step, 'good');
    }),
    button('Mark bad', () => {
      vscode.postMessage({ type: 'labelStep', step: step.step, label: 'bad' });
      showReasonForm(item, step.step, 'bad');
    }),
    button('Open diff', () => vscode.postMessage({ type: 'openDiff', step: step.step })),
    button('Rewind to here', () => vscode.postMessage({ type: 'rewind', step: step.step })),
  );
  item.append(head, observation, meta, actions);
  renderHintsInto(item, step.step);
  return item;
}

function appendStep(step: TimelineStep): void {
  const item = buildStepItem(step);
  stepItems.set(step.step, item);
  timeline.append(item);
  emptyTimeline.hidden = true;
  // Follow the run when the reader is already at the bottom.
  const scroller = document.scrollingElement ?? document.documentElement;
  if (scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120) item.scrollIntoView({ block: 'nearest' });
}

function renderQueuedHints(): void {
  const queued = state.hints.filter((hint) => hint.deliveredAtStep === undefined);
  queuedList.replaceChildren(
    ...queued.map((hint) => {
      const item = element('li', 'queued-hint');
      item.append(element('span', 'hint-label', `Queued for the next step (${hint.kind}): `), element('span', 'hint-text', hint.text));
      return item;
    }),
  );
}

function renderAll(): void {
  timeline.replaceChildren();
  stepItems.clear();
  for (const step of state.steps) appendStep(step);
  emptyTimeline.hidden = state.steps.length > 0;
  renderQueuedHints();
  renderControls();
  showNotice(state.notice);
}

// ---- messages from the host -----------------------------------------------------------------

window.addEventListener('message', (event: MessageEvent<HostToWebview>) => {
  const message = event.data;
  switch (message.type) {
    case 'init':
      state = { ...state, run: message.run, steps: message.steps, hints: message.hints, notice: undefined };
      renderAll();
      break;
    case 'runUpdated':
      state.run = message.run;
      renderControls();
      break;
    case 'stepAdded':
      state.steps.push(message.step);
      appendStep(message.step);
      break;
    case 'hintQueued':
      state.hints.push(message.hint);
      renderQueuedHints();
      break;
    case 'hintDelivered': {
      const hint = state.hints.find((candidate) => candidate.hintId === message.hintId);
      if (hint) hint.deliveredAtStep = message.step;
      renderQueuedHints();
      const item = stepItems.get(message.step);
      if (item) renderHintsInto(item, message.step);
      break;
    }
    case 'labelAdded': {
      const step = state.steps.find((candidate) => candidate.step === message.step);
      if (!step) break;
      step.labels.push(message.badge);
      const labels = stepItems.get(message.step)?.querySelector<HTMLElement>('.labels');
      if (labels) renderLabels(labels, step);
      break;
    }
    case 'notice':
      showNotice({ level: message.level, message: message.message });
      break;
  }
  save();
});

// A delivered hint belongs to the step whose request carried it; that step's item appears
// after the hint is delivered, so it is rendered with the item (buildStepItem).
taskBox.value = state.taskDraft;
hintBox.value = state.hintDraft;
renderAll();
vscode.postMessage({ type: 'ready' });
