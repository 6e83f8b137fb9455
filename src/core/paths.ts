/** Path questions asked across the core. */
import path from 'node:path';

/**
 * True when `child` is `parent` or lies below it (lexically: resolve real paths first). A name that
 * only begins with two dots (`..notes`) is inside; only a `..` component leads out.
 */
export function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}
