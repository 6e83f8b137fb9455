// Runs the integration suite inside a real VS Code: code-server driven by Chromium, the same
// mocha `run()` entry that @vscode/test-electron uses on a desktop. Then the end-to-end tests.
// Needs `npm run build` and `npm run compile-tests` first (`npm test` does both).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { format } from 'node:util';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, ROOT, chromiumPath, ensureCodeServer, makeDemoWorkspace, startCodeServer, workbenchUrl, writeUserSettings } from './vscode-server.mjs';

/** The workbench logs its own start-up and its failing look-ups of the extension gallery. */
function isWorkbenchNoise(text) {
  return /^(Resolving connection token|Resolved connection token|Creating a socket|Updating additional builtin|\[Service Worker\]|ChatSessionStore)/.test(text) || /ENOTFOUND|^\s+at /.test(text);
}

const SUITE_TIME_LIMIT_MS = 10 * 60_000;
const testsEntry = path.join(ROOT, 'out', 'test', 'integration', 'index.js');

async function runIntegrationSuite() {
  if (!existsSync(path.join(ROOT, 'dist', 'extension.js')) || !existsSync(testsEntry)) {
    throw new Error('Build first: npm run build && npm run compile-tests');
  }
  ensureCodeServer();
  const temp = mkdtempSync(path.join(os.tmpdir(), 'apollo-vscode-test-'));
  const workspace = makeDemoWorkspace(path.join(temp, 'workspace'));
  const userDataDir = path.join(temp, 'user-data');
  writeUserSettings(userDataDir, {
    'security.workspace.trust.enabled': false,
    'workbench.startupEditor': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'telemetry.telemetryLevel': 'off',
  });
  // Claims and the CLI's datasets go to a folder of the test's own, never the real ~/.apollo.
  const server = await startCodeServer({ workspace, userDataDir, extensionsDir: path.join(temp, 'extensions'), env: { APOLLO_HOME: path.join(temp, 'apollo-home') } });
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    let finish;
    const exited = new Promise((resolve) => (finish = resolve));
    await page.exposeFunction('codeAutomationExit', (code) => finish(code));
    await page.exposeFunction('codeAutomationLog', (type, args) => {
      const text = format(...(Array.isArray(args) ? args : [args]));
      if (text.trim() && !isWorkbenchNoise(text)) console.log(text);
    });
    await page.goto(workbenchUrl({ url: server.url, port: server.port, workspace, extensionTestsPath: testsEntry }));
    const timeout = new Promise((resolve) =>
      setTimeout(() => {
        console.error(`The integration suite did not finish within ${SUITE_TIME_LIMIT_MS / 60_000} minutes.`);
        resolve(1);
      }, SUITE_TIME_LIMIT_MS).unref(),
    );
    const code = await Promise.race([exited, timeout]);
    if (code !== 0) console.error(`code-server log:\n${server.output().slice(-4000)}`);
    return code;
  } finally {
    await browser.close();
    await server.stop();
    rmSync(temp, { recursive: true, force: true });
  }
}

const integrationCode = await runIntegrationSuite().catch((error) => {
  console.error(error.message);
  return 1;
});
console.log(`integration suite exit code: ${integrationCode}`);

// The end-to-end tests drive the panel like a person; they start their own code-server.
const e2e = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', path.join(ROOT, 'out', 'test', 'e2e')], { stdio: 'inherit' });
process.exit(integrationCode === 0 && e2e.status === 0 ? 0 : 1);
