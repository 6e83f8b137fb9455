import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redactor } from '../../src/core/dataset/redaction';

const samples: Array<[string, string]> = [
  ['openai', 'sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX1234'],
  ['github', 'ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'],
  ['github', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnop'],
  ['aws', 'AKIAIOSFODNN7EXAMPLE'],
  ['jwt', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'],
  ['private-key', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----'],
];

for (const [kind, text] of samples) {
  test(`redacts ${kind} secrets`, () => {
    const redacted = new Redactor().redact(`before ${text} after`);
    assert.equal(redacted, `before [REDACTED:${kind}] after`);
  });
}

test('keeps the Authorization header name and redacts the bearer token', () => {
  assert.equal(new Redactor().redact('Authorization: Bearer abcdef0123456789xyz'), 'Authorization: Bearer [REDACTED:bearer]');
});

test('redacts configured values everywhere inside nested data, and ignores short ones', () => {
  const redactor = new Redactor({ secrets: ['local-secret-value', 'abc'] });
  const result = redactor.redactDeep({ a: ['x local-secret-value y'], b: { c: 'abc stays' }, n: 3 });
  assert.deepEqual(result, { a: ['x [REDACTED:secret] y'], b: { c: 'abc stays' }, n: 3 });
});

test('leaves ordinary text alone', () => {
  const text = 'skip the task-runner; ask AKIA about it';
  assert.equal(new Redactor().redact(text), text);
});
