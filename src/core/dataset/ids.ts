import { randomBytes } from 'node:crypto';

function pad(value: number): string {
  return String(value).padStart(2, '0');
}

/** Run ids sort by start time (UTC) and stay unique across machines: `YYYYMMDD-HHMMSS-<8 hex>`. */
export function newRunId(now: Date = new Date()): string {
  const date = `${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}`;
  const time = `${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}`;
  return `${date}-${time}-${randomBytes(4).toString('hex')}`;
}

export function newHintId(): string {
  return `h-${randomBytes(6).toString('hex')}`;
}

/** Run ids become folder names: only the characters newRunId produces are accepted. */
export function isValidRunId(runId: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(runId) && !runId.includes('..');
}
