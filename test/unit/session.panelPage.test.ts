/** The panel's page: a strict CSP, only our scripts and each with the page's nonce, the files from where the webview is allowed to load. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { PANEL_ROOTS, panelHtml, servedPanelHtml } from '../../src/core/session/panelPage';

const SOURCE = 'https://webview.example';

test('the page allows only scripts with its nonce, and styles, fonts and images from the webview', () => {
  const html = panelHtml({ nonce: 'n0nce', cspSource: SOURCE, style: 's.css', toolkit: 't.js', script: 'w.js', before: ['h.js'] });
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
  assert.equal(csp, `default-src 'none'; script-src 'nonce-n0nce'; style-src ${SOURCE}; font-src ${SOURCE}; img-src ${SOURCE} data:`);
  const scripts = [...html.matchAll(/<script([^>]*)><\/script>/g)].map((match) => match[1].trim());
  assert.deepEqual(scripts, ['nonce="n0nce" src="h.js"', 'type="module" nonce="n0nce" src="t.js"', 'nonce="n0nce" src="w.js"'], 'the harness first, then the toolkit and the panel; nothing inline');
  assert.match(html, /<link rel="stylesheet" href="s\.css">/);
  assert.match(html, /<div id="app"><\/div>/);
  assert.equal(html.match(/<script/g)?.length, 3);
});

test('the served page names the bundle and media files through the webview, with a fresh nonce each time', () => {
  const asked: string[] = [];
  const uri = (file: string) => (asked.push(file), `${SOURCE}/ext/${file}`);
  const html = servedPanelHtml(SOURCE, uri);
  assert.deepEqual(asked, ['media/panel.css', 'dist/webview/toolkit.min.js', 'dist/webview/webview.js']);
  assert.ok(
    asked.every((file) => PANEL_ROOTS.some((root) => file.startsWith(`${root}/`))),
    'every file lies in a folder the webview may load from',
  );
  assert.match(html, new RegExp(`src="${SOURCE}/ext/dist/webview/webview\\.js"`));
  const nonce = (page: string) => /script-src 'nonce-([^']+)'/.exec(page)?.[1];
  const first = nonce(html);
  assert.ok(first && Buffer.from(first, 'base64').length === 16, first);
  assert.notEqual(nonce(servedPanelHtml(SOURCE, uri)), first);
  assert.equal(nonce(servedPanelHtml(SOURCE, uri, 'fixed')), 'fixed');
  assert.doesNotMatch(html, /<script(?![^>]*nonce=")/, 'no script without the nonce');
});
