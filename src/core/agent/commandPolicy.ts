/**
 * The command policy: where no sandbox is available (macOS, Windows, no bubblewrap, or the
 * sandbox is off), each command the agent wants to run is checked against a deny list first.
 * A command that matches is not run until the annotator allows it; a user's allow list skips the
 * question. This is a net for common mistakes, not a sandbox: it reads the command's text as bash
 * would split it (shellWords.ts: words, pipes, redirections, heredocs, `$(…)` and backticks,
 * `bash -c`, `eval`, heredoc and here-string text given to a shell, `cd`) and looks through
 * wrappers to the command they run (sudo, su -c, doas, env, env -S, command, builtin, exec,
 * nice, nohup, timeout, stdbuf, time, xargs, watch, flock, setsid, chroot, chrt, taskset,
 * strace, parallel, busybox/toybox APPLET, find -exec/-execdir/-ok/-okdir, git submodule
 * foreach, git bisect run, git rebase --exec), checking that one too. What a script or program
 * does on its own (`python -c "open('/etc/x','w')"`, `python - <<EOF`, a Makefile, a symlink) is
 * not seen, and neither are arguments that arrive on standard input (`… | xargs rm -rf`).
 *
 * The rules (`POLICY_RULES`; each finding names its rule):
 *
 * | rule | asks for |
 * | --- | --- |
 * | elevate | sudo, su, doas, pkexec, runuser |
 * | delete-root | deleting (rm, rmdir, shred, find -delete) /, the home folder, the workspace as a whole (`rm -rf .`, `rm -rf *` at its root) or a folder holding it |
 * | write-outside | a redirection (`>`, `>>`, `&>`, `tee`) or a file-changing command (rm, mv, cp/install/rsync destination, touch, mkdir, ln, chmod, chown, truncate, dd of=, sed -i, tar -C, unzip -d, curl -o, wget -O) on a path outside the workspace; temporary folders (/tmp, /var/tmp, the OS temp folder) and /dev/null, /dev/stdout… are fine |
 * | hard-link-outside | `ln` without -s of a file outside the workspace (a later write inside would change it) |
 * | protected-path | writing to a path that can name one inside a .git folder of the workspace (the root's, a submodule's) once bash expands it: globs matched segment by segment (`.gi?/config`, `.g*`), `$PWD`, `${HOME}`, `$(pwd)`, `~`, a variable before `/.git/`, any case (`.GIT`, for case-insensitive disks); or any use of the dataset folder / shadow store |
 * | credentials | any path into a credential folder or file of the home folder (`CREDENTIAL_PATHS`: ~/.ssh, ~/.aws, ~/.netrc…) |
 * | publish | git push, npm/pnpm/yarn publish, cargo publish, twine upload, gem push, docker push, gh commands that create, merge, close, delete or edit |
 * | git-state | commands that change the repository's state: commit, add, rm, mv, stash (not list/show), reset, restore --staged, checkout of a branch, switch, branch/tag changes, merge, rebase, cherry-pick, revert, pull, am, config writes, remote changes, update-ref, gc, prune, filter-branch |
 * | pipe-to-shell | curl/wget output run by a shell or interpreter (`curl … | sh`, `bash <(curl …)`, `sh -c "$(curl …)"`) |
 * | remote-shell | ssh, scp, sftp, mosh, sshpass, rsync to host:path |
 * | disk | mkfs, fdisk, parted, wipefs, mkswap, mount, umount, losetup, cryptsetup, dd to /dev/… |
 * | power | shutdown, reboot, poweroff, halt, init 0/6, systemctl poweroff/reboot/suspend |
 * | kill-broad | kill -1, killall, killall5, pkill (may stop the editor; jobs stop with job_kill) |
 * | system-change | system package managers (apt, dnf, yum, pacman, zypper, apk, brew, port, snap, flatpak) installing or removing, global installs (npm -g, yarn global, pip --user / --break-system-packages, cargo install, go install, gem install), crontab, at, systemctl/service/launchctl changes |
 * | fork-bomb | `:(){ :|:& };:` and the like |
 * | hidden-program | a program the policy cannot read: piped into a shell or interpreter that reads its program from standard input (`… | sh`, `| bash -s`, `| python -`, `| node`, `| perl`, `| ruby`, `| pwsh`), a shell, `eval` or `source` given an expansion (`sh -c "$(…)"`, `eval "$X"`, `source <(…)`, `bash <(…)`, `sh <<<"$X"`), a command whose name is an expansion (`$CMD …`, not `$HOME/…`) |
 * | git-exec-config | git settings that run a program or give a command another name: `git -c KEY=…`, `git clone -c`, `git config KEY VALUE` and `GIT_*` variables for aliases, core.fsmonitor, core.hooksPath, core.sshCommand, core.pager (other than cat/less/more), core.editor, *.textconv, filter.*, diff.external, diff/merge drivers and tools, credential helpers, gpg.program, include paths, init.templateDir; `git --config-env`; `git init/clone --template`; `--upload-pack`/`--receive-pack`/`--exec`; `ext::` URLs |
 *
 * Not asked on purpose (too common to ask about): `pip install` (a virtual environment is usual),
 * reading files outside the workspace (except credentials), network use in general, `rm -rf` of
 * things inside the workspace (the shadow store can rewind it), writes to /tmp.
 *
 * Allow list: each entry is either
 * - a command prefix, matched word by word against each simple command (`git push` allows
 *   `git push origin main` but not `git pushx`; `npm publish --dry-run` only that);
 * - `/regex/flags`, tested against each simple command (for pipe-to-shell: the whole pipeline);
 * - `rule:<id>`, which turns a rule off (e.g. `rule:git-state`).
 * It applies to the finding's own simple command, never to the whole line: allowing `git push`
 * does not let `git push; rm -rf ~` through.
 */
import os from 'node:os';
import path from 'node:path';
import { CREDENTIAL_PATHS } from './sandbox';
import { parseCommands, type SimpleCommand, type Word } from './shellWords';

export type PolicyRuleId =
  | 'elevate'
  | 'delete-root'
  | 'write-outside'
  | 'hard-link-outside'
  | 'protected-path'
  | 'credentials'
  | 'publish'
  | 'git-state'
  | 'pipe-to-shell'
  | 'remote-shell'
  | 'disk'
  | 'power'
  | 'kill-broad'
  | 'system-change'
  | 'fork-bomb'
  | 'hidden-program'
  | 'git-exec-config';

export const POLICY_RULES: Record<PolicyRuleId, string> = {
  elevate: "runs with another user's rights (sudo, su, doas, pkexec)",
  'delete-root': 'deletes /, the home folder, the whole workspace or a folder that holds it',
  'write-outside': 'changes files outside the workspace',
  'hard-link-outside': 'hard-links a file from outside the workspace, so writing the link would change it',
  'protected-path': "touches the repository's .git folder or Apollo's dataset folder",
  credentials: 'uses a credential file or folder of the home folder',
  publish: 'publishes or pushes outside this machine',
  'git-state': "changes the repository's git state (commits, branches, index, stash, config)",
  'pipe-to-shell': 'runs a script downloaded from the network',
  'remote-shell': 'opens a connection to another machine',
  disk: 'changes disks or mounts',
  power: 'shuts down or restarts the machine',
  'kill-broad': 'may stop processes outside this run, the editor included (stop jobs with job_kill)',
  'system-change': 'installs or changes software or services outside the workspace',
  'fork-bomb': 'is a fork bomb',
  'hidden-program': 'runs a program the policy cannot read: one another command writes, or one only known once the command runs',
  'git-exec-config': 'sets a git option that runs a program or gives a command another name (aliases, hooks, filters, pagers, ssh, templates)',
};

export interface PolicyOptions {
  /** The workspace root; commands start there. */
  workspace: string;
  /** Other spellings of the workspace root (its real path). */
  workspaceAliases?: string[];
  home: string;
  /** User patterns that skip the question (see the module comment). */
  allow?: readonly string[];
  /** Folders the agent must never touch: the dataset folder, the shadow store. */
  forbidden?: string[];
  /** Where writes are fine; default /tmp, /var/tmp and os.tmpdir(). */
  tempFolders?: string[];
}

export interface PolicyFinding {
  rule: PolicyRuleId;
  reason: string;
  /** The part of the command it is about. */
  subject: string;
}

export type PolicyVerdict =
  | { verdict: 'allow' }
  | {
      verdict: 'ask';
      /** The first finding's rule. */
      rule: PolicyRuleId;
      /** Every finding's reason, in words for the annotator. */
      reason: string;
      findings: PolicyFinding[];
    };

// ---------------------------------------------------------------------------------------------
// Finding the program behind wrappers.

const KEYWORDS = new Set(['!', '{', '}', 'then', 'do', 'else', 'elif', 'if', 'while', 'until', 'fi', 'done']);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;
/**
 * Programs that run the command given in their arguments, and the options of theirs that take a
 * value. `skip` is how many operands come before the command (`flock FILE cmd`, `chroot DIR cmd`).
 */
const WRAPPERS: Record<string, { valued: string[]; skip?: number }> = {
  env: { valued: ['-u', '--unset', '-C', '--chdir', '-S', '--split-string'] },
  nohup: { valued: [] },
  nice: { valued: ['-n', '--adjustment'] },
  ionice: { valued: ['-c', '--class', '-n', '--classdata', '-p', '--pid', '-P', '--pgid', '-u', '--uid'] },
  timeout: { valued: ['-s', '--signal', '-k', '--kill-after'], skip: 1 },
  stdbuf: { valued: ['-i', '-o', '-e', '--input', '--output', '--error'] },
  command: { valued: [] },
  builtin: { valued: [] },
  exec: { valued: ['-a'] },
  time: { valued: ['-f', '--format', '-o', '--output'] },
  xargs: {
    valued: [
      '-I',
      '-i',
      '-n',
      '-P',
      '-d',
      '-L',
      '-l',
      '-s',
      '-E',
      '-e',
      '-a',
      '--max-args',
      '--max-procs',
      '--delimiter',
      '--arg-file',
      '--max-lines',
      '--max-chars',
      '--replace',
      '--eof',
      '--process-slot-var',
    ],
  },
  watch: { valued: ['-n', '--interval', '-q', '--equexit', '--differences-mode'] },
  flock: { valued: ['-w', '--timeout', '-E', '--conflict-exit-code'], skip: 1 },
  setsid: { valued: [] },
  chroot: { valued: ['--userspec', '--groups'], skip: 1 },
  chrt: { valued: [], skip: 1 },
  taskset: { valued: [], skip: 1 },
  unshare: { valued: ['--setgroups', '--map-user', '--map-group', '--propagation', '-S', '--setuid', '-G', '--setgid', '-R', '--root', '-w', '--wd'] },
  strace: { valued: ['-o', '-e', '-p', '-s', '-u', '-E', '-P', '-a', '-S', '-X', '-b', '-I', '-O'] },
  ltrace: { valued: ['-o', '-e', '-p', '-s', '-u', '-a', '-n', '-l', '-x', '-L'] },
  parallel: {
    valued: [
      '-j',
      '--jobs',
      '-N',
      '-n',
      '--max-args',
      '-L',
      '--max-lines',
      '-S',
      '--sshlogin',
      '-I',
      '--results',
      '--joblog',
      '--delay',
      '--timeout',
      '--tag-string',
      '--colsep',
      '-d',
      '--delimiter',
      '-a',
      '--arg-file',
      '--tmpdir',
      '--workdir',
      '--env',
    ],
  },
  busybox: { valued: [] },
  toybox: { valued: [] },
  chronic: { valued: [] },
  unbuffer: { valued: [] },
  caffeinate: { valued: ['-t', '-w'] },
  sudo: {
    valued: ['-u', '--user', '-g', '--group', '-h', '--host', '-p', '--prompt', '-C', '--close-from', '-D', '--chdir', '-r', '--role', '-t', '--type', '-U', '--other-user', '-T', '--command-timeout'],
  },
  doas: { valued: ['-u', '-C'] },
  pkexec: { valued: ['--user'] },
  runuser: { valued: ['-u', '--user', '-g', '--group', '-G', '--supp-group', '-s', '--shell', '-w', '--whitelist-environment'] },
};
/** Programs that run commands as another user. */
const ELEVATORS = new Set(['sudo', 'su', 'doas', 'pkexec', 'runuser', 'sudoedit']);
const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'mksh', 'fish', 'ash', 'busybox-sh', 'csh', 'tcsh']);

interface Invocation {
  program: string;
  /** The word naming the program, as written. */
  word: Word;
  args: Word[];
}

/** What a command line runs: the program behind its wrappers, the wrappers, and scripts they were given as text. */
interface Unwrapped {
  invocation?: Invocation;
  /** The wrappers, outermost first (`sudo`, `env`, `busybox`). */
  wrappers: Invocation[];
  /** Command text handed to a wrapper whole (`su -c TEXT`, `env -S TEXT`, `watch TEXT`, `flock F -c TEXT`), to check as a command line. */
  scripts: string[];
}

function unwrap(words: Word[]): Unwrapped {
  const result: Unwrapped = { wrappers: [], scripts: [] };
  let i = 0;
  for (let guard = 0; guard < 32; guard++) {
    while (i < words.length && (KEYWORDS.has(words[i].value) || ASSIGNMENT.test(words[i].value))) i++;
    if (i >= words.length) return result;
    const name = path.basename(words[i].value);
    const here: Invocation = { program: name, word: words[i], args: words.slice(i + 1) };
    // `command -v x` looks x up; it does not run it.
    if (name === 'command' && /^-[vV]$/.test(words[i + 1]?.value ?? '')) {
      result.invocation = here;
      return result;
    }
    if (name === 'su') {
      // `su [options] [user] [-c TEXT]`: the text runs in the user's shell.
      result.wrappers.push(here);
      here.args.forEach((arg, at) => {
        if ((arg.value === '-c' || arg.value === '--command') && here.args[at + 1]) result.scripts.push(here.args[at + 1].value);
        else if (arg.value.startsWith('--command=')) result.scripts.push(arg.value.slice('--command='.length));
      });
      result.invocation = here;
      return result;
    }
    const wrapper = WRAPPERS[name];
    if (!wrapper || ((name === 'busybox' || name === 'toybox') && (words[i + 1]?.value ?? '-').startsWith('-'))) {
      result.invocation = here;
      return result;
    }
    result.wrappers.push(here);
    i++;
    const optionsStart = i;
    let skip = wrapper.skip ?? 0;
    while (i < words.length) {
      const word = words[i].value;
      if (word === '--') {
        i++;
        break;
      }
      if (name === 'nice' && /^-\d+$/.test(word)) {
        i++;
        continue;
      }
      if (name === 'env' && ASSIGNMENT.test(word)) {
        i++;
        continue;
      }
      if (name === 'env' && (word === '-S' || word === '--split-string' || word.startsWith('--split-string=') || /^-S./.test(word))) {
        const text = word.startsWith('--split-string=') ? word.slice(15) : /^-S./.test(word) ? word.slice(2) : words[i + 1]?.value;
        if (text !== undefined) result.scripts.push(text);
        i += word === '-S' || word === '--split-string' ? 2 : 1;
        continue;
      }
      if ((name === 'flock' || name === 'runuser') && (word === '-c' || word === '--command')) {
        if (words[i + 1]) result.scripts.push(words[i + 1].value);
        i += 2;
        continue;
      }
      if (!word.startsWith('-') || word === '-') break;
      i += wrapper.valued.includes(word) ? 2 : 1;
    }
    if (name === 'sudo' && words.slice(optionsStart, i).some((w) => /^-[a-zA-Z]*e$|^--edit$/.test(w.value))) {
      result.invocation = { program: 'sudoedit', word: here.word, args: words.slice(i) };
      return result;
    }
    if (name === 'watch' && !words.slice(optionsStart, i).some((w) => w.value === '-x' || w.value === '--exec')) {
      // watch hands its arguments, joined, to `sh -c`.
      if (i < words.length)
        result.scripts.push(
          words
            .slice(i)
            .map((w) => w.value)
            .join(' '),
        );
      result.invocation = here;
      return result;
    }
    if ((name === 'chrt' || name === 'taskset') && here.args.some((a) => a.value === '-p' || a.value === '--pid')) skip = Infinity;
    if (name === 'runuser' && !here.args.some((a) => a.value === '-u' || a.value === '--user')) skip = 1;
    if (name === 'flock' && /^\d+$/.test(words[i]?.value ?? '')) skip = Infinity; // `flock 9`: a descriptor, no command
    i += Math.min(skip, words.length);
    if ((name === 'flock' || name === 'runuser') && (words[i]?.value === '-c' || words[i]?.value === '--command')) {
      // `flock FILE -c TEXT`, `runuser -l USER -c TEXT`
      if (words[i + 1]) result.scripts.push(words[i + 1].value);
      result.invocation = here;
      return result;
    }
    if (name === 'parallel') {
      // `parallel CMD ::: ARGS`: each argument is added to the command; check them all as its arguments.
      words = words.filter((w, at) => at < i || !/^::::?\+?$/.test(w.value));
    }
    if (i >= words.length) {
      result.invocation = here;
      return result;
    }
  }
  return result;
}

/** The program a simple command runs once its wrappers are taken off. */
function programOf(words: Word[]): Invocation | undefined {
  return unwrap(words).invocation;
}
// ---------------------------------------------------------------------------------------------
// Paths.

interface Context {
  workspaces: string[];
  home: string;
  forbidden: string[];
  temp: string[];
  credentials: string[];
}

/**
 * `child` is `parent` or below it, for paths already resolved (as every path here is): a string
 * comparison, since `isInside`'s path.relative was most of the policy's time.
 */
function within(child: string, parent: string): boolean {
  if (process.platform === 'win32') {
    child = child.toLowerCase();
    parent = parent.toLowerCase();
  }
  return child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
}

/** The word with a leading `~`, `$HOME`, `$PWD` or `$(pwd)` replaced by what it stands for. */
function expandKnown(word: Word, cwd: string | undefined, home: string): string {
  let value = word.value;
  if (word.tilde && (value === '~' || value.startsWith('~/'))) value = home + value.slice(1);
  else if (word.tilde && /^~[A-Za-z_]/.test(value)) value = path.join('/home', value.slice(1));
  if (!word.leadingExpansion) return value;
  value = value.replace(/^(\$HOME|\$\{HOME\})(?=\/|$)/, home);
  if (cwd !== undefined) value = value.replace(/^(\$PWD|\$\{PWD\}|\$\(pwd\)|`pwd`)(?=\/|$)/, () => cwd);
  return value;
}

/** What a word means as a path from `cwd`; undefined when it depends on something unknown. */
function resolvePath(word: Word, cwd: string | undefined, home: string): string | undefined {
  const value = expandKnown(word, cwd, home);
  if (value === '') return undefined;
  if (value.startsWith('$') || value.startsWith('`') || word.processSubstitution) return undefined;
  if (path.isAbsolute(value)) return path.resolve(value);
  if (value.startsWith('-')) return undefined;
  if (cwd === undefined) return undefined;
  return path.resolve(cwd, value);
}

/** A variable, `${…}`, `$(…)` or backtick inside a word's value. */
const EXPANSION = /\$\{[^}]*\}|\$\([^)]*\)|\$[A-Za-z_][A-Za-z0-9_]*|\$[0-9@*#?$!-]|`[^`]*`/g;

/** A glob (`*`, `?`, `[…]`) as a regular expression source for one path segment. */
function globSource(text: string): string {
  let source = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[' && text.indexOf(']', i + 2) > 0) {
      const close = text.indexOf(']', i + 2);
      const body = text
        .slice(i + 1, close)
        .replace(/^[!^]/, '^')
        .replace(/[\\\]]/g, '\\$&');
      source += `[${body}]`;
      i = close;
    } else source += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return source;
}

/**
 * Whether one path segment can be `.git` once bash expands it: `.git` in any case (case-insensitive
 * disks), a glob that matches it (`.gi?`, `.g*`, `.[g]it`; as bash does without dotglob, `*`, `?`
 * and `[…]` do not match the leading dot), or a text around a variable (`${D}.git`). A segment that is a
 * variable alone is not counted: it could be anything, and most are not `.git`.
 */
function segmentCanBeGit(segment: string): boolean {
  if (segment.toLowerCase() === '.git') return true;
  if (!/[*?[$`]/.test(segment) || segment.replace(EXPANSION, '') === '') return false;
  if (segment[0] === '*' || segment[0] === '?' || segment[0] === '[') return false;
  let source = '';
  let last = 0;
  for (const match of segment.matchAll(EXPANSION)) {
    source += `${globSource(segment.slice(last, match.index))}.*`;
    last = (match.index ?? 0) + match[0].length;
  }
  source += globSource(segment.slice(last));
  try {
    return new RegExp(`^${source}$`, 'i').test('.git');
  } catch {
    return true;
  }
}

/**
 * Whether a word written to can name a path inside a `.git` folder of the workspace (the root's,
 * a submodule's, a nested repository's), once bash has expanded its variables and globs: `plain`
 * when it does as written, `expanded` when only after expansion; undefined when it cannot.
 */
function gitFolderPath(word: Word, cwd: string | undefined, context: Context): 'plain' | 'expanded' | undefined {
  const value = expandKnown(word, cwd, context.home);
  if (value === '' || word.processSubstitution) return undefined;
  let segments: string[];
  if (value.startsWith('$') || value.startsWith('`') || (!path.isAbsolute(value) && cwd === undefined)) {
    segments = value.split('/');
  } else {
    const target = path.isAbsolute(value) ? path.resolve(value) : path.resolve(cwd!, value);
    const workspace = context.workspaces.find((ws) => within(target, ws));
    if (!workspace) return undefined;
    segments = path.relative(workspace, target).split(path.sep);
  }
  if (!segments.some(segmentCanBeGit)) return undefined;
  return segments.includes('.git') && !word.expands && !word.glob ? 'plain' : 'expanded';
}

const SAFE_DEVICES = /^\/(dev\/(null|zero|stdout|stderr|stdin|tty|fd\/\d+)|proc\/self\/fd\/\d+)$/;

function inWorkspace(p: string, context: Context): boolean {
  return context.workspaces.some((ws) => within(p, ws));
}

function isOutside(p: string, context: Context): boolean {
  if (inWorkspace(p, context)) return false;
  if (SAFE_DEVICES.test(p)) return false;
  return !context.temp.some((dir) => within(p, dir) && p !== dir);
}

/** `/`, the home folder, the workspace as a whole (or all its entries: `*`), or a folder holding one of them. */
function holdsWorkspaceOrHome(p: string, context: Context): boolean {
  const glob = p.endsWith('/*') ? p.slice(0, -2) || '/' : p;
  return glob === '/' || context.workspaces.some((ws) => within(ws, glob)) || within(context.home, glob);
}

// ---------------------------------------------------------------------------------------------
// Rules on one simple command.

function options(args: Word[]): string[] {
  return args.map((a) => a.value).filter((v) => v.startsWith('-'));
}

function operands(args: Word[]): Word[] {
  const result: Word[] = [];
  let rest = false;
  for (const arg of args) {
    if (!rest && arg.value === '--') {
      rest = true;
      continue;
    }
    if (!rest && arg.value.startsWith('-') && arg.value !== '-') continue;
    result.push(arg);
  }
  return result;
}

/** The paths a file-changing command writes to (its operands or its destination). */
function writtenPaths(program: string, args: Word[]): Word[] {
  const ops = operands(args);
  switch (program) {
    case 'rm':
    case 'rmdir':
    case 'unlink':
    case 'shred':
    case 'touch':
    case 'mkdir':
    case 'truncate':
    case 'tee':
    case 'mv':
      return ops;
    case 'chmod':
    case 'chown':
    case 'chgrp':
      return ops.slice(1);
    case 'cp':
    case 'install':
    case 'rsync':
    case 'ln': {
      const target = args.findIndex((a) => a.value === '-t' || a.value === '--target-directory');
      if (target >= 0 && args[target + 1]) return [args[target + 1]];
      const inline = args.find((a) => a.value.startsWith('--target-directory='));
      if (inline) return [{ ...inline, value: inline.value.slice('--target-directory='.length) }];
      if (program === 'ln' && ops.length === 1) return [];
      return ops.length >= 2 ? [ops[ops.length - 1]] : [];
    }
    case 'dd':
      return args.filter((a) => a.value.startsWith('of=')).map((a) => ({ ...a, value: a.value.slice(3) }));
    case 'sed':
    case 'perl':
      return args.some((a) => /^-[a-zA-Z]*i/.test(a.value) || a.value.startsWith('--in-place')) ? ops : [];
    case 'tar': {
      const extract = /^-?[a-zA-Z]*x[a-zA-Z]*$/.test(args[0]?.value ?? '') || args.some((a) => a.value === '--extract' || a.value === '--get' || /^-[a-zA-Z]*x[a-zA-Z]*$/.test(a.value));
      if (!extract) return [];
      const at = args.findIndex((a) => a.value === '-C' || a.value === '--directory');
      const inline = args.find((a) => a.value.startsWith('--directory='));
      if (inline) return [{ ...inline, value: inline.value.slice('--directory='.length) }];
      return at >= 0 && args[at + 1] ? [args[at + 1]] : [];
    }
    case 'curl':
    case 'wget': {
      // curl -o FILE / --output FILE, wget -O FILE / --output-document FILE (`-` is standard output).
      const letter = program === 'curl' ? 'o' : 'O';
      const long = program === 'curl' ? '--output' : '--output-document';
      const files: Word[] = [];
      args.forEach((arg, at) => {
        const inline = new RegExp(`^-[a-zA-Z]*${letter}(.+)$`).exec(arg.value);
        if (arg.value === long || new RegExp(`^-[a-zA-Z]*${letter}$`).test(arg.value)) {
          if (args[at + 1]) files.push(args[at + 1]);
        } else if (arg.value.startsWith(`${long}=`)) files.push({ ...arg, value: arg.value.slice(long.length + 1) });
        else if (inline && !arg.value.startsWith('--')) files.push({ ...arg, value: inline[1] });
      });
      return files.filter((file) => file.value !== '-');
    }
    case 'unzip': {
      const at = args.findIndex((a) => a.value === '-d');
      return at >= 0 && args[at + 1] ? [args[at + 1]] : [];
    }
    default:
      return [];
  }
}

const PUBLISHERS: Record<string, (sub: string[]) => boolean> = {
  npm: (sub) => sub[0] === 'publish' || sub[0] === 'unpublish' || sub[0] === 'deprecate',
  pnpm: (sub) => sub[0] === 'publish',
  yarn: (sub) => sub[0] === 'publish' || (sub[0] === 'npm' && sub[1] === 'publish'),
  bun: (sub) => sub[0] === 'publish',
  cargo: (sub) => sub[0] === 'publish' || sub[0] === 'yank' || sub[0] === 'owner',
  twine: (sub) => sub[0] === 'upload',
  gem: (sub) => sub[0] === 'push' || sub[0] === 'yank',
  docker: (sub) => sub[0] === 'push' || (sub[0] === 'image' && sub[1] === 'push') || (sub[0] === 'buildx' && sub.includes('--push')),
  podman: (sub) => sub[0] === 'push',
  poetry: (sub) => sub[0] === 'publish',
  flit: (sub) => sub[0] === 'publish',
  hatch: (sub) => sub[0] === 'publish',
  uv: (sub) => sub[0] === 'publish',
  gh: (sub) =>
    (['pr', 'issue', 'release', 'repo', 'gist', 'secret', 'variable', 'label', 'workflow', 'run'].includes(sub[0]) &&
      /^(create|merge|close|delete|edit|comment|review|upload|reopen|ready|sync|fork|set|archive|rename|transfer|lock|unlock|enable|disable|cancel|rerun)$/.test(sub[1] ?? '')) ||
    (sub[0] === 'api' && sub.some((s) => /^(-X|--method|-f|-F|--field|--raw-field|--input)$/.test(s) || /^(-X|--method=)(POST|PUT|PATCH|DELETE)/i.test(s))),
};

/** git's options that come before the subcommand and take a value. */
const GIT_VALUED = new Set(['-C', '-c', '--git-dir', '--work-tree', '--namespace', '--exec-path', '--config-env']);

/** git's options before its subcommand (the `-c KEY=VALUE` settings among them), the subcommand and what follows it. */
function gitSubcommand(args: Word[]): { sub?: string; rest: string[]; configs: string[]; configEnv: boolean } {
  let i = 0;
  const configs: string[] = [];
  let configEnv = false;
  while (i < args.length && args[i].value.startsWith('-')) {
    const value = args[i].value;
    if (value === '-c' && args[i + 1]) configs.push(args[i + 1].value);
    if (value.startsWith('--config-env')) configEnv = true;
    i += GIT_VALUED.has(value) ? 2 : 1;
  }
  return { sub: args[i]?.value, rest: args.slice(i + 1).map((a) => a.value), configs, configEnv };
}

/** The key `git config …` writes, if it writes one. */
function gitConfigWrite(rest: string[]): string | undefined {
  if (!gitChangesState('config', rest)) return undefined;
  const valued = new Set(['-f', '--file', '--blob', '--type', '--default', '--comment', '--value']);
  const plain: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    if (valued.has(rest[i])) i++;
    else if (!rest[i].startsWith('-')) plain.push(rest[i]);
  }
  if (plain[0] === 'set' || plain[0] === 'unset') plain.shift();
  return plain[0];
}

function gitChangesState(sub: string, rest: string[]): boolean {
  const flags = rest.filter((r) => r.startsWith('-'));
  const plain = rest.filter((r) => !r.startsWith('-'));
  switch (sub) {
    case 'commit':
    case 'add':
    case 'rm':
    case 'mv':
    case 'reset':
    case 'rebase':
    case 'merge':
    case 'cherry-pick':
    case 'revert':
    case 'pull':
    case 'am':
    case 'switch':
    case 'update-ref':
    case 'update-index':
    case 'gc':
    case 'prune':
    case 'filter-branch':
    case 'filter-repo':
    case 'replace':
    case 'read-tree':
      return true;
    case 'stash':
      return !['list', 'show'].includes(plain[0] ?? '');
    case 'restore':
      return flags.some((f) => f === '--staged' || f === '-S' || /^-[a-zA-Z]*S/.test(f));
    case 'checkout':
      if (rest.includes('--')) return flags.some((f) => /^-[bB]$|^--orphan$/.test(f));
      if (flags.some((f) => /^-[bB]$|^--orphan$|^--detach$/.test(f))) return true;
      // `git checkout main` moves HEAD; `git checkout src/a.ts` or `.` restores files.
      return plain.length === 1 && !/[./]/.test(plain[0]);
    case 'branch':
      return (
        flags.some((f) => /^-[dDmMcCf]$|^--(delete|move|copy|force|set-upstream-to|unset-upstream|edit-description)/.test(f)) ||
        (plain.length > 0 && !flags.some((f) => /^(-l|--list|-a|--all|-r|--remotes|--contains|--merged|--no-merged|--points-at)$/.test(f)))
      );
    case 'tag':
      return plain.length > 0 && !flags.some((f) => /^(-l|--list|-v|--verify|--contains|--points-at|--merged|--no-merged)$/.test(f));
    case 'config': {
      if (flags.some((f) => /^(--unset|--unset-all|--add|--replace-all|--rename-section|--remove-section|-e|--edit)$/.test(f))) return true;
      if (flags.some((f) => /^(--get|--get-all|--get-regexp|--get-urlmatch|-l|--list)$/.test(f))) return false;
      if (plain[0] === 'set' || plain[0] === 'unset') return true;
      return plain.length >= 2;
    }
    case 'remote':
      return ['add', 'remove', 'rm', 'rename', 'set-url', 'set-head', 'set-branches', 'prune'].includes(plain[0] ?? '');
    case 'symbolic-ref':
      return plain.length >= 2;
    case 'notes':
      return ['add', 'append', 'edit', 'remove', 'copy', 'prune', 'merge'].includes(plain[0] ?? '');
    case 'worktree':
      return ['add', 'remove', 'move', 'prune'].includes(plain[0] ?? '');
    case 'submodule':
      return ['add', 'deinit', 'set-url', 'set-branch'].includes(plain[0] ?? '');
    default:
      return false;
  }
}

const PACKAGE_MANAGERS = new Set(['apt', 'apt-get', 'aptitude', 'dnf', 'yum', 'zypper', 'pacman', 'apk', 'port', 'snap', 'flatpak', 'brew', 'emerge', 'nix-env', 'dpkg', 'rpm']);
const PACKAGE_ACTIONS =
  /^(install|reinstall|remove|purge|erase|upgrade|dist-upgrade|full-upgrade|autoremove|uninstall|update|tap|untap|link|unlink|-S\w*|-R\w*|-U\w*|-i|-e|-P|--install|--remove|--purge|add|del)$/;

function systemChange(program: string, args: Word[]): boolean {
  const values = args.map((a) => a.value);
  const plain = values.filter((v) => !v.startsWith('-'));
  if (PACKAGE_MANAGERS.has(program)) return values.some((v) => PACKAGE_ACTIONS.test(v));
  switch (program) {
    case 'npm':
    case 'pnpm':
      return (
        ['install', 'i', 'add', 'uninstall', 'remove', 'rm', 'un', 'update', 'up', 'link'].includes(plain[0] ?? '') && values.some((v) => v === '-g' || v === '--global' || v === '--location=global')
      );
    case 'yarn':
      return plain[0] === 'global';
    case 'pip':
    case 'pip3':
      return ['install', 'uninstall'].includes(plain[0] ?? '') && values.some((v) => v === '--user' || v === '--break-system-packages');
    case 'python':
    case 'python3':
      return values[0] === '-m' && /^pip3?$/.test(values[1] ?? '') && values.some((v) => v === '--user' || v === '--break-system-packages');
    case 'cargo':
      return plain[0] === 'install' || plain[0] === 'uninstall';
    case 'go':
      return plain[0] === 'install';
    case 'gem':
      return (plain[0] === 'install' || plain[0] === 'uninstall') && !values.some((v) => v === '--install-dir' || v === '-i');
    case 'crontab':
      return !values.includes('-l');
    case 'at':
    case 'batch':
      return !values.includes('-l');
    case 'systemctl':
      return plain.some((v) => /^(start|stop|restart|reload|enable|disable|mask|unmask|daemon-reload|edit|set-property|set-default|isolate|kill|link|preset|revert)$/.test(v));
    case 'service':
      return plain.length >= 2;
    case 'launchctl':
      return plain.some((v) => /^(load|unload|bootstrap|bootout|submit|remove|enable|disable|kickstart|start|stop)$/.test(v));
    case 'update-rc.d':
    case 'chkconfig':
    case 'update-alternatives':
    case 'ldconfig':
    case 'modprobe':
    case 'insmod':
    case 'rmmod':
    case 'sysctl':
      return program !== 'sysctl' || values.some((v) => v === '-w' || v.includes('='));
    default:
      return false;
  }
}

const DISK_PROGRAMS = /^(mkfs(\..+)?|mke2fs|mkswap|fdisk|sfdisk|cfdisk|gdisk|sgdisk|parted|wipefs|mount|umount|losetup|cryptsetup|swapon|swapoff|hdparm|blkdiscard)$/;
const POWER_PROGRAMS = /^(shutdown|reboot|poweroff|halt|telinit)$/;
const DOWNLOADERS = new Set(['curl', 'wget', 'fetch', 'aria2c', 'http', 'https', 'xh']);
/** Programs that run a program they read (a script file, `-c TEXT`, or standard input). */
const INTERPRETERS = new Set([
  ...SHELLS,
  ...[
    'python',
    'python2',
    'python3',
    'pypy',
    'pypy3',
    'perl',
    'ruby',
    'irb',
    'node',
    'nodejs',
    'deno',
    'bun',
    'php',
    'lua',
    'luajit',
    'Rscript',
    'R',
    'tclsh',
    'wish',
    'pwsh',
    'powershell',
    'osascript',
    'jshell',
    'groovy',
    'scala',
    'julia',
    'elixir',
    'erl',
    'ghci',
    'awk',
    'gawk',
    'mawk',
    'nawk',
  ],
]);
/** Options of an interpreter that give it its program inline or by module (so it does not read one from standard input). */
const INLINE_PROGRAM = /^(-[a-zA-Z]*[ceE]|-m|--eval|-p|--print|-r|--command|-Command|-File|-EncodedCommand|-enc|-f|--file|--?version|--?help|-V|-h)$/;

/** True when an interpreter reads its program from standard input (no script, no -c/-e, or `-`, or `-s`). */
function readsProgramFromStdin(invocation: Invocation): boolean {
  const values = invocation.args.map((a) => a.value);
  const program = invocation.program;
  if (/^(pwsh|powershell)$/.test(program)) {
    const at = values.findIndex((v) => /^-(c|Command|File|f)$/i.test(v));
    return at < 0 ? !values.some((v) => !v.startsWith('-')) : values[at + 1] === '-';
  }
  if (/^[gmn]?awk$/.test(program)) return false; // awk's program is its first operand or -f FILE
  if (SHELLS.has(program)) {
    if (values.some((v) => /^-[a-zA-Z]*s[a-zA-Z]*$/.test(v))) return true;
    let i = 0;
    while (i < values.length && /^[-+]/.test(values[i]) && values[i] !== '-' && values[i] !== '--') {
      if (/^-[a-zA-Z]*c[a-zA-Z]*$/.test(values[i])) return false;
      i += /^[-+]o$/.test(values[i]) ? 2 : 1;
    }
    if (values[i] === '--') i++;
    return i >= values.length || values[i] === '-' || values[i] === '/dev/stdin';
  }
  if (values.some((v) => INLINE_PROGRAM.test(v))) return false;
  const script = values.find((v) => !v.startsWith('-'));
  return script === undefined || script === '-' || script === '/dev/stdin';
}

/** The script text a shell runs with `-c TEXT` (`bash -lc TEXT`), if any. */
function shellScript(values: string[]): string | undefined {
  const at = values.findIndex((v) => /^-[a-zA-Z]*c[a-zA-Z]*$/.test(v));
  return at >= 0 ? values[at + 1] : undefined;
}

/** Expansions whose value the policy knows: the home folder and the current folder. */
function knownExpansion(value: string): boolean {
  return /^(\$HOME|\$\{HOME\}|\$PWD|\$\{PWD\}|\$\(pwd\)|`pwd`)(\/|$)/.test(value);
}

// git options that run programs or give commands other names.

/** git configuration keys whose value is a program, a command alias, a hook folder or a template (case-insensitive, as git reads them). */
const GIT_EXEC_KEYS = [
  /^alias\./,
  /^core\.(fsmonitor|hookspath|sshcommand|pager|editor|askpass|gitproxy|alternaterefscommand)$/,
  /^pager\./,
  /\.textconv$/,
  /^filter\./,
  /^diff\.external$/,
  /^diff\..+\.command$/,
  /^merge\..+\.driver$/,
  /^(diff|merge)tool\..+\.(cmd|path)$/,
  /^sequence\.editor$/,
  /^credential\.(.+\.)?helper$/,
  /^gpg\.(.+\.)?program$/,
  /^init\.templatedir$/,
  /^include\.path$/,
  /^includeif\..+\.path$/,
  /^remote\..+\.(uploadpack|receivepack|proxy|vcs)$/,
  /^uploadpack\.packobjectshook$/,
  /^protocol\.(.+\.)?allow$/,
  /^(web\.browser|browser\..+\.(cmd|path)|man\..+\.(cmd|path)|instaweb\.httpd)$/,
  /^sendemail\.(smtpserver|tocmd|cccmd|sendmailcmd)$/,
  /^submodule\..+\.update$/,
  /^interactive\.difffilter$/,
  /^hook\..+\.command$/,
];
/** Pagers and editors that show text or do nothing, and run nothing else: `git -c core.pager=cat log`, `GIT_EDITOR=true git rebase --continue`. */
const PLAIN_PAGERS = /^(|true|:|cat|less( -[A-Za-z]+)*|more|most)$/;
/** Keys and variables whose value is a pager or an editor. */
const PAGER_KEYS = /^(core\.pager|pager\..+|core\.editor|sequence\.editor|GIT_PAGER|GIT_EDITOR|GIT_SEQUENCE_EDITOR)$/i;
/** Environment variables git reads its configuration or programs from. */
const GIT_EXEC_ENV =
  /^(GIT_CONFIG_PARAMETERS|GIT_CONFIG_COUNT|GIT_CONFIG_KEY_\d+|GIT_CONFIG_VALUE_\d+|GIT_CONFIG|GIT_CONFIG_GLOBAL|GIT_CONFIG_SYSTEM|GIT_SSH|GIT_SSH_COMMAND|GIT_EXTERNAL_DIFF|GIT_PAGER|GIT_EDITOR|GIT_SEQUENCE_EDITOR|GIT_ASKPASS|SSH_ASKPASS|GIT_TEMPLATE_DIR|GIT_EXEC_PATH|GIT_PROXY_COMMAND)=/;

/** Whether setting this git key to this value could run a program or rename a command. */
function gitExecKey(assignment: string): string | undefined {
  const eq = assignment.indexOf('=');
  const key = (eq < 0 ? assignment : assignment.slice(0, eq)).toLowerCase();
  const value = eq < 0 ? '' : assignment.slice(eq + 1);
  if (!GIT_EXEC_KEYS.some((re) => re.test(key))) return undefined;
  if (PAGER_KEYS.test(key) && PLAIN_PAGERS.test(value.trim())) return undefined;
  return key;
}

class Checker {
  readonly findings: PolicyFinding[] = [];
  private depth = 0;

  constructor(private readonly context: Context) {}

  private add(rule: PolicyRuleId, reason: string, subject: string): void {
    if (!this.findings.some((f) => f.rule === rule && f.subject === subject && f.reason === reason)) this.findings.push({ rule, reason, subject });
  }

  check(src: string, cwd: string | undefined): void {
    if (this.depth > 6) {
      this.add('hidden-program', 'nests commands too deeply for the policy to read them', src.trim());
      return;
    }
    this.depth++;
    try {
      this.checkText(src, cwd);
    } finally {
      this.depth--;
    }
  }

  private checkText(src: string, startCwd: string | undefined): void {
    if (/:\s*\(\s*\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:/.test(src) || /\b(\w+)\s*\(\s*\)\s*\{\s*\1\s*\|\s*\1\s*&\s*\}\s*;\s*\1\b/.test(src)) {
      this.add('fork-bomb', POLICY_RULES['fork-bomb'], src.trim());
    }
    if (/(\b(ba|z|da|k)?sh|\bsource|(^|[;&|]\s*)\.)\b[^;&|\n]*<\(\s*(curl|wget)\b/.test(src) || /(\b(ba|z|da|k)?sh\s+-c|\beval|\bsource|(^|[;&|]\s*)\.)\s+["']?\$\(\s*(curl|wget)\b/.test(src)) {
      this.add('pipe-to-shell', POLICY_RULES['pipe-to-shell'], src.trim());
    }
    const commands = parseCommands(src);
    let cwd = startCwd;
    const pipelines = new Map<number, { invocation?: Invocation; command: SimpleCommand }[]>();
    for (const command of commands) {
      // What bash runs while it expands the command line: $(…), backticks, <(…), heredoc substitutions.
      for (const word of [...command.words, ...command.inputs, ...command.redirects.flatMap((r) => (r.target ? [r.target] : []))]) {
        for (const inner of word.substitutions) this.check(inner, cwd);
      }
      for (const inner of command.stdin?.substitutions ?? []) this.check(inner, cwd);
      const invocation = programOf(command.words);
      const stages = pipelines.get(command.pipeline) ?? [];
      stages.push({ invocation, command });
      pipelines.set(command.pipeline, stages);
      for (const redirect of command.redirects) {
        if (redirect.target) this.checkWrite(redirect.target, cwd, command.text, 'writes to');
      }
      this.checkGitEnvironment(command);
      if (command.words.length === 0) continue;
      cwd = this.checkWords(command.words, command, cwd);
    }
    for (const stages of pipelines.values()) {
      const download = stages.findIndex((s) => s.invocation && DOWNLOADERS.has(s.invocation.program));
      const reader = stages.findIndex((s, at) => at > 0 && !s.command.stdin && s.invocation && INTERPRETERS.has(s.invocation.program) && readsProgramFromStdin(s.invocation));
      if (reader < 0) continue;
      const text = stages.map((s) => s.command.text).join(' | ');
      if (download >= 0 && download < reader) this.add('pipe-to-shell', POLICY_RULES['pipe-to-shell'], text);
      else
        this.add(
          'hidden-program',
          `${stages[reader].invocation!.program} runs what ${stages[reader - 1].invocation?.program ?? 'the command before it'} writes as a program, which the policy cannot read`,
          text,
        );
    }
  }

  /** Assignments that make git run a program: `GIT_SSH_COMMAND=… git fetch`, `export GIT_CONFIG_PARAMETERS=…`. */
  private checkGitEnvironment(command: SimpleCommand): void {
    for (const word of command.words) {
      if (!GIT_EXEC_ENV.test(word.value)) continue;
      const [name, ...rest] = word.value.split('=');
      const value = rest.join('=').trim();
      if (PAGER_KEYS.test(name) && PLAIN_PAGERS.test(value)) continue;
      if (/^GIT_CONFIG(_GLOBAL|_SYSTEM)?$/.test(name) && value === '/dev/null') continue;
      this.add('git-exec-config', `sets ${name}, which makes git run a program or read configuration the policy does not see`, command.text);
    }
  }

  private checkWrite(word: Word, cwd: string | undefined, subject: string, how: string): void {
    const target = resolvePath(word, cwd, this.context.home);
    if (target && this.context.forbidden.some((dir) => within(target, dir))) {
      this.add('protected-path', `${how} ${word.value}, inside Apollo's dataset folder`, subject);
      return;
    }
    const git = gitFolderPath(word, cwd, this.context);
    if (git) {
      this.add(
        'protected-path',
        git === 'plain'
          ? `${how} ${word.value}, inside the repository's .git folder`
          : `${how} ${word.value}, which can name a path inside a .git folder (once expanded, or on a disk that ignores case)`,
        subject,
      );
      return;
    }
    if (!target || !isOutside(target, this.context)) return;
    const shown = path.isAbsolute(word.value) || target === path.resolve(word.value) ? word.value : `${word.value} (${target})`;
    this.add('write-outside', `${how} ${shown}, outside the workspace`, subject);
  }

  /** Checks a simple command's words (a whole command, or the command a wrapper runs); returns the folder the rest of the line runs in. */
  private checkWords(words: Word[], command: SimpleCommand, cwd: string | undefined): string | undefined {
    const unwrapped = unwrap(words);
    const subject = command.text;
    for (const wrapper of unwrapped.wrappers) {
      if (ELEVATORS.has(wrapper.program)) this.add('elevate', POLICY_RULES.elevate, subject);
    }
    for (const script of unwrapped.scripts) this.check(script, cwd);
    const invocation = unwrapped.invocation;
    if (!invocation) return cwd;
    return this.checkInvocation(invocation, command, cwd);
  }

  private checkInvocation(invocation: Invocation, command: SimpleCommand, cwd: string | undefined): string | undefined {
    const { program, args } = invocation;
    const subject = command.text;
    const values = args.map((a) => a.value);

    // Paths anywhere in the command: credentials and the dataset folder.
    for (const word of [...command.words, ...command.inputs]) {
      const p = resolvePath(word, cwd, this.context.home);
      if (!p) continue;
      if (this.context.credentials.some((cred) => within(p, cred))) this.add('credentials', `uses ${word.value}, a credential file or folder`, subject);
      else if (this.context.forbidden.some((dir) => within(p, dir))) this.add('protected-path', `uses ${word.value}, inside Apollo's dataset folder`, subject);
    }

    if (ELEVATORS.has(program)) this.add('elevate', POLICY_RULES.elevate, subject);

    // A command whose name comes from an expansion: `$CMD -rf ~`, `"$(echo rm)" …`.
    if (invocation.word.leadingExpansion && !knownExpansion(invocation.word.value)) {
      this.add('hidden-program', `runs ${invocation.word.value}, a command only known once it runs, which the policy cannot read`, subject);
    }

    // Nested shells, eval and source: check the script they run.
    if (SHELLS.has(program)) {
      const script = shellScript(values);
      if (script !== undefined) this.check(script, cwd);
      else if (readsProgramFromStdin(invocation) && command.stdin) this.check(command.stdin.text, cwd);
      else {
        const operand = operands(args)[0];
        if (operand?.processSubstitution) this.add('hidden-program', `${program} runs the output of ${operand.value} as a script, which the policy cannot read`, subject);
      }
    }
    if (program === 'eval') this.check(values.join(' '), cwd);
    if ((program === 'source' || program === '.') && args[0]) {
      if (args[0].processSubstitution || /^\/(dev\/stdin|dev\/fd\/\d+|proc\/self\/fd\/\d+)$/.test(args[0].value)) {
        this.add('hidden-program', `${program} runs the output of ${args[0].value} as a script, which the policy cannot read`, subject);
      } else if (args[0].leadingExpansion && !knownExpansion(args[0].value)) {
        this.add('hidden-program', `${program} runs ${args[0].value}, a script only known once it runs`, subject);
      }
    }

    // Writes.
    for (const word of writtenPaths(program, args)) {
      const target = resolvePath(word, cwd, this.context.home);
      if (target && (program === 'rm' || program === 'rmdir' || program === 'shred') && holdsWorkspaceOrHome(target, this.context)) {
        this.add('delete-root', `${program} of ${word.value}: ${POLICY_RULES['delete-root']}`, subject);
        continue;
      }
      if (target && program === 'dd' && target.startsWith('/dev/') && !SAFE_DEVICES.test(target)) {
        this.add('disk', `dd writes to the device ${word.value}`, subject);
        continue;
      }
      this.checkWrite(word, cwd, subject, `${program} changes`);
    }
    if (program === 'find') this.checkFind(args, command, cwd);
    if (program === 'ln' && !options(args).some((o) => /^-[a-zA-Z]*s|^--symbolic$/.test(o))) {
      const ops = operands(args);
      for (const source of ops.length >= 2 ? ops.slice(0, -1) : ops) {
        const p = resolvePath(source, cwd, this.context.home);
        if (p && isOutside(p, this.context)) this.add('hard-link-outside', `ln of ${source.value}: ${POLICY_RULES['hard-link-outside']}`, subject);
      }
    }

    if (program === 'git') this.checkGit(args, command, cwd);
    const publisher = PUBLISHERS[program];
    if (publisher && publisher(values.filter((v) => !v.startsWith('-') || v === '--push' || /^(-X|--method|-f|-F|--field|--raw-field|--input)/.test(v)))) {
      this.add('publish', `${program} ${values.find((v) => !v.startsWith('-')) ?? ''}: ${POLICY_RULES.publish}`.replace(/ +:/, ':'), subject);
    }

    if (['ssh', 'scp', 'sftp', 'mosh', 'sshpass', 'telnet'].includes(program)) this.add('remote-shell', `${program}: ${POLICY_RULES['remote-shell']}`, subject);
    if (program === 'rsync' && operands(args).some((a) => /^[^/\s:]+@?[^/\s:]*:/.test(a.value) || a.value.startsWith('rsync://'))) {
      this.add('remote-shell', `rsync to or from another machine`, subject);
    }
    if (DISK_PROGRAMS.test(program)) this.add('disk', `${program}: ${POLICY_RULES.disk}`, subject);
    if (
      POWER_PROGRAMS.test(program) ||
      (program === 'init' && /^[06]$/.test(values[0] ?? '')) ||
      (program === 'systemctl' && values.some((v) => /^(poweroff|reboot|halt|suspend|hibernate|kexec|hybrid-sleep)$/.test(v)))
    ) {
      this.add('power', POLICY_RULES.power, subject);
    } else if (systemChange(program, args)) {
      this.add('system-change', `${program}: ${POLICY_RULES['system-change']}`, subject);
    }
    if (['killall', 'killall5', 'pkill'].includes(program) || (program === 'kill' && values.indexOf('-1', 1) > 0)) {
      this.add('kill-broad', `${program}: ${POLICY_RULES['kill-broad']}`, subject);
    }

    // cd and pushd move the rest of the command.
    if (program === 'cd' || program === 'pushd') {
      const target = operands(args)[0];
      if (!target) return this.context.home;
      if (target.value === '-') return undefined;
      return resolvePath(target, cwd, this.context.home);
    }
    return cwd;
  }

  /** find: deleting from /, the home folder or above the workspace; and the commands of -exec, -execdir, -ok, -okdir. */
  private checkFind(args: Word[], command: SimpleCommand, cwd: string | undefined): void {
    const values = args.map((a) => a.value);
    const subject = command.text;
    const execs: Word[][] = [];
    for (let i = 0; i < args.length; i++) {
      if (!/^-(exec|execdir|ok|okdir)$/.test(values[i])) continue;
      let end = i + 1;
      while (end < args.length && values[end] !== ';' && values[end] !== '+') end++;
      execs.push(args.slice(i + 1, end));
      i = end;
    }
    const deletes = values.includes('-delete') || execs.some((words) => ['rm', 'shred', 'unlink'].includes(programOf(words)?.program ?? ''));
    if (deletes) {
      const firstExpression = args.findIndex((a) => a.value.startsWith('-') || a.value === '(' || a.value === '!');
      for (const start of args.slice(0, firstExpression < 0 ? args.length : firstExpression)) {
        const target = resolvePath(start, cwd, this.context.home);
        if (!target) continue;
        if (target === '/' || within(this.context.home, target) || this.context.workspaces.some((ws) => within(ws, target) && ws !== target))
          this.add('delete-root', `find … -delete from ${start.value}: ${POLICY_RULES['delete-root']}`, subject);
        else if (isOutside(target, this.context)) this.add('write-outside', `find deletes under ${start.value}, outside the workspace`, subject);
      }
    }
    for (const words of execs) if (words.length) this.checkWords(words, command, cwd);
  }

  private checkGit(args: Word[], command: SimpleCommand, cwd: string | undefined): void {
    const subject = command.text;
    const git = gitSubcommand(args);
    for (const setting of git.configs) {
      const key = gitExecKey(setting);
      if (key) this.add('git-exec-config', `git -c ${key}: ${POLICY_RULES['git-exec-config']}`, subject);
    }
    if (git.configEnv) this.add('git-exec-config', `git --config-env sets configuration from an environment variable the policy cannot read`, subject);
    const { sub, rest } = git;
    if (sub === undefined) return;
    const restWords = args.slice(args.length - rest.length);
    // Options of subcommands that name a template or a program to run.
    rest.forEach((value, at) => {
      if ((sub === 'init' || sub === 'clone') && (value === '--template' || value.startsWith('--template='))) {
        this.add('git-exec-config', `git ${sub} --template copies hooks and configuration from a template folder`, subject);
      }
      if ((sub !== 'rebase' && /^--(upload-pack|receive-pack|exec)(=|$)/.test(value)) || (sub === 'clone' && value === '-u')) {
        this.add('git-exec-config', `git ${sub} ${value.split('=')[0]} runs a program of the command's choosing`, subject);
      }
      if (sub === 'clone' && (value === '-c' || value === '--config') && rest[at + 1] && gitExecKey(rest[at + 1])) {
        this.add('git-exec-config', `git clone ${value} ${gitExecKey(rest[at + 1])}: ${POLICY_RULES['git-exec-config']}`, subject);
      }
      if (sub === 'clone' && value.startsWith('--config=') && gitExecKey(value.slice(9))) {
        this.add('git-exec-config', `git clone --config ${gitExecKey(value.slice(9))}: ${POLICY_RULES['git-exec-config']}`, subject);
      }
      if (/^(ext|fd)::/.test(value)) this.add('git-exec-config', `git ${sub} ${value}: a transport that runs a command`, subject);
    });
    if (sub === 'config') {
      const key = gitConfigWrite(rest);
      if (key && gitExecKey(`${key}=${rest[rest.indexOf(key) + 1] ?? ''}`)) this.add('git-exec-config', `git config ${key.toLowerCase()}: ${POLICY_RULES['git-exec-config']}`, subject);
    }
    // Commands that run other commands: check those too.
    if (sub === 'submodule' && rest.includes('foreach')) {
      const inner = restWords.slice(rest.indexOf('foreach') + 1).filter((w) => !w.value.startsWith('--'));
      if (inner.length) this.check(inner.map((w) => w.value).join(' '), cwd);
    }
    if (sub === 'bisect' && rest[0] === 'run' && restWords.length > 1) this.checkWords(restWords.slice(1), command, cwd);
    if (sub === 'rebase' || sub === 'difftool') {
      rest.forEach((value, at) => {
        if ((value === '-x' || value === '--exec' || value === '--extcmd') && rest[at + 1] !== undefined) this.check(rest[at + 1], cwd);
        else if (/^--(exec|extcmd)=/.test(value)) this.check(value.slice(value.indexOf('=') + 1), cwd);
      });
    }
    if (sub === 'push') this.add('publish', 'git push sends commits to another machine', subject);
    else if (gitChangesState(sub, rest)) this.add('git-state', `git ${sub}: ${POLICY_RULES['git-state']}`, subject);
  }
}

// ---------------------------------------------------------------------------------------------
// Allow list.

function normalize(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Whether one allow-list entry covers a finding. */
export function allowCovers(pattern: string, finding: PolicyFinding): boolean {
  const entry = pattern.trim();
  if (entry === '') return false;
  if (entry.startsWith('rule:')) return entry.slice(5).trim() === finding.rule;
  const regex = /^\/(.+)\/([a-z]*)$/s.exec(entry);
  if (regex) {
    try {
      return new RegExp(regex[1], regex[2]).test(finding.subject);
    } catch {
      return false;
    }
  }
  const prefix = normalize(entry);
  const subject = normalize(finding.subject);
  return subject === prefix || subject.startsWith(`${prefix} `);
}

/** A prefix the annotator could add to the allow list to stop being asked about this command. */
export function suggestAllowPattern(finding: PolicyFinding): string {
  const words = normalize(finding.subject).split(' ');
  // `git push`, `npm publish`, `docker push`: the tool and its subcommand; anything else as it is.
  if (TOOLS_WITH_SUBCOMMANDS.has(words[0]) && words.length > 1 && !words[1].startsWith('-')) return words.slice(0, 2).join(' ');
  return words.join(' ');
}

const TOOLS_WITH_SUBCOMMANDS = new Set([
  'git',
  'npm',
  'pnpm',
  'yarn',
  'bun',
  'cargo',
  'docker',
  'podman',
  'gh',
  'twine',
  'gem',
  'poetry',
  'uv',
  'systemctl',
  'brew',
  'apt',
  'apt-get',
  'dnf',
  'pip',
  'pip3',
  'go',
]);

let credentialCache: { home: string; paths: string[] } | undefined;

/** The credential files and folders of a home folder (the same home on every call of a run). */
function credentialPaths(home: string): string[] {
  if (credentialCache?.home !== home) credentialCache = { home, paths: CREDENTIAL_PATHS.map((rel) => path.join(home, rel)) };
  return credentialCache.paths;
}

/** Checks one command against the deny list and the allow list. */
export function checkCommand(command: string, options: PolicyOptions): PolicyVerdict {
  const workspace = path.resolve(options.workspace);
  const home = path.resolve(options.home);
  const context: Context = {
    workspaces: [workspace, ...(options.workspaceAliases ?? []).map((p) => path.resolve(p))],
    home,
    forbidden: (options.forbidden ?? []).map((p) => path.resolve(p)),
    temp: (options.tempFolders ?? ['/tmp', '/var/tmp', os.tmpdir()]).map((p) => path.resolve(p)),
    credentials: credentialPaths(home),
  };
  const checker = new Checker(context);
  checker.check(command, workspace);
  const allow = options.allow ?? [];
  const findings = checker.findings.filter((finding) => !allow.some((pattern) => allowCovers(pattern, finding)));
  if (findings.length === 0) return { verdict: 'allow' };
  const reasons = [...new Set(findings.map((f) => f.reason))];
  return { verdict: 'ask', rule: findings[0].rule, reason: reasons.join('; '), findings };
}
