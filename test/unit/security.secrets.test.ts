/**
 * Secrets never reach the dataset: every secret shape, in a command's output, a file the agent
 * reads, a diff and the environment, is redacted from everything recorded and every export, and
 * the model does not read them either unless the user allows it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunSession } from '../../src/core/session/runSession';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { exportDataset } from '../../src/core/export/exportDataset';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { allText, makeWorkspace } from '../fixtures/workspace';

const SECRETS = {
  github: `ghp_${'Ab1'.repeat(12)}`,
  openai: `sk-${'Zx9'.repeat(12)}`,
  aws: 'AKIAIOSFODNN7EXAMPLE',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
  privateKey: '-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----',
  bearer: 'Authorization: Bearer q1w2e3r4t5y6u7i8o9p0',
  environment: 'plain-looking-value-from-the-environment-42',
  apiKey: 'configured-api-key-0123456789',
};
const NEEDLES = [SECRETS.github, SECRETS.openai, SECRETS.aws, SECRETS.jwt, 'MIIBOgIBAAJBAKj34GkxFhD90vcN', 'q1w2e3r4t5y6u7i8o9p0', SECRETS.environment, SECRETS.apiKey];

test('secret shapes and secret values are in no event, output, diff or export, and not in what the model read', async () => {
  const fileText = `github=${SECRETS.github}\nopenai=${SECRETS.openai}\naws=${SECRETS.aws}\njwt=${SECRETS.jwt}\n${SECRETS.privateKey}\n`;
  const ws = makeWorkspace({ 'README.md': '# demo\n', 'config/secrets.env': fileText });
  process.env.APOLLO_TEST_SERVICE_TOKEN = SECRETS.environment;
  const server = await startScriptedModelServer([
    { toolCall: { name: 'read_file', arguments: { path: 'config/secrets.env' } } },
    { toolCall: { name: 'run_command', arguments: { command: `cat config/secrets.env; printenv APOLLO_TEST_SERVICE_TOKEN; echo '${SECRETS.bearer}'; echo ${SECRETS.apiKey}` } } },
    { toolCall: { name: 'run_command', arguments: { command: `cp config/secrets.env copied.env; seq 1 30000 > long.txt; cat long.txt config/secrets.env` } } },
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ]);
  const out = mkdtempSync(path.join(os.tmpdir(), 'apollo-secrets-'));
  try {
    const datasetDir = defaultDatasetPath(ws.dir);
    // No sandbox, so printenv sees the variable: the record must still not hold it.
    const session = await RunSession.start({
      workspace: ws.dir,
      datasetDir,
      task: 'Look at the config',
      model: 'm',
      baseUrl: server.baseUrl,
      apiKey: SECRETS.apiKey,
      sandbox: { mode: 'off', network: true },
    });
    assert.equal((await session.done).status, 'finished');
    const events = await session.events();
    const step2 = events.find((event) => event.type === 'step' && event.step === 2);
    assert.ok(step2?.type === 'step' && /\[REDACTED:github\]/.test(step2.observation) && /\[REDACTED:secret\]/.test(step2.observation), 'the observation keeps its shape with markers');
    const step3 = events.find((event) => event.type === 'step' && event.step === 3);
    assert.ok(step3?.type === 'step' && step3.fullOutput, 'the long output was kept beside the run');
    assert.ok(step3?.type === 'step' && step3.grounding.files.some((file) => file.path === 'copied.env'), 'the copied secrets are in the diff');

    const recorded = allText(datasetDir);
    for (const needle of NEEDLES) assert.equal(recorded.includes(needle), false, `the dataset holds ${needle.slice(0, 12)}…`);

    for (const format of ['openai', 'hf', 'atif', 'sharegpt'] as const) {
      const target = path.join(out, format + (format === 'hf' || format === 'atif' ? '' : '.jsonl'));
      await exportDataset(new DatasetStore(datasetDir), { format, out: target });
      const exported = statSync(target).isDirectory() ? allText(target) : readFileSync(target, 'utf8');
      for (const needle of NEEDLES) assert.equal(exported.includes(needle), false, `${format} holds ${needle.slice(0, 12)}…`);
    }

    const toolResults = server.requests
      .flatMap((request) => request.messages.filter((message: { role: string }) => message.role === 'tool').map((message: { content: string }) => message.content))
      .join('\n');
    assert.match(toolResults, /REDACTED/);
    for (const needle of NEEDLES) assert.equal(toolResults.includes(needle), false, `the model read ${needle.slice(0, 12)}…`);
  } finally {
    delete process.env.APOLLO_TEST_SERVICE_TOKEN;
    await server.close();
    ws.cleanup();
    rmSync(out, { recursive: true, force: true });
  }
});

test('the model may read them in the live session when the user allows it; the record still never holds them', async () => {
  const ws = makeWorkspace({ 'token.txt': `${SECRETS.github}\n` });
  const server = await startScriptedModelServer([{ toolCall: { name: 'read_file', arguments: { path: 'token.txt' } } }, { toolCall: { name: 'finish', arguments: { summary: 'ok' } } }]);
  try {
    const datasetDir = defaultDatasetPath(ws.dir);
    const session = await RunSession.start({ workspace: ws.dir, datasetDir, task: 't', model: 'm', baseUrl: server.baseUrl, apiKey: 'k-0123456789', secretsToModel: true });
    await session.done;
    assert.ok(JSON.stringify(server.requests[1].messages).includes(SECRETS.github));
    assert.equal(allText(datasetDir).includes(SECRETS.github), false);
  } finally {
    await server.close();
    ws.cleanup();
  }
});
