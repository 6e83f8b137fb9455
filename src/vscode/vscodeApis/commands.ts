/** VS Code's commands API, one line a function (the seam tests replace; see window.ts). */
import * as vscode from 'vscode';

export function executeCommand<T = unknown>(command: string, ...args: unknown[]): Thenable<T> {
  return vscode.commands.executeCommand<T>(command, ...args);
}

export function setContext(key: string, value: unknown): Thenable<unknown> {
  return vscode.commands.executeCommand('setContext', key, value);
}

export function openSettings(query: string): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openSettings', query);
}

/** Shows a file or folder in the system's file manager. */
export function revealFile(file: string): Thenable<unknown> {
  return vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(file));
}
