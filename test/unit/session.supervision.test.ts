import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunSession } from '../../src/core/session/runSession';
import { defaultDatasetPath } from '../../src/core/dataset/store';
import type { DatasetEvent, JudgeUsageEvent, LabelEvent } from '../../src/core/dataset/events';
import { type CliIo, main } from '../../src/cli/main';
import { type RecordedRequest, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace } from '../fixtures/workspace';

/** A judge that rates every step it is shown: execution bad when the tool reported an error. */
function judgeReply(request: RecordedRequest) {
  const asked = /Steps to judge: ([\d, ]+)/.exec(String(request.messages[1]?.content ?? ''));
  const steps = (asked?.[1] ?? '').split(',').map(Number).filter(Boolean);
  return {
    toolCall: {
      name: 'record_verdicts',
      arguments: { verdicts: steps.map((step) => ({ step, decision: 'good', execution: step === 2 ? 'bad' : 'good', reason: `verdict on step ${step}` })) },
    },
  };
}

const agentScript = () => [
  { toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: 'a\n' } } },
  { toolCall: { name: 'run_command', arguments: { command: 'exit 2' } } },
  { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
];

test('rules label each step as it lands and the judge scores every step in the background, within the same run', async () => {
  const ws = makeWorkspace();
  const agent = await startScriptedModelServer(agentScript());
  const judge = await startScriptedModelServer([], { fallback: judgeReply });
  try {
    const session = await RunSession.start({
      workspace: ws.dir,
      datasetDir: defaultDatasetPath(ws.dir),
      task: 'Make a.txt',
      model: 'agent-model',
      baseUrl: agent.baseUrl,
      apiKey: 'k-0123456789',
      judge: { baseUrl: judge.baseUrl, apiKey: 'judge-key-123', model: 'judge-model', batchSize: 2 },
    });
    const seen: DatasetEvent[] = [];
    session.onEvent((event) => seen.push(event));
    assert.equal((await session.done).status, 'finished');
    const events = await session.events();

    // The rule's label follows its step at once, before the next step.
    const failedAt = events.findIndex((event) => event.type === 'step' && event.step === 2);
    const next = events[failedAt + 1] as LabelEvent;
    assert.deepEqual([next.type, next.step, next.source, next.label, next.axis], ['label', 2, 'rule:command_failed', 'bad', 'execution']);
    assert.equal(next.reason, 'the command failed (exit code 2)');

    const judged = events.filter((event): event is LabelEvent => event.type === 'label' && event.source === 'judge:judge-model');
    assert.deepEqual(judged.map((event) => [event.step, event.axis, event.label]).sort(), [
      [1, 'decision', 'good'],
      [1, 'execution', 'good'],
      [2, 'decision', 'good'],
      [2, 'execution', 'bad'],
      [3, 'decision', 'good'],
      [3, 'execution', 'good'],
    ]);
    const usage = events.filter((event): event is JudgeUsageEvent => event.type === 'judge_usage');
    assert.deepEqual(
      usage.map((event) => event.steps),
      [[1, 2], [3]],
    );
    assert.ok(usage.every((event) => event.usage && event.usage.completionTokens > 0 && !event.error));
    // Every judge label is recorded before the run's end, and listeners saw them too.
    assert.equal(events[events.length - 1].type, 'run_ended');
    assert.equal(seen.filter((event) => event.type === 'label' && event.source.startsWith('judge:')).length, 6);
    assert.equal(judge.requests[0].headers.authorization, 'Bearer judge-key-123');
    assert.equal(agent.requests.length, 3, 'the judge never talks to the agent endpoint');
  } finally {
    await agent.close();
    await judge.close();
    ws.cleanup();
  }
});

test('a judge that fails never breaks the run: its failure is recorded and the steps stay unjudged', async () => {
  const ws = makeWorkspace();
  const agent = await startScriptedModelServer(agentScript());
  const judge = await startScriptedModelServer([], { fallback: { status: 503 } });
  try {
    const session = await RunSession.start({
      workspace: ws.dir,
      datasetDir: defaultDatasetPath(ws.dir),
      task: 'Make a.txt',
      model: 'agent-model',
      baseUrl: agent.baseUrl,
      apiKey: 'k-0123456789',
      judge: { baseUrl: judge.baseUrl, apiKey: 'k', model: 'judge-model', maxRetries: 0 },
    });
    const ended = await session.done;
    assert.equal(ended.status, 'finished');
    assert.equal(ended.steps, 3);
    const events = await session.events();
    assert.equal(events.filter((event) => event.type === 'label' && event.source.startsWith('judge:')).length, 0);
    const usage = events.filter((event): event is JudgeUsageEvent => event.type === 'judge_usage');
    assert.equal(usage.length, 1);
    assert.match(usage[0].error ?? '', /503/);
  } finally {
    await agent.close();
    await judge.close();
    ws.cleanup();
  }
});

test('a misconfigured judge is refused before the run starts, naming what to fix', async () => {
  const ws = makeWorkspace();
  try {
    await assert.rejects(
      RunSession.start({
        workspace: ws.dir,
        datasetDir: defaultDatasetPath(ws.dir),
        task: 't',
        model: 'm',
        baseUrl: 'http://127.0.0.1:9/v1',
        apiKey: 'k',
        judge: { baseUrl: 'ftp://x', apiKey: '', model: 'j' },
      }),
      /judge's baseUrl "ftp:\/\/x" is not an http\(s\) URL/,
    );
  } finally {
    ws.cleanup();
  }
});

test("apollo run --judge uses its own endpoint and model, and apollo stats counts the judge's tokens", async () => {
  const ws = makeWorkspace();
  const agent = await startScriptedModelServer(agentScript());
  const judge = await startScriptedModelServer([], { fallback: judgeReply });
  const out: string[] = [];
  const cli = (cwd: string, env: NodeJS.ProcessEnv = {}): CliIo => ({ stdout: (text) => out.push(text), stderr: () => undefined, env, cwd });
  try {
    const env = { OPENAI_API_KEY: 'k-0123456789', APOLLO_JUDGE_BASE_URL: judge.baseUrl };
    assert.equal(await main(['run', '--workspace', ws.dir, '--task', 'Make a.txt', '--base-url', agent.baseUrl, '--model', 'agent-model', '--judge', '--judge-model', 'critic'], cli(ws.dir, env)), 0);
    assert.equal(judge.requests[0].body.model, 'critic');
    out.length = 0;
    assert.equal(await main(['stats', '--json'], cli(ws.dir)), 0);
    const stats = JSON.parse(out.join(''));
    assert.equal(stats.judge.failures, 0);
    assert.ok(stats.judge.requests >= 1 && stats.judge.completionTokens >= 20);
    assert.equal(stats.labelSources.judge, 3);
    assert.deepEqual(stats.effectiveLabels, { good: 2, bad: 1, neutral: 0, unlabelled: 0 });

    const usage: string[] = [];
    assert.equal(await main(['run', '--workspace', ws.dir, '--task', 't', '--judge-model', 'critic'], { ...cli(ws.dir), stderr: (text) => usage.push(text) }), 2);
    assert.match(usage.join(''), /--judge-model and --judge-base-url go with --judge/);
  } finally {
    await agent.close();
    await judge.close();
    ws.cleanup();
  }
});
