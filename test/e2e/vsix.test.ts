/**
 * The packaged extension: `vsce package` makes a .vsix that installs into a fresh VS Code and
 * works there (the panel opens and runs a task), with nothing but the .vsix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';

const ROOT = path.resolve(__dirname, '../../..');
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- a real import() of an ES module: tsc turns import() into require() in CommonJS output
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<any>;

test('the packaged .vsix installs into a fresh VS Code and runs a task', { timeout: 240_000 }, async () => {
  const harness = await importModule(path.join(ROOT, 'scripts', 'vscode-server.mjs'));
  const temp = mkdtempSync(path.join(os.tmpdir(), 'apollo-vsix-'));
  const vsix = path.join(temp, 'apollo.vsix');
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'vsce'), ['package', '--out', vsix], { cwd: ROOT, stdio: 'ignore' });
  assert.ok(statSync(vsix).size < 1024 * 1024, 'the package stays small: only the bundles and media');
  const extensionsDir = path.join(temp, 'extensions');
  harness.installVsix(vsix, extensionsDir);

  const model = await startScriptedModelServer([{ toolCall: { name: 'write_file', arguments: { path: 'from-vsix.txt', content: 'ok\n' } }, delayMs: 500 }]);
  const workspace = harness.makeDemoWorkspace(path.join(temp, 'workspace'));
  const userDataDir = path.join(temp, 'user-data');
  harness.writeUserSettings(userDataDir, {
    'security.workspace.trust.enabled': false,
    'workbench.startupEditor': 'none',
    'apollo.baseUrl': model.baseUrl,
    'apollo.model': 'scripted-model',
    'apollo.maxSteps': 2,
  });
  const server = await harness.startCodeServer({ workspace, userDataDir, extensionsDir, env: { OPENAI_API_KEY: 'vsix-test-key', APOLLO_HOME: path.join(temp, 'apollo-home') } });
  const browser = await chromium.launch({ executablePath: harness.chromiumPath(), headless: true, args: harness.CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(harness.workbenchUrl({ url: server.url, port: server.port, workspace, development: false }));
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await page.locator('.activitybar [aria-label^="Apollo"]').first().click({ timeout: 30_000 });
    const panel = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
    await panel.getByRole('textbox', { name: 'Task' }).fill('Write from-vsix.txt');
    await panel.getByRole('button', { name: 'Start run' }).click();
    await panel.getByRole('list', { name: 'Timeline' }).getByRole('listitem').first().waitFor({ timeout: 30_000 });
    await panel.getByText(/^finished · 2 steps/).waitFor({ timeout: 30_000 });
    assert.equal(execFileSync('cat', [path.join(workspace, 'from-vsix.txt')], { encoding: 'utf8' }), 'ok\n');
  } finally {
    await browser.close();
    await server.stop();
    await model.close();
    rmSync(temp, { recursive: true, force: true });
  }
});
