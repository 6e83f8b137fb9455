/** The run's header: its title, status, figures (ticking while it goes) and notices. */
import { firstLine, plural } from '../src/protocol';
import { el, setText, vsButton } from './dom';
import { elapsedMs, formatDate, formatDuration, formatTokens, statusText } from './format';
import { setTicker, state, viewedRunLive } from './state';

export const header = el('header', 'header');
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

export function renderHeader(): void {
  const run = state.data.run;
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
  if (ticking && !state.ticker) setTicker(window.setInterval(renderElapsed, 1000));
  if (!ticking && state.ticker) {
    clearInterval(state.ticker);
    setTicker(0);
  }
  renderElapsed();
}

function renderElapsed(): void {
  const run = state.data.run;
  if (!run) return;
  const live = viewedRunLive();
  const ms = run.endedAt || live ? elapsedMs(run, Date.now()) : undefined;
  setText(elapsedStat, ms === undefined ? `started ${formatDate(run.startedAt)}` : `${formatDuration(ms)} elapsed`);
  elapsedStat.title = `Started ${formatDate(run.startedAt)}${run.endedAt ? `, ended ${formatDate(run.endedAt)}` : ''}`;
}

export function showNotice(notice: { level: 'info' | 'error'; message: string } | undefined): void {
  setText(noticeText, notice?.message ?? '');
  noticeText.dataset.level = notice?.level ?? '';
  noticeRow.hidden = !notice;
}

/** The level of the notice shown ('' when none). */
export function noticeLevel(): string {
  return noticeText.dataset.level ?? '';
}
