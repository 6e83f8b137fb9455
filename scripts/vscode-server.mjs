// Finds or installs a VS Code to run the extension in: desktop `code` when present, otherwise
// code-server (VS Code's server and web client, from npm) cached in the git-ignored .vscode-test/.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, readFileSync, copyFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CACHE = path.join(ROOT, '.vscode-test');
const CODE_SERVER_VERSION = '4.100.3'; // VS Code 1.100.3, runs on Node 20
const INSTALL_DIR = path.join(CACHE, `code-server-${CODE_SERVER_VERSION}`);
const BIN = path.join(INSTALL_DIR, 'node_modules', '.bin', 'code-server');
const RIPGREP_ARCHIVE = 'ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz';

export function findDesktopCode() {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, process.platform === 'win32' ? 'code.cmd' : 'code');
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The @vscode/ripgrep postinstall inside code-server downloads a binary; it first looks for a
 * cached archive, which we make from the system's ripgrep (no download needed).
 */
function seedRipgrepCache(versions) {
  const rg = ['/usr/bin/rg', '/usr/local/bin/rg'].find((candidate) => existsSync(candidate));
  if (!rg) throw new Error('ripgrep is missing: install it first (Debian/Ubuntu: apt-get install ripgrep).');
  const staging = path.join(os.tmpdir(), 'apollo-rg-staging');
  mkdirSync(staging, { recursive: true });
  copyFileSync(rg, path.join(staging, 'rg'));
  for (const version of versions) {
    const dir = path.join(os.tmpdir(), `vscode-ripgrep-cache-${version}`);
    const archive = path.join(dir, RIPGREP_ARCHIVE);
    if (existsSync(archive)) continue;
    mkdirSync(dir, { recursive: true });
    execFileSync('tar', ['-C', staging, '-czf', archive, 'rg']);
  }
}

function ripgrepVersionsToSeed() {
  const versions = [];
  for (const minor of [15, 16, 17]) for (let patch = 0; patch <= 30; patch++) versions.push(`1.${minor}.${patch}`);
  return versions;
}

/** Installs code-server once; later calls return the cached binary at once. */
export function ensureCodeServer() {
  if (existsSync(BIN)) return BIN;
  if (process.platform !== 'linux') throw new Error('No `code` command on PATH: install VS Code (https://code.visualstudio.com) and retry.');
  console.log(`Installing code-server ${CODE_SERVER_VERSION} into ${path.relative(ROOT, INSTALL_DIR)} (once, about a minute)…`);
  seedRipgrepCache(ripgrepVersionsToSeed());
  rmSync(INSTALL_DIR, { recursive: true, force: true });
  mkdirSync(INSTALL_DIR, { recursive: true });
  // npm 11 skips dependencies' install scripts unless allowed; code-server's postinstall builds
  // the VS Code server's native modules.
  writeFileSync(path.join(INSTALL_DIR, 'package.json'), JSON.stringify({ private: true, allowScripts: { 'code-server': true, argon2: true } }));
  const started = Date.now();
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `code-server@${CODE_SERVER_VERSION}`], {
    cwd: INSTALL_DIR,
    stdio: 'inherit',
    env: { ...process.env, npm_config_unsafe_perm: 'true', npm_config_yes: 'true' },
  });
  if (!existsSync(BIN)) throw new Error('code-server did not install; see the npm output above.');
  console.log(`code-server installed in ${Math.round((Date.now() - started) / 1000)} s.`);
  return BIN;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { redirect: 'manual' });
      if (response.status < 500) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`code-server did not answer at ${url} within ${timeoutMs / 1000} s`);
}

/** Writes user settings for a fresh user-data-dir. */
export function writeUserSettings(userDataDir, settings) {
  const dir = path.join(userDataDir, 'User');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'settings.json');
  const current = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  writeFileSync(file, JSON.stringify({ ...current, ...settings }, null, 2));
}

/** Starts code-server on 127.0.0.1 and resolves once it answers HTTP. */
export async function startCodeServer({ workspace, userDataDir, extensionsDir, env = {}, port, quiet = true }) {
  const bin = ensureCodeServer();
  const chosenPort = port ?? (await freePort());
  const child = spawn(
    bin,
    [
      '--bind-addr',
      `127.0.0.1:${chosenPort}`,
      '--auth',
      'none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--user-data-dir',
      userDataDir,
      '--extensions-dir',
      extensionsDir,
      workspace,
    ],
    { env: { ...process.env, ...env }, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit', detached: true },
  );
  let output = '';
  if (quiet) {
    child.stdout.on('data', (data) => (output += data));
    child.stderr.on('data', (data) => (output += data));
  }
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${chosenPort}`;
  await Promise.race([
    waitForHttp(`${url}/healthz`, 60_000),
    exited.then((code) => {
      throw new Error(`code-server exited (${code}) before answering:\n${output}`);
    }),
  ]);
  return {
    url,
    port: chosenPort,
    output: () => output,
    stop: async () => {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return;
      }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

/** The workbench URL that loads the extension under development (and, optionally, its tests). */
export function workbenchUrl({ url, port, workspace, extensionTestsPath, development = true }) {
  if (!development) return `${url}/?folder=${encodeURIComponent(workspace)}`;
  const remote = `vscode-remote://127.0.0.1:${port}`;
  const payload = [['extensionDevelopmentPath', `${remote}${ROOT}`], ...(extensionTestsPath ? [['extensionTestsPath', `${remote}${extensionTestsPath}`]] : []), ['skipWelcome', 'true']];
  return `${url}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

/** Copies demo/ into `target` as its own git repository (never the checkout itself). */
export function makeDemoWorkspace(target) {
  mkdirSync(path.dirname(target), { recursive: true });
  execFileSync('cp', ['-R', path.join(ROOT, 'demo'), target]);
  const git = (...args) => execFileSync('git', ['-c', 'user.name=Apollo Demo', '-c', 'user.email=demo@example.com', ...args], { cwd: target, stdio: 'ignore' });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', 'Demo project');
  return target;
}

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function chromiumPath() {
  const found = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((candidate) => candidate && existsSync(candidate));
  if (!found) throw new Error('Chromium is missing: install it (Debian/Ubuntu: apt-get install chromium) or set CHROMIUM_PATH.');
  return found;
}

/** Installs a packaged extension into an extensions folder, as a user would. */
export function installVsix(vsixPath, extensionsDir) {
  execFileSync(ensureCodeServer(), ['--extensions-dir', extensionsDir, '--install-extension', vsixPath], { stdio: 'ignore' });
}
