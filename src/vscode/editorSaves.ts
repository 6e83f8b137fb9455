/** Which files the user saved in an editor while an action ran (core/grounding/editorSaves.ts), from VS Code's save events. */
import * as vscode from 'vscode';
import { EditorSaves } from '../core/grounding/editorSaves';

const saves = new EditorSaves((saved) => {
  const note = (document: vscode.TextDocument) => {
    if (document.uri.scheme === 'file') saved(document.uri.fsPath);
  };
  const listeners = [vscode.workspace.onWillSaveTextDocument((event) => note(event.document)), vscode.workspace.onDidSaveTextDocument(note)];
  return { dispose: () => listeners.forEach((listener) => listener.dispose()) };
});

/** Starts noting editor saves in `workspace`; `end()` stops and gives the saved paths, each once. */
export const watchEditorSaves = (workspace: string) => saves.watch(workspace);
