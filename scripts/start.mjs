// `npm start`: VS Code with Apollo loaded on a demo workspace (a copy of demo/ made into its own
// git repository). Desktop VS Code when a `code` command exists, otherwise code-server on 127.0.0.1.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CACHE, ROOT, ensureCodeServer, findDesktopCode, freePort, makeDemoWorkspace, startCodeServer, workbenchUrl, writeUserSettings } from './vscode-server.mjs';

const workspace = path.join(CACHE, 'demo-workspace');
if (!existsSync(workspace)) {
  makeDemoWorkspace(workspace);
  console.log(`Demo workspace created: ${workspace}`);
}

const code = findDesktopCode();
if (code && process.env.APOLLO_USE_CODE_SERVER !== '1') {
  console.log('Starting VS Code with Apollo loaded…');
  spawn(code, ['--new-window', `--extensionDevelopmentPath=${ROOT}`, workspace], { stdio: 'inherit', detached: true }).unref();
} else {
  ensureCodeServer();
  const userDataDir = path.join(CACHE, 'user-data');
  writeUserSettings(userDataDir, { 'workbench.startupEditor': 'none', 'security.workspace.trust.untrustedFiles': 'open' });
  const wanted = Number(process.env.APOLLO_PORT ?? 8080);
  const port = await freePortOr(wanted);
  const server = await startCodeServer({
    workspace,
    userDataDir,
    extensionsDir: path.join(CACHE, 'extensions'),
    port,
    quiet: true,
  });
  const url = workbenchUrl({ url: server.url, port: server.port, workspace });
  console.log('\nVS Code (code-server) is running with Apollo loaded on the demo workspace. Open:\n');
  console.log(`  ${url}\n`);
  console.log('In VS Code: click "Apollo" in the activity bar, set the endpoint (settings apollo.baseUrl and');
  console.log('apollo.model, then "Apollo: Set API Key"), type a task and press "Start run". Ctrl+C stops the server.');
  const shutdown = async () => {
    await server.stop();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

/** The wanted port when it is free, else any free one. */
async function freePortOr(wanted) {
  const net = await import('node:net');
  const free = await new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(wanted, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
  return free ? wanted : freePort();
}
