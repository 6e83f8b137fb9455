import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { namespaceCommand, wantsPrivateMounts } from '../../src/cli/privateMounts';

test('the commands that make or mount working copies want the namespace; the others, help and --plain-copies do not', () => {
  assert.equal(wantsPrivateMounts(['sample', '--task-dir', 't', '--n', '2']), true);
  assert.equal(wantsPrivateMounts(['sample', '--workspace', '.', '--task', 'x', '--n', '2', '--plain-copies']), false);
  assert.equal(wantsPrivateMounts(['sample', '--help']), false);
  assert.equal(wantsPrivateMounts(['verify', '--run', 'r']), true);
  assert.equal(wantsPrivateMounts(['verify', '--run=r']), true);
  assert.equal(wantsPrivateMounts(['verify', '--task-dir', 't', '--oracle']), false);
  assert.equal(wantsPrivateMounts(['run', '--resume', 'r']), true);
  assert.equal(wantsPrivateMounts(['run', '--task', 'x']), false);
  assert.equal(wantsPrivateMounts(['rewind', '--run', 'r', '--to-step', '2']), true);
  for (const command of ['export', 'stats', 'gc', 'adopt', 'label', 'hint']) assert.equal(wantsPrivateMounts([command, '--run', 'r']), false, command);
  assert.equal(wantsPrivateMounts([]), false);
});

test('the namespace command runs the program as root of a new user and mount namespace, mapped to the caller', (t) => {
  const command = namespaceCommand(['/usr/bin/id', '-u']);
  if (!command) return t.skip('no user namespaces here (not Linux, no unshare, or disabled)');
  const result = spawnSync(command.file, command.args, { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), '0');
  // A mount made inside is not seen outside.
  const mounted = spawnSync(command.file, [...command.args.slice(0, command.args.indexOf('--') + 1), '/bin/sh', '-c', 'mount -t tmpfs none /mnt && grep -c " /mnt " /proc/self/mountinfo'], {
    encoding: 'utf8',
  });
  assert.equal(mounted.stdout.trim(), '1', mounted.stderr);
  assert.equal(spawnSync('grep', ['-c', ' /mnt ', '/proc/self/mountinfo'], { encoding: 'utf8' }).stdout.trim(), '0');
});
