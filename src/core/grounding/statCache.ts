/**
 * The stat cache: what identifies a file's content without reading it, as git's index keeps it,
 * and when a stat can vouch for content read earlier.
 */
import type { Stats } from 'node:fs';

export interface StatKey {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  mode: number;
}

export const statKey = (stat: Stats): StatKey => ({ size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino, mode: stat.mode });

export const sameStat = (key: StatKey | undefined, stat: Stats) =>
  !!key && key.size === stat.size && key.mtimeMs === stat.mtimeMs && key.ctimeMs === stat.ctimeMs && key.ino === stat.ino && key.mode === stat.mode;

/**
 * Whether a file's stat can vouch for the content read at `readAt`: its last change must lie
 * further back than the file system's timestamp step, or a second write in the same step could
 * leave the same stat behind (git's "racily clean" entries). A second or three, for file systems
 * whose times have whole seconds.
 */
export function settledBefore(stat: Stats, readAt: number): boolean {
  const changed = Math.max(stat.mtimeMs, stat.ctimeMs);
  const step = stat.mtimeMs % 1000 === 0 ? 3000 : 1000;
  return changed <= readAt && readAt - changed > step;
}
