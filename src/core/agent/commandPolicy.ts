/**
 * The command policy: where no sandbox is available (macOS, Windows, no bubblewrap, or the
 * sandbox is off), each command the agent wants to run is checked against a deny list first.
 * A command that matches is not run until the annotator allows it; a user's allow list skips the
 * question. This is a net for common mistakes, not a sandbox: it reads the command's text (words,
 * pipes, redirections, `bash -c` and `eval` strings, `cd`), so what a script or program does on
 * its own (`python -c "open('/etc/x','w')"`, a Makefile, a symlink) is not seen.
 *
 * The rules (`POLICY_RULES`; each finding names its rule):
 *
 * | rule | asks for |
 * | --- | --- |
 * | elevate | sudo, su, doas, pkexec, runuser |
 * | delete-root | deleting (rm, rmdir, shred, find -delete) /, the home folder, the workspace as a whole (`rm -rf .`, `rm -rf *` at its root) or a folder holding it |
 * | write-outside | a redirection (`>`, `>>`, `&>`, `tee`) or a file-changing command (rm, mv, cp/install/rsync destination, touch, mkdir, ln, chmod, chown, truncate, dd of=, sed -i, tar -C, unzip -d) on a path outside the workspace; temporary folders (/tmp, /var/tmp, the OS temp folder) and /dev/null, /dev/stdout… are fine |
 * | hard-link-outside | `ln` without -s of a file outside the workspace (a later write inside would change it) |
 * | protected-path | writing inside the workspace's .git folder, or any use of the dataset folder / shadow store |
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
import { isInside } from '../paths';
import { CREDENTIAL_PATHS } from './sandbox';

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
  | 'fork-bomb';

export const POLICY_RULES: Record<PolicyRuleId, string> = {
  elevate: 'runs with another user\'s rights (sudo, su, doas, pkexec)',
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
// A small shell lexer: words (quotes removed), operators, redirections, heredocs skipped.

interface Word {
  kind: 'word';
  value: string;
  /** The word began unquoted, so a leading ~ expands. */
  tilde: boolean;
  start: number;
  end: number;
}
interface Operator {
  kind: 'op';
  value: string;
  start: number;
  end: number;
}
interface Redirect {
  kind: 'redir';
  op: string;
  start: number;
  end: number;
}
type Token = Word | Operator | Redirect;

const OPERATOR_CHARS = new Set([';', '&', '|', '(', ')', '<', '>', '`', '\n']);

function lex(src: string): Token[] {
  const tokens: Token[] = [];
  const heredocs: { delimiter: string; stripTabs: boolean }[] = [];
  let i = 0;
  const atWordStart = () => i === 0 || /[\s;&|()<>`]/.test(src[i - 1]);
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '\\' && src[i + 1] === '\n') {
      i += 2;
      continue;
    }
    if (c === '#' && atWordStart()) {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (c === '\n') {
      tokens.push({ kind: 'op', value: ';', start: i, end: i + 1 });
      i++;
      // Heredoc bodies are data, not commands.
      for (const doc of heredocs.splice(0)) {
        for (;;) {
          if (i >= src.length) break;
          let lineEnd = src.indexOf('\n', i);
          if (lineEnd < 0) lineEnd = src.length;
          let line = src.slice(i, lineEnd);
          if (doc.stripTabs) line = line.replace(/^\t+/, '');
          i = Math.min(lineEnd + 1, src.length);
          if (line.replace(/\r$/, '') === doc.delimiter) break;
        }
      }
      continue;
    }
    // Redirections, with an optional fd number or & before them.
    const redirect = /^(\d*|&)(>>|>\||>&|>|<<<|<<-|<<|<>|<&|<)/.exec(src.slice(i));
    if (redirect && (redirect[1] === '' || atWordStart())) {
      const [whole, , op] = redirect;
      // `<(` and `>(` are process substitutions: a subshell.
      if ((op === '<' || op === '>') && src[i + whole.length] === '(' && redirect[1] === '') {
        tokens.push({ kind: 'op', value: '(', start: i, end: i + 2 });
        i += 2;
        continue;
      }
      const start = i;
      i += whole.length;
      if (op === '>&' || op === '<&') {
        // 2>&1, >&2, >&- : a descriptor, not a file — unless a word follows (`>& file`).
        const dup = /^\s*(\d+|-)(?=$|[\s;&|()<>])/.exec(src.slice(i));
        if (dup) {
          i += dup[0].length;
          continue;
        }
        tokens.push({ kind: 'redir', op: '>', start, end: i });
        continue;
      }
      const normalized = redirect[1] === '&' ? `&${op}` : op;
      tokens.push({ kind: 'redir', op: normalized, start, end: i });
      if (op === '<<' || op === '<<-') {
        const delimiterWord = readWord(src, skipBlanks(src, i));
        if (delimiterWord) {
          heredocs.push({ delimiter: delimiterWord.value, stripTabs: op === '<<-' });
          i = delimiterWord.end;
          tokens.pop(); // the delimiter is not a file
        }
      }
      continue;
    }
    if (c === '$' && src[i + 1] === '(' && src[i + 2] !== '(') {
      tokens.push({ kind: 'op', value: '(', start: i, end: i + 2 });
      i += 2;
      continue;
    }
    if (OPERATOR_CHARS.has(c)) {
      const two = src.slice(i, i + 2);
      const value = ['&&', '||', '|&', ';;'].includes(two) ? two : c;
      tokens.push({ kind: 'op', value, start: i, end: i + value.length });
      i += value.length;
      continue;
    }
    const word = readWord(src, i);
    if (!word || word.end === i) {
      i++;
      continue;
    }
    tokens.push(word);
    i = word.end;
  }
  return tokens;
}

function skipBlanks(src: string, i: number): number {
  while (i < src.length && (src[i] === ' ' || src[i] === '\t')) i++;
  return i;
}

function readWord(src: string, start: number): Word | undefined {
  let i = start;
  let value = '';
  const tilde = src[i] !== '"' && src[i] !== "'";
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c) || OPERATOR_CHARS.has(c)) break;
    if (c === '$' && src[i + 1] === '(' && i > start) break;
    if (c === "'") {
      const close = src.indexOf("'", i + 1);
      const end = close < 0 ? src.length : close;
      value += src.slice(i + 1, end);
      i = end + 1;
    } else if (c === '$' && src[i + 1] === "'") {
      const close = src.indexOf("'", i + 2);
      const end = close < 0 ? src.length : close;
      value += src.slice(i + 2, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      while (i < src.length && src[i] !== '"') {
        if (src[i] === '\\' && i + 1 < src.length && '"\\$`\n'.includes(src[i + 1])) {
          value += src[i + 1];
          i += 2;
        } else {
          value += src[i];
          i++;
        }
      }
      i++;
    } else if (c === '\\') {
      value += src[i + 1] ?? '';
      i += 2;
    } else if (c === '$' && src[i + 1] === '{') {
      const close = src.indexOf('}', i);
      const end = close < 0 ? src.length : close + 1;
      value += src.slice(i, end);
      i = end;
    } else {
      value += c;
      i++;
    }
  }
  if (i === start) return undefined;
  return { kind: 'word', value, tilde, start, end: Math.min(i, src.length) };
}

interface SimpleCommand {
  words: Word[];
  redirects: { op: string; target?: Word }[];
  /** Files read with `<`. */
  inputs: Word[];
  text: string;
  /** Index of the pipeline it belongs to. */
  pipeline: number;
}

function splitCommands(src: string, tokens: Token[]): SimpleCommand[] {
  const commands: SimpleCommand[] = [];
  let pipeline = 0;
  let current: SimpleCommand | undefined;
  let first = -1;
  let last = -1;
  const close = () => {
    if (current && (current.words.length || current.redirects.length)) {
      current.text = src.slice(first, last).trim();
      commands.push(current);
    }
    current = undefined;
  };
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t];
    if (token.kind === 'op') {
      close();
      if (token.value !== '|' && token.value !== '|&') pipeline++;
      continue;
    }
    if (!current) {
      current = { words: [], redirects: [], inputs: [], text: '', pipeline };
      first = token.start;
    }
    last = token.end;
    if (token.kind === 'redir') {
      const next = tokens[t + 1];
      if (next?.kind === 'word' && !token.op.startsWith('<')) {
        current.redirects.push({ op: token.op, target: next });
        last = next.end;
        t++;
      } else if (next?.kind === 'word') {
        if (token.op === '<' || token.op === '<>') current.inputs.push(next);
        t++;
        last = next.end;
      }
      continue;
    }
    current.words.push(token);
  }
  close();
  return commands;
}

// ---------------------------------------------------------------------------------------------
// Finding the program behind wrappers.

const KEYWORDS = new Set(['!', '{', '}', 'then', 'do', 'else', 'elif', 'if', 'while', 'until', 'fi', 'done', 'time']);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;
/** Wrappers and the options of theirs that take a value. */
const WRAPPERS: Record<string, string[]> = {
  env: ['-u', '--unset', '-C', '--chdir', '-S', '--split-string'],
  nohup: [],
  nice: ['-n', '--adjustment'],
  ionice: ['-c', '-n', '-p', '-t'],
  timeout: ['-s', '--signal', '-k', '--kill-after'],
  stdbuf: ['-i', '-o', '-e'],
  command: [],
  builtin: [],
  exec: ['-a'],
  time: ['-f', '-o'],
  xargs: ['-I', '-i', '-n', '-P', '-d', '-L', '-l', '-s', '-E', '-e', '-a', '--max-args', '--max-procs', '--delimiter', '--arg-file'],
  chronic: [],
  unbuffer: [],
  caffeinate: [],
};
const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'fish', 'ash']);

interface Invocation {
  program: string;
  args: Word[];
}

function programOf(words: Word[]): Invocation | undefined {
  let i = 0;
  for (;;) {
    while (i < words.length && (KEYWORDS.has(words[i].value) || ASSIGNMENT.test(words[i].value))) i++;
    if (i >= words.length) return undefined;
    const name = path.basename(words[i].value);
    // `command -v x` looks x up; it does not run it.
    if (name === 'command' && /^-[vV]$/.test(words[i + 1]?.value ?? '')) return { program: name, args: words.slice(i + 1) };
    const valued = WRAPPERS[name];
    if (!valued) return { program: name, args: words.slice(i + 1) };
    i++;
    while (i < words.length) {
      const word = words[i].value;
      if (word === '--') {
        i++;
        break;
      }
      if (name === 'timeout' && /^\d/.test(word)) {
        i++;
        break;
      }
      if (name === 'nice' && /^-\d+$/.test(word)) {
        i++;
        continue;
      }
      if (ASSIGNMENT.test(word) && name === 'env') {
        i++;
        continue;
      }
      if (!word.startsWith('-')) break;
      i += valued.includes(word) ? 2 : 1;
    }
  }
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

/** What a word means as a path from `cwd`; undefined when it depends on something unknown. */
function resolvePath(word: Word, cwd: string | undefined, home: string): string | undefined {
  let value = word.value;
  if (value === '') return undefined;
  if (word.tilde && (value === '~' || value.startsWith('~/'))) value = home + value.slice(1);
  else if (word.tilde && /^~[A-Za-z_]/.test(value)) value = path.join('/home', value.slice(1));
  value = value.replace(/^(\$HOME|\$\{HOME\})(?=\/|$)/, home);
  if (value.startsWith('$') || value.startsWith('`')) return undefined;
  if (path.isAbsolute(value)) return path.resolve(value);
  if (value.startsWith('-')) return undefined;
  if (cwd === undefined) return undefined;
  return path.resolve(cwd, value);
}

const SAFE_DEVICES = /^\/(dev\/(null|zero|stdout|stderr|stdin|tty|fd\/\d+)|proc\/self\/fd\/\d+)$/;

function inWorkspace(p: string, context: Context): boolean {
  return context.workspaces.some((ws) => isInside(p, ws));
}

function isOutside(p: string, context: Context): boolean {
  if (inWorkspace(p, context)) return false;
  if (SAFE_DEVICES.test(p)) return false;
  return !context.temp.some((dir) => isInside(p, dir) && p !== dir);
}

/** `/`, the home folder, the workspace as a whole (or all its entries: `*`), or a folder holding one of them. */
function holdsWorkspaceOrHome(p: string, context: Context): boolean {
  const glob = p.endsWith('/*') ? p.slice(0, -2) || '/' : p;
  return glob === '/' || context.workspaces.some((ws) => isInside(ws, glob)) || isInside(context.home, glob);
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

function gitSubcommand(args: Word[]): { sub: string; rest: string[] } | undefined {
  let i = 0;
  while (i < args.length && args[i].value.startsWith('-')) i += GIT_VALUED.has(args[i].value) ? 2 : 1;
  if (i >= args.length) return undefined;
  return { sub: args[i].value, rest: args.slice(i + 1).map((a) => a.value) };
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
      return flags.some((f) => /^-[dDmMcCf]$|^--(delete|move|copy|force|set-upstream-to|unset-upstream|edit-description)/.test(f)) || (plain.length > 0 && !flags.some((f) => /^(-l|--list|-a|--all|-r|--remotes|--contains|--merged|--no-merged|--points-at)$/.test(f)));
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
const PACKAGE_ACTIONS = /^(install|reinstall|remove|purge|erase|upgrade|dist-upgrade|full-upgrade|autoremove|uninstall|update|tap|untap|link|unlink|-S\w*|-R\w*|-U\w*|-i|-e|-P|--install|--remove|--purge|add|del)$/;

function systemChange(program: string, args: Word[]): boolean {
  const values = args.map((a) => a.value);
  const plain = values.filter((v) => !v.startsWith('-'));
  if (PACKAGE_MANAGERS.has(program)) return values.some((v) => PACKAGE_ACTIONS.test(v));
  switch (program) {
    case 'npm':
    case 'pnpm':
      return ['install', 'i', 'add', 'uninstall', 'remove', 'rm', 'un', 'update', 'up', 'link'].includes(plain[0] ?? '') && values.some((v) => v === '-g' || v === '--global' || v === '--location=global');
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
const DOWNLOADERS = new Set(['curl', 'wget', 'fetch']);
const INTERPRETERS = new Set([...SHELLS, 'python', 'python3', 'perl', 'ruby', 'node', 'php', 'sudo']);

/** True when an interpreter reads its program from standard input (no script, no -c/-e). */
function readsProgramFromStdin(invocation: Invocation): boolean {
  const values = invocation.args.map((a) => a.value);
  if (invocation.program === 'sudo') return true;
  if (SHELLS.has(invocation.program)) return !values.includes('-c') || values.includes('-s');
  if (values.some((v) => /^-[ce]$|^-m$|^--eval$|^-r$/.test(v))) return false;
  const script = values.find((v) => !v.startsWith('-'));
  return script === undefined || script === '-';
}

class Checker {
  readonly findings: PolicyFinding[] = [];
  private depth = 0;

  constructor(private readonly context: Context) {}

  private add(rule: PolicyRuleId, reason: string, subject: string): void {
    if (!this.findings.some((f) => f.rule === rule && f.subject === subject && f.reason === reason)) this.findings.push({ rule, reason, subject });
  }

  check(src: string, cwd: string | undefined): void {
    if (this.depth > 5) return;
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
    if (/\b(ba|z|da|k)?sh\b[^;&|\n]*<\(\s*(curl|wget)\b/.test(src) || /(\b(ba|z|da|k)?sh\s+-c|\beval|\bsource|(^|[;&|]\s*)\.)\s+["']?\$\(\s*(curl|wget)\b/.test(src)) {
      this.add('pipe-to-shell', POLICY_RULES['pipe-to-shell'], src.trim());
    }
    const commands = splitCommands(src, lex(src));
    let cwd = startCwd;
    const pipelines = new Map<number, { invocation?: Invocation; text: string }[]>();
    for (const command of commands) {
      const invocation = programOf(command.words);
      const stages = pipelines.get(command.pipeline) ?? [];
      stages.push({ invocation, text: command.text });
      pipelines.set(command.pipeline, stages);
      for (const redirect of command.redirects) {
        if (redirect.target) this.checkWrite(redirect.target, cwd, command.text, 'writes to');
      }
      if (!invocation) continue;
      cwd = this.checkInvocation(invocation, command, cwd);
    }
    for (const stages of pipelines.values()) {
      const download = stages.findIndex((s) => s.invocation && DOWNLOADERS.has(s.invocation.program));
      if (download < 0) continue;
      if (stages.slice(download + 1).some((s) => s.invocation && INTERPRETERS.has(s.invocation.program) && readsProgramFromStdin(s.invocation))) {
        this.add('pipe-to-shell', POLICY_RULES['pipe-to-shell'], stages.map((s) => s.text).join(' | '));
      }
    }
  }

  private checkWrite(word: Word, cwd: string | undefined, subject: string, how: string): void {
    const target = resolvePath(word, cwd, this.context.home);
    if (!target) return;
    if (this.protectedPath(target, true)) {
      this.add('protected-path', `${how} ${word.value}, inside ${this.describeProtected(target)}`, subject);
      return;
    }
    if (!isOutside(target, this.context)) return;
    const shown = path.isAbsolute(word.value) || target === path.resolve(word.value) ? word.value : `${word.value} (${target})`;
    this.add('write-outside', `${how} ${shown}, outside the workspace`, subject);
  }

  private protectedPath(target: string, write: boolean): boolean {
    if (this.context.forbidden.some((dir) => isInside(target, dir))) return true;
    return write && this.context.workspaces.some((ws) => isInside(target, path.join(ws, '.git')));
  }

  private describeProtected(target: string): string {
    return this.context.forbidden.some((dir) => isInside(target, dir)) ? "Apollo's dataset folder" : "the repository's .git folder";
  }

  private checkInvocation(invocation: Invocation, command: SimpleCommand, cwd: string | undefined): string | undefined {
    const { program, args } = invocation;
    const subject = command.text;
    const values = args.map((a) => a.value);

    // Paths anywhere in the command: credentials and the dataset folder.
    for (const word of [...command.words, ...command.inputs]) {
      const p = resolvePath(word, cwd, this.context.home);
      if (!p) continue;
      if (this.context.credentials.some((cred) => isInside(p, cred))) this.add('credentials', `uses ${word.value}, a credential file or folder`, subject);
      else if (this.context.forbidden.some((dir) => isInside(p, dir))) this.add('protected-path', `uses ${word.value}, inside Apollo's dataset folder`, subject);
    }

    if (['sudo', 'su', 'doas', 'pkexec', 'runuser', 'sudoedit'].includes(program)) this.add('elevate', POLICY_RULES.elevate, subject);

    // Nested shells and eval: check the script they run.
    if (SHELLS.has(program)) {
      const at = values.findIndex((v) => v === '-c' || /^-[a-z]*c$/.test(v));
      if (at >= 0 && values[at + 1] !== undefined) this.check(values[at + 1], cwd);
    }
    if (program === 'eval') this.check(values.join(' '), cwd);

    // Writes.
    for (const word of writtenPaths(program, args)) {
      const target = resolvePath(word, cwd, this.context.home);
      if (!target) continue;
      if ((program === 'rm' || program === 'rmdir' || program === 'shred') && holdsWorkspaceOrHome(target, this.context)) {
        this.add('delete-root', `${program} of ${word.value}: ${POLICY_RULES['delete-root']}`, subject);
        continue;
      }
      if (program === 'dd' && target.startsWith('/dev/') && !SAFE_DEVICES.test(target)) {
        this.add('disk', `dd writes to the device ${word.value}`, subject);
        continue;
      }
      this.checkWrite(word, cwd, subject, `${program} changes`);
    }
    if (program === 'find' && values.some((v) => v === '-delete' || v === '-exec' || v === '-execdir')) {
      const deletes = values.includes('-delete') || values.some((v, i) => (v === '-exec' || v === '-execdir') && ['rm', 'shred', 'unlink'].includes(path.basename(values[i + 1] ?? '')));
      if (deletes) {
        for (const start of args.slice(0, Math.max(0, args.findIndex((a) => a.value.startsWith('-') || a.value === '(' || a.value === '!')))) {
          const target = resolvePath(start, cwd, this.context.home);
          if (!target) continue;
          if (target === '/' || isInside(this.context.home, target) || this.context.workspaces.some((ws) => isInside(ws, target) && ws !== target)) this.add('delete-root', `find … -delete from ${start.value}: ${POLICY_RULES['delete-root']}`, subject);
          else if (isOutside(target, this.context)) this.add('write-outside', `find deletes under ${start.value}, outside the workspace`, subject);
        }
      }
    }
    if (program === 'ln' && !options(args).some((o) => /^-[a-zA-Z]*s|^--symbolic$/.test(o))) {
      const ops = operands(args);
      for (const source of ops.length >= 2 ? ops.slice(0, -1) : ops) {
        const p = resolvePath(source, cwd, this.context.home);
        if (p && isOutside(p, this.context)) this.add('hard-link-outside', `ln of ${source.value}: ${POLICY_RULES['hard-link-outside']}`, subject);
      }
    }

    if (program === 'git') {
      const git = gitSubcommand(args);
      if (git?.sub === 'push') this.add('publish', 'git push sends commits to another machine', subject);
      else if (git && gitChangesState(git.sub, git.rest)) this.add('git-state', `git ${git.sub}: ${POLICY_RULES['git-state']}`, subject);
    }
    const publisher = PUBLISHERS[program];
    if (publisher && publisher(values.filter((v) => !v.startsWith('-') || v === '--push' || /^(-X|--method|-f|-F|--field|--raw-field|--input)/.test(v)))) {
      this.add('publish', `${program} ${values.find((v) => !v.startsWith('-')) ?? ''}: ${POLICY_RULES.publish}`.replace(/ +:/, ':'), subject);
    }

    if (['ssh', 'scp', 'sftp', 'mosh', 'sshpass', 'telnet'].includes(program)) this.add('remote-shell', `${program}: ${POLICY_RULES['remote-shell']}`, subject);
    if (program === 'rsync' && operands(args).some((a) => /^[^/\s:]+@?[^/\s:]*:/.test(a.value) || a.value.startsWith('rsync://'))) {
      this.add('remote-shell', `rsync to or from another machine`, subject);
    }
    if (DISK_PROGRAMS.test(program)) this.add('disk', `${program}: ${POLICY_RULES.disk}`, subject);
    if (POWER_PROGRAMS.test(program) || (program === 'init' && /^[06]$/.test(values[0] ?? '')) || (program === 'systemctl' && values.some((v) => /^(poweroff|reboot|halt|suspend|hibernate|kexec|hybrid-sleep)$/.test(v)))) {
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

const TOOLS_WITH_SUBCOMMANDS = new Set(['git', 'npm', 'pnpm', 'yarn', 'bun', 'cargo', 'docker', 'podman', 'gh', 'twine', 'gem', 'poetry', 'uv', 'systemctl', 'brew', 'apt', 'apt-get', 'dnf', 'pip', 'pip3', 'go']);

/** Checks one command against the deny list and the allow list. */
export function checkCommand(command: string, options: PolicyOptions): PolicyVerdict {
  const workspace = path.resolve(options.workspace);
  const home = path.resolve(options.home);
  const context: Context = {
    workspaces: [workspace, ...(options.workspaceAliases ?? []).map((p) => path.resolve(p))],
    home,
    forbidden: (options.forbidden ?? []).map((p) => path.resolve(p)),
    temp: (options.tempFolders ?? ['/tmp', '/var/tmp', os.tmpdir()]).map((p) => path.resolve(p)),
    credentials: CREDENTIAL_PATHS.map((rel) => path.join(home, rel)),
  };
  const checker = new Checker(context);
  checker.check(command, workspace);
  const allow = options.allow ?? [];
  const findings = checker.findings.filter((finding) => !allow.some((pattern) => allowCovers(pattern, finding)));
  if (findings.length === 0) return { verdict: 'allow' };
  const reasons = [...new Set(findings.map((f) => f.reason))];
  return { verdict: 'ask', rule: findings[0].rule, reason: reasons.join('; '), findings };
}
