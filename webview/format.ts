/** How the panel writes numbers, durations, dates and the compact forms of a step. */
import { type DiffStat, type LabelBadge, plural, type RewardView, type RunView } from '../src/protocol';

const integer = new Intl.NumberFormat('en-US');
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

export function formatInteger(value: number): string {
  return integer.format(value);
}

/** 1,234 below a hundred thousand, 1.2M above. */
export function formatTokens(tokens: number): string {
  return tokens < 100_000 ? integer.format(tokens) : compact.format(tokens);
}

/** m:ss, h:mm:ss, or "2 d 03:04:05" for runs that last days. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const seconds = total % 60;
  const minutes = Math.floor(total / 60) % 60;
  const hours = Math.floor(total / 3600) % 24;
  const days = Math.floor(total / 86_400);
  const two = (value: number) => String(value).padStart(2, '0');
  if (days > 0) return `${days} d ${two(hours)}:${two(minutes)}:${two(seconds)}`;
  if (hours > 0) return `${hours}:${two(minutes)}:${two(seconds)}`;
  return `${minutes}:${two(seconds)}`;
}

let dateFormat: Intl.DateTimeFormat | undefined;

export function formatDate(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  // One formatter for all: toLocaleString with options builds a new one per call.
  dateFormat ??= new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  return dateFormat.format(date);
}

export function diffStat(diff: DiffStat): string {
  if (diff.files === 0) return 'no changes';
  return `${plural(diff.files, 'file')} +${integer.format(diff.additions)} −${integer.format(diff.deletions)}`;
}

/** Whitespace folded, for one-line notes (the full text goes in the title). */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Labels are appended, never rewritten: each source's latest verdict per axis is what counts and what shows. */
export function latestBadges(labels: readonly LabelBadge[]): LabelBadge[] {
  const latest = new Map<string, LabelBadge>();
  for (const badge of labels) {
    const key = `${badge.source}|${badge.axis ?? ''}`;
    latest.delete(key);
    latest.set(key, badge);
  }
  return [...latest.values()];
}

/** The status line's text; an e2e test waits for /^finished · 5 steps/. */
export function statusText(run: RunView | null): string {
  if (!run) return 'No run yet.';
  const parts = [run.status, plural(run.steps, 'step'), run.model];
  if (run.error) parts.push(run.error);
  if (run.stopReason) parts.push(run.stopReason);
  if (run.pausedReason) parts.push(`${run.pausedReason}: resume or send a hint`);
  return parts.join(' · ');
}

export function elapsedMs(run: RunView, now: number): number | undefined {
  const start = Date.parse(run.startedAt);
  if (Number.isNaN(start)) return undefined;
  const end = run.endedAt ? Date.parse(run.endedAt) : now;
  return Number.isNaN(end) ? undefined : end - start;
}

/** A suite run's verdict as the live runs list shows it: "hello-file · reward 1", "… · no reward: timed out". */
export function suiteTaskText(task: { name: string; reward?: RewardView; verifying?: boolean }): string {
  if (task.verifying) return `${task.name} · verifying…`;
  if (!task.reward) return task.name;
  if (task.reward.value === undefined) return `${task.name} · no reward: ${task.reward.error ?? 'none given'}`;
  const value = Number.isInteger(task.reward.value) ? String(task.reward.value) : task.reward.value.toFixed(3);
  return `${task.name} · reward ${value}`;
}
