import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContextManager, defaultContextBudget, estimateTokens } from '../../src/core/agent/context';
import { budgetNote } from '../../src/core/agent/prompt';

function filled(budget: number): ContextManager {
  const context = new ContextManager({ role: 'system', content: 'system prompt' }, { role: 'user', content: 'the task' }, budget);
  for (let step = 1; step <= 10; step++) {
    context.add(step, { role: 'assistant', content: null, tool_calls: [{ id: `c${step}`, type: 'function', function: { name: 'read_file', arguments: '{"path":"a"}' } }] });
    context.add(step, { role: 'tool', tool_call_id: `c${step}`, content: 'x'.repeat(400) });
  }
  return context;
}

test('token estimates grow with content and tool calls', () => {
  assert.equal(estimateTokens({ role: 'user', content: 'abcd'.repeat(25) }), 29);
  assert.ok(estimateTokens({ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] }) > 4);
});

test('compaction keeps a recent tail of whole steps and never splits a call from its result', () => {
  const context = filled(600);
  assert.equal(context.needsCompaction(), true);
  const plan = context.planCompaction()!;
  assert.ok(plan.keptFromStep > 1 && plan.keptFromStep <= 10);
  assert.equal(plan.summarized[plan.summarized.length - 1].step, plan.keptFromStep - 1);
  context.noteHint({ step: 3, kind: 'strategy', text: 'check the tests first' });
  const text = context.composeSummary('## Task state\nhalf done', plan.keptFromStep - 1);
  const result = context.applyCompaction(text, plan.keptFromStep);
  assert.ok(result.tokensAfter < result.tokensBefore);
  const prompt = context.prompt();
  assert.equal(prompt[2].content, text);
  assert.match(text, /- \[step 3, strategy\] check the tests first/);
  // The first kept message is an assistant turn, whose tool result follows it.
  assert.equal(prompt[3].role, 'assistant');
  assert.equal(prompt[4].role, 'tool');
});

test('calibration follows the token counts the endpoint reports', () => {
  const context = filled(100_000);
  const raw = context.rawPromptTokens();
  context.calibrate(raw * 2, raw);
  assert.ok(context.estimatedPromptTokens() > raw * 1.2);
  context.calibrate(0, raw); // ignored
});

test('budgets come from the window (a cautious one when unknown) and leave room for a set output limit; the note from the step count and clock', () => {
  assert.equal(defaultContextBudget(), 26_214);
  assert.equal(defaultContextBudget(128_000), 102_400);
  assert.equal(defaultContextBudget(8192, 4096), 3840);
  assert.equal(defaultContextBudget(1_047_576, 32_768), 838_060);
  assert.equal(budgetNote({ step: 12, maxSteps: 50, startedAt: 0, now: 3_900_000 }), 'Budget: this is step 12 of at most 50 (38 left after this one); 65 min elapsed since the run started.');
});
