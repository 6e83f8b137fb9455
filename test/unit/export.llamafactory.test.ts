/**
 * The `llamafactory` export read the way LLaMA-Factory reads it. `convert` and `supervisedTurns`
 * re-implement, in JS, the rules of its source (hiyouga/LLaMA-Factory at commit ff6d4d12):
 * - src/llamafactory/data/converter.py, SharegptDatasetConverter.__call__ (lines 135-227): tags
 *   mapped to roles (137-143); odd places take user/observation, even places assistant/function
 *   (144-146, 160-164: a tag out of place breaks the example, "Invalid role tag"); a leading
 *   system turn becomes the system prompt (148-156); each turn keeps only role and content
 *   (166-171); an odd count of turns breaks the example (173-177); a broken example becomes an
 *   empty prompt and response and is dropped (179-181); otherwise the last turn is the response
 *   (214-216).
 * - src/llamafactory/data/processor/supervised.py, _encode_data_example (lines 66-100): the turns
 *   are encoded as (prompt, response) pairs; with mask_history the pairs are reversed (69-70) and
 *   every pair but the first of the reversed list, i.e. all but the last turn, gets IGNORE_INDEX
 *   labels (90-91).
 * - src/llamafactory/data/formatter.py, FunctionFormatter.apply (lines 97-110): a function turn's
 *   content is parsed as JSON, one object or a list of them, each with `name` and `arguments`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatasetStore } from '../../src/core/dataset/store';
import { exportDataset } from '../../src/core/export/exportDataset';
import { hintMessage, NO_TOOL_CALL_NUDGE } from '../../src/core/agent/prompt';
import { compactedRun, SUMMARY_BEFORE_4, SUMMARY_BEFORE_7, writeRun } from '../fixtures/trajectories';

interface Turn {
  from: string;
  value: string;
}
interface Message {
  role: string;
  content: string;
}

const TAGS = { role_tag: 'from', content_tag: 'value', user_tag: 'human', assistant_tag: 'gpt', observation_tag: 'observation', function_tag: 'function_call', system_tag: 'system' };

/** SharegptDatasetConverter: undefined when the example is dropped. */
function convert(example: { conversations: Turn[]; system?: string; tools?: string }, tags = TAGS): { prompt: Message[]; response: Message[]; system: string; tools: string } | undefined {
  const mapping: Record<string, string> = {
    [tags.user_tag]: 'user',
    [tags.assistant_tag]: 'assistant',
    [tags.observation_tag]: 'observation',
    [tags.function_tag]: 'function',
    [tags.system_tag]: 'system',
  };
  const odd = [tags.user_tag, tags.observation_tag];
  const even = [tags.assistant_tag, tags.function_tag];
  const accept = [odd, even];
  let messages = example.conversations as unknown as Record<string, string>[];
  let system: string;
  if (tags.system_tag && messages.length !== 0 && messages[0][tags.role_tag] === tags.system_tag) {
    system = messages[0][tags.content_tag];
    messages = messages.slice(1);
  } else system = example.system ?? '';
  const aligned: Message[] = [];
  let broken = false;
  for (const [turnIdx, message] of messages.entries()) {
    if (!accept[turnIdx % 2].includes(message[tags.role_tag])) {
      broken = true;
      break;
    }
    aligned.push({ role: mapping[message[tags.role_tag]], content: message[tags.content_tag] });
  }
  if (aligned.length % 2 !== 0) broken = true;
  if (broken) return undefined;
  return { prompt: aligned.slice(0, -1), response: aligned.slice(-1), system, tools: example.tools ?? '' };
}

/** _encode_data_example's labels, by turn: the responses that are supervised. */
function supervisedTurns(messages: Message[], maskHistory: boolean): Message[] {
  let pairs: [Message, Message][] = [];
  for (let i = 0; i < messages.length; i += 2) pairs.push([messages[i], messages[i + 1]]);
  if (maskHistory) pairs = pairs.reverse();
  return pairs.filter((_pair, turnIdx) => !(maskHistory && turnIdx !== 0)).map(([, target]) => target);
}

/** FunctionFormatter's parse of a function turn. */
function parseFunctions(content: string): { name: string; arguments: string }[] {
  let calls = JSON.parse(content);
  if (!Array.isArray(calls)) calls = [calls];
  return calls.map((call: { name: string; arguments: unknown }) => {
    assert.equal(typeof call.name, 'string');
    assert.ok(call.arguments !== null && typeof call.arguments === 'object' && !Array.isArray(call.arguments), 'arguments are an object');
    return { name: call.name, arguments: JSON.stringify(call.arguments) };
  });
}

const S4 = SUMMARY_BEFORE_4;
const S7 = SUMMARY_BEFORE_7;
const hintText = (text: string) => hintMessage('strategy', text);

let dir: string;
let store: DatasetStore;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-llamafactory-'));
  store = new DatasetStore(dir);
  const events = compactedRun('run-lf');
  await writeRun(store, 'run-lf', events);
});

after(() => rmSync(dir, { recursive: true, force: true }));

const readJsonl = (file: string): any[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));

test('the re-implemented converter drops what LLaMA-Factory drops', () => {
  assert.equal(
    convert({
      conversations: [
        { from: 'human', value: 'a' },
        { from: 'human', value: 'b' },
      ],
    }),
    undefined,
    'two user turns in a row',
  );
  assert.equal(
    convert({
      conversations: [
        { from: 'human', value: 'a' },
        { from: 'gpt', value: 'b' },
        { from: 'observation', value: 'c' },
      ],
    }),
    undefined,
    'an odd count',
  );
  assert.deepEqual(
    supervisedTurns(
      [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
        { role: 'user', content: 'c' },
        { role: 'assistant', content: 'd' },
      ],
      true,
    ),
    [{ role: 'assistant', content: 'd' }],
  );
});

test('llamafactory: dataset_info.json registers the rows; every row survives the converter and, with mask_history, supervises exactly its trained turn', async () => {
  const folder = path.join(dir, 'lf');
  const result = await exportDataset(store, { format: 'llamafactory', out: folder });
  assert.deepEqual(result.skipped, []);
  const info = JSON.parse(readFileSync(path.join(folder, 'dataset_info.json'), 'utf8'));
  assert.deepEqual(info.apollo.columns, { messages: 'conversations', system: 'system', tools: 'tools' });
  assert.equal(info.apollo.formatting, 'sharegpt');
  assert.equal(info.apollo.file_name, 'data/train.jsonl');
  const rows = readJsonl(path.join(folder, info.apollo.file_name));
  // One row per unmasked step (step 6 is labelled bad): 1, 2, 3, 4, 5, 7.
  assert.equal(rows.length, 6);
  const supervised: Message[] = [];
  for (const row of rows) {
    const converted = convert(row, { ...TAGS, ...info.apollo.tags });
    assert.ok(converted, `row ${row.id} is dropped by the converter: ${JSON.stringify(row.conversations.map((turn: Turn) => turn.from))}`);
    assert.equal(converted.system, 'You are a careful software engineer.');
    assert.equal(typeof row.tools, 'string');
    assert.ok(JSON.parse(row.tools).every((tool: { name: string; parameters: { properties: object } }) => tool.name && tool.parameters.properties));
    const turns = supervisedTurns([...converted.prompt, ...converted.response], true);
    assert.equal(turns.length, 1);
    assert.deepEqual(turns[0], converted.response[0], 'the supervised turn is the last one');
    for (const message of [...converted.prompt, ...converted.response]) if (message.role === 'function') parseFunctions(message.content);
    supervised.push(turns[0]);
  }
  const described = supervised.map((message) =>
    message.role === 'function'
      ? parseFunctions(message.content)
          .map((call) => call.name)
          .join('+')
      : `text:${message.content}`,
  );
  assert.deepEqual(described, ['read_file', 'list_dir', 'read_file', 'edit_file+list_dir', 'text:I think it is done.', 'finish']);

  // Hints keep the parity: the first joins the task, one after a tool result joins that observation.
  const [row1, , row3, row4, row5, row7] = rows.map((row) => row.conversations as Turn[]);
  assert.deepEqual(row1, [
    { from: 'human', value: `Fix the failing test\n\n${hintText('Start with the README.')}` },
    { from: 'function_call', value: JSON.stringify({ name: 'read_file', arguments: { path: 'README.md' } }) },
  ]);
  assert.deepEqual(
    row3.map((turn) => turn.from),
    ['human', 'function_call', 'observation', 'function_call', 'observation', 'function_call'],
  );
  assert.equal(row3[4].value, `result of step 2\n\n${hintText('Look at the tests.')}`);
  // After the compaction: task, summary and the hint of the carried-over step 3 are one human turn.
  assert.equal(row4[0].value, `Fix the failing test\n\n${S4}\n\n${hintText('Look at the tests.')}`);
  assert.deepEqual(
    row4.map((turn) => turn.from),
    ['human', 'function_call', 'observation', 'function_call'],
  );
  assert.equal(row4[2].value, `result of step 3\n\n${hintText('The fix is in src/a.js.')}`);
  assert.deepEqual(JSON.parse(row4[3].value), [
    { name: 'edit_file', arguments: { path: 'src/a.js', old: 'x', new: 'y' } },
    { name: 'list_dir', arguments: {} },
  ]);
  assert.deepEqual(
    row5.slice(-2).map((turn) => turn.from),
    ['observation', 'gpt'],
  );
  assert.equal(row5[row5.length - 2].value, 'result of step 4\n\nNot executed.');
  assert.equal(row7[0].value, `Fix the failing test\n\n${S7}`);
  assert.deepEqual(
    row7.map((turn) => turn.from),
    ['human', 'function_call', 'observation', 'function_call'],
  );
  assert.doesNotMatch(JSON.stringify(rows), new RegExp(NO_TOOL_CALL_NUDGE.slice(0, 20)), 'the nudge after step 5 only follows it; no row goes past its trained turn');

  const readme = readFileSync(path.join(folder, 'README.md'), 'utf8');
  assert.match(readme, /mask_history: true/);
  assert.match(readme, /dataset: apollo/);
  assert.match(readme, /cutoff_len/);
});
