/**
 * A small shell lexer for the command policy: it splits a command line the way bash would read it
 * into simple commands (words with their quotes removed, redirections, heredocs and here-strings),
 * joined by `|`, `|&`, `||`, `&&`, `;`, `&` and newlines, and it says, of each word, what bash
 * would still expand in it (variables, `$(…)` and backticks, globs, a leading `~`). It never
 * expands anything itself and never runs anything.
 *
 * Why not a library. These were tried on the cases the policy needs (tested, not guessed):
 * - `shell-quote` 1.12 (`parse`): a newline is not a command separator (`echo a\nrm -rf /` is one
 *   command `echo a rm -rf /`); `echo a#b; sudo x` is read as `echo a` and a comment, so the
 *   `sudo` is lost; heredoc bodies are read as commands (`cat > notes.md <<EOF\nsudo …\nEOF`
 *   would ask); a redirection's descriptor comes back as a word (`2>/dev/null` gives `2`, `>`,
 *   `/dev/null`, the same as `echo 2 > /dev/null`); `$VAR` is replaced by an empty string unless
 *   an environment callback is given, and quoted from unquoted `~` cannot be told apart.
 * - `@ericcornelissen/bash-parser` 0.5.3 (and `bash-parser` 0.5.0 it forks): throws on `<<<`,
 *   on `|&` and on `$'…'` (a TypeError); heredoc bodies are read as commands; `echo a#b` drops `#b`.
 * - `sh-syntax` 0.7.0 (mvdan/sh compiled to WebAssembly, the maintained one): only asynchronous
 *   (the policy is called synchronously before each command); its JSON tree drops the command
 *   nodes, `Stmts[0].Cmd` of `git push origin main` is `{Pos, End}` with no words; about 8 ms a
 *   parse on this machine.
 * - `mvdan-sh` 0.10.1: deprecated by its author in favour of `sh-syntax` (mvdan/sh#1145).
 * - `tree-sitter-bash` 0.25 with `web-tree-sitter` 0.27: needs an asynchronous WebAssembly start
 *   and two .wasm files in the bundle; words come back as source text, so removing quotes and
 *   decoding `$'…'` would still be ours; `echo a\<newline>b` gives two words (bash: one, `ab`);
 *   `cat <<A <<B` (two heredocs on one line) fails and reads the bodies as commands.
 */

export interface Word {
  kind: 'word';
  /** The word with its quotes removed; expansions are kept as written (`$HOME`, `$(pwd)`, `*`). */
  value: string;
  /** The word began unquoted, so a leading ~ expands. */
  tilde: boolean;
  /** It has an unquoted `*`, `?` or `[`: bash may match it against file names. */
  glob: boolean;
  /** It has a variable, `${…}`, `$((…))`, `$(…)` or backtick outside single quotes. */
  expands: boolean;
  /** Its value begins with such an expansion (so what it names is only known when it runs). */
  leadingExpansion: boolean;
  /** The commands inside its `$(…)`, backticks and `<(…)` / `>(…)`, to be checked in turn. */
  substitutions: string[];
  /** The word is a process substitution `<(…)` or `>(…)`. */
  processSubstitution?: boolean;
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
  /** For `<<` and `<<-`: the body, filled in when the lexer reaches it. */
  heredoc?: Heredoc;
  start: number;
  end: number;
}

export interface Heredoc {
  body: string;
  /** The delimiter was quoted: the body is not expanded. */
  quoted: boolean;
}

export type Token = Word | Operator | Redirect;

/** What a command reads on its standard input from the command line itself. */
export interface StdinText {
  text: string;
  /** The text holds expansions bash performs before the command reads it. */
  expands: boolean;
  substitutions: string[];
}

export interface SimpleCommand {
  words: Word[];
  /** Output redirections and their targets (`>`, `>>`, `&>`, `>|`, `<>`). */
  redirects: { op: string; target?: Word }[];
  /** Files read with `<` or `<>`. */
  inputs: Word[];
  /** A heredoc or here-string given to the command. */
  stdin?: StdinText;
  /** The command's own text. */
  text: string;
  /** Index of the pipeline it belongs to. */
  pipeline: number;
}

const OPERATOR_CHARS = new Set([';', '&', '|', '(', ')', '<', '>', '\n']);

/** Index after the `)` closing the `(` at `open`, stepping over quotes and nested parentheses. */
function skipParens(src: string, open: number): number {
  let depth = 0;
  let i = open;
  while (i < src.length) {
    const c = src[i];
    if (c === '\\') i += 2;
    else if (c === "'") i = closingQuote(src, i + 1, "'") + 1;
    else if (c === '"') i = skipDoubleQuoted(src, i + 1);
    else if (c === '`') i = closingBacktick(src, i + 1) + 1;
    else if (c === '(') {
      depth++;
      i++;
    } else if (c === ')') {
      depth--;
      i++;
      if (depth === 0) return i;
    } else i++;
  }
  return src.length;
}

/** Index after the `}` closing the `${` whose `{` is at `open`. */
function skipBraces(src: string, open: number): number {
  let depth = 0;
  let i = open;
  while (i < src.length) {
    const c = src[i];
    if (c === '\\') i += 2;
    else if (c === "'") i = closingQuote(src, i + 1, "'") + 1;
    else if (c === '"') i = skipDoubleQuoted(src, i + 1);
    else if (c === '$' && src[i + 1] === '(') i = skipParens(src, i + 1);
    else if (c === '{') {
      depth++;
      i++;
    } else if (c === '}') {
      depth--;
      i++;
      if (depth === 0) return i;
    } else i++;
  }
  return src.length;
}

function closingQuote(src: string, from: number, quote: string): number {
  const close = src.indexOf(quote, from);
  return close < 0 ? src.length : close;
}

function closingBacktick(src: string, from: number): number {
  let i = from;
  while (i < src.length && src[i] !== '`') i += src[i] === '\\' ? 2 : 1;
  return Math.min(i, src.length);
}

/** Index after the `"` closing a double-quoted string whose content starts at `from`. */
function skipDoubleQuoted(src: string, from: number): number {
  let i = from;
  while (i < src.length && src[i] !== '"') {
    if (src[i] === '\\') i += 2;
    else if (src[i] === '$' && src[i + 1] === '(') i = skipParens(src, i + 1);
    else if (src[i] === '$' && src[i + 1] === '{') i = skipBraces(src, i + 1);
    else if (src[i] === '`') i = closingBacktick(src, i + 1) + 1;
    else i++;
  }
  return Math.min(i + 1, src.length);
}

const ANSI_C: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };

/** The value of a `$'…'` string's content, escapes decoded (`$'\x73udo'` is `sudo`). */
function decodeAnsiC(content: string): string {
  return content.replace(/\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)/gs, (whole, code: string) => {
    if (/^x/.test(code) || /^[uU]/.test(code)) return String.fromCodePoint(parseInt(code.slice(1), 16));
    if (/^[0-7]/.test(code)) return String.fromCharCode(parseInt(code, 8) & 0xff);
    if (code[0] === 'c' && code.length === 2) return String.fromCharCode(code.charCodeAt(1) & 0x1f);
    return ANSI_C[code] ?? whole;
  });
}

/** The commands inside `$(…)` and backticks of a text bash expands (a heredoc body, a string). */
export function substitutionsIn(text: string): string[] {
  const found: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') i += 2;
    else if (c === '$' && text[i + 1] === '(' && text[i + 2] !== '(') {
      const end = skipParens(text, i + 1);
      found.push(text.slice(i + 2, end - 1));
      i = end;
    } else if (c === '`') {
      const end = closingBacktick(text, i + 1);
      found.push(text.slice(i + 1, end).replace(/\\([`\\$])/g, '$1'));
      i = end + 1;
    } else i++;
  }
  return found;
}

/** Reads one word from `start`; undefined when there is none there. */
export function readWord(src: string, start: number): Word | undefined {
  let i = start;
  let value = '';
  let glob = false;
  let expands = false;
  let leadingExpansion = false;
  const substitutions: string[] = [];
  const tilde = src[i] !== '"' && src[i] !== "'";
  /** Adds an expansion's text as it was written. */
  const expansion = (raw: string) => {
    if (value === '') leadingExpansion = true;
    expands = true;
    value += raw;
  };
  /** At a `$` (outside single quotes): a variable, `${…}`, `$((…))` or `$(…)`; false when the `$` is literal. */
  const dollar = (): boolean => {
    const next = src[i + 1];
    if (next === '(') {
      const end = skipParens(src, i + 1);
      if (src[i + 2] !== '(') substitutions.push(src.slice(i + 2, end - 1));
      expansion(src.slice(i, end));
      i = end;
      return true;
    }
    if (next === '{') {
      const end = skipBraces(src, i + 1);
      const raw = src.slice(i, end);
      substitutions.push(...substitutionsIn(raw.slice(2, -1)));
      expansion(raw);
      i = end;
      return true;
    }
    const name = /^\$([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])/.exec(src.slice(i, i + 200));
    if (name) {
      expansion(name[0]);
      i += name[0].length;
      return true;
    }
    return false;
  };
  const backtick = () => {
    const end = closingBacktick(src, i + 1);
    substitutions.push(src.slice(i + 1, end).replace(/\\([`\\$])/g, '$1'));
    expansion(src.slice(i, end + 1));
    i = end + 1;
  };
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c) || OPERATOR_CHARS.has(c)) break;
    if (c === "'") {
      const end = closingQuote(src, i + 1, "'");
      value += src.slice(i + 1, end);
      i = end + 1;
    } else if (c === '$' && src[i + 1] === "'") {
      let end = i + 2;
      while (end < src.length && src[end] !== "'") end += src[end] === '\\' ? 2 : 1;
      end = Math.min(end, src.length);
      value += decodeAnsiC(src.slice(i + 2, end));
      i = end + 1;
    } else if (c === '"' || (c === '$' && src[i + 1] === '"')) {
      i += c === '$' ? 2 : 1;
      while (i < src.length && src[i] !== '"') {
        if (src[i] === '\\' && i + 1 < src.length && '"\\$`\n'.includes(src[i + 1])) {
          if (src[i + 1] !== '\n') value += src[i + 1];
          i += 2;
        } else if (src[i] === '$' && dollar()) {
          // an expansion inside double quotes
        } else if (src[i] === '`') {
          backtick();
        } else {
          value += src[i];
          i++;
        }
      }
      i++;
    } else if (c === '\\') {
      if (src[i + 1] !== '\n') value += src[i + 1] ?? '';
      i += 2;
    } else if (c === '$' && dollar()) {
      // an unquoted expansion
    } else if (c === '`') {
      backtick();
    } else {
      if (c === '*' || c === '?' || c === '[') glob = true;
      value += c;
      i++;
    }
  }
  if (i === start) return undefined;
  return { kind: 'word', value, tilde, glob, expands, leadingExpansion, substitutions, start, end: Math.min(i, src.length) };
}

function skipBlanks(src: string, i: number): number {
  while (i < src.length && (src[i] === ' ' || src[i] === '\t')) i++;
  return i;
}

/** The tokens of a command line: words, operators, redirections (heredoc bodies attached). */
export function lex(src: string): Token[] {
  const tokens: Token[] = [];
  const heredocs: { delimiter: string; stripTabs: boolean; doc: Heredoc }[] = [];
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
      // Heredoc bodies follow the line that opened them: data for that command, not commands.
      for (const pending of heredocs.splice(0)) {
        const lines: string[] = [];
        while (i < src.length) {
          let lineEnd = src.indexOf('\n', i);
          if (lineEnd < 0) lineEnd = src.length;
          let line = src.slice(i, lineEnd);
          if (pending.stripTabs) line = line.replace(/^\t+/, '');
          i = Math.min(lineEnd + 1, src.length);
          if (line.replace(/\r$/, '') === pending.delimiter) break;
          lines.push(line);
        }
        pending.doc.body = lines.length ? `${lines.join('\n')}\n` : '';
      }
      continue;
    }
    // Redirections, with an optional fd number or & before them.
    const redirect = /^(\d*|&)(>>|>\||>&|>|<<<|<<-|<<|<>|<&|<)/.exec(src.slice(i, i + 8));
    if (redirect && (redirect[1] === '' || atWordStart())) {
      const [whole, , op] = redirect;
      // `<(…)` and `>(…)` are process substitutions: a word whose text is a command.
      if ((op === '<' || op === '>') && src[i + whole.length] === '(' && redirect[1] === '') {
        const end = skipParens(src, i + 1);
        tokens.push({
          kind: 'word',
          value: src.slice(i, end),
          tilde: false,
          glob: false,
          expands: true,
          leadingExpansion: true,
          substitutions: [src.slice(i + 2, end - 1)],
          processSubstitution: true,
          start: i,
          end,
        });
        i = end;
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
      if (op === '<<' || op === '<<-') {
        const delimiterWord = readWord(src, skipBlanks(src, i));
        if (delimiterWord) {
          const raw = src.slice(delimiterWord.start, delimiterWord.end);
          const doc: Heredoc = { body: '', quoted: /["'\\]/.test(raw) };
          heredocs.push({ delimiter: delimiterWord.value, stripTabs: op === '<<-', doc });
          tokens.push({ kind: 'redir', op, heredoc: doc, start, end: delimiterWord.end });
          i = delimiterWord.end;
          continue;
        }
      }
      tokens.push({ kind: 'redir', op: normalized, start, end: i });
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

/** Groups tokens into simple commands, each knowing its pipeline. */
export function splitCommands(src: string, tokens: Token[]): SimpleCommand[] {
  const commands: SimpleCommand[] = [];
  let pipeline = 0;
  let current: SimpleCommand | undefined;
  let first = -1;
  let last = -1;
  const close = () => {
    if (current && (current.words.length || current.redirects.length || current.stdin)) {
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
      if (token.heredoc) {
        const doc = token.heredoc;
        // The lexer has filled the body in by now (it comes after the line that opened it).
        current.stdin = { text: doc.body, expands: !doc.quoted && /[$`]/.test(doc.body), substitutions: doc.quoted ? [] : substitutionsIn(doc.body) };
        continue;
      }
      const next = tokens[t + 1];
      if (next?.kind !== 'word') continue;
      t++;
      last = next.end;
      if (!token.op.startsWith('<')) current.redirects.push({ op: token.op, target: next });
      else if (token.op === '<<<') current.stdin = { text: `${next.value}\n`, expands: next.expands, substitutions: next.substitutions };
      else {
        current.inputs.push(next);
        if (token.op === '<>') current.redirects.push({ op: token.op, target: next });
      }
      continue;
    }
    current.words.push(token);
  }
  close();
  return commands;
}

/** The simple commands of a command line. */
export function parseCommands(src: string): SimpleCommand[] {
  return splitCommands(src, lex(src));
}
