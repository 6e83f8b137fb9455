/** Generated workspaces for the benchmarks. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A source-like tree: folders of 50 files, a few hundred bytes to a few KB each. Returns the files' relative paths. */
export function generate(root: string, files: number): string[] {
  const made: string[] = [];
  for (let i = 0; i < files; i++) {
    const dir = path.join(`pkg${Math.floor(i / 2500)}`, `mod${Math.floor(i / 50) % 50}`);
    if (i % 50 === 0) mkdirSync(path.join(root, dir), { recursive: true });
    const file = path.join(dir, `file${i}.ts`);
    writeFileSync(path.join(root, file), `// file ${i}\n` + `export const value${i} = ${i};\n`.repeat(10 + (i % 60)));
    made.push(file);
  }
  return made;
}
