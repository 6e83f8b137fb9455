/** The sandbox's detection and the bwrap invocation it builds (no bwrap needed, except where said). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { detectSandbox, type SandboxInfo, SECRET_ENV_PATTERN, wrapCommand } from '../../src/core/agent/sandbox';
import { ToolRunner } from '../../src/core/agent/tools';
import { WorkspaceGuard } from '../../src/core/agent/workspaceGuard';
import { tempDir } from '../fixtures/workspace';

const FAKE_BWRAP: SandboxInfo = { kind: 'bwrap', path: '/usr/bin/bwrap', version: 'bubblewrap 0.8.0', disableUserns: true };

/** Index of a sequence of arguments, or -1. */
function indexOfSequence(args: string[], ...sequence: string[]): number {
  for (let i = 0; i + sequence.length <= args.length; i++) {
    if (sequence.every((value, j) => args[i + j] === value)) return i;
  }
  return -1;
}

test('detectSandbox says why there is no sandbox, in words for the user, and caches its answer', async () => {
  const mac = await detectSandbox({ platform: 'darwin' });
  assert.deepEqual(mac, { kind: 'none', reason: 'not available on darwin (the command sandbox uses bubblewrap, which is Linux-only)' });
  assert.equal(await detectSandbox({ platform: 'darwin' }), mac); // cached
  const windows = await detectSandbox({ platform: 'win32' });
  assert.match(windows.kind === 'none' ? windows.reason : '', /not available on win32/);

  const missing = await detectSandbox({ platform: 'linux', bwrapPath: '/nonexistent/bwrap' });
  assert.equal(missing.kind, 'none');
  assert.match(missing.kind === 'none' ? missing.reason : '', /^bubblewrap \(bwrap\) is not installed: sudo apt install bubblewrap/);

  // bwrap present but failing its trial run, as with user namespaces disabled.
  const tmp = tempDir();
  try {
    const fake = path.join(tmp.dir, 'bwrap');
    writeFileSync(
      fake,
      '#!/bin/sh\n[ "$1" = --version ] && { echo "bubblewrap 0.8.0"; exit 0; }\necho "bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces." >&2\nexit 1\n',
    );
    chmodSync(fake, 0o755);
    const failing = await detectSandbox({ platform: 'linux', bwrapPath: fake });
    assert.equal(failing.kind, 'none');
    assert.match(failing.kind === 'none' ? failing.reason : '', /installed but cannot create a sandbox here \(bwrap: No permissions to create new namespace.*user namespaces seem disabled/);
  } finally {
    tmp.cleanup();
  }
});

test('wrapCommand: read-only root, private /tmp, writable workspace, then caches, then hidden paths; the command last', () => {
  const tmp = tempDir();
  try {
    const home = path.join(tmp.dir, 'home');
    const workspace = path.join(tmp.dir, 'ws');
    const dataset = path.join(workspace, '.apollo', 'dataset');
    mkdirSync(path.join(home, '.ssh'), { recursive: true });
    mkdirSync(path.join(home, '.aws'), { recursive: true });
    mkdirSync(path.join(home, '.cargo', 'bin'), { recursive: true });
    writeFileSync(path.join(home, '.cargo', 'credentials.toml'), 'token = "x"\n');
    writeFileSync(path.join(home, '.netrc'), 'machine x password y\n');
    mkdirSync(dataset, { recursive: true });
    mkdirSync(path.join(workspace, '.git'), { recursive: true });
    const realHome = realpathSync(home);
    const realWs = realpathSync(workspace);
    const realDataset = realpathSync(dataset);
    const cacheDir = path.join(realHome, '.cache', 'apollo-sandbox');

    const { file, args } = wrapCommand(FAKE_BWRAP, { workspace, home, command: 'npm test', network: true, hiddenPaths: [dataset], env: {} });
    assert.equal(file, '/usr/bin/bwrap');
    assert.deepEqual(args.slice(0, 7), ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc']);
    assert.deepEqual(
      args.slice(-4),
      ['--', '/bin/bash', '-c', 'npm test'].map((v, i) => (i === 1 && !existsSync('/bin/bash') ? '/bin/sh' : v)),
    );
    const tmpfsTmp = indexOfSequence(args, '--tmpfs', '/tmp');
    const workspaceBind = indexOfSequence(args, '--bind', realWs, realWs);
    const gitReadOnly = indexOfSequence(args, '--ro-bind-try', path.join(realWs, '.git'), path.join(realWs, '.git'));
    const npmCache = indexOfSequence(args, '--bind', path.join(cacheDir, 'npm'), path.join(realHome, '.npm'));
    const xdgCache = indexOfSequence(args, '--bind', path.join(cacheDir, 'cache'), path.join(realHome, '.cache'));
    const cargoCache = indexOfSequence(args, '--bind', path.join(cacheDir, 'cargo'), path.join(realHome, '.cargo'));
    const cargoBin = indexOfSequence(args, '--ro-bind', path.join(realHome, '.cargo', 'bin'), path.join(realHome, '.cargo', 'bin'));
    const ssh = indexOfSequence(args, '--tmpfs', path.join(realHome, '.ssh'), '--remount-ro', path.join(realHome, '.ssh'));
    const hiddenDataset = indexOfSequence(args, '--tmpfs', realDataset, '--remount-ro', realDataset);
    const netrc = indexOfSequence(args, '--ro-bind', path.join(cacheDir, '.empty'), path.join(realHome, '.netrc'));
    for (const [name, index] of Object.entries({ tmpfsTmp, workspaceBind, gitReadOnly, npmCache, xdgCache, cargoCache, cargoBin, ssh, hiddenDataset, netrc })) {
      assert.ok(index >= 0, `${name} missing from ${args.join(' ')}`);
    }
    assert.ok(tmpfsTmp < workspaceBind && workspaceBind < gitReadOnly && gitReadOnly < npmCache);
    assert.ok(Math.min(ssh, hiddenDataset, netrc) > Math.max(npmCache, xdgCache, cargoBin), 'hidden paths come last');
    assert.ok(cargoCache < cargoBin);
    // ~/.cargo/credentials.toml is not re-exposed: the sandbox's own ~/.cargo replaces it, no hiding needed.
    assert.equal(args.includes(path.join(realHome, '.cargo', 'credentials.toml')), false);
    // The mount points of the caches exist on the host (bwrap cannot create them in a read-only home).
    assert.ok(existsSync(path.join(realHome, '.npm')) && existsSync(path.join(cacheDir, 'npm')));
    assert.equal(existsSync(path.join(realHome, 'go')), false, 'caches of tools not installed are not created');
    for (const flag of ['--unshare-user', '--disable-userns', '--unshare-pid', '--unshare-ipc', '--die-with-parent']) assert.ok(args.includes(flag), flag);
    assert.ok(indexOfSequence(args, '--cap-drop', 'ALL') >= 0);
    assert.ok(indexOfSequence(args, '--chdir', realWs) >= 0);
    assert.ok(indexOfSequence(args, '--setenv', 'HOME', realHome) >= 0);
    assert.equal(args.includes('--unshare-net'), false);

    const cut = wrapCommand({ ...FAKE_BWRAP, disableUserns: false }, { workspace, home, command: 'true', network: false, tmpDir: tmp.dir, env: {} });
    assert.ok(cut.args.includes('--unshare-net'));
    assert.equal(cut.args.includes('--disable-userns'), false);
    assert.ok(indexOfSequence(cut.args, '--bind', realpathSync(tmp.dir), '/tmp') >= 0);

    assert.throws(() => wrapCommand({ kind: 'none', reason: 'no bwrap' }, { workspace, home, command: 'true', network: true }), /No sandbox: no bwrap/);
  } finally {
    tmp.cleanup();
  }
});

test('wrapCommand removes variables that look like secrets and sockets that lead outside', () => {
  const tmp = tempDir();
  try {
    const env = {
      PATH: '/usr/bin',
      OPENAI_API_KEY: 'sk-x',
      GITHUB_TOKEN: 'ghp_x',
      AWS_SECRET_ACCESS_KEY: 'x',
      AWS_ACCESS_KEY_ID: 'x',
      DB_PASSWORD: 'x',
      NPM_TOKEN: 'x',
      SSH_AUTH_SOCK: '/tmp/ssh-x/agent.1',
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus',
      TOKENIZERS_PARALLELISM: 'false',
      GIT_AUTHOR_NAME: 'Me',
      AUTHOR: 'me',
      KEYBOARD: 'us',
    };
    const { args } = wrapCommand(FAKE_BWRAP, { workspace: tmp.dir, home: path.join(tmp.dir, 'home'), command: 'env', network: true, env, passEnv: ['NPM_TOKEN'] });
    const unset = args.flatMap((value, i) => (value === '--unsetenv' ? [args[i + 1]] : []));
    assert.deepEqual(unset.sort(), ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'DBUS_SESSION_BUS_ADDRESS', 'DB_PASSWORD', 'GITHUB_TOKEN', 'OPENAI_API_KEY', 'SSH_AUTH_SOCK']);
    for (const name of ['HF_TOKEN', 'ANTHROPIC_API_KEY', 'SECRET_KEY', 'MY_SECRET', 'PRIVATE_KEY', 'GH_TOKEN', 'CI_JOB_TOKEN', 'PASSPHRASE']) assert.match(name, SECRET_ENV_PATTERN, name);
    for (const name of ['TOKENIZERS_PARALLELISM', 'GIT_AUTHOR_EMAIL', 'PWD', 'KEYMAP', 'MONKEY', 'PATH', 'HOME']) assert.doesNotMatch(name, SECRET_ENV_PATTERN, name);
  } finally {
    tmp.cleanup();
  }
});

test('sandboxStatus says once whether commands are sandboxed, and why not', async () => {
  const tmp = tempDir();
  try {
    const guard = new WorkspaceGuard(tmp.dir, []);
    const none: SandboxInfo = { kind: 'none', reason: 'bubblewrap (bwrap) is not installed: sudo apt install bubblewrap' };
    assert.deepEqual(await new ToolRunner({ workspace: tmp.dir, guard }).sandboxStatus(), { active: false, description: 'Commands run without a sandbox and without the command policy.' });
    const fallback = await new ToolRunner({ workspace: tmp.dir, guard, sandbox: { mode: 'auto', network: true, detect: async () => none } }).sandboxStatus();
    assert.equal(fallback.active, false);
    assert.match(fallback.description, /^Commands are not sandboxed: bubblewrap \(bwrap\) is not installed: sudo apt install bubblewrap\. Instead risky commands .* are refused/);
    const asking = await new ToolRunner({ workspace: tmp.dir, guard, sandbox: { mode: 'auto', network: true, detect: async () => none }, approveCommand: async () => 'allow' }).sandboxStatus();
    assert.match(asking.description, /wait for the annotator's approval/);
    const off = await new ToolRunner({ workspace: tmp.dir, guard, sandbox: { mode: 'off', network: true } }).sandboxStatus();
    assert.match(off.description, /^The command sandbox is off/);
    const on = await new ToolRunner({ workspace: tmp.dir, guard, sandbox: { mode: 'auto', network: false, detect: async () => FAKE_BWRAP } }).sandboxStatus();
    assert.equal(on.active, true);
    assert.match(on.description, /^Commands run in a bubblewrap sandbox \(bubblewrap 0\.8\.0\): the workspace is writable .* network off\.$/);
  } finally {
    tmp.cleanup();
  }
});
