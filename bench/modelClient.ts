/**
 * Reference for the engine benchmark's memory figures: the same number of streamed requests to
 * the same zero-latency server through the model client alone, with no engine around it. What
 * resident memory this gains is the HTTP client's own, not the run's.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ModelClient } from '../src/core/agent/modelClient';
import { TOOL_DEFINITIONS } from '../src/core/agent/tools';

const requests = Number(process.argv[process.argv.indexOf('--requests') + 1]) || 5000;
const gc = (globalThis as { gc?: () => void }).gc;
const rss = () => {
  gc?.();
  return `${(process.memoryUsage().rss / 1024 / 1024).toFixed(1)} MB`;
};

async function main(): Promise<void> {
  const child = spawn(process.execPath, [path.join(__dirname, 'modelServer.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const baseUrl = await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
    const client = new ModelClient({ baseUrl: baseUrl.trim(), apiKey: 'bench', model: 'bench-model' });
    // About the size of a half-full 32k-token prompt.
    const messages = Array.from({ length: 60 }, (_, i) => ({ role: 'user' as const, content: `message ${i} `.padEnd(1000, 'x') }));
    const series: string[] = [];
    for (let i = 1; i <= requests; i++) {
      await client.complete({ messages, tools: TOOL_DEFINITIONS });
      if (i === 100 || i % 1000 === 0) series.push(`${i}: ${rss()}`);
    }
    console.log(`model client alone, ${requests} streamed requests`);
    console.log(`  ${'resident memory by request'.padEnd(56)} ${series.join(', ')}`);
  } finally {
    child.kill('SIGTERM');
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
