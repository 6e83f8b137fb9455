/**
 * The timeline (virtualized: see virtualList.ts and stepRows.ts) with its reason form, the
 * rewind and adopt confirmations, and the step detail.
 */
import { LABEL_AXES, oneOf } from '../src/protocol';
import { el } from './dom';
import { post } from './host';
import { AdoptPane, RewindPane, StepDetailPane } from './panes';
import { scheduleSave } from './persist';
import { setFocusDetailWhenShown, setReason, setSelectedStep, state } from './state';
import { buildReasonForm, type StepRow, StepRows } from './stepRows';
import { VirtualList } from './virtualList';

const data = state.data;

export const scroller = el('div', 'timeline-scroller');
export const emptyNote = el('p', 'empty', 'No steps yet. Type a task and press Start run.');
export const timelineList = el('ul', 'timeline');
timelineList.setAttribute('role', 'list');
timelineList.setAttribute('aria-label', 'Timeline');
const measureHost = el('div', 'measure');
measureHost.setAttribute('aria-hidden', 'true');
measureHost.inert = true;
scroller.append(emptyNote, timelineList, measureHost);

export const reasonForm = buildReasonForm(saveReason, () => closeReason(true));

const rows = new StepRows(
  data,
  {
    readOnly: () => !!data.run?.readOnly,
    selectedStep: () => state.selectedStep,
    form: () => (state.reason ? { step: state.reason.step, node: reasonForm.node } : undefined),
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
export const list = new VirtualList<StepRow>(scroller, timelineList, rows);

// ---- rewind confirmation and step detail --------------------------------------------------

export const rewindPane = new RewindPane({
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

export const adoptPane = new AdoptPane({
  confirm: (runId, overwrite) => {
    post({ type: 'adoptRun', runId, overwrite });
    adoptPane.close();
  },
  cancel: () => adoptPane.close(),
});

export const detail = new StepDetailPane({
  openDiff: (step) => post({ type: 'openDiff', step }),
  openFullOutput: (step) => post({ type: 'openFullOutput', step }),
  close: () => closeDetail(true),
});

// ---- actions ------------------------------------------------------------------------------

export function showStep(step: number, focusWhenShown: boolean): void {
  selectStep(step);
  setFocusDetailWhenShown(focusWhenShown);
  if (detail.step !== step || !detail.open) detail.loading(step);
  list.keepInView(data.indexOf(step) ?? -1);
  post({ type: 'showStep', step });
}

export function selectStep(step: number | undefined): void {
  if (step === state.selectedStep) return;
  const previous = setSelectedStep(step);
  for (const changed of [previous, step]) {
    const index = changed === undefined ? undefined : data.indexOf(changed);
    if (index !== undefined) list.contentChanged(index);
  }
  scheduleSave();
}

export function closeDetail(returnFocus: boolean): void {
  const step = detail.step;
  detail.close();
  selectStep(undefined);
  if (returnFocus && step !== undefined) list.focusIndex(data.indexOf(step) ?? -1);
}

function openReason(row: StepRow, label: 'good' | 'bad'): void {
  // One reason at a time: the form of an earlier click goes (its label is already recorded).
  setReason({ step: row.step, label });
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
  const reason = state.reason;
  if (!reason) return;
  const text = reasonForm.field.value.trim();
  const axis = reasonForm.axis.value;
  if (text || oneOf(LABEL_AXES, axis)) {
    post({ type: 'labelStep', step: reason.step, label: reason.label, ...(text ? { reason: text } : {}), ...(oneOf(LABEL_AXES, axis) ? { axis } : {}) });
  }
  closeReason(true);
}

function closeReason(returnFocus: boolean): void {
  if (!state.reason) return;
  const step = state.reason.step;
  const hadFocus = reasonForm.node.contains(document.activeElement);
  setReason(undefined);
  reasonForm.node.remove();
  list.setFormRow(-1);
  const index = data.indexOf(step);
  if (index !== undefined) list.contentChanged(index);
  list.render();
  if (returnFocus && hadFocus && index !== undefined) list.rowOf(index)?.node.focus({ preventScroll: true });
}

/** Drops the reason form without a word (a new timeline replaces the one it was on). */
export function dropReason(): void {
  if (state.reason) {
    setReason(undefined);
    reasonForm.node.remove();
  }
}

/** The index of the step, or of the first step after it when it is gone. */
export function nearestIndex(step: number): number {
  const exact = data.indexOf(step);
  if (exact !== undefined) return exact;
  const after = data.steps.findIndex((candidate) => candidate.step > step);
  return after === -1 ? Math.max(0, data.count - 1) : after;
}

export function notesChangedAt(step: number): void {
  const index = data.indexOf(step);
  if (index !== undefined) list.notesChanged(index);
}
