import test from 'node:test';
import assert from 'node:assert/strict';
import { describeHintInput, HINT_DEFAULTS, hintOptions, parseHintInput } from '../../src/core/session/hintInput';

test('a hint without a prefix is a knowledge hint for the next step, trimmed', () => {
  assert.deepEqual(parseHintInput('  The config lives in etc/  '), { text: 'The config lives in etc/', kind: 'knowledge', urgency: 'next' });
});

test('a kind prefix sets the kind, in any case, with or without a space after the colon', () => {
  assert.deepEqual(parseHintInput('strategy: read the parser first'), { text: 'read the parser first', kind: 'strategy', urgency: 'next' });
  assert.deepEqual(parseHintInput('Correction:you edited the wrong file'), { text: 'you edited the wrong file', kind: 'correction', urgency: 'next' });
  assert.deepEqual(parseHintInput('KNOWLEDGE : the port is 8080'), { text: 'the port is 8080', kind: 'knowledge', urgency: 'next' });
});

test('"!" or "now:" interrupts now; prefixes combine in any order, and the last of a sort counts', () => {
  assert.deepEqual(parseHintInput('! stop editing the tests'), { text: 'stop editing the tests', kind: 'knowledge', urgency: 'now' });
  assert.deepEqual(parseHintInput('!correction: stop editing the tests'), { text: 'stop editing the tests', kind: 'correction', urgency: 'now' });
  assert.deepEqual(parseHintInput('strategy: now: bisect'), { text: 'bisect', kind: 'strategy', urgency: 'now' });
  assert.deepEqual(parseHintInput('now: next: strategy: correction: x'), { text: 'x', kind: 'correction', urgency: 'next' });
});

test('words that are not prefixes stay in the hint, and a prefix later in the text is text', () => {
  assert.deepEqual(parseHintInput('Note: strategy: is a word here'), { text: 'Note: strategy: is a word here', kind: 'knowledge', urgency: 'next' });
  assert.deepEqual(parseHintInput('strategic: not a prefix'), { text: 'strategic: not a prefix', kind: 'knowledge', urgency: 'next' });
  assert.deepEqual(parseHintInput('use a!b as the key'), { text: 'use a!b as the key', kind: 'knowledge', urgency: 'next' });
});

test('chosen defaults apply unless a prefix overrides them', () => {
  assert.deepEqual(parseHintInput('go on', { kind: 'correction', urgency: 'now' }), { text: 'go on', kind: 'correction', urgency: 'now' });
  assert.deepEqual(parseHintInput('next: strategy: go on', { kind: 'correction', urgency: 'now' }), { text: 'go on', kind: 'strategy', urgency: 'next' });
});

test('only prefixes is no hint: the description says what is missing', () => {
  const parsed = parseHintInput('strategy: ! ');
  assert.equal(parsed.text, '');
  assert.deepEqual(describeHintInput(parsed), { ok: false, message: 'Type the hint (after any prefix).' });
  assert.match(describeHintInput(parseHintInput('! x')).message, /strategy|knowledge hint .*delivered now/);
  assert.match(describeHintInput({ text: 'x', ...HINT_DEFAULTS }).message, /knowledge hint .*next step/);
});

test('the options offer every kind and urgency once, the current choice first', () => {
  const options = hintOptions({ kind: 'strategy', urgency: 'now' });
  assert.equal(options.length, 6);
  assert.deepEqual(options[0], { label: 'strategy, now', description: 'how to approach the task; interrupts the model call in flight', hint: { kind: 'strategy', urgency: 'now' } });
  assert.deepEqual(new Set(options.map((option) => option.label)).size, 6);
  assert.deepEqual(hintOptions(HINT_DEFAULTS)[0].hint, HINT_DEFAULTS);
});
