/**
 * The window's side of the runs: VS Code's notifications, questions, pickers, input boxes, status
 * bar and editors behind the ControllerUi the core's SessionController (src/core/session/
 * controller.ts) decides every flow with. VS Code is called through src/vscode/vscodeApis, so
 * this layer is tested in plain Node too.
 */
import type * as vscode from 'vscode';
import { type ControllerUi, SessionController } from '../core/session/controller';
import { HINT_DEFAULTS, HINT_PLACEHOLDER, type HintInput, describeHintInput, hintOptions, parseHintInput } from '../core/session/hintInput';
import { parseWebviewMessage } from '../protocol';
import { openAdoptPreview, openStepDiff } from './diffProvider';
import { readMaskPolicy, readSettings, userAllowList } from './settings';
import type { SettingsGuard } from './settingsGuard';
import { LanguageModelClient, VSCODE_LM_PROVIDER } from './languageModelClient';
import { pickChatModel } from './languageModels';
import * as commands from './vscodeApis/commands';
import * as window from './vscodeApis/window';
import * as workspace from './vscodeApis/workspace';
import { watchEditorSaves } from './editorSaves';

export class RunController extends SessionController {
  constructor(
    secrets: vscode.SecretStorage,
    log: vscode.LogOutputChannel,
    /** Says when the workspace sets security settings; asked again before each run starts. */
    guard?: Pick<SettingsGuard, 'checkWorkspace'>,
  ) {
    super(vscodeUi(secrets, log, guard));
  }

  /** Handles one message from the webview; anything not in the protocol is dropped and logged. */
  async receive(raw: unknown): Promise<void> {
    const message = parseWebviewMessage(raw);
    if (message) return this.handle(message);
    this.ui.log.warn(`Dropped a malformed message from the panel: ${JSON.stringify(raw)?.slice(0, 200)}`);
  }
}

/** VS Code as the controller's UI: each part a call or two through vscodeApis. */
function vscodeUi(secrets: vscode.SecretStorage, log: vscode.LogOutputChannel, guard?: Pick<SettingsGuard, 'checkWorkspace'>): ControllerUi {
  const statusBar = window.createStatusBarItem('apollo.runState', 50);
  statusBar.name = 'Apollo Run';
  statusBar.command = 'apollo.panel.focus';
  return {
    // Notifications, the modal warning, pick lists, input boxes, progress and showFile: VS Code's window as it is.
    ...window,
    log,
    askHint,
    command: (id) => commands.executeCommand(id),
    openSettings: (setting) => commands.openSettings(setting),
    writeUserSetting: (key, value) => workspace.updateUserSetting(key, value),
    userAllowList: () => userAllowList(workspace.getConfiguration()),
    setting: (key, fallback) => workspace.getConfiguration().get(key, fallback),
    maskPolicy: () => readMaskPolicy(workspace.getConfiguration()),
    isTrusted: () => workspace.isTrusted(),
    firstFolder: () => workspace.firstFolder(),
    settings: (folder) => readSettings(secrets, folder),
    ...(guard ? { checkWorkspace: () => guard.checkWorkspace() } : {}),
    hostModels: {
      provider: VSCODE_LM_PROVIDER,
      /** One of VS Code's language models: no base URL, no key. */
      async choose(wanted, title) {
        const chat = await pickChatModel(wanted, title);
        if (!chat) return undefined;
        log.info(`Model: ${chat.name} (${chat.id}, ${chat.vendor}) from VS Code's language models; sampling settings are recorded but not sent to it.`);
        // The engine learns the prompt budget from the model's input limit (contextWindowDetail).
        return { model: chat.id, baseUrl: '', apiKey: '', client: new LanguageModelClient(chat) };
      },
    },
    outsideSaves: watchEditorSaves,
    openAdoptPreview,
    openStepDiff,
    status: (view) => {
      void commands.setContext('apollo.runState', view.state);
      void commands.setContext('apollo.runLive', view.live);
      void commands.setContext('apollo.needsAttention', view.unseen > 0);
      void commands.setContext('apollo.runsGoing', view.going);
      if (!view.item) {
        statusBar.hide();
        return;
      }
      statusBar.text = view.item.text;
      statusBar.tooltip = view.item.tooltip;
      statusBar.command = view.item.command;
      statusBar.backgroundColor = view.item.warning ? window.warningBackground() : undefined;
      statusBar.show();
    },
    dispose: () => statusBar.dispose(),
  };
}

/**
 * One input box: the hint, its kind and urgency typed as prefixes (the placeholder says how)
 * or chosen through its Options… button; the prompt says what Enter will send.
 */
function askHint(): Promise<HintInput | undefined> {
  const box = window.createInputBox();
  const options = window.inputButton('settings-gear', 'Options… (kind and urgency)');
  let defaults = { ...HINT_DEFAULTS };
  let choosing = false;
  box.title = 'Apollo: Inject Hint';
  box.placeholder = HINT_PLACEHOLDER;
  box.ignoreFocusOut = true;
  box.buttons = [options];
  const update = () => {
    box.prompt = describeHintInput(parseHintInput(box.value, defaults)).message;
    box.validationMessage = undefined;
  };
  update();
  return new Promise((resolve) => {
    let done = false;
    const finish = (hint: HintInput | undefined) => {
      if (done) return;
      done = true;
      box.dispose();
      resolve(hint);
    };
    box.onDidChangeValue(update);
    box.onDidAccept(() => {
      const hint = parseHintInput(box.value, defaults);
      if (hint.text) finish(hint);
      else box.validationMessage = describeHintInput(hint).message;
    });
    box.onDidTriggerButton(async (button) => {
      if (button !== options) return;
      // The pick hides the box for a moment; it comes back with the hint as typed.
      choosing = true;
      const picked = await window.showQuickPick(hintOptions(defaults), { title: 'Apollo: Inject Hint — kind and urgency', placeHolder: 'Prefixes typed in the hint ("strategy:", "!") still win' });
      defaults = picked?.hint ?? defaults;
      choosing = false;
      update();
      box.show();
    });
    box.onDidHide(() => {
      if (!choosing) finish(undefined);
    });
    box.show();
  });
}
