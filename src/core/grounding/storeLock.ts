/** Work on one store is done one piece at a time: git's index lock allows no more. */
const storeLocks = new Map<string, Promise<unknown>>();

export function withStoreLock<T>(storeDir: string, work: () => Promise<T>): Promise<T> {
  const previous = storeLocks.get(storeDir) ?? Promise.resolve();
  const next = previous.then(work, work);
  storeLocks.set(
    storeDir,
    next.catch(() => undefined),
  );
  return next;
}
