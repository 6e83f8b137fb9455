/**
 * The editor's UI as the core's command flows ask through it: notifications, a modal warning, an
 * input box, a pick list, dialogs and progress. Only shapes, no editor import: VS Code's window functions
 * (src/vscode/vscodeApis/window.ts) fit them as they are, and tests in plain Node pass fakes.
 */

export interface InputOptions {
  title?: string;
  prompt?: string;
  placeHolder?: string;
  value?: string;
  password?: boolean;
  ignoreFocusOut?: boolean;
  /** A message when the value will not do, else undefined. */
  validateInput?(value: string): string | undefined;
}

export interface PickItem {
  label: string;
  description?: string;
  detail?: string;
}

export interface PickOptions {
  title?: string;
  placeHolder?: string;
  matchOnDescription?: boolean;
  matchOnDetail?: boolean;
  ignoreFocusOut?: boolean;
}

/** Where to send one's attention: a notification answers with the button chosen, undefined when dismissed. */
export interface Notifications {
  showInformationMessage(message: string, ...items: string[]): PromiseLike<string | undefined>;
  showWarningMessage(message: string, ...items: string[]): PromiseLike<string | undefined>;
  showErrorMessage(message: string, ...items: string[]): PromiseLike<string | undefined>;
}

/** A question that waits for its answer: the button chosen, undefined when dismissed. */
export interface Confirmations {
  /** A modal warning with its detail line. */
  showModalWarning(message: string, detail: string, ...items: string[]): PromiseLike<string | undefined>;
}

export interface Prompts {
  showInputBox(options: InputOptions): PromiseLike<string | undefined>;
  showQuickPick<T extends PickItem>(items: readonly T[], options: PickOptions): PromiseLike<T | undefined>;
  /** One folder, undefined when dismissed. */
  showFolderDialog(title: string, openLabel: string, defaultFolder?: string): PromiseLike<string | undefined>;
  /** A file to write, undefined when dismissed. */
  showSaveDialog(title: string, defaultFile: string, filters: Record<string, string[]>): PromiseLike<string | undefined>;
}

export interface Progress {
  withNotificationProgress<T>(title: string, task: () => PromiseLike<T>): PromiseLike<T>;
  /** `task` reports lines (and how far it got, in percent points since the last report) and hears the cancel. */
  withCancellableProgress<T>(title: string, task: (report: (message: string, increment?: number) => void, onCancel: (listener: () => void) => void) => PromiseLike<T>): PromiseLike<T>;
}

export type EditorUi = Notifications & Prompts & Progress;

/** The log the flows write to (VS Code's LogOutputChannel fits). */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}
