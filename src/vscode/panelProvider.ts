/** The sidebar's Intervention panel: a webview whose only script is our bundle, under a strict CSP (core/session/panelPage.ts). */
import * as vscode from 'vscode';
import { PANEL_ROOTS, servedPanelHtml } from '../core/session/panelPage';

export const PANEL_VIEW_ID = 'apollo.panel';

export class PanelProvider implements vscode.WebviewViewProvider {
  private view: vscode.WebviewView | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly onMessage: (message: unknown) => void,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const file = (relative: string) => vscode.Uri.joinPath(this.extensionUri, relative);
    view.webview.options = { enableScripts: true, localResourceRoots: PANEL_ROOTS.map(file) };
    view.webview.html = servedPanelHtml(view.webview.cspSource, (relative) => String(view.webview.asWebviewUri(file(relative))));
    view.webview.onDidReceiveMessage(this.onMessage);
    view.onDidDispose(() => {
      if (this.view === view) this.view = undefined;
    });
  }

  /** Posts to the webview when it is open; a closed view catches up from `init` when it opens. */
  post(message: unknown): void {
    void this.view?.webview.postMessage(message);
  }

  get visible(): boolean {
    return this.view?.visible ?? false;
  }

  setBadge(value: number, tooltip: string): void {
    if (this.view) this.view.badge = value > 0 ? { value, tooltip } : undefined;
  }
}
