/**
 * The CLI's own mount namespace, for the commands that make or mount overlay working copies
 * (core/session/overlayCopy.ts): `sample`, `verify --run`, `run --resume` and `rewind`. Linux lets a user
 * mount overlays in a user namespace of their own, not on the host, so the CLI runs itself again
 * there — `unshare --user --map-root-user --mount` — and does everything the command does inside:
 * the copies it mounts are seen by it and its children (file tools, git, the sandbox, the verifier)
 * and go away with it. Inside it is root, mapped to the user: what it writes belongs to the user on
 * disk, and sandboxed commands are given the user's own ids again (sandbox.ts, hostIdArgs).
 *
 * `child_process` rather than anything higher-level: the command is the same program run again
 * with the same arguments and streams, and its exit status is ours.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Set in the environment of the CLI run again inside its namespace. */
export const PRIVATE_MOUNTS_ENV = 'APOLLO_PRIVATE_MOUNTS';

const hasFlag = (args: string[], flag: string) => args.some((arg) => arg === flag || arg.startsWith(`${flag}=`));

/** Whether a command line makes or mounts working copies (and so wants the namespace). */
export function wantsPrivateMounts(argv: string[]): boolean {
  const [command, ...rest] = argv;
  if (hasFlag(rest, '--help') || hasFlag(rest, '-h')) return false;
  if (command === 'sample') return !hasFlag(rest, '--plain-copies');
  if (command === 'verify') return hasFlag(rest, '--run');
  if (command === 'run') return hasFlag(rest, '--resume');
  if (command === 'rewind') return hasFlag(rest, '--run');
  return false;
}

function findTool(name: string): string | undefined {
  return ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((dir) => `${dir}/${name}`).find((file) => existsSync(file));
}

/**
 * The command that runs `program` in a new user and mount namespace, or undefined where none can
 * be made (not Linux, no `unshare`, user namespaces disabled). `setpriv --pdeathsig`, where there is
 * one, ends the inner CLI (cleanly: SIGTERM) if this one is killed.
 */
export function namespaceCommand(program: string[]): { file: string; args: string[] } | undefined {
  if (process.platform !== 'linux') return undefined;
  const unshare = findTool('unshare');
  if (!unshare) return undefined;
  const base = ['--user', '--map-root-user', '--mount', '--propagation', 'private'];
  const trial = spawnSync(unshare, [...base, 'true'], { stdio: 'ignore', timeout: 10_000 });
  if (trial.status !== 0) return undefined;
  const setpriv = findTool('setpriv');
  return { file: unshare, args: [...base, '--', ...(setpriv ? [setpriv, '--pdeathsig', 'TERM', '--'] : []), ...program] };
}

/**
 * Runs this CLI again inside its own namespace when the command wants one and it is not there yet.
 * Resolves with the inner CLI's exit status, or undefined when the command is to run here (it does
 * not want the namespace, it is already inside, or none can be made: the copies are then plain).
 */
export function enterPrivateMounts(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> | undefined {
  if (env[PRIVATE_MOUNTS_ENV] || !wantsPrivateMounts(argv)) return undefined;
  const command = namespaceCommand([process.execPath, ...process.execArgv, ...process.argv.slice(1, 2), ...argv]);
  if (!command) return undefined;
  const child = spawn(command.file, command.args, {
    stdio: 'inherit',
    env: { ...env, [PRIVATE_MOUNTS_ENV]: '1', APOLLO_HOST_UID: String(process.getuid?.() ?? ''), APOLLO_HOST_GID: String(process.getgid?.() ?? '') },
  });
  // Ctrl+C reaches both (one process group): the inner CLI stops its runs, this one waits for it.
  // SIGTERM and SIGHUP sent to this process alone are passed on.
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const handlers = [['SIGINT', () => undefined] as const, ...(['SIGTERM', 'SIGHUP'] as const).map((signal) => [signal, forward(signal)] as const)];
  for (const [signal, handler] of handlers) process.on(signal, handler);
  return new Promise((resolve) => {
    child.on('error', () => resolve(1));
    child.on('exit', (code, signal) => {
      for (const [name, handler] of handlers) process.off(name, handler);
      resolve(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1));
    });
  });
}
