/**
 * Secrets never reach the dataset: every string written is passed through a Redactor that
 * replaces known secret shapes and configured secret values with `[REDACTED:<kind>]`.
 *
 * The shapes are Apollo's own rules (see README, "Redaction", for why not secretlint's preset:
 * it is asynchronous and ESM-only, its current major needs Node 22, and it misses several of the
 * shapes below). Each rule also matches inside JSON-escaped text (`\n`, `\u0000` before a token),
 * so `apollo validate` finds on a raw events.jsonl line what the recorder redacts in a string.
 *
 * Configured values (the API key, the environment's secret-looking variables, see
 * `isSecretEnvName`) are redacted as they are, and in their base64 (any alignment, standard or
 * URL-safe, also wrapped over lines — then the lines come out joined), hex and URL-encoded forms: `printenv X | base64` is no way round.
 *
 * Streamed output (a job's log, read piece by piece) goes through a `StreamRedactor`, which holds
 * back an unfinished line or private key block until it is complete.
 */

interface SecretPattern {
  kind: string;
  pattern: RegExp;
  /** Keeps a prefix (e.g. the header name) and redacts only the secret part. */
  keepGroup?: number;
}

/** What may come before a token: not a letter or digit; JSON escapes (`\n`, `\u0000`) and ANSI colours count as a boundary. */
const BEFORE = String.raw`(?:^|[^A-Za-z0-9]|\\[nrt]|\\u[0-9A-Fa-f]{4}|\x1b\[[0-9;]*m)`;
/**
 * A token starting with `first` (one character or class) on a boundary. The boundary is checked
 * behind the first character, not before it, so the regex engine scans for that character fast.
 */
const token = (first: string, rest: string) => `${first}(?<=${BEFORE}${first})${rest}`;
/** Not a letter or digit after the token. */
const E = String.raw`(?![A-Za-z0-9])`;
const re = (source: string, flags = 'g') => new RegExp(source, flags);

const KEY_NAME = String.raw`-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----`;
const KEY_END = String.raw`-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----`;
const NL = String.raw`(?:\r?\n|\\r\\n|\\n)`;
/** The lines of a key's body: base64, or a PEM header such as `Proc-Type: 4,ENCRYPTED`. */
const KEY_BODY = String.raw`(?:${NL}+(?:[A-Za-z0-9+/=]+|(?:Proc-Type|DEK-Info|Version|Comment): ?[^\r\n\\]*))*`;

const PATTERNS: SecretPattern[] = [
  // With its END line, or without one (`head -4 key.pem`): the header and every body line after it.
  { kind: 'private-key', pattern: re(`${KEY_NAME}(?:[\\s\\S]{0,20000}?${KEY_END}|${KEY_BODY})`) },
  // `Authorization: Bearer …` as a header, in JSON ("Authorization": "Bearer …") or in code.
  {
    kind: 'bearer',
    pattern: re(String.raw`((?:${token('P', 'roxy-')})?${token('A', 'uthorization')}\\?["']?\s*[:=]\s*\\?["']?\s*(?:Bearer|Basic|Token|Bot)\s+)[A-Za-z0-9._~+/=-]{8,}`, 'gi'),
    keepGroup: 1,
  },
  { kind: 'bearer', pattern: re(String.raw`(${token('[Bb]', 'earer')}\s+)[A-Za-z0-9._~+/-]{20,}=*`), keepGroup: 1 },
  { kind: 'github', pattern: re(token('g', `(?:h[pousr]_[A-Za-z0-9]{20,}|ithub_pat_[A-Za-z0-9_]{20,})${E}`)) },
  { kind: 'stripe', pattern: re(`(?:${token('[sr]', 'k_(?:live|test)_[A-Za-z0-9]{16,}')}|${token('w', 'hsec_[A-Za-z0-9]{24,}')})${E}`) },
  { kind: 'anthropic', pattern: re(token('s', 'k-ant-[A-Za-z0-9_-]{20,}')) },
  { kind: 'openai', pattern: re(token('s', 'k-[A-Za-z0-9_-]{20,}')) },
  { kind: 'slack', pattern: re(token('x', 'ox[abposre]-[A-Za-z0-9-]{10,}')) },
  { kind: 'slack', pattern: re(String.raw`https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}`) },
  { kind: 'google', pattern: re(token('A', `Iza[0-9A-Za-z_-]{35}${E}`)) },
  { kind: 'google', pattern: re(`${token('y', 'a29\\.[0-9A-Za-z_-]{20,}')}|${token('G', 'OCSPX-[0-9A-Za-z_-]{20,}')}`) },
  { kind: 'gitlab', pattern: re(token('g', 'l(?:pat|dt|rt|ptt|ft|soat|cbt)-[0-9A-Za-z_-]{20,}')) },
  { kind: 'npm', pattern: re(token('n', `pm_[A-Za-z0-9]{36}${E}`)) },
  { kind: 'npm', pattern: re(String.raw`(${token('_', 'auth')}(?:Token)?\s*=\s*)[^\s"'\\]{8,}`), keepGroup: 1 },
  // Mixed case, so that identifiers such as hf_tokenizer_configuration_loader are left alone.
  { kind: 'huggingface', pattern: re(token('h', `f_(?=[A-Za-z0-9]{0,60}[a-z])(?=[A-Za-z0-9]{0,60}[A-Z])[A-Za-z0-9]{30,}${E}`)) },
  { kind: 'azure', pattern: re(String.raw`((?:${token('A', 'ccountKey')}|${token('S', 'haredAccessKey')})\s*=\s*)[A-Za-z0-9+/]{20,}={0,2}`), keepGroup: 1 },
  { kind: 'sendgrid', pattern: re(token('S', `G\\.[A-Za-z0-9_-]{16,32}\\.[A-Za-z0-9_-]{16,64}${E}`)) },
  { kind: 'aws', pattern: re(token('A', `(?:KIA|SIA)[0-9A-Z]{16}${E}`)) },
  { kind: 'aws', pattern: re(String.raw`(${token('a', 'ws_secret_access_key')}\\?["']?\s*[:=]\s*\\?["']?)[A-Za-z0-9/+=]{40}`, 'gi'), keepGroup: 1 },
  { kind: 'jwt', pattern: re(token('e', 'yJ[A-Za-z0-9_-]{5,}\\.eyJ[A-Za-z0-9_-]{5,}\\.[A-Za-z0-9_-]{5,}')) },
  // scheme://user:password@host: the user and the host stay.
  { kind: 'url-password', pattern: re(String.raw`(:(?<=\b[A-Za-z][A-Za-z0-9+.-]{1,20}:)//[^\s:/@"'\\<>]{0,128}:)[^\s/@"'\\<>]{1,256}(?=@[A-Za-z0-9.\[-])`), keepGroup: 1 },
];

const MIN_SECRET_LENGTH = 8;

/**
 * The one definition of a secret-looking environment variable, shared by the record (whose values
 * are redacted) and the sandbox (which removes them). Whole name parts (split at `_`) for the
 * short words — so TOKENIZERS_PARALLELISM, GIT_AUTHOR_EMAIL and KEYMAP do not count — and
 * anywhere in the name for the unmistakable ones (PGPASSWORD, MYSECRET).
 */
export const SECRET_ENV_PATTERN =
  /(?:^|_)(?:KEYS?|APIKEY|ACCESSKEY|SECRETKEY|PRIVATEKEY|TOKENS?|AUTHTOKEN|ACCESSTOKEN|PASS|PASSWORDS?|PASSWD|PASSPHRASE|CREDS?|AUTH|COOKIES?|SESSION|SESSIONID|PRIVATE|SIGNATURE|DSN)(?:_|$)|PASSWORD|PASSWD|PASSPHRASE|SECRET|CREDENTIAL/i;

/** Names the pattern matches that are known to hold nothing secret (desktop session descriptors). */
const NOT_SECRET_ENV = new Set(['XDG_SESSION_TYPE', 'XDG_SESSION_CLASS', 'XDG_SESSION_DESKTOP', 'XDG_SESSION_ID', 'DESKTOP_SESSION', 'GDMSESSION', 'TERM_SESSION_ID']);

export function isSecretEnvName(name: string): boolean {
  return SECRET_ENV_PATTERN.test(name) && !NOT_SECRET_ENV.has(name.toUpperCase());
}

/** The values of an environment's secret-looking variables. */
export function secretEnvValues(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.entries(env)
    .filter(([name, value]) => value && isSecretEnvName(name))
    .map(([, value]) => value as string);
}

export interface SecretShape {
  /** The rule, e.g. `github`, `private-key`. */
  kind: string;
  /** Where it starts in the text. */
  index: number;
}

/** Every well-known secret shape in a text, with where it is. */
export function locateSecretShapes(text: string): SecretShape[] {
  const found: SecretShape[] = [];
  for (const { kind, pattern } of PATTERNS) {
    pattern.lastIndex = 0;
    for (const match of text.matchAll(pattern)) found.push({ kind, index: match.index ?? 0 });
  }
  return found.sort((a, b) => a.index - b.index);
}

/** The kinds of well-known secret shapes found in a text. */
export function findSecretShapes(text: string): string[] {
  const kinds = new Set<string>();
  for (const { kind, pattern } of PATTERNS) {
    if (kinds.has(kind)) continue;
    pattern.lastIndex = 0;
    if (pattern.test(text)) kinds.add(kind);
    pattern.lastIndex = 0;
  }
  return [...kinds];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A run of lines of base64 or hex, as `base64` (76 columns) and `xxd -p` (60) wrap them. */
const WRAPPED_RUN = /[A-Za-z0-9+/=_-](?<=(?:^|[^A-Za-z0-9+/=_-])[A-Za-z0-9+/=_-])[A-Za-z0-9+/=_-]{39,}\r?\n(?:[A-Za-z0-9+/=_-]{40,}\r?\n)*[A-Za-z0-9+/=_-]+/g;

/**
 * The encoded forms of a value: base64 at the three byte alignments (the characters that depend
 * on the value alone, so it is found inside a longer encoded text too), URL-safe base64, hex.
 */
export function encodedForms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms = new Set<string>();
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const core = encoded.slice(Math.ceil((offset * 8) / 6), Math.floor(((offset + bytes.length) * 8) / 6));
    if (core.length < MIN_SECRET_LENGTH) continue;
    forms.add(core);
    forms.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  const hex = bytes.toString('hex');
  forms.add(hex);
  forms.add(hex.toUpperCase());
  return [...forms];
}

export class Redactor {
  private readonly secrets = new Set<string>();
  private secretPattern: RegExp | undefined;

  constructor(options: { secrets?: string[] } = {}) {
    for (const secret of options.secrets ?? []) this.addSecret(secret);
  }

  /** Adds a value (an API key, a token from the environment) to redact wherever it appears, encoded or not. */
  addSecret(value: string | undefined): void {
    if (!value || value.length < MIN_SECRET_LENGTH || this.secrets.has(value)) return;
    this.secrets.add(value);
    const uri = encodeURIComponent(value);
    if (uri !== value) this.secrets.add(uri);
    for (const form of encodedForms(value)) this.secrets.add(form);
    // Longest first, so a secret that contains another is replaced whole.
    const alternatives = [...this.secrets].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.secretPattern = new RegExp(alternatives.join('|'), 'g');
  }

  redact(text: string): string {
    let result = text;
    const secrets = this.secretPattern;
    if (secrets) {
      result = result.replace(secrets, '[REDACTED:secret]');
      // An encoded value wrapped over several lines: looked for again in the run joined.
      result = result.replace(WRAPPED_RUN, (run) => {
        const joined = run.replace(/\r?\n/g, '');
        secrets.lastIndex = 0;
        if (!secrets.test(joined)) return run;
        secrets.lastIndex = 0;
        return joined.replace(secrets, '[REDACTED:secret]');
      });
    }
    for (const { kind, pattern, keepGroup } of PATTERNS) {
      pattern.lastIndex = 0;
      if (!pattern.test(result)) continue;
      pattern.lastIndex = 0;
      result = result.replace(pattern, (...match: string[]) => (keepGroup ? `${match[keepGroup]}[REDACTED:${kind}]` : `[REDACTED:${kind}]`));
    }
    return result;
  }

  /** Returns a copy of `value` with every string inside it redacted. */
  redactDeep<T>(value: T): T {
    if (typeof value === 'string') return this.redact(value) as T;
    if (Array.isArray(value)) return value.map((item) => this.redactDeep(item)) as T;
    if (value !== null && typeof value === 'object') {
      const copy: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) copy[key] = this.redactDeep(item);
      return copy as T;
    }
    return value;
  }
}

/** How much of a stream may be held back at most: a partial line, or a private key block awaiting its END line. */
export const MAX_HELD_CHARS = 16_384;
const KEY_BEGIN = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/g;
const KEY_END_LINE = /-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/;

/**
 * Where streamed text can be cut so that no secret shape is split: after the last complete line,
 * or before a private key block that has no END line yet. Text from the cut on is held back
 * (at most `maxHeld` characters, then it is cut at the last space or quote anyway).
 */
export function safeCut(text: string, maxHeld = MAX_HELD_CHARS): number {
  let lastBegin = -1;
  KEY_BEGIN.lastIndex = 0;
  for (const match of text.matchAll(KEY_BEGIN)) lastBegin = match.index ?? -1;
  if (lastBegin >= 0 && !KEY_END_LINE.test(text.slice(lastBegin)) && text.length - lastBegin <= maxHeld) return lastBegin;
  const lineStart = text.lastIndexOf('\n') + 1;
  if (text.length - lineStart <= maxHeld) return lineStart;
  const window = text.slice(0, text.length - maxHeld / 4);
  const boundary = Math.max(window.lastIndexOf(' '), window.lastIndexOf('"'), window.lastIndexOf("'"), window.lastIndexOf('\t'));
  return boundary >= lineStart ? boundary + 1 : text.length - maxHeld;
}

/**
 * Redacts text that arrives in chunks (a job's output): a secret split between two chunks is
 * completed before it is passed on. `push` returns what is safe to pass on now, `end` the rest.
 */
/**
 * True when text holds nothing but what follows a key's BEGIN line: base64 lines and PEM headers.
 * Line by line, not one regular expression: a nested quantifier over a long body that ends in
 * something else backtracks for minutes.
 */
function onlyKeyLines(text: string): boolean {
  return text.split(/\r?\n/).every((line) => /^[A-Za-z0-9+/=]*$/.test(line) || /^(?:Proc-Type|DEK-Info|Version|Comment):/.test(line));
}

export class StreamRedactor {
  private held = '';
  /** The text passed on so far ended inside a private key block (it outgrew what is held back). */
  private inKey = false;

  constructor(
    private readonly redactor: Redactor,
    private readonly maxHeld = MAX_HELD_CHARS,
  ) {}

  push(chunk: string): string {
    const text = this.held + chunk;
    const cut = safeCut(text, this.maxHeld);
    this.held = text.slice(cut);
    return this.pass(text.slice(0, cut));
  }

  end(): string {
    const text = this.held;
    this.held = '';
    return this.pass(text);
  }

  private pass(text: string): string {
    if (!text) return text;
    let rest = text;
    let prefix = '';
    if (this.inKey) {
      // The body lines (and END line) of a key whose header was passed on before.
      const body = /^(?:[A-Za-z0-9+/=]*\r?\n)*(?:[A-Za-z0-9+/=]*-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=]*$)?/.exec(rest)?.[0] ?? '';
      this.inKey = !KEY_END_LINE.test(body) && body.length === rest.length;
      if (body) prefix = '[REDACTED:private-key]';
      rest = rest.slice(body.length);
    }
    let lastBegin = -1;
    KEY_BEGIN.lastIndex = 0;
    for (const match of rest.matchAll(KEY_BEGIN)) lastBegin = match.index ?? -1;
    if (lastBegin >= 0 && onlyKeyLines(rest.slice(lastBegin).replace(KEY_BEGIN, ''))) this.inKey = true;
    return prefix + this.redactor.redact(rest);
  }
}
