/**
 * Which files the user saved in an editor while an action ran. A run's action diff cannot tell
 * such a save from the agent's own write, so the engine marks that step's grounding as mixed,
 * naming the files (see `Grounding.mixed`). Only documents inside the run's workspace count.
 *
 * A save is noted when it is about to happen (`onWillSaveTextDocument`: the editor asks the
 * extension host before it writes, so the note is in before the file is on disk) as well as when
 * it is done: the "did save" event can reach the extension host after the write, late enough for
 * the action to have ended. A save that is noted but then fails marks nothing, since only files
 * that are in the action's diff count. The listeners are held only while some action is watched.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';

interface Watch {
  /** The workspace as given and as its real path (a symlinked folder opens under either). */
  roots: string[];
  saved: Set<string>;
}

const watches = new Set<Watch>();
let listeners: vscode.Disposable[] | undefined;

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

function noteSave(document: vscode.TextDocument): void {
  if (document.uri.scheme !== 'file') return;
  const file = document.uri.fsPath;
  let real: string | undefined;
  for (const watch of watches) {
    for (const root of watch.roots) {
      const relative = inside(file, root) ?? inside((real ??= realpathOr(file)), root);
      if (relative !== undefined) {
        watch.saved.add(relative);
        break;
      }
    }
  }
}

/** Starts noting editor saves in `workspace`; `end()` stops and gives the saved paths, each once. */
export function watchEditorSaves(workspace: string): { end(): string[] } {
  const watch: Watch = { roots: [...new Set([path.resolve(workspace), realpathOr(workspace)])], saved: new Set() };
  watches.add(watch);
  listeners ??= [vscode.workspace.onWillSaveTextDocument((event) => noteSave(event.document)), vscode.workspace.onDidSaveTextDocument(noteSave)];
  let ended = false;
  return {
    end() {
      if (!ended) {
        ended = true;
        watches.delete(watch);
        if (!watches.size) {
          for (const listener of listeners ?? []) listener.dispose();
          listeners = undefined;
        }
      }
      return [...watch.saved].sort();
    },
  };
}
