/** The sidebar's Intervention panel: a webview whose only script is our bundle, under a strict CSP. */
import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import { panelHtml } from './panelHtml';

export const PANEL_VIEW_ID = 'apollo.panel';

export class PanelProvider implements vscode.WebviewViewProvider {
  private view: vscode.WebviewView | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly onMessage: (message: unknown) => void,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    // The webview may load only its own bundle and the media folder, not the extension's code.
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview');
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    view.webview.options = { enableScripts: true, localResourceRoots: [dist, media] };
    view.webview.html = this.html(view.webview, dist, media);
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

  private html(webview: vscode.Webview, dist: vscode.Uri, media: vscode.Uri): string {
    const nonce = randomBytes(16).toString('base64');
    const toolkit = webview.asWebviewUri(vscode.Uri.joinPath(dist, 'toolkit.min.js'));
    const script = webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js'));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(media, 'panel.css'));
    return panelHtml({
      nonce,
      cspSource: webview.cspSource,
      style: String(style),
      toolkit: String(toolkit),
      script: String(script),
    });
  }
}
