/**
 * File tools benchmark: the per-call cost of reading and writing a small file through the
 * fd-relative walk (workspaceFs.ts) against the check-then-open it replaced (the real path
 * resolved, then the file opened by name with O_NOFOLLOW on the last component), for a file at
 * the workspace root and one 5 folders deep. The two are run in alternation, in rounds, so that a
 * busy machine weighs on both alike. Prints figures; asserts nothing. `--calls N` (default 2000).
 */
import { constants as C, mkdirSync, mkdtempSync, promises as fs, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { WorkspaceFs } from '../src/core/agent/workspaceFs';

const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const calls = Number(arg('--calls') ?? 2000);
const ROUNDS = 10;

const OLD_WRITE_FLAGS = C.O_WRONLY | C.O_CREAT | C.O_TRUNC | (C.O_NOFOLLOW ?? 0);

/** The operations as the file tools did them before: resolve by real path, then open by name. */
function oldWay(files: WorkspaceFs) {
  return {
    read: async (userPath: string) => fs.readFile(await files.resolve(userPath, 'read'), 'utf8'),
    write: async (userPath: string, content: string) => {
      const real = await files.resolve(userPath, 'write');
      await fs.mkdir(path.dirname(real), { recursive: true });
      const handle = await fs.open(real, OLD_WRITE_FLAGS, 0o666);
      try {
        await handle.writeFile(content);
      } finally {
        await handle.close();
      }
    },
  };
}

function newWay(files: WorkspaceFs) {
  return {
    read: async (userPath: string) => (await files.readFile(userPath)).toString('utf8'),
    write: (userPath: string, content: string) => files.writeFile(userPath, content),
  };
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;

async function main(): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'apollo-bench-files-'));
  try {
    const workspace = path.join(root, 'ws');
    const dataset = path.join(workspace, '.apollo', 'dataset');
    mkdirSync(path.join(workspace, 'a', 'b', 'c', 'd', 'e'), { recursive: true });
    mkdirSync(dataset, { recursive: true });
    const content = 'export const value = 1;\n'.repeat(20); // 480 bytes
    for (const file of ['small.ts', 'a/b/c/d/e/small.ts']) writeFileSync(path.join(workspace, file), content);
    const files = new WorkspaceFs(workspace, [dataset]);
    if (!files.fdRelative) console.log('note: fd-relative paths are not available here; "new" is the fallback');
    const ways = { old: oldWay(files), new: newWay(files) };
    const cases = [
      { name: 'read, root', path: 'small.ts', op: 'read' as const },
      { name: 'read, 5 folders deep', path: 'a/b/c/d/e/small.ts', op: 'read' as const },
      { name: 'write, root', path: 'small.ts', op: 'write' as const },
      { name: 'write, 5 folders deep', path: 'a/b/c/d/e/small.ts', op: 'write' as const },
    ];
    const samples = new Map<string, number[]>();
    const perRound = Math.ceil(calls / ROUNDS);
    for (let round = 0; round <= ROUNDS; round++) {
      for (const c of cases) {
        for (const way of ['old', 'new'] as const) {
          const impl = ways[way];
          const key = `${c.name}|${way}`;
          const times = samples.get(key) ?? [];
          for (let i = 0; i < perRound; i++) {
            const start = performance.now();
            if (c.op === 'read') await impl.read(c.path);
            else await impl.write(c.path, content);
            // Round 0 warms up and is not counted.
            if (round > 0) times.push(performance.now() - start);
          }
          samples.set(key, times);
        }
      }
    }
    console.log(`per call, ${calls} calls each, p50 / p99 (old: resolve by real path, then open by name; new: fd-relative walk)`);
    console.log('| per call | old, p50 / p99 | new, p50 / p99 |');
    console.log('|---|---|---|');
    for (const c of cases) {
      const old = samples.get(`${c.name}|old`)!;
      const fresh = samples.get(`${c.name}|new`)!;
      console.log(`| ${c.name} | ${us(percentile(old, 0.5))} / ${us(percentile(old, 0.99))} | ${us(percentile(fresh, 0.5))} / ${us(percentile(fresh, 0.99))} |`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

void main();
