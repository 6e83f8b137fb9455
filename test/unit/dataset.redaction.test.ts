/**
 * The misses of the redaction (a key without its END line, a secret split between two chunks of a
 * job's output, a bearer token in JSON, a token after a NUL, provider shapes, passwords in URLs,
 * base64 of an environment secret, the names of secret-looking variables), and what must be left
 * alone in ordinary code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findSecretShapes, isSecretEnvName, Redactor, StreamRedactor } from '../../src/core/dataset/redaction';
import { SECRET_ENV_PATTERN } from '../../src/core/agent/sandbox';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { validateDataset } from '../../src/core/dataset/validate';
import { exportDataset } from '../../src/core/export/exportDataset';
import { RunSession } from '../../src/core/session/runSession';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { allText, makeWorkspace } from '../fixtures/workspace';
import { runStarted, step, writeRun } from '../fixtures/trajectories';

const KEY_BODY = 'MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi6Ws0ijdWyL3W9cDcG8zmXq1Pu';
const PROVIDERS: Array<[kind: string, secret: string]> = [
  ['slack', 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'],
  ['slack', 'xoxp-2718281828-3141592653-Zz9Yy8Xx7Ww6'],
  ['stripe', 'sk_live_51HqLy2AbCdEfGhIjKlMnOpQr'],
  ['stripe', 'rk_test_4eC39HqLyjWDarjtT1zdp7dc'],
  ['google', 'AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY'],
  ['gitlab', 'glpat-xYz12AbC34dEf56GhI78jK'],
  ['npm', 'npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'],
  ['huggingface', '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'],
  ['sendgrid', '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'],
  ['github', `ghp_${'a1B2'.repeat(9)}`],
  ['openai', `sk-proj-${'Zx9'.repeat(10)}`],
  ['aws', 'AKIAIOSFODNN7EXAMPLE'],
];
const AZURE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** Ordinary code and output that must come out as it went in. */
const NEGATIVES = [
  'commit 3f786850e387550fdab836ed7e6dc881de23001b (HEAD -> main)',
  'run id 123e4567-e89b-12d3-a456-426614174000 started',
  'const pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";',
  'password_field = request.form["password"]',
  'expected = "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"  # SHA3-256 test vector',
  'vector = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")',
  'def get_secret_key(self): return os.environ["SECRET_KEY"]',
  'git clone git@github.com:octo/repo.git && curl http://localhost:8080/health',
  'const risk_factor_calculation_result = 3; const desk-organizer-configuration = 1;',
  'from huggingface_hub import hf_hub_download; tokenizer = AutoTokenizer.from_pretrained(name)',
  'The bearer token is read from the environment; see Authorization below.',
  'npm_config_cache=/home/user/.npm npm_package_version=1.2.3',
  'AccountName=devstoreaccount1; see the docs for AccountKey',
  'https://example.com/path?user=me:you@ and mailto:someone@example.com',
  '-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----',
  'TOKENIZERS_PARALLELISM=false GIT_AUTHOR_EMAIL=dev@example.com',
];

test('a private key without its END line (head -4 key.pem) is redacted, header and body', () => {
  const text = `$ head -4 key.pem\n-----BEGIN RSA PRIVATE KEY-----\n${KEY_BODY}\n${KEY_BODY.split('').reverse().join('')}\n${KEY_BODY.toLowerCase()}\n[exit code 0]`;
  const redacted = new Redactor().redact(text);
  assert.equal(redacted, '$ head -4 key.pem\n[REDACTED:private-key]\n[exit code 0]');
  assert.deepEqual(findSecretShapes(JSON.stringify({ observation: text })), ['private-key'], 'found in JSON-escaped text too');
});

test('a secret split between two chunks of a stream is redacted whole', () => {
  const token = PROVIDERS[0][1];
  for (let cut = 1; cut < token.length; cut += 7) {
    const stream = new StreamRedactor(new Redactor());
    const out = stream.push(`line one\nSLACK=${token.slice(0, cut)}`) + stream.push(`${token.slice(cut)}\nline three\n`) + stream.end();
    assert.equal(out, 'line one\nSLACK=[REDACTED:slack]\nline three\n', `cut at ${cut}`);
  }
  // A private key block arriving line by line is held until it is complete.
  const stream = new StreamRedactor(new Redactor());
  const lines = ['-----BEGIN OPENSSH PRIVATE KEY-----\n', `${KEY_BODY}\n`, `${KEY_BODY}\n`, '-----END OPENSSH PRIVATE KEY-----\n', 'done\n'];
  const out = lines.map((line) => stream.push(line)).join('') + stream.end();
  assert.equal(out, '[REDACTED:private-key]\ndone\n');
  // Even when it outgrows what is held back, the body passed on later is redacted.
  const small = new StreamRedactor(new Redactor(), 100);
  const longOut = [lines[0], `${KEY_BODY}\n`, `${KEY_BODY}\n`, `${KEY_BODY}\n`, lines[3], 'done\n'].map((line) => small.push(line)).join('') + small.end();
  assert.doesNotMatch(longOut, /MIIE/);
  assert.match(longOut, /done\n$/);
});

// A key block that ends in something else once sent the held-back check into minutes of
// backtracking: a hostile command's output must not stall the run (the timeout fails a regression).
test('a long key block followed by other text streams through without stalling', { timeout: 20_000 }, () => {
  const stream = new StreamRedactor(new Redactor());
  const chunks = ['-----BEGIN OPENSSH PRIVATE KEY-----\n', ...Array.from({ length: 200 }, () => `${KEY_BODY}\n`), '-----END OPENSSH PRIVATE KEY-----\n', 'after the key: ok!\n'];
  const out = chunks.map((chunk) => stream.push(chunk)).join('') + stream.end();
  assert.doesNotMatch(out, /MIIE/);
  assert.match(out, /after the key: ok!\n$/);
});

test('Authorization: Bearer inside JSON, and a token after a NUL byte', () => {
  const json = JSON.stringify({ headers: { 'Content-Type': 'application/json', Authorization: 'Bearer q1w2e3r4t5y6u7i8o9p0a1s2' } });
  const redacted = new Redactor().redact(json);
  assert.equal(redacted, '{"headers":{"Content-Type":"application/json","Authorization":"Bearer [REDACTED:bearer]"}}');
  assert.deepEqual(findSecretShapes(json), ['bearer']);
  const token = PROVIDERS[9][1];
  assert.equal(new Redactor().redact(`bin\u0000${token}\u0000`), 'bin\u0000[REDACTED:github]\u0000');
  assert.deepEqual(findSecretShapes(JSON.stringify(`bin\u0000${token}`)), ['github'], 'as a JSON line holds it: \\u0000 before the token');
  assert.deepEqual(findSecretShapes(JSON.stringify(`first line\n${token}`)), ['github'], 'and \\n before the token');
});

for (const [kind, secret] of PROVIDERS) {
  test(`redacts ${kind} shapes: ${secret.slice(0, 8)}…`, () => {
    assert.equal(new Redactor().redact(`value: ${secret} end`), `value: [REDACTED:${kind}] end`);
    assert.deepEqual(findSecretShapes(`"${secret}"`), [kind]);
  });
}

test('redacts an Azure AccountKey and keeps the rest of the connection string', () => {
  const text = `DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=${AZURE_KEY};EndpointSuffix=core.windows.net`;
  assert.equal(new Redactor().redact(text), 'DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=[REDACTED:azure];EndpointSuffix=core.windows.net');
});

test('redacts the password of user:pass@ in URLs and keeps the user and host', () => {
  const redactor = new Redactor();
  assert.equal(redactor.redact('postgres://app:s3cr3t-Pa55@db.internal:5432/prod'), 'postgres://app:[REDACTED:url-password]@db.internal:5432/prod');
  assert.equal(redactor.redact('git clone https://oauth2:tok3nValue@gitlab.example.com/g/r.git'), 'git clone https://oauth2:[REDACTED:url-password]@gitlab.example.com/g/r.git');
  assert.equal(redactor.redact('"url": "redis://:hunter2hunter2@cache:6379"'), '"url": "redis://:[REDACTED:url-password]@cache:6379"');
});

test('ordinary code is left alone: no negative is redacted or reported', () => {
  const redactor = new Redactor({ secrets: ['an-env-secret-value-1234'] });
  for (const text of NEGATIVES) {
    assert.equal(redactor.redact(text), text, text);
    assert.deepEqual(findSecretShapes(text), [], text);
    assert.deepEqual(findSecretShapes(JSON.stringify(text)), [], `${text} (as JSON)`);
  }
});

test('an environment secret is redacted also base64- and hex-encoded, wrapped or inside a longer encoding', () => {
  const value = 'Zq8-very-private-Env-Value_2718281828459045235360287471352662497757';
  const redactor = new Redactor({ secrets: [value] });
  const encodings = [
    Buffer.from(`${value}\n`).toString('base64'), // printenv X | base64, unwrapped
    Buffer.from(`${value}\n`)
      .toString('base64')
      .replace(/(.{76})/g, '$1\n'), // base64's default 76 columns
    Buffer.from(`TOKEN=${value}`).toString('base64'),
    Buffer.from(`ab${value}`).toString('base64url'),
    Buffer.from(value).toString('hex'),
    Buffer.from(`${value}\n`)
      .toString('hex')
      .replace(/(.{60})/g, '$1\n'), // xxd -p
    encodeURIComponent(`${value}&x`),
  ];
  const core = Buffer.from(value).toString('base64').slice(0, 40);
  for (const encoded of encodings) {
    const redacted = redactor.redact(`out: ${encoded} :end`);
    assert.match(redacted, /\[REDACTED:secret\]/, encoded);
    assert.equal(redacted.replace(/\n/g, '').includes(core), false, encoded);
    assert.equal(redacted.includes(Buffer.from(value).toString('hex').slice(0, 40)), false, encoded);
    assert.equal(redacted.includes(value), false, encoded);
  }
});

test('one definition of a secret-looking variable, shared by the record and the sandbox', () => {
  const secret = [
    'DB_PASSWD',
    'NPM_CONFIG__AUTH',
    'SESSION_COOKIE',
    'GPG_PASSPHRASE',
    'OPENAI_API_KEY',
    'HF_TOKEN',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_ACCESS_KEY_ID',
    'MYSQL_PASSWORD',
    'PGPASSWORD',
    'SMTP_PASS',
    'GOOGLE_APPLICATION_CREDENTIALS',
    'DJANGO_SECRET',
    'PRIVATE_KEY',
    'SSH_PRIVATE',
    'GH_AUTH',
    'FLASK_SESSION',
    'COOKIE',
    'APIKEY',
    'SENTRY_DSN',
    'CI_JOB_TOKEN',
    'PASSPHRASE',
  ];
  const plain = ['TOKENIZERS_PARALLELISM', 'GIT_AUTHOR_EMAIL', 'PWD', 'OLDPWD', 'KEYMAP', 'MONKEY', 'PATH', 'HOME', 'XDG_SESSION_TYPE', 'DESKTOP_SESSION', 'LANG', 'PASSAGE_DIR', 'XAUTHORITY'];
  for (const name of secret) {
    assert.ok(isSecretEnvName(name), name);
    assert.match(name, SECRET_ENV_PATTERN, `${name}: the sandbox removes what the record redacts`);
  }
  for (const name of plain) assert.equal(isSecretEnvName(name), false, name);
});

/** Octal escapes for printf, so that the command itself holds no part of the token. */
const escaped = (text: string) => [...text].map((char) => `\\${char.charCodeAt(0).toString(8).padStart(3, '0')}`).join('');
const ENV_NAMES = ['DB_PASSWD', 'NPM_CONFIG__AUTH', 'SESSION_COOKIE', 'GPG_PASSPHRASE', 'APOLLO_TEST_SECRET_TOKEN'];
const envValue = (name: string) => `value-of-${name.toLowerCase()}-7f3a9c21e8`;

test("attack through the agent's own tools: printenv | base64, env values, and a secret split across two job reads", async () => {
  const ws = makeWorkspace({ 'README.md': '# demo\n' });
  for (const name of ENV_NAMES) process.env[name] = envValue(name);
  const slack = PROVIDERS[0][1];
  const half = Math.floor(slack.length / 2);
  const server = await startScriptedModelServer([
    { toolCall: { name: 'run_command', arguments: { command: 'printenv APOLLO_TEST_SECRET_TOKEN | base64' } } },
    { toolCall: { name: 'run_command', arguments: { command: `printenv ${ENV_NAMES.join(' ')}` } } },
    { toolCall: { name: 'job_start', arguments: { name: 'leak', command: `printf '${escaped(`SLACK=${slack.slice(0, half)}`)}'; sleep 0.6; printf '${escaped(slack.slice(half))}\\n'` } } },
    { toolCall: { name: 'job_read', arguments: { name: 'leak' } } },
    { toolCall: { name: 'run_command', arguments: { command: 'sleep 1' } } },
    { toolCall: { name: 'job_read', arguments: { name: 'leak' } } },
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ]);
  try {
    const datasetDir = defaultDatasetPath(ws.dir);
    // No sandbox, and the variables passed on purpose (without passEnv no command sees them): the commands print them.
    const session = await RunSession.start({
      workspace: ws.dir,
      datasetDir,
      task: 'Look around',
      model: 'm',
      baseUrl: server.baseUrl,
      apiKey: 'k-0123456789abcdef',
      sandbox: { mode: 'off', network: true, allow: ['printenv', 'printf', 'sleep'], passEnv: ENV_NAMES },
    });
    assert.equal((await session.done).status, 'finished');
    const needles = [
      ...ENV_NAMES.map(envValue),
      Buffer.from(`${envValue('APOLLO_TEST_SECRET_TOKEN')}\n`)
        .toString('base64')
        .slice(0, 24),
      slack.slice(0, half),
      slack.slice(half),
    ];
    const recorded = allText(datasetDir);
    const toolResults = server.requests
      .flatMap((request) => request.messages.filter((message: { role: string }) => message.role === 'tool').map((message: { content: string }) => message.content))
      .join('\n');
    assert.match(toolResults, /\[REDACTED:secret\]/, 'the base64 form was redacted for the model');
    assert.match(toolResults, /SLACK=\[REDACTED:slack\]/, 'the split token reached the model whole, redacted');
    assert.match(toolResults, /an unfinished line/, 'the first read said it held the line back');
    for (const needle of needles) {
      assert.equal(recorded.includes(needle), false, `the dataset holds ${needle}`);
      assert.equal(toolResults.includes(needle), false, `the model read ${needle}`);
    }
    assert.match(readFileSync(path.join(new DatasetStore(datasetDir).runDir(session.runId), 'outputs', 'job-leak.log'), 'utf8'), /^SLACK=\[REDACTED:slack\]\n$/);
  } finally {
    for (const name of ENV_NAMES) delete process.env[name];
    await server.close();
    ws.cleanup();
  }
});

test('apollo validate reports each secret shape with its file, line and rule; an export refuses the run', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-redaction-'));
  try {
    const store = new DatasetStore(dir);
    const runId = 'run-planted';
    await writeRun(store, runId, [runStarted(runId), step(1, { tool: 'run_command', args: { command: 'ls' } })]);
    const runDir = store.runDir(runId);
    // Written straight into the file, as an older version without these rules would have.
    const planted = step(2, { tool: 'run_command', args: { command: 'cat .env' }, observation: `SLACK=${PROVIDERS[0][1]}\nhead:\n-----BEGIN RSA PRIVATE KEY-----\n${KEY_BODY}\n` });
    await fs.appendFile(path.join(runDir, 'events.jsonl'), JSON.stringify(planted) + '\n');
    await fs.writeFile(path.join(runDir, 'step-1-output.txt'), `ok\nurl=https://deploy:pa55w0rd-x@example.com/\n`);
    const report = await validateDataset(store);
    const secrets = report.problems.filter((problem) => /secret shape/.test(problem.message));
    const where = secrets.map((problem) => `${path.basename(problem.file)}:${problem.line}: ${/\((.+?)\)/.exec(problem.message)?.[1]}`);
    assert.deepEqual(where.sort(), ['events.jsonl:3: private-key', 'events.jsonl:3: slack', 'step-1-output.txt:2: url-password']);

    const out = path.join(dir, 'out.jsonl');
    for (const format of ['openai', 'sharegpt', 'pairs', 'hf', 'atif'] as const) {
      const target = format === 'hf' || format === 'atif' ? path.join(dir, `out-${format}`) : out;
      const summary = await exportDataset(store, { format, out: target, allowEmpty: true });
      assert.equal(summary.records, 0, format);
      assert.deepEqual(
        summary.skipped.map((skip) => skip.id),
        [runId],
        format,
      );
      assert.match(summary.skipped[0].problems.join('\n'), /refused: the run's record holds a secret shape \((private-key, slack|slack, private-key)\)/, format);
    }
    // Without --allow-empty the refusal is the error, saying why.
    await assert.rejects(exportDataset(store, { format: 'openai', out: path.join(dir, 'strict.jsonl') }), /every run was refused \(.*secret shape/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
