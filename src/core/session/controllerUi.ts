/**
 * What the window's controller (controller.ts) is given: the settings of the open folder, and the
 * editor's side as callbacks (notifications, questions, pickers, input boxes, editors, settings),
 * which the VS Code layer implements through its API and tests implement with fakes.
 */
import type { Grounding, ReasoningInContext, SamplingOptions } from '../dataset/events';
import type { ChatModelClient } from '../agent/modelClient';
import type { CommandSandboxOptions } from '../agent/tools';
import type { JudgeOptions } from '../supervision/judge';
import type { MaskPolicy } from '../supervision/labels';
import type { AdoptPreview } from './adopt';
import type { ResolvedEndpoint } from './endpoint';
import type { HintInput } from './hintInput';
import type { HostToWebview } from './panelViews';
import type { StatusView } from './registry';
import type { SessionOptions } from './runOptions';

/** What the window's runs take from the settings of the open folder. */
export interface ControllerSettings {
  /** Who serves the model: an OpenAI-compatible endpoint, or the editor (ControllerUi.hostModels). */
  provider: string;
  endpoint: ResolvedEndpoint;
  sampling?: SamplingOptions;
  reasoningInContext: ReasoningInContext;
  datasetDir: string;
  maxSteps: number;
  /** 0: derived from the model's context window. */
  contextBudget: number;
  grounding: { exclude: string[]; maxFileBytes: number };
  sandbox: CommandSandboxOptions;
  secretsToModel: boolean;
  judge?: JudgeOptions;
  budget: { maxMinutes?: number; maxTokens?: number };
  runsDir: string;
  sampleCount: number;
  concurrency: number;
}

/** The model a run talks to: an OpenAI-compatible endpoint, or a client the editor serves (no URL or key). */
export interface ModelChoice {
  model: string;
  baseUrl: string;
  apiKey: string;
  client?: ChatModelClient;
}

/** What a command needs of the workspace: a folder on disk (`folder` says why), trusted when `untrusted` says what is refused there. */
export interface WorkspaceNeed {
  folder?: string;
  /** "start runs in an untrusted workspace: …" */
  untrusted?: string;
}

export interface PanelChannel {
  post(message: HostToWebview): void;
  /** The number on the view's icon: steps that need the annotator. */
  setBadge?(value: number, tooltip: string): void;
}

export interface PickItem {
  label: string;
  description?: string;
  detail?: string;
}

export interface PickOptions {
  title: string;
  placeHolder?: string;
  matchOnDescription?: boolean;
  matchOnDetail?: boolean;
}

export interface InputOptions {
  title: string;
  prompt: string;
  placeHolder?: string;
  value?: string;
  ignoreFocusOut?: boolean;
  /** What is wrong with the value typed, undefined when it will do. */
  validateInput?(value: string): string | undefined;
}

/** The editor's side of the window: what the controller shows, asks and opens. */
export interface ControllerUi<Settings extends ControllerSettings = ControllerSettings> {
  readonly log: { info(line: string): void; warn(line: string): void; error(line: string): void };
  /** A notification with buttons; resolves with the one chosen, undefined when dismissed. */
  notify(level: 'info' | 'warning' | 'error', message: string, ...actions: string[]): PromiseLike<string | undefined>;
  /** A modal warning with its detail; resolves with the button chosen, undefined when dismissed. */
  confirm(message: string, detail: string, ...actions: string[]): PromiseLike<string | undefined>;
  pick<T extends PickItem>(items: readonly T[], options: PickOptions): PromiseLike<T | undefined>;
  input(options: InputOptions): PromiseLike<string | undefined>;
  /** The hint, its kind and urgency, asked at once; undefined when dismissed. */
  askHint(): PromiseLike<HintInput | undefined>;
  /** A progress notification while `task` runs. */
  progress<T>(title: string, task: () => Promise<T>): PromiseLike<T>;
  /** Runs an editor command (a fix's command, `apollo.panel.focus`). */
  command(id: string): PromiseLike<unknown>;
  /** Opens the settings at one setting. */
  openSettings(setting: string): PromiseLike<unknown>;
  /** Writes a setting (a full key, `apollo.provider`) to the user's settings. */
  writeUserSetting(key: string, value: unknown): PromiseLike<void>;
  /** The user's own apollo.sandbox.allow list, never a workspace's. */
  userAllowList(): string[];
  /** A setting under `apollo.` (`attention.notify`). */
  setting<T>(key: string, fallback: T): T;
  maskPolicy(): MaskPolicy;
  isTrusted(): boolean;
  /** The first workspace folder, and whether it is on disk (not a remote or virtual folder). */
  firstFolder(): { path: string; onDisk: boolean } | undefined;
  /** The settings of the workspace folder. */
  settings(folder: string): Promise<Settings>;
  /** Says when the workspace sets security settings; asked again before each run starts. */
  checkWorkspace?(): PromiseLike<unknown>;
  /** Models the editor serves: the provider setting that names them, and the one a run uses (undefined when the pick is dismissed). */
  hostModels?: { provider: string; choose(wanted: string, title: string): Promise<ModelChoice | undefined> };
  /** Which files someone saved in an editor while an action ran. */
  outsideSaves?: SessionOptions['outsideSaves'];
  openAdoptPreview(preview: AdoptPreview): PromiseLike<void>;
  openStepDiff(step: number, grounding: Grounding, shadow: { workspace: string; storeDir: string }): PromiseLike<void>;
  /** Opens a file from disk in an editor. */
  showFile(file: string): PromiseLike<void>;
  /** What the status bar and the context keys show, each time it may have changed. */
  status(view: StatusView): void;
  dispose?(): void;
}
