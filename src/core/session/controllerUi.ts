/**
 * What the window's controller (controller.ts) is given: the settings of the open folder
 * (ApolloSettings), and the editor's side: the window's notifications, modal warning, pickers,
 * input boxes and progress as the core's other flows ask through them (../ui.ts), and callbacks
 * for hints, editors and settings. The VS Code layer implements it through its API and tests
 * implement it with fakes.
 */
import type { Confirmations, Log, Notifications, Progress, Prompts } from '../ui';
import type { Grounding } from '../dataset/events';
import type { ChatModelClient } from '../agent/modelClient';
import type { MaskPolicy } from '../supervision/labels';
import type { AdoptPreview } from './adopt';
import type { HintInput } from './hintInput';
import type { HostToWebview } from './panelViews';
import type { StatusView } from './registry';
import type { SessionOptions } from './runOptions';
import type { ApolloSettings } from './settings';

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

/** The editor's side of the window: what the controller shows, asks and opens. */
export interface ControllerUi extends Notifications, Confirmations, Pick<Prompts, 'showInputBox' | 'showQuickPick'>, Pick<Progress, 'withNotificationProgress'> {
  readonly log: Log;
  /** The hint, its kind and urgency, asked at once; undefined when dismissed. */
  askHint(): PromiseLike<HintInput | undefined>;
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
  settings(folder: string): Promise<ApolloSettings>;
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
