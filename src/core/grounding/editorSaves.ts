/**
 * Which files the user saved in an editor while an action ran. A run's action diff cannot tell
 * such a save from the agent's own write, so the engine marks that step's grounding as mixed,
 * naming the files (see `Grounding.mixed`). Only files inside the run's workspace count.
 *
 * The editor notes a save when it is about to happen (VS Code's `onWillSaveTextDocument`: the
 * editor asks the extension host before it writes, so the note is in before the file is on disk)
 * as well as when it is done: the "did save" event can reach the extension host after the write,
 * late enough for the action to have ended. A save that is noted but then fails marks nothing,
 * since only files that are in the action's diff count. The editor's listeners (`listen`) are
 * held only while some action is watched.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';

interface Watch {
  /** The workspace as given and as its real path (a symlinked folder opens under either). */
  roots: string[];
  saved: Set<string>;
}

function realpathOr(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

/** The path inside `root`, with forward slashes as the dataset writes them; undefined outside it. */
function inside(file: string, root: string): string | undefined {
  const relative = path.relative(root, file);
  if (!relative || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  return relative.split(path.sep).join('/');
}

export class EditorSaves {
  private readonly watches = new Set<Watch>();
  private listening: { dispose(): void } | undefined;

  /** @param listen starts the editor's save events, each with the saved file's path on disk. */
  constructor(private readonly listen: (saved: (file: string) => void) => { dispose(): void }) {}

  /** Starts noting editor saves in `workspace`; `end()` stops and gives the saved paths, each once. */
  watch(workspace: string): { end(): string[] } {
    const watch: Watch = { roots: [...new Set([path.resolve(workspace), realpathOr(workspace)])], saved: new Set() };
    this.watches.add(watch);
    this.listening ??= this.listen((file) => this.note(file));
    let ended = false;
    return {
      end: () => {
        if (!ended) {
          ended = true;
          this.watches.delete(watch);
          if (!this.watches.size) {
            this.listening?.dispose();
            this.listening = undefined;
          }
        }
        return [...watch.saved].sort();
      },
    };
  }

  private note(file: string): void {
    let real: string | undefined;
    for (const watch of this.watches) {
      for (const root of watch.roots) {
        const relative = inside(file, root) ?? inside((real ??= realpathOr(file)), root);
        if (relative !== undefined) {
          watch.saved.add(relative);
          break;
        }
      }
    }
  }
}
