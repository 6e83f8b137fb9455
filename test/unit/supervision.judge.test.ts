/** The LLM judge against a real OpenAI-compatible server: batching, parsing, failures, redaction. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JudgeUsageEvent, LabelEvent, StepEvent } from '../../src/core/dataset/events';
import { Judge, type JudgeHost, type JudgeOptions, validateJudgeOptions } from '../../src/core/supervision/judge';
import { type RecordedRequest, type ScriptedModelServer, type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';

const TASK = 'Fix the failing test in tests/test_calc.py';
const MODEL = 'judge-model';

function makeStep(step: number, overrides: Partial<StepEvent> = {}): StepEvent {
  const action = { id: `call_${step}`, name: 'read_file', arguments: JSON.stringify({ path: `src/file${step}.py` }) };
  return {
    type: 'step',
    time: new Date().toISOString(),
    step,
    assistant: { content: `Thought of step ${step}: look at file${step}.`, toolCalls: [action] },
    action,
    observation: `contents of file${step}`,
    isError: false,
    grounding: { before: 'aaa', after: 'aaa', files: [], patch: '' },
    modelMs: 1,
    toolMs: 1,
    ...overrides,
  };
}

interface Recorder {
  host: JudgeHost;
  events: (LabelEvent | JudgeUsageEvent)[];
  logs: string[];
  labels(): LabelEvent[];
  usages(): JudgeUsageEvent[];
}

function recorder(extra: Partial<JudgeHost> = {}): Recorder {
  const events: (LabelEvent | JudgeUsageEvent)[] = [];
  const logs: string[] = [];
  return {
    host: { task: TASK, record: async (event) => void events.push(event), log: (line) => void logs.push(line), ...extra },
    events,
    logs,
    labels: () => events.filter((event): event is LabelEvent => event.type === 'label'),
    usages: () => events.filter((event): event is JudgeUsageEvent => event.type === 'judge_usage'),
  };
}

function userText(request: RecordedRequest): string {
  const user = request.messages.find((message) => message.role === 'user');
  assert.ok(user && typeof user.content === 'string', 'the request has a user message');
  return user.content;
}

function stepsShown(request: RecordedRequest): number[] {
  return [...userText(request).matchAll(/^### Step (\d+)$/gm)].map((match) => Number(match[1]));
}

function verdictCall(verdicts: object[], extra: { delayMs?: number } = {}): ScriptedReply {
  return { toolCall: { name: 'record_verdicts', arguments: { verdicts } }, ...extra };
}

/** A reply judging every step the request shows as good/good. */
function judgeAllReply(request: RecordedRequest, delayMs?: number): ScriptedReply {
  const verdicts = stepsShown(request).map((step) => ({ step, decision: 'good', execution: 'good', reason: `step ${step} is fine` }));
  return verdictCall(verdicts, delayMs ? { delayMs } : {});
}
const judgeAll: ScriptedReply = (request) => judgeAllReply(request);

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function withJudge(
  script: ScriptedReply[],
  options: Partial<JudgeOptions>,
  body: (judge: Judge, server: ScriptedModelServer, rec: Recorder) => Promise<void>,
  host: Partial<JudgeHost> = {},
): Promise<void> {
  const server = await startScriptedModelServer(script, { fallback: judgeAll });
  const rec = recorder(host);
  const judge = new Judge({ baseUrl: server.baseUrl, apiKey: 'k', model: MODEL, maxRetries: 0, idleFlushMs: 60_000, ...options }, rec.host);
  try {
    await body(judge, server, rec);
  } finally {
    judge.dispose();
    await server.close();
  }
}

test('a batch judged by a tool call gives two labels per step and one usage event', async () => {
  const editStep = makeStep(2, {
    assistant: { content: 'Fix the off-by-one in add().', toolCalls: [] },
    action: { id: 'call_2', name: 'edit_file', arguments: JSON.stringify({ path: 'src/calc.py', old_text: 'a + b + 1', new_text: 'a + b' }) },
    observation: 'Edited src/calc.py.',
    grounding: {
      before: 'aaa',
      after: 'bbb',
      files: [{ path: 'src/calc.py', status: 'modified', additions: 3, deletions: 1, binary: false }],
      patch: 'diff --git a/src/calc.py b/src/calc.py\n-    return a + b + 1\n+    return a + b\n',
    },
  });
  const failedStep = makeStep(3, {
    action: { id: 'call_3', name: 'run_command', arguments: JSON.stringify({ command: 'pytest -q' }) },
    observation: 'E   AssertionError\n[exit code 1]',
    isError: true,
  });
  const script = [
    verdictCall([
      { step: 1, decision: 'good', execution: 'good', reason: 'Reading the failing code first is sensible.' },
      { step: 2, decision: 'good', execution: 'neutral', reason: 'Right fix, but the diff adds lines.' },
      { step: 3, decision: 'neutral', execution: 'bad', reason: 'The tests still fail.' },
    ]),
  ];
  await withJudge(script, { batchSize: 3 }, async (judge, server, rec) => {
    assert.equal(judge.source, `judge:${MODEL}`);
    judge.enqueue(makeStep(1));
    judge.enqueue(editStep);
    judge.enqueue(failedStep);
    await judge.drain();

    const labels = rec.labels().map(({ step, axis, label, source, reason }) => ({ step, axis, label, source, reason }));
    const source = `judge:${MODEL}`;
    assert.deepEqual(labels, [
      { step: 1, axis: 'decision', label: 'good', source, reason: 'Reading the failing code first is sensible.' },
      { step: 1, axis: 'execution', label: 'good', source, reason: 'Reading the failing code first is sensible.' },
      { step: 2, axis: 'decision', label: 'good', source, reason: 'Right fix, but the diff adds lines.' },
      { step: 2, axis: 'execution', label: 'neutral', source, reason: 'Right fix, but the diff adds lines.' },
      { step: 3, axis: 'decision', label: 'neutral', source, reason: 'The tests still fail.' },
      { step: 3, axis: 'execution', label: 'bad', source, reason: 'The tests still fail.' },
    ]);
    for (const label of rec.labels()) assert.ok(!Number.isNaN(Date.parse(label.time)), label.time);

    const usages = rec.usages();
    assert.equal(usages.length, 1);
    assert.equal(usages[0].model, MODEL);
    assert.deepEqual(usages[0].steps, [1, 2, 3]);
    assert.equal(usages[0].error, undefined);
    assert.ok(usages[0].usage && usages[0].usage.promptTokens > 0, JSON.stringify(usages[0].usage));
    assert.equal(usages[0].usage.completionTokens, 20);

    // One non-streaming request forcing the verdict tool, showing every part of every step.
    assert.equal(server.requests.length, 1);
    const body = server.requests[0].body;
    assert.equal(body.model, MODEL);
    assert.ok(!body.stream);
    assert.deepEqual(body.tool_choice, { type: 'function', function: { name: 'record_verdicts' } });
    assert.deepEqual(
      body.tools.map((tool: any) => tool.function.name),
      ['record_verdicts'],
    );
    const verdictItem = body.tools[0].function.parameters.properties.verdicts.items;
    assert.deepEqual(verdictItem.properties.decision.enum, ['good', 'bad', 'neutral']);
    assert.match(server.requests[0].messages[0].content, /decision/);
    assert.match(server.requests[0].messages[0].content, /execution/);
    const text = userText(server.requests[0]);
    assert.equal(text.split(TASK).length - 1, 1, 'the task is shown once');
    assert.deepEqual(stepsShown(server.requests[0]), [1, 2, 3]);
    for (const part of [
      'Thought of step 1',
      'src/file1.py',
      'Fix the off-by-one in add().',
      'edit_file',
      'a + b + 1',
      'Edited src/calc.py.',
      'modified src/calc.py (+3 −1)',
      '+    return a + b',
      'pytest -q',
      'E   AssertionError',
    ]) {
      assert.ok(text.includes(part), `the request shows ${JSON.stringify(part)}`);
    }
    const step3 = text.slice(text.indexOf('### Step 3'));
    assert.match(step3, /Tool reported an error: yes/);
    assert.match(text.slice(text.indexOf('### Step 1'), text.indexOf('### Step 2')), /Tool reported an error: no/);
  });
});

test('long texts are cut before they are sent', async () => {
  await withJudge([], { batchSize: 1 }, async (judge, server) => {
    judge.enqueue(makeStep(1, { observation: `HEAD${'x'.repeat(100_000)}TAIL` }));
    await judge.drain();
    const text = userText(server.requests[0]);
    assert.ok(text.length < 30_000, String(text.length));
    assert.match(text, /HEAD/);
    assert.match(text, /TAIL/);
    assert.match(text, /characters omitted/);
  });
});

test('batches respect batchSize, one request in flight at a time', async () => {
  const usagesAtArrival: number[] = [];
  let rec!: Recorder;
  const slowJudgeAll: ScriptedReply = (request) => {
    usagesAtArrival.push(rec.usages().length);
    return judgeAllReply(request, 100);
  };
  await withJudge([slowJudgeAll, slowJudgeAll, slowJudgeAll], { batchSize: 2 }, async (judge, server, recorded) => {
    rec = recorded;
    for (let step = 1; step <= 5; step++) judge.enqueue(makeStep(step));
    // Two full batches go out on their own; the fifth step waits for more steps, idleness or drain().
    await until(() => rec.usages().length === 2, 'two batches judged');
    assert.equal(server.requests.length, 2);
    await judge.drain();

    assert.equal(server.requests.length, 3);
    assert.deepEqual(server.requests.map(stepsShown), [[1, 2], [3, 4], [5]]);
    assert.deepEqual(
      rec.usages().map((usage) => usage.steps),
      [[1, 2], [3, 4], [5]],
    );
    // Each request was sent only after the previous one's verdicts were recorded.
    assert.deepEqual(usagesAtArrival, [0, 1, 2]);
    assert.equal(rec.labels().length, 10);
    // Later batches see the earlier steps as context, not as steps to judge.
    const second = userText(server.requests[1]);
    assert.match(second, /Earlier steps \(context only, do not judge\):\n- step 1: read_file .*file1\.py/);
    assert.match(second, /- step 2: read_file/);
  });
});

test('a verdict given as plain content is accepted, fenced or bare', async () => {
  const fenced = 'Here are my verdicts:\n```json\n{"verdicts": [{"step": 1, "decision": "bad", "execution": "good", "reason": "Not needed."}]}\n```\n';
  const bare = '{"verdicts": [{"step": 2, "decision": "good", "execution": "bad", "reason": "Wrong path."}]}';
  await withJudge([{ content: fenced }, { content: bare }], { batchSize: 1 }, async (judge, server, rec) => {
    judge.enqueue(makeStep(1));
    judge.enqueue(makeStep(2));
    await judge.drain();
    assert.equal(server.requests.length, 2);
    assert.deepEqual(
      rec.labels().map(({ step, axis, label, reason }) => [step, axis, label, reason]),
      [
        [1, 'decision', 'bad', 'Not needed.'],
        [1, 'execution', 'good', 'Not needed.'],
        [2, 'decision', 'good', 'Wrong path.'],
        [2, 'execution', 'bad', 'Wrong path.'],
      ],
    );
    assert.deepEqual(
      rec.usages().map((usage) => usage.error),
      [undefined, undefined],
    );
  });
});

test('an HTTP error is recorded as the usage error, with no labels, and nothing is thrown', async () => {
  await withJudge([{ status: 500 }], { batchSize: 2, maxRetries: 0 }, async (judge, server, rec) => {
    judge.enqueue(makeStep(1));
    judge.enqueue(makeStep(2));
    await judge.drain();
    assert.equal(server.requests.length, 1, 'maxRetries 0: no retry');
    assert.equal(rec.labels().length, 0);
    const usages = rec.usages();
    assert.equal(usages.length, 1);
    assert.deepEqual(usages[0].steps, [1, 2]);
    assert.match(usages[0].error ?? '', /HTTP 500/);
    assert.ok(
      rec.logs.some((line) => /steps 1, 2 stay unjudged/.test(line) && /500/.test(line)),
      rec.logs.join('\n'),
    );
  });
});

test('maxRetries is passed to the client', async () => {
  await withJudge([{ status: 500, headers: { 'retry-after-ms': '10' } }], { batchSize: 1, maxRetries: 1 }, async (judge, server, rec) => {
    judge.enqueue(makeStep(1));
    await judge.drain();
    assert.equal(server.requests.length, 2);
    assert.equal(rec.labels().length, 2);
    assert.equal(rec.usages()[0].error, undefined);
  });
});

test('an unreachable endpoint is recorded as an error', async () => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise((resolve) => closed.close(resolve));
  const rec = recorder();
  const judge = new Judge({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: 'k', model: MODEL, batchSize: 1, maxRetries: 0 }, rec.host);
  judge.enqueue(makeStep(1));
  await judge.drain();
  judge.dispose();
  assert.equal(rec.labels().length, 0);
  assert.match(rec.usages()[0].error ?? '', /cannot reach the judge endpoint/);
});

test('a reply without readable verdicts is recorded as an error', async () => {
  const script: ScriptedReply[] = [
    { content: 'All of these steps look fine to me.' },
    { toolCall: { name: 'record_verdicts', arguments: '{"verdicts": oops' } },
    { toolCall: { name: 'record_verdicts', arguments: { notes: 'fine' } } },
  ];
  await withJudge(script, { batchSize: 1 }, async (judge, server, rec) => {
    for (let step = 1; step <= 3; step++) judge.enqueue(makeStep(step));
    await judge.drain();
    assert.equal(server.requests.length, 3);
    assert.equal(rec.labels().length, 0);
    const usages = rec.usages();
    assert.deepEqual(
      usages.map((usage) => usage.steps),
      [[1], [2], [3]],
    );
    for (const usage of usages) {
      assert.match(usage.error ?? '', /could not be parsed/);
      assert.ok(usage.usage && usage.usage.completionTokens === 20, 'the cost of a failed parse is still counted');
    }
    assert.match(usages[0].error ?? '', /look fine to me/);
  });
});

test('verdicts for steps outside the batch or with unknown values are ignored and logged', async () => {
  const script = [
    verdictCall([
      { step: 99, decision: 'bad', execution: 'bad', reason: 'not in the batch' },
      { step: 1, decision: 'excellent', execution: 'good', reason: 'unknown value' },
      { step: 2, decision: 'good', execution: 'bad', reason: 'kept' },
      { step: 2, decision: 'bad', execution: 'bad', reason: 'second verdict' },
    ]),
  ];
  await withJudge(script, { batchSize: 3 }, async (judge, _server, rec) => {
    for (let step = 1; step <= 3; step++) judge.enqueue(makeStep(step));
    await judge.drain();
    assert.deepEqual(
      rec.labels().map(({ step, axis, label, reason }) => [step, axis, label, reason]),
      [
        [2, 'decision', 'good', 'kept'],
        [2, 'execution', 'bad', 'kept'],
      ],
    );
    assert.equal(rec.usages().length, 1);
    assert.equal(rec.usages()[0].error, undefined);
    const logs = rec.logs.join('\n');
    assert.match(logs, /step 99, which was not in the batch/);
    assert.match(logs, /verdict for step 1: .*excellent/);
    assert.match(logs, /second verdict for step 2/);
    assert.match(logs, /steps 1, 3; they stay unjudged/);
  });
});

test('nothing is recorded while the request is in flight; drain waits for it', async () => {
  const slowJudgeAll: ScriptedReply = (request) => judgeAllReply(request, 1000);
  await withJudge([slowJudgeAll], { batchSize: 2 }, async (judge, server, rec) => {
    const results = [judge.enqueue(makeStep(1)), judge.enqueue(makeStep(2))];
    assert.deepEqual(results, [undefined, undefined], 'enqueue returns nothing to wait for');
    // The full batch was sent without drain() being called …
    await until(() => server.requests.length === 1, 'the batch to reach the server');
    // … and its reply is held back by the server: nothing is recorded yet.
    assert.equal(rec.events.length, 0);
    let drained = false;
    const drain = judge.drain().then(() => (drained = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(drained, false, 'drain waits for the request in flight');
    assert.equal(rec.events.length, 0);
    await drain;
    assert.equal(rec.labels().length, 4);
    assert.equal(rec.usages().length, 1);
    assert.equal(server.requests.length, 1);
  });
});

test('redact is applied to everything sent, and to the reasons recorded', async () => {
  const secret = 'hunter2-SECRET-token';
  const redact = (text: string) => text.split(secret).join('[REDACTED]');
  const step = makeStep(1, {
    assistant: { content: `I will use ${secret} to log in.`, toolCalls: [] },
    action: { id: 'call_1', name: 'run_command', arguments: JSON.stringify({ command: `curl -H 'token: ${secret}' http://x` }) },
    observation: `Authenticated with ${secret}`,
    grounding: { before: 'a', after: 'b', files: [{ path: '.env', status: 'added', additions: 1, deletions: 0, binary: false }], patch: `+TOKEN=${secret}\n` },
  });
  const reply = verdictCall([{ step: 1, decision: 'bad', execution: 'good', reason: `It leaked ${secret}.` }]);
  await withJudge(
    [reply],
    { batchSize: 1 },
    async (judge, server, rec) => {
      judge.enqueue(step);
      await judge.drain();
      const sent = JSON.stringify(server.requests[0].body);
      assert.ok(!sent.includes(secret), 'the secret is never sent');
      assert.ok(sent.split('[REDACTED]').length - 1 >= 5, 'task, thought, arguments, observation and patch are all redacted');
      assert.equal(rec.labels().length, 2);
      for (const label of rec.labels()) assert.equal(label.reason, 'It leaked [REDACTED].');
    },
    { task: `Deploy with token ${secret}`, redact },
  );
});

test('a partial batch is sent after idleFlushMs without new steps', async () => {
  await withJudge([], { batchSize: 8, idleFlushMs: 50 }, async (judge, server, rec) => {
    judge.enqueue(makeStep(1));
    judge.enqueue(makeStep(2));
    await until(() => rec.usages().length === 1, 'the idle flush');
    assert.deepEqual(server.requests.map(stepsShown), [[1, 2]]);
    assert.equal(rec.labels().length, 4);
    await judge.drain();
    assert.equal(server.requests.length, 1);
  });
});

test('dispose clears the idle timer; drain leaves no timer behind', async () => {
  await withJudge([], { batchSize: 8, idleFlushMs: 30 }, async (judge, server) => {
    judge.enqueue(makeStep(1));
    judge.dispose();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(server.requests.length, 0, 'no flush after dispose');
    await judge.drain();
    assert.equal(server.requests.length, 1, 'drain still sends what was queued');
  });
  const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
  await withJudge([], { batchSize: 8, idleFlushMs: 60_000 }, async (judge, server) => {
    const before = timers();
    judge.enqueue(makeStep(1));
    assert.equal(timers(), before + 1, 'a queued partial batch arms the idle timer');
    await judge.drain();
    assert.equal(server.requests.length, 1);
    assert.equal(timers(), before, 'no timer is left pending after drain');
  });
});

test('a failing record is logged, never thrown, and the other events are still recorded', async () => {
  const events: string[] = [];
  let calls = 0;
  const record = async (event: LabelEvent | JudgeUsageEvent) => {
    if (calls++ === 0) throw new Error('disk full');
    events.push(event.type);
  };
  await withJudge(
    [],
    { batchSize: 1 },
    async (judge, _server, rec) => {
      judge.enqueue(makeStep(1));
      await judge.drain();
      assert.deepEqual(events, ['label', 'judge_usage']);
      assert.ok(
        rec.logs.some((line) => /could not record the decision label of step 1: disk full/.test(line)),
        rec.logs.join('\n'),
      );
    },
    { record },
  );
});

test('validateJudgeOptions names the setting to fix', () => {
  const good = { baseUrl: 'http://localhost:8000/v1', apiKey: 'k', model: 'm' };
  assert.equal(validateJudgeOptions(good), undefined);
  assert.equal(validateJudgeOptions({ ...good, baseUrl: 'https://api.openai.com/v1' }), undefined);
  assert.match(validateJudgeOptions({ ...good, baseUrl: '' }) ?? '', /baseUrl/);
  assert.match(validateJudgeOptions({ ...good, baseUrl: undefined }) ?? '', /baseUrl/);
  assert.match(validateJudgeOptions({ ...good, baseUrl: 'ftp://host/v1' }) ?? '', /baseUrl.*http/);
  assert.match(validateJudgeOptions({ ...good, baseUrl: 'localhost:8000' }) ?? '', /baseUrl/);
  assert.match(validateJudgeOptions({ ...good, model: '' }) ?? '', /model/);
  assert.match(validateJudgeOptions({ ...good, model: '   ' }) ?? '', /model/);
  assert.match(validateJudgeOptions({ ...good, batchSize: 0 }) ?? '', /batchSize/);
  assert.match(validateJudgeOptions({ ...good, timeoutMs: -1 }) ?? '', /timeoutMs/);
  assert.match(validateJudgeOptions({ ...good, maxRetries: 1.5 }) ?? '', /maxRetries/);
  assert.match(validateJudgeOptions({ ...good, idleFlushMs: Number.NaN }) ?? '', /idleFlushMs/);
});

test("the judge is told when a step's diff holds files the user saved while the action ran", async () => {
  await withJudge([], { batchSize: 2 }, async (judge, server) => {
    const files = [{ path: 'x.ts', status: 'modified' as const, additions: 1, deletions: 0, binary: false }];
    judge.enqueue(makeStep(1, { grounding: { before: 'a', after: 'b', files, patch: 'diff --git a/x.ts b/x.ts\n', mixed: { files: ['x.ts'] } } }));
    judge.enqueue(makeStep(2, { grounding: { before: 'b', after: 'c', files, patch: 'diff --git a/x.ts b/x.ts\n' } }));
    await judge.drain();
    const text = userText(server.requests[0]);
    const [first, second] = text.split(/^### Step 2$/m);
    assert.match(first, /Mixed: the user saved x\.ts in an editor while this action ran/);
    assert.doesNotMatch(second, /Mixed/);
  });
});
