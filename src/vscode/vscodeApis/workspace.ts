/** VS Code's workspace API, one line a function (the seam tests replace; see window.ts). */
import * as vscode from 'vscode';

export function isTrusted(): boolean {
  return vscode.workspace.isTrusted;
}

/** The first workspace folder's path on disk, and whether it is on disk at all (not a remote or virtual folder). */
export function firstFolder(): { path: string; onDisk: boolean } | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder && { path: folder.uri.fsPath, onDisk: folder.uri.scheme === 'file' };
}

export function getConfiguration(section = 'apollo'): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(section);
}

/** Writes a setting (a full key, `apollo.provider`) to the user's settings. */
export async function updateUserSetting(key: string, value: unknown): Promise<void> {
  const dot = key.indexOf('.');
  await vscode.workspace.getConfiguration(key.slice(0, dot)).update(key.slice(dot + 1), value, vscode.ConfigurationTarget.Global);
}
