/**
 * The panel's page: only our scripts, under a strict CSP with a nonce. Pure (no VS Code import),
 * so the panel benchmark loads the very page the extension serves.
 */
import { randomBytes } from 'node:crypto';

export interface PanelPage {
  nonce: string;
  /** Where styles, fonts and images may come from (the webview's cspSource). */
  cspSource: string;
  style: string;
  toolkit: string;
  script: string;
  /** Scripts loaded before the panel's own (the benchmark's harness). */
  before?: string[];
}

export function panelHtml(page: PanelPage): string {
  const csp = ["default-src 'none'", `script-src 'nonce-${page.nonce}'`, `style-src ${page.cspSource}`, `font-src ${page.cspSource}`, `img-src ${page.cspSource} data:`].join('; ');
  const before = (page.before ?? []).map((src) => `\n  <script nonce="${page.nonce}" src="${src}"></script>`).join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link rel="stylesheet" href="${page.style}">
  <title>Apollo</title>
</head>
<body>
  <div id="app"></div>${before}
  <script type="module" nonce="${page.nonce}" src="${page.toolkit}"></script>
  <script nonce="${page.nonce}" src="${page.script}"></script>
</body>
</html>`;
}

/** The folders of the extension the panel's webview may load from: its own bundle and the media, not the extension's code. */
export const PANEL_ROOTS = ['dist/webview', 'media'];

/** The page the extension serves: its files (paths relative to the extension) as `uri` gives them to the webview, a fresh nonce each time. */
export function servedPanelHtml(cspSource: string, uri: (file: string) => string, nonce = randomBytes(16).toString('base64')): string {
  return panelHtml({ nonce, cspSource, style: uri('media/panel.css'), toolkit: uri('dist/webview/toolkit.min.js'), script: uri('dist/webview/webview.js') });
}
