/**
 * The Redactor as it was before the secret-shape rules were widened (commit e8e6f0e), kept only so
 * that bench/redaction.ts can compare the two. Not used by Apollo.
 */

interface SecretPattern {
  kind: string;
  pattern: RegExp;
  /** Keeps a prefix (e.g. the header name) and redacts only the secret part. */
  keepGroup?: number;
}

const PATTERNS: SecretPattern[] = [
  {
    kind: 'private-key',
    pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----/g,
  },
  { kind: 'bearer', pattern: /(Authorization:\s*Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, keepGroup: 1 },
  { kind: 'github', pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/g },
  { kind: 'openai', pattern: /\bsk-[A-Za-z0-9_-]{20,}/g },
  { kind: 'aws', pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g },
  { kind: 'jwt', pattern: /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}/g },
];

const MIN_SECRET_LENGTH = 8;

/** The kinds of well-known secret shapes found in a text. */
export function findSecretShapes(text: string): string[] {
  return PATTERNS.filter(({ pattern }) => {
    pattern.lastIndex = 0;
    const found = pattern.test(text);
    pattern.lastIndex = 0;
    return found;
  }).map(({ kind }) => kind);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class Redactor {
  private readonly secrets = new Set<string>();
  private secretPattern: RegExp | undefined;

  constructor(options: { secrets?: string[] } = {}) {
    for (const secret of options.secrets ?? []) this.addSecret(secret);
  }

  /** Adds an exact value (an API key, a token from the environment) to redact wherever it appears. */
  addSecret(value: string | undefined): void {
    if (!value || value.length < MIN_SECRET_LENGTH || this.secrets.has(value)) return;
    this.secrets.add(value);
    // Longest first, so a secret that contains another is replaced whole.
    const alternatives = [...this.secrets].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.secretPattern = new RegExp(alternatives.join('|'), 'g');
  }

  redact(text: string): string {
    let result = text;
    if (this.secretPattern) result = result.replace(this.secretPattern, '[REDACTED:secret]');
    for (const { kind, pattern, keepGroup } of PATTERNS) {
      pattern.lastIndex = 0;
      if (!pattern.test(result)) continue;
      pattern.lastIndex = 0;
      result = result.replace(pattern, (...match: string[]) =>
        keepGroup ? `${match[keepGroup]}[REDACTED:${kind}]` : `[REDACTED:${kind}]`,
      );
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
