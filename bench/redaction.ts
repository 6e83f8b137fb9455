/**
 * Redaction benchmark: the per-call cost of redacting a typical 4 KB observation and a 1 MB
 * command output with src/core/dataset/redaction.ts (for the figure before a change, copy this file
 * into a checkout of the commit before it; bench/RESULTS.md keeps the two side by side), with the run's
 * API key and ten environment secrets configured as a run has them; plus `findSecretShapes`
 * (what `apollo validate` and the exports run per line or record) and the streamed form.
 *
 * With `APOLLO_BENCH_SECRETLINT=<a node_modules folder holding @secretlint/core and
 * @secretlint/secretlint-rule-preset-recommend>` it also times secretlint's recommended preset on
 * the same inputs (`npm install --no-save --prefix /some/dir @secretlint/core@12
 * @secretlint/secretlint-rule-preset-recommend@12`; 13.x needs Node 22).
 * Prints figures; asserts nothing. Run with `npm run compile-tests && node out/bench/redaction.js`.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { findSecretShapes, Redactor, StreamRedactor } from '../src/core/dataset/redaction';

const SECRETS = ['configured-api-key-0123456789', ...Array.from({ length: 10 }, (_, index) => `env-secret-${index}-${'x7Q'.repeat(8)}`)];

const CODE_LINES = [
  'src/app.ts:12:  const value = computeSomething(input, 42); // ordinary output line',
  '    at Object.<anonymous> (/home/dev/project/node_modules/mocha/lib/runner.js:512:14)',
  'commit 3f786850e387550fdab836ed7e6dc881de23001b Author: Dev <dev@example.com>',
  '  "id": "123e4567-e89b-12d3-a456-426614174000", "status": "ok", "bytes": 18231,',
  'PASS test/unit/parser.test.ts (4.213 s) ✓ parses nested blocks (12 ms)',
  'password_field = request.form["password"]  # flask handler',
];

function textOf(size: number): string {
  let text = '';
  for (let index = 0; text.length < size; index++) text += CODE_LINES[index % CODE_LINES.length] + '\n';
  return text.slice(0, size);
}

function time(label: string, run: () => unknown, minMs = 400): number {
  run();
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) {
    run();
    calls++;
  }
  const perCall = (performance.now() - start) / calls;
  console.log(`${label.padEnd(58)} ${perCall.toFixed(3).padStart(9)} ms/call  (${calls} calls)`);
  return perCall;
}

async function timeAsync(label: string, run: () => Promise<unknown>, minMs = 400): Promise<number> {
  await run();
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) {
    await run();
    calls++;
  }
  const perCall = (performance.now() - start) / calls;
  console.log(`${label.padEnd(58)} ${perCall.toFixed(3).padStart(9)} ms/call  (${calls} calls)`);
  return perCall;
}

async function main(): Promise<void> {
  const inputs = { '4 KB': textOf(4096), '1 MB': textOf(1024 * 1024) };
  const after = new Redactor({ secrets: SECRETS });
  for (const [name, text] of Object.entries(inputs)) {
    time(`Redactor.redact, ${name}`, () => after.redact(text));
    time(`findSecretShapes, ${name}`, () => findSecretShapes(text));
    time(`StreamRedactor, ${name} in 4 KB chunks`, () => {
      const stream = new StreamRedactor(after);
      for (let index = 0; index < text.length; index += 4096) stream.push(text.slice(index, index + 4096));
      stream.end();
    });
  }
  const secretlintDir = process.env.APOLLO_BENCH_SECRETLINT;
  if (!secretlintDir) {
    console.log('secretlint: set APOLLO_BENCH_SECRETLINT to a node_modules folder holding it to compare');
    return;
  }
  // ESM-only: loaded with a real import(), which CommonJS output would turn into require().
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- a real import() of an ES module: tsc turns import() into require() in CommonJS output
  const load = new Function('url', 'return import(url)') as (url: string) => Promise<any>;
  const core = await load(pathToFileURL(path.join(secretlintDir, '@secretlint/core/module/index.js')).href);
  const preset = await load(pathToFileURL(path.join(secretlintDir, '@secretlint/secretlint-rule-preset-recommend/module/index.js')).href);
  const options = { config: { rules: [{ id: preset.creator.meta.id, rule: preset.creator }] } };
  for (const [name, text] of Object.entries(inputs)) {
    await timeAsync(`secretlint preset-recommend (async), ${name}`, () => core.lintSource({ source: { filePath: '/observation.txt', content: text, contentType: 'text' }, options }));
  }
}

void main();
