/**
 * VS Code's window API, one line a function: the seam the UI code calls through, so that tests in
 * plain Node replace these functions with fakes.
 */
import * as vscode from 'vscode';

export function showErrorMessage(message: string, ...items: string[]): Thenable<string | undefined> {
  return vscode.window.showErrorMessage(message, ...items);
}

export function showWarningMessage(message: string, ...items: string[]): Thenable<string | undefined> {
  return vscode.window.showWarningMessage(message, ...items);
}

/** A modal warning with a detail line; undefined when dismissed. */
export function showModalWarning(message: string, detail: string, ...items: string[]): Thenable<string | undefined> {
  return vscode.window.showWarningMessage(message, { modal: true, detail }, ...items);
}

export function showInformationMessage(message: string, ...items: string[]): Thenable<string | undefined> {
  return vscode.window.showInformationMessage(message, ...items);
}

export function showInputBox(options: vscode.InputBoxOptions): Thenable<string | undefined> {
  return vscode.window.showInputBox(options);
}

export function showQuickPick<T extends vscode.QuickPickItem>(items: readonly T[], options: vscode.QuickPickOptions): Thenable<T | undefined> {
  return vscode.window.showQuickPick(items, options);
}

export function createInputBox(): vscode.InputBox {
  return vscode.window.createInputBox();
}

/** A button on a quick input, with a codicon. */
export function inputButton(icon: string, tooltip: string): vscode.QuickInputButton {
  return { iconPath: new vscode.ThemeIcon(icon), tooltip };
}

/** A progress notification around a task. */
export function withNotificationProgress<T>(title: string, task: () => Thenable<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title }, task);
}

export function createStatusBarItem(id: string, priority: number): vscode.StatusBarItem {
  return vscode.window.createStatusBarItem(id, vscode.StatusBarAlignment.Left, priority);
}

export function warningBackground(): vscode.ThemeColor {
  return new vscode.ThemeColor('statusBarItem.warningBackground');
}

/** Opens a file from disk in a preview editor. */
export async function showFile(file: string): Promise<void> {
  await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(vscode.Uri.file(file)), { preview: true });
}

/** The folder dialog: one folder, or undefined when dismissed. */
export async function showFolderDialog(title: string, openLabel: string, defaultFolder?: string): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({
    title,
    openLabel,
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    ...(defaultFolder ? { defaultUri: vscode.Uri.file(defaultFolder) } : {}),
  });
  return picked?.[0]?.fsPath;
}

/** The save dialog: the file to write, or undefined when dismissed. */
export async function showSaveDialog(title: string, defaultFile: string, filters: Record<string, string[]>): Promise<string | undefined> {
  return (await vscode.window.showSaveDialog({ title, defaultUri: vscode.Uri.file(defaultFile), filters }))?.fsPath;
}

/** A cancellable progress notification: `task` reports lines (and how far it got, in percent points since the last report) and hears the cancel. */
export function withCancellableProgress<T>(title: string, task: (report: (message: string, increment?: number) => void, onCancel: (listener: () => void) => void) => PromiseLike<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) =>
    task(
      (message, increment) => progress.report(increment === undefined ? { message } : { increment, message }),
      (listener) => token.onCancellationRequested(listener),
    ),
  );
}
