/**
 * Messages from the host. They are incremental (a step, a label, a hint); only `init` replaces
 * everything. Each one updates the state, then has the sections paint what changed.
 */
import type { HostToWebview } from '../src/protocol';
import { renderAttention, nextFlag } from './attention';
import { updateRunControls } from './controls';
import { noticeLevel, renderHeader, showNotice } from './header';
import { renderSentHints, sentHintAdded, updateHintControls, updateSentHint } from './hints';
import { scheduleSave } from './persist';
import { renderLiveRuns, renderRunsIfOpen, renderRunsSummary } from './runs';
import { dropPendingPosition, markRunsStale, setFocusDetailWhenShown, setLastFlagIndex, setLiveRuns, setRuns, setSelectedStep, state, viewedRunLive } from './state';
import { adoptPane, detail, dropReason, emptyNote, list, nearestIndex, notesChangedAt, rewindPane, selectStep, showStep } from './timeline';
import type { InitPayload } from './timelineData';

const data = state.data;

/** The run and hint controls, enabled for the run on screen. */
export function updateControls(): void {
  updateRunControls();
  updateHintControls();
}

/** Replaces everything: a new run, a reconnect, or a rewind that reshaped the timeline. */
export function applyInit(payload: InitPayload, restoring: boolean): void {
  const previousRun = data.run?.runId;
  const nextRun = payload.run?.runId;
  const pendingPosition = state.pendingPosition;
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
  if (!restoring) dropPendingPosition();
  const focused = list.indexOfNode(document.activeElement);
  const focusedStep = focused !== undefined ? data.steps[focused]?.step : undefined;

  dropReason();
  if (previousRun !== nextRun && !restoring && !resumingSaved) {
    setSelectedStep(undefined);
    if (detail.open) detail.close();
    if (rewindPane.open) rewindPane.close();
  }
  setLastFlagIndex(undefined);
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
  if (state.runsRenderedFor !== nextRun) {
    markRunsStale();
    renderRunsIfOpen();
  }
  if (!restoring) {
    showNotice(undefined);
    scheduleSave();
    // The step open before the view reloaded opens again.
    const selectedStep = state.selectedStep;
    if (resumingSaved && selectedStep !== undefined && data.indexOf(selectedStep) !== undefined && !detail.open) showStep(selectedStep, false);
  }
}

export function onMessage(message: HostToWebview): void {
  switch (message.type) {
    case 'init':
      applyInit(message, false);
      break;
    case 'runUpdated': {
      const wasReadOnly = data.run?.readOnly;
      // An info notice about the run's state ("Pausing after the current step.") is over once the state changes.
      if (data.run && data.run.status !== message.run.status && noticeLevel() === 'info') showNotice(undefined);
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
        if (state.reason) list.setFormRow(data.indexOf(state.reason.step) ?? -1);
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
      setLiveRuns(message.runs);
      renderLiveRuns();
      break;
    case 'runs':
      setRuns(message.runs, message.liveRunId);
      renderRunsSummary();
      renderRunsIfOpen();
      updateControls();
      break;
    case 'stepDetail':
      if (detail.open && detail.step !== undefined && detail.step !== message.detail.step) break; // an answer overtaken by a later click
      detail.show(message.detail);
      selectStep(message.detail.step);
      list.keepInView(data.indexOf(message.detail.step) ?? -1);
      if (state.focusDetailWhenShown) detail.focus();
      setFocusDetailWhenShown(false);
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
