/**
 * The environment for Apollo's own git calls. Git variables from the parent process would point
 * git at the user's repository, and variables that make git run programs (EDITOR, PAGER, …) are
 * refused by simple-git's safety checks; neither belongs in a snapshot.
 *
 * Every git process Apollo starts also runs with hooks, fsmonitor and every program that config
 * could name switched off, whatever the store's, the workspace's or the user's config says: the
 * settings below go in through GIT_CONFIG_COUNT / GIT_CONFIG_KEY_n / GIT_CONFIG_VALUE_n, which
 * git reads after every config file (git ≥ 2.31). Programs named per driver (a filter's clean,
 * smudge or process command, a diff driver's textconv or command, a merge driver) have no single
 * key: `driverOverrides` lists the drivers a repository's config defines so that each is emptied
 * by name, and the callers pass --no-filters / --no-textconv / --no-ext-diff where git has them.
 */
import { simpleGit, type SimpleGit, type SimpleGitOptions } from 'simple-git';
import { execFile } from 'node:child_process';

const DROPPED = new Set(['editor', 'visual', 'pager', 'prefix', 'ssh_askpass']);

/** Settings that switch off every program git could start on config's word. */
export const HARDENED_CONFIG: readonly (readonly [string, string])[] = [
  // No hook runs: a folder that holds no hook (git looks for <path>/<hook name>).
  ['core.hooksPath', '/dev/null'],
  ['core.fsmonitor', 'false'],
  ['core.sshCommand', 'false'],
  ['core.gitProxy', ''],
  ['core.askPass', ''],
  ['core.pager', 'cat'],
  ['core.editor', 'false'],
  ['sequence.editor', 'false'],
  ['core.alternateRefsCommand', ''],
  ['credential.helper', ''],
  ['protocol.ext.allow', 'never'],
  ['diff.external', ''],
  ['uploadpack.packObjectsHook', ''],
  ['commit.gpgSign', 'false'],
  ['tag.gpgSign', 'false'],
  ['gpg.program', 'false'],
  ['maintenance.auto', 'false'],
  ['gc.auto', '0'],
  ['submodule.recurse', 'false'],
];

/** Per-driver keys that name a program; each defined driver gets them emptied. */
const DRIVER_KEYS: Record<string, readonly (readonly [string, string])[]> = {
  filter: [
    ['clean', ''],
    ['smudge', ''],
    ['process', ''],
    ['required', 'false'],
  ],
  diff: [
    ['textconv', ''],
    ['command', ''],
  ],
  merge: [['driver', '']],
};

/** A driver as `<section>.<name>`, e.g. `filter.lfs`. */
export type Driver = string;

export function gitEnvironment(extra: Record<string, string> = {}, drivers: readonly Driver[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (value === undefined || lower.startsWith('git_') || DROPPED.has(lower)) continue;
    env[key] = value;
  }
  const config: (readonly [string, string])[] = [...HARDENED_CONFIG];
  for (const driver of drivers) {
    const dot = driver.indexOf('.');
    for (const [key, value] of DRIVER_KEYS[driver.slice(0, dot)] ?? []) config.push([`${driver}.${key}`, value]);
  }
  const counted: Record<string, string> = { GIT_CONFIG_COUNT: String(config.length) };
  config.forEach(([key, value], index) => {
    counted[`GIT_CONFIG_KEY_${index}`] = key;
    counted[`GIT_CONFIG_VALUE_${index}`] = value;
  });
  return { ...env, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0', ...counted, ...extra };
}

/**
 * simple-git refuses an environment that configures these keys, as it should for values it did
 * not choose; the values here are Apollo's own and only switch programs off. Nothing else is
 * allowed.
 */
const UNSAFE_ALLOWED: SimpleGitOptions['unsafe'] = {
  allowUnsafeConfigEnvCount: true,
  allowUnsafeHooksPath: true,
  allowUnsafeFsMonitor: true,
  allowUnsafeSshCommand: true,
  allowUnsafeGitProxy: true,
  allowUnsafeAskPass: true,
  allowUnsafePager: true,
  allowUnsafeEditor: true,
  allowUnsafeCredentialHelper: true,
  allowUnsafeProtocolOverride: true,
  allowUnsafeDiffExternal: true,
  allowUnsafeDiffTextConv: true,
  allowUnsafeFilter: true,
  allowUnsafeMergeDriver: true,
  allowUnsafeGpgProgram: true,
  allowUnsafePack: true,
};

/** A simple-git instance whose every process runs with `gitEnvironment(extra, drivers)`. */
export function hardenedGit(options: Partial<SimpleGitOptions> & { baseDir: string }, extra: Record<string, string> = {}, drivers: readonly Driver[] = []): SimpleGit {
  return simpleGit({ ...options, unsafe: { ...UNSAFE_ALLOWED, ...options.unsafe } }).env(gitEnvironment(extra, drivers));
}

/**
 * The filter, diff and merge drivers that the config git reads in `cwd` with `extra` (the store's,
 * a repository's, the user's, with their includes) defines. One git process; read with the
 * hardened environment, so reading runs nothing either.
 */
export function driverOverrides(cwd: string, extra: Record<string, string> = {}, args: string[] = []): Promise<Driver[]> {
  return new Promise((resolve) => {
    execFile(
      'git',
      [...args, 'config', '-z', '--name-only', '--get-regexp', '^(filter|diff|merge)\\.'],
      { cwd, env: gitEnvironment(extra), maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout) => {
        // Exit 1: no such key. Anything else leaves only the fixed settings, which still hold.
        const drivers = new Set<Driver>();
        for (const name of (error ? '' : stdout).split('\0')) {
          const first = name.indexOf('.');
          const last = name.lastIndexOf('.');
          if (first > 0 && last > first) drivers.add(name.slice(0, last).replace(/^[^.]+/, (section) => section.toLowerCase()));
        }
        resolve([...drivers]);
      },
    );
  });
}
