/** Path questions asked across the core. */
import path from 'node:path';

/** True when `child` is `parent` or lies below it (lexically: resolve real paths first). */
export function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
