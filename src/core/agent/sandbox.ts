/**
 * The command sandbox: on Linux every command the agent runs (run_command and job_start) runs
 * inside bubblewrap (`bwrap`), so that it can change the workspace and nothing else.
 *
 * What a sandboxed command sees (`wrapCommand` builds the bwrap arguments in this order; a later
 * mount wins over an earlier one):
 *
 * - The whole file system, read-only (`--ro-bind / /`, submounts included). Writes anywhere else
 *   fail with "Read-only file system".
 * - A minimal `/dev` (`--dev /dev`: null, zero, random, tty, shm…; no disks), plus GPU devices when
 *   the machine has them (`/dev/nvidia*`, `/dev/dri`, `/dev/kfd`), so training jobs keep their GPU.
 * - A fresh `/proc` for a new PID namespace (`--unshare-pid`): host processes are invisible, so a
 *   command can neither signal nor ptrace the editor; when the sandbox ends, everything it started
 *   ends too (also `--die-with-parent`: if Apollo dies, its commands die).
 * - A private `/tmp` and `/var/tmp`. `/tmp` is a folder of the host owned by the run (`tmpDir`,
 *   shared by all the commands and jobs of one ToolRunner, removed by `ToolRunner.dispose()`), or a
 *   fresh tmpfs when no `tmpDir` is given. The host's /tmp — X11, tmux, ssh-agent and editor
 *   sockets — is not visible.
 * - A private, empty `/run`: D-Bus, systemd, docker/podman/containerd sockets, the user's runtime
 *   folder (`/run/user/<uid>`: session bus, keyring, gpg-agent, VS Code IPC) are hidden — any of
 *   them would let a command run something outside the sandbox. Re-exposed read-only: the file
 *   `/etc/resolv.conf` points to (DNS), symlinks in /run that lead out of /run (NixOS's
 *   /run/current-system, /run/shm), and — only while the network is on — local database sockets
 *   (`/run/postgresql`, `/run/mysqld`, `/run/redis`).
 * - The workspace, read-write, at its real path; the command starts there (`--chdir`).
 *   Every git metadata location that exists when the command starts stays read-only: the root's
 *   `.git` (folder or file), the gitdir a `.git` file points to, nested repositories and bare ones
 *   (`gitMetadata`, found by gitMetadataGuard.ts's bounded scan). The user's HEAD, branches, index,
 *   config and hooks are not the agent's to change (a planted hook or `core.fsmonitor` would run
 *   outside the sandbox the next time the editor runs git); what a command creates is neutralised
 *   by the guard. Add a `.git` to `extraWritable` to let commands commit.
 * - Package caches, read-write, but separate from the host's (see below).
 * - `extraWritable` folders, read-write (must exist).
 * - Hidden (last, so nothing re-exposes them): credential folders and files of the home folder
 *   (`CREDENTIAL_PATHS`: ~/.ssh, ~/.aws, ~/.gnupg, ~/.config/gcloud, ~/.kube, ~/.docker,
 *   ~/.netrc, ~/.git-credentials, ~/.npmrc, shell histories, browser profiles…), /etc/shadow,
 *   `hiddenPaths` (the dataset folder and shadow store go here: the agent never reads or writes
 *   them, wherever they lie; inside the workspace, every folder leading to one is made a mount
 *   point, so that it cannot be renamed, removed or replaced by a link). A hidden folder becomes an empty read-only tmpfs; a hidden file is
 *   replaced by an empty read-only file (not /dev/null: device nodes cannot be opened on bwrap's
 *   nodev mounts, and tools such as npm stop when reading ~/.npmrc fails; an empty file reads as
 *   "no settings"). ~/.npmrc is hidden because it usually holds registry tokens: a project that
 *   needs a private registry keeps its own `.npmrc` in the workspace.
 *
 * Caches: a command gets writable package caches at the usual places — ~/.cache (pip, uv, yarn,
 * pnpm metadata, go-build, node-gyp, Hugging Face, torch, Playwright…), ~/.npm, ~/.cargo (with the
 * host's ~/.cargo/bin, env and config re-exposed read-only), and when the tool is installed
 * ~/go/pkg/mod, ~/.m2/repository, ~/.gradle, ~/.local/share/pnpm/store, ~/.yarn/berry,
 * ~/.bun/install/cache — but each one is a folder of Apollo's own sandbox cache
 * (`cacheDir`, default `~/.cache/apollo-sandbox/<name>`), bound over the host's. The sandbox
 * cache persists across commands, runs and workspaces, so a build downloads a package once; the
 * host's own caches are never written by the agent. That matters: a cache is code the host runs
 * later (cargo compiles ~/.cargo/registry/src without re-checking it, pip installs cached wheels),
 * so a writable host cache would be a way out of the sandbox. The price: the first sandboxed build
 * downloads what the host already had. To share a host cache anyway, add it to `extraWritable`
 * (e.g. `~/.cache/huggingface` for large models). Installing into the user's global tools (npm -g,
 * pip outside a virtual environment, cargo install) fails by design: use the workspace (a venv,
 * node_modules). The mount points of the caches (~/.npm, ~/.cache…) are created on the host first
 * when missing: bwrap cannot create them in a read-only home.
 *
 * Network: on by default (package installs need it). `network: false` adds `--unshare-net`: the
 * command gets its own loopback only — it cannot reach the internet, nor servers on the host's
 * localhost. Each command and each job then has its own loopback: a server started with job_start
 * is not reachable from run_command (test it inside the same job). With the network on, the
 * abstract Unix sockets of the host (X11's @/tmp/.X11-unix, some D-Bus setups) remain reachable —
 * a limit of sharing the network namespace; cut the network to close it.
 *
 * Rights: `--unshare-user --cap-drop ALL` (and `--disable-userns` where bwrap has it, 0.8+): no
 * capabilities inside, even when Apollo runs as root, so mounts cannot be undone; `--unshare-ipc`.
 * Environment: HOME is the given home, TMPDIR=/tmp, XDG_CACHE_HOME=~/.cache, APOLLO_SANDBOX=bwrap;
 * variables that look like secrets (`isSecretEnvName`, the definition the record's redaction uses
 * too: *_TOKEN, *_KEY, *SECRET*, *PASSWORD*, *_PASS, *_AUTH, *_COOKIE, *_SESSION…) and agent/bus
 * sockets (SSH_AUTH_SOCK, DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR, VS Code's IPC handles) are
 * removed, except the names in `passEnv`.
 *
 * Elsewhere (macOS, Windows, no bwrap, or bwrap failing its trial run, e.g. user namespaces
 * disabled) `detectSandbox` says why, in words for the user, and the caller falls back to the
 * command policy (commandPolicy.ts).
 */
import { spawn } from 'node:child_process';
import { isSecretEnvName, SECRET_ENV_PATTERN } from '../dataset/redaction';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isInside } from '../paths';
import { scanGitMetadata } from './gitMetadataGuard';

export type SandboxInfo =
  | {
      kind: 'bwrap';
      /** The bwrap executable. */
      path: string;
      /** bwrap's version line, e.g. "bubblewrap 0.8.0". */
      version: string;
      /** Whether bwrap knows --disable-userns (0.8+). */
      disableUserns: boolean;
    }
  | { kind: 'none'; reason: string };

export interface DetectSandboxOptions {
  /** Default process.platform. */
  platform?: NodeJS.Platform;
  /** Default: `bwrap` on PATH, else /usr/bin/bwrap. */
  bwrapPath?: string;
  /** Ignore the result cached for this process. */
  refresh?: boolean;
  /** Limit for the trial run; default 10 s. */
  timeoutMs?: number;
}

/**
 * Credential folders and files, relative to the home folder; hidden inside the sandbox and asked
 * about by the command policy. Folders become empty, files read as empty.
 */
export const CREDENTIAL_PATHS: readonly string[] = [
  '.ssh',
  '.aws',
  '.azure',
  '.gnupg',
  '.config/gcloud',
  '.kube',
  '.minikube',
  '.docker',
  '.config/containers/auth.json',
  '.config/gh',
  '.config/hub',
  '.config/github-copilot',
  '.config/doctl',
  '.config/rclone',
  '.config/op',
  '.oci',
  '.terraform.d',
  '.password-store',
  '.local/share/keyrings',
  '.vault-token',
  '.netrc',
  '.git-credentials',
  '.config/git/credentials',
  '.npmrc',
  '.yarnrc.yml',
  '.pypirc',
  '.gem/credentials',
  '.cargo/credentials',
  '.cargo/credentials.toml',
  '.m2/settings.xml',
  '.m2/settings-security.xml',
  '.gradle/gradle.properties',
  '.pgpass',
  '.my.cnf',
  '.s3cfg',
  '.boto',
  '.huggingface',
  '.cache/huggingface/token',
  '.claude/.credentials.json',
  '.codex/auth.json',
  '.mozilla',
  '.thunderbird',
  '.config/google-chrome',
  '.config/chromium',
  '.config/BraveSoftware',
  '.bash_history',
  '.zsh_history',
  '.local/share/fish/fish_history',
  '.python_history',
  '.node_repl_history',
  '.psql_history',
  '.mysql_history',
];

/** System files hidden too (they matter when Apollo runs as root). */
const SYSTEM_HIDDEN = ['/etc/shadow', '/etc/gshadow'];

export interface CacheFolder {
  /** Folder name inside the sandbox cache. */
  name: string;
  /** Where tools expect it, relative to the home folder. */
  path: string;
  /** Only when this folder (relative to home) exists on the host: the tool is installed. Absent: always. */
  anchor?: string;
  /** Host entries inside `path` that stay visible, read-only (programs and settings, no credentials). */
  keepReadOnly?: string[];
}

/** The writable package caches (see the module comment). */
export const CACHE_FOLDERS: readonly CacheFolder[] = [
  { name: 'cache', path: '.cache' },
  { name: 'npm', path: '.npm' },
  { name: 'cargo', path: '.cargo', anchor: '.cargo', keepReadOnly: ['bin', 'env', 'config', 'config.toml'] },
  { name: 'go-mod', path: 'go/pkg/mod', anchor: 'go' },
  { name: 'maven', path: '.m2/repository', anchor: '.m2' },
  { name: 'gradle', path: '.gradle', anchor: '.gradle' },
  { name: 'pnpm-store', path: '.local/share/pnpm/store', anchor: '.local/share/pnpm' },
  { name: 'yarn-berry', path: '.yarn/berry', anchor: '.yarn' },
  { name: 'bun', path: '.bun/install/cache', anchor: '.bun' },
];

/** Environment variables that look like secrets: removed inside the sandbox (the same definition the record redacts by). */
export { SECRET_ENV_PATTERN };

/** Sockets and handles that lead out of the sandbox: removed inside it. */
export const SOCKET_ENV: readonly string[] = [
  'SSH_AUTH_SOCK',
  'SSH_AGENT_PID',
  'GPG_AGENT_INFO',
  'DBUS_SESSION_BUS_ADDRESS',
  'XDG_RUNTIME_DIR',
  'VSCODE_IPC_HOOK_CLI',
  'VSCODE_GIT_IPC_HANDLE',
  'GIT_ASKPASS',
  'SSH_ASKPASS',
  'WAYLAND_DISPLAY',
  'DISPLAY',
];

/** Local database sockets kept while the network is on. */
const SERVICE_SOCKET_DIRS = ['/run/postgresql', '/run/mysqld', '/run/redis'];

/** Made private inside the sandbox. */
const TMP_ROOTS = ['/tmp', '/var/tmp'];

const GPU_DEVICES = /^(nvidia.*|dri|kfd)$/;

export interface WrapCommandOptions {
  workspace: string;
  command: string;
  /** false: no network at all (own loopback only). */
  network: boolean;
  /** The home folder whose credentials are hidden and whose caches are provided; HOME inside. */
  home: string;
  /** More folders or files to hide (absolute, or `~/…`): the dataset folder, the shadow store. */
  hiddenPaths?: string[];
  /** More folders to keep writable (absolute, or `~/…`); missing ones are skipped. */
  extraWritable?: string[];
  /** Host folder mounted as /tmp (shared by the commands of one run); default a fresh tmpfs. */
  tmpDir?: string;
  /** Apollo's sandbox cache; default `<home>/.cache/apollo-sandbox`. */
  cacheDir?: string;
  /** The environment the command would get; used to know which variables to remove. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Variable names kept even though they look like secrets. */
  passEnv?: string[];
  /** Default /bin/bash, else /bin/sh. */
  shell?: string;
  /**
   * The workspace's git metadata locations (absolute real paths) to bind read-only, as a
   * `GitMetadataGuard` keeps them; absent: scanned now (bounded, see gitMetadataGuard.ts).
   */
  gitMetadata?: string[];
  /**
   * Host folders placed at other paths inside the sandbox (a task's verifier: the workspace at the
   * task's WORKDIR, its tests at /tests, a logs folder at /logs/verifier). The root is then built
   * from the host's top-level entries, read-only, so that destinations the host lacks can exist.
   */
  placements?: SandboxPlacement[];
  /** Where the command starts; default the workspace. */
  chdir?: string;
  /** More variables set inside (after the removals). */
  setEnv?: Record<string, string>;
}

export interface SandboxPlacement {
  /** A host folder. */
  source: string;
  /** An absolute path inside the sandbox. */
  dest: string;
  writable: boolean;
}

/** Top-level entries of the root that the sandbox makes itself. */
const OWN_ROOT_ENTRIES = new Set(['dev', 'proc', 'tmp', 'run', 'sys']);

/**
 * The root as the host's top-level entries bound read-only one by one (symlinks kept as
 * symlinks), on the tmpfs bwrap starts with: a placement can then create its destination
 * (/app, /tests, /logs) without touching the host. /sys is bound read-only as with `--ro-bind / /`.
 */
function entryRootArgs(placements: readonly SandboxPlacement[]): string[] {
  const args: string[] = [];
  const placedTops = new Set(placements.map((placement) => placement.dest.split('/').filter(Boolean)[0]));
  for (const entry of readdirSync('/').sort()) {
    if (OWN_ROOT_ENTRIES.has(entry) && entry !== 'sys') continue;
    const full = `/${entry}`;
    try {
      const stat = lstatSync(full);
      if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(full), full);
      else if (placedTops.has(entry) && stat.isDirectory()) args.push('--dir', full);
      else if (stat.isDirectory() || stat.isFile()) args.push('--ro-bind', full, full);
    } catch {
      // vanished
    }
  }
  return args;
}

export interface WrappedCommand {
  file: string;
  args: string[];
}

const DEFAULT_SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';

const detected = new Map<string, Promise<SandboxInfo>>();

/** Finds and tries bubblewrap once per process (per options). Never throws. */
export function detectSandbox(options: DetectSandboxOptions = {}): Promise<SandboxInfo> {
  const key = JSON.stringify([options.platform ?? process.platform, options.bwrapPath ?? '']);
  if (!options.refresh) {
    const cached = detected.get(key);
    if (cached) return cached;
  }
  const result = probe(options).catch((error: Error): SandboxInfo => ({ kind: 'none', reason: `the sandbox check failed: ${error.message}` }));
  detected.set(key, result);
  return result;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return existsSync(`/usr/bin/${name}`) ? `/usr/bin/${name}` : undefined;
}

function runOnce(file: string, args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    let output = '';
    let child;
    try {
      child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      resolve({ code: null, output: (error as Error).message });
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, output: error.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output: output.trim() });
    });
  });
}

/**
 * Where the CLI runs in a private mount namespace of its own (privateMounts.ts in the CLI: it is
 * root there, mapped to the user), the ids the user has outside it, so that sandboxed commands see
 * the user's own uid and gid as they do elsewhere. Empty otherwise.
 */
export function hostIdArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  const uid = env.APOLLO_HOST_UID;
  const gid = env.APOLLO_HOST_GID;
  if (!uid || !gid || !/^\d+$/.test(uid) || !/^\d+$/.test(gid) || process.getuid?.() !== 0) return [];
  return ['--uid', uid, '--gid', gid];
}

/** The namespace and rights flags every sandboxed command gets (the trial run uses them too). */
function isolationArgs(disableUserns: boolean, network: boolean): string[] {
  return [
    '--unshare-user',
    ...hostIdArgs(),
    ...(disableUserns ? ['--disable-userns'] : []),
    '--cap-drop',
    'ALL',
    '--unshare-pid',
    '--unshare-ipc',
    ...(network ? [] : ['--unshare-net']),
    '--die-with-parent',
  ];
}

async function probe(options: DetectSandboxOptions): Promise<SandboxInfo> {
  const platform = options.platform ?? process.platform;
  if (platform !== 'linux') {
    return { kind: 'none', reason: `not available on ${platform} (the command sandbox uses bubblewrap, which is Linux-only)` };
  }
  const bwrap = options.bwrapPath ?? findOnPath('bwrap');
  if (!bwrap || !existsSync(bwrap)) {
    return { kind: 'none', reason: 'bubblewrap (bwrap) is not installed: sudo apt install bubblewrap (Debian, Ubuntu) or sudo dnf install bubblewrap (Fedora)' };
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const version = await runOnce(bwrap, ['--version'], timeoutMs);
  const trial = (disableUserns: boolean) =>
    runOnce(
      bwrap,
      ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--remount-ro', '/tmp', ...isolationArgs(disableUserns, false), '--', '/bin/sh', '-c', 'exit 0'],
      timeoutMs,
    );
  const full = await trial(true);
  if (full.code === 0) return { kind: 'bwrap', path: bwrap, version: version.output || 'bubblewrap', disableUserns: true };
  // bwrap before 0.8 does not know --disable-userns.
  const older = await trial(false);
  if (older.code === 0) return { kind: 'bwrap', path: bwrap, version: version.output || 'bubblewrap', disableUserns: false };
  const detail = (older.output || full.output).split('\n')[0] || `exit code ${older.code}`;
  const namespaces = /namespace|uid map|permission|not permitted|denied/i.test(detail);
  return {
    kind: 'none',
    reason: namespaces
      ? `bubblewrap (bwrap) is installed but cannot create a sandbox here (${detail}): unprivileged user namespaces seem disabled — enable them (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04+ allow bwrap in AppArmor, kernel.apparmor_restrict_unprivileged_userns), or run where they are allowed`
      : `bubblewrap (bwrap) is installed but its trial run failed (${detail})`,
  };
}

/** `~/x` and `~` against `home`; anything else resolved as an absolute path. */
export function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.join(home, p.slice(2));
  return path.resolve(p);
}

function realOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** An empty, read-only file of Apollo's to mount over hidden files. */
function emptyFile(cacheDir: string): string {
  const file = path.join(cacheDir, '.empty');
  if (!existsSync(file)) {
    mkdirSync(cacheDir, { recursive: true });
    closeSync(openSync(file, 'w', 0o444));
  }
  return file;
}

/** The folders under /run that stay visible (see the module comment). */
function runExceptions(network: boolean): string[] {
  const args: string[] = [];
  try {
    for (const entry of readdirSync('/run')) {
      const full = path.join('/run', entry);
      try {
        if (!lstatSync(full).isSymbolicLink()) continue;
        const target = readlinkSync(full);
        const resolved = path.resolve('/run', target);
        if (!isInside(resolved, '/run')) args.push('--symlink', target, full);
      } catch {
        // vanished
      }
    }
  } catch {
    return args;
  }
  const resolv = realOrUndefined('/etc/resolv.conf');
  if (resolv && isInside(resolv, '/run')) args.push('--ro-bind', resolv, resolv);
  if (network) {
    for (const dir of SERVICE_SOCKET_DIRS) if (isDirectory(dir)) args.push('--ro-bind', dir, dir);
  }
  return args;
}

/**
 * The bwrap invocation that runs `command` with `shell -c` in the sandbox described in the
 * module comment. Prepares the host side first: creates the sandbox cache folders and, when
 * missing, the cache mount points in the home folder.
 */
export function wrapCommand(sandbox: SandboxInfo, options: WrapCommandOptions): WrappedCommand {
  if (sandbox.kind !== 'bwrap') throw new Error(`No sandbox: ${sandbox.reason}`);
  const workspace = realpathSync(options.workspace);
  const home = realOrUndefined(options.home) ?? path.resolve(options.home);
  const cacheDir = path.resolve(options.cacheDir ?? path.join(home, '.cache', 'apollo-sandbox'));
  const env = options.env ?? process.env;
  const passEnv = new Set(options.passEnv ?? []);
  const args: string[] = [];

  // 1. Everything read-only; fresh /dev and /proc.
  if (options.placements?.length) args.push(...entryRootArgs(options.placements), '--dev', '/dev', '--proc', '/proc');
  else args.push('--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc');
  try {
    for (const entry of readdirSync('/dev')) if (GPU_DEVICES.test(entry)) args.push('--dev-bind', path.join('/dev', entry), path.join('/dev', entry));
  } catch {
    // no /dev listing: no GPU passthrough
  }

  // 2. Private /tmp, /var/tmp and /run.
  if (options.tmpDir) args.push('--bind', realpathSync(options.tmpDir), '/tmp');
  else args.push('--tmpfs', '/tmp');
  if (isDirectory('/var/tmp')) args.push('--tmpfs', '/var/tmp');
  if (isDirectory('/run')) args.push('--tmpfs', '/run', ...runExceptions(options.network));
  // A home folder inside a temporary folder (CI, tests) stays visible, read-only.
  if (TMP_ROOTS.some((root) => isInside(home, root) && home !== root) && isDirectory(home)) args.push('--ro-bind', home, home);

  // 3. The workspace, writable; every git metadata location in it read-only (gitMetadataGuard.ts):
  // the root's and nested repositories' `.git` folders and files, the gitdirs they point to, bare
  // repositories. `-try`: one removed on the host since the scan is skipped, not an error.
  args.push('--bind', workspace, workspace);
  const gitMetadata = options.gitMetadata ?? scanGitMetadata(workspace).locations.map((location) => location.path);
  for (const location of gitMetadata) {
    if (location !== workspace && isInside(location, workspace)) args.push('--ro-bind-try', location, location);
  }

  // 4. Apollo's own package caches over the usual places.
  const cacheMounts: string[] = [];
  const keptFromHost: string[] = [];
  for (const cache of CACHE_FOLDERS) {
    if (cache.anchor && !isDirectory(path.join(home, cache.anchor))) continue;
    const dest = path.join(home, cache.path);
    try {
      mkdirSync(dest, { recursive: true });
      const source = path.join(cacheDir, cache.name);
      mkdirSync(source, { recursive: true });
      const realDest = realpathSync(dest);
      // A workspace inside a cache location (~/.cache/…) would vanish under the sandbox's cache.
      if (isInside(workspace, realDest)) continue;
      args.push('--bind', source, realDest);
      cacheMounts.push(realDest);
      for (const keep of cache.keepReadOnly ?? []) {
        const hostPath = path.join(realDest, keep);
        if (!existsSync(hostPath)) continue;
        args.push('--ro-bind', hostPath, hostPath);
        keptFromHost.push(hostPath);
      }
    } catch {
      // cannot prepare this cache (read-only home…): the tool sees the host's folder, read-only
    }
  }

  // 5. Extra writable folders.
  for (const extra of options.extraWritable ?? []) {
    const real = realOrUndefined(expandHome(extra, home));
    if (real && isDirectory(real)) args.push('--bind', real, real);
  }

  // 5b. Placements (a task's workspace, tests and logs at the paths its scripts expect).
  for (const placement of options.placements ?? []) {
    if (!path.posix.isAbsolute(placement.dest)) throw new Error(`A sandbox placement must be an absolute path (got ${placement.dest}).`);
    args.push(placement.writable ? '--bind' : '--ro-bind', realpathSync(placement.source), placement.dest);
  }

  // 6. Hidden paths, last: nothing mounted earlier may re-expose them.
  const homes = [...new Set([home, realOrUndefined(os.homedir()) ?? os.homedir()])];
  const candidates = [...homes.flatMap((dir) => CREDENTIAL_PATHS.map((rel) => path.join(dir, rel))), ...SYSTEM_HIDDEN, ...(options.hiddenPaths ?? []).map((p) => expandHome(p, home))];
  const hidden: { real: string; dir: boolean }[] = [];
  for (const candidate of candidates) {
    const real = realOrUndefined(candidate);
    if (!real || hidden.some((h) => h.real === real)) continue;
    // Already replaced by a sandbox cache (~/.cargo/credentials.toml), unless re-exposed from the host.
    if (cacheMounts.some((mount) => isInside(real, mount)) && !keptFromHost.some((kept) => isInside(real, kept))) continue;
    // Hiding a folder that holds the workspace would hide the workspace.
    if (isInside(workspace, real)) continue;
    hidden.push({ real, dir: isDirectory(real) });
  }
  // Parents first; a path inside a hidden folder is hidden with it.
  hidden.sort((a, b) => a.real.length - b.real.length);
  // A hidden path inside the workspace (a dataset kept there): every folder between the workspace
  // and it becomes a mount point of its own (bound onto itself, still writable). A mount point
  // cannot be renamed, removed or replaced from inside the sandbox (EBUSY), so the chain from the
  // workspace to the hidden folder cannot be swapped (`mv .apollo x`, `rm -rf .apollo`, a link in
  // its place); the hidden folder itself is a mount point too (its tmpfs or file bind).
  const pinned = new Set<string>();
  for (const { real } of hidden) {
    if (!isInside(real, workspace) || real === workspace) continue;
    const chain: string[] = [];
    for (let dir = path.dirname(real); dir !== workspace && isInside(dir, workspace); dir = path.dirname(dir)) chain.unshift(dir);
    for (const dir of chain) {
      if (pinned.has(dir)) continue;
      pinned.add(dir);
      args.push('--bind', dir, dir);
    }
  }
  const done: string[] = [];
  for (const { real, dir } of hidden) {
    if (done.some((parent) => isInside(real, parent))) continue;
    if (dir) {
      args.push('--tmpfs', real, '--remount-ro', real);
      done.push(real);
    } else {
      args.push('--ro-bind', emptyFile(cacheDir), real);
    }
  }

  // 7. Namespaces, rights, environment.
  args.push(...isolationArgs(sandbox.disableUserns, options.network));
  if (options.placements?.length) args.push('--remount-ro', '/');
  args.push('--chdir', options.chdir ?? workspace);
  args.push('--setenv', 'HOME', home, '--setenv', 'TMPDIR', '/tmp', '--setenv', 'XDG_CACHE_HOME', path.join(home, '.cache'), '--setenv', 'APOLLO_SANDBOX', 'bwrap');
  for (const name of Object.keys(env).sort()) {
    if (passEnv.has(name)) continue;
    if (SOCKET_ENV.includes(name) || isSecretEnvName(name)) args.push('--unsetenv', name);
  }
  for (const [name, value] of Object.entries(options.setEnv ?? {})) args.push('--setenv', name, value);
  args.push('--', options.shell ?? DEFAULT_SHELL, '-c', options.command);
  return { file: sandbox.path, args };
}

/** One sentence for the user (and the run's log) about what the sandbox does. */
export function describeSandbox(sandbox: SandboxInfo, options: { network: boolean }): string {
  if (sandbox.kind === 'none') return `No command sandbox: ${sandbox.reason}.`;
  return (
    `Commands run in a bubblewrap sandbox (${sandbox.version}): the workspace is writable (its git repositories read-only), ` +
    'the rest of the file system is read-only, /tmp is private, credential folders (~/.ssh, ~/.aws, ~/.gnupg, ~/.netrc…) and the dataset folder are hidden, ' +
    `package caches (~/.npm, ~/.cache, ~/.cargo…) are writable but separate from yours; network ${options.network ? 'on' : 'off'}.`
  );
}
