/**
 * The shadow store: a git directory of Apollo's own, with its own index, that snapshots the
 * workspace before and after every action. The user's `.git` is never read or written; the
 * workspace does not even have to be a git repository.
 */
import { promises as fs, realpathSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { simpleGit, SimpleGit } from 'simple-git';
import type { FileChange, FileChangeStatus, Grounding } from '../dataset/events';
import { gitEnvironment } from './gitEnvironment';

const SNAPSHOT_REF = 'refs/apollo/snapshots';
const DEFAULT_MAX_PATCH_BYTES = 256 * 1024;
const IDENTITY = { name: 'Apollo', email: 'apollo@localhost' };

/** One store per workspace inside the dataset folder, so all runs of a workspace share objects. */
export function shadowStoreDir(datasetRoot: string, workspace: string): string {
  let real = path.resolve(workspace);
  try {
    real = realpathSync(real);
  } catch {
    // A workspace that does not exist yet still gets a stable key.
  }
  const key = createHash('sha1').update(real).digest('hex').slice(0, 16);
  return path.join(datasetRoot, 'shadow', `${key}.git`);
}

function storeEnvironment(indexFile: string): Record<string, string> {
  return gitEnvironment({
    GIT_INDEX_FILE: indexFile,
    GIT_AUTHOR_NAME: IDENTITY.name,
    GIT_AUTHOR_EMAIL: IDENTITY.email,
    GIT_COMMITTER_NAME: IDENTITY.name,
    GIT_COMMITTER_EMAIL: IDENTITY.email,
  });
}

/** Snapshots of one store are taken one at a time: git's index lock allows no more. */
const storeLocks = new Map<string, Promise<unknown>>();

function withStoreLock<T>(storeDir: string, work: () => Promise<T>): Promise<T> {
  const previous = storeLocks.get(storeDir) ?? Promise.resolve();
  const next = previous.then(work, work);
  storeLocks.set(storeDir, next.catch(() => undefined));
  return next;
}

function statusFromLetter(letter: string): FileChangeStatus {
  switch (letter[0]) {
    case 'A':
      return 'added';
    case 'D':
      return 'deleted';
    case 'R':
      return 'renamed';
    case 'T':
      return 'typechange';
    default:
      return 'modified';
  }
}

export class ShadowStore {
  readonly workspace: string;
  readonly storeDir: string;
  private readonly exclude: string[];
  private readonly git: SimpleGit;
  /** Reads objects only; GIT_DIR points at the store because `git show` takes no --git-dir after it. */
  private readonly reader: SimpleGit;
  private lastSnapshot: { commit: string; tree: string } | undefined;

  constructor(options: { workspace: string; storeDir: string; exclude?: string[] }) {
    this.workspace = path.resolve(options.workspace);
    this.storeDir = path.resolve(options.storeDir);
    this.exclude = options.exclude ?? [];
    this.git = simpleGit({ baseDir: this.workspace, maxConcurrentProcesses: 4, trimmed: false }).env(
      storeEnvironment(path.join(this.storeDir, 'index')),
    );
    this.reader = simpleGit({ baseDir: this.workspace }).env({
      ...storeEnvironment(path.join(this.storeDir, 'index')),
      GIT_DIR: this.storeDir,
    });
  }

  /** Runs git against the shadow store with the workspace as its work tree. */
  private raw(args: string[]): Promise<string> {
    return this.git.raw([
      `--git-dir=${this.storeDir}`,
      `--work-tree=${this.workspace}`,
      '-c',
      'core.autocrlf=false',
      '-c',
      'core.safecrlf=false',
      '-c',
      'advice.addEmbeddedRepo=false',
      ...args,
    ]);
  }

  async init(): Promise<void> {
    await fs.mkdir(this.storeDir, { recursive: true });
    const isNew = !(await fs
      .access(path.join(this.storeDir, 'HEAD'))
      .then(() => true)
      .catch(() => false));
    if (isNew) {
      await this.git.raw(['init', '--bare', '--quiet', this.storeDir]);
      await this.git.raw([`--git-dir=${this.storeDir}`, 'config', 'gc.auto', '0']);
      await this.git.raw([`--git-dir=${this.storeDir}`, 'config', 'core.bare', 'false']);
    }
    const patterns = ['/.apollo/', ...this.exclude.map((entry) => `/${entry.replace(/^\/+|\/+$/g, '')}/`)];
    await fs.mkdir(path.join(this.storeDir, 'info'), { recursive: true });
    await fs.writeFile(path.join(this.storeDir, 'info', 'exclude'), [...new Set(patterns)].join('\n') + '\n');
    const head = (await this.raw(['rev-parse', '--verify', '--quiet', SNAPSHOT_REF]).catch(() => '')).trim();
    if (head) {
      const tree = (await this.raw(['rev-parse', `${head}^{tree}`])).trim();
      this.lastSnapshot = { commit: head, tree };
    }
  }

  /** Records the work tree as it is now and returns the snapshot's commit id. */
  snapshot(): Promise<string> {
    return withStoreLock(this.storeDir, async () => {
      await this.raw(['add', '--all', '--', '.']);
      const tree = (await this.raw(['write-tree'])).trim();
      // An unchanged tree is the same snapshot: no new commit, and its diff is empty.
      if (this.lastSnapshot?.tree === tree) return this.lastSnapshot.commit;
      const parent = this.lastSnapshot ? ['-p', this.lastSnapshot.commit] : [];
      const commit = (await this.raw(['commit-tree', tree, ...parent, '-m', 'snapshot'])).trim();
      await this.raw(['update-ref', SNAPSHOT_REF, commit]);
      this.lastSnapshot = { commit, tree };
      return commit;
    });
  }

  /** What changed between two snapshots: the files with line counts, and the unified diff. */
  async ground(before: string, after: string, options: { maxPatchBytes?: number } = {}): Promise<Grounding> {
    if (before === after) return { before, after, files: [], patch: '' };
    const [numstat, nameStatus, fullPatch] = await Promise.all([
      this.raw(['diff-tree', '-r', '-M', '--numstat', '-z', before, after]),
      this.raw(['diff-tree', '-r', '-M', '--name-status', '-z', before, after]),
      this.raw(['diff-tree', '-r', '-p', '-M', '--no-color', '--no-ext-diff', before, after]),
    ]);
    const files = this.parseChanges(nameStatus, numstat);
    const maxPatchBytes = options.maxPatchBytes ?? DEFAULT_MAX_PATCH_BYTES;
    const truncated = Buffer.byteLength(fullPatch) > maxPatchBytes;
    const patch = truncated ? Buffer.from(fullPatch).subarray(0, maxPatchBytes).toString('utf8') : fullPatch;
    return { before, after, files, patch, ...(truncated ? { patchTruncated: true } : {}) };
  }

  private parseChanges(nameStatus: string, numstat: string): FileChange[] {
    const counts = new Map<string, { additions: number; deletions: number; binary: boolean }>();
    const numFields = numstat.split('\0');
    for (let i = 0; i < numFields.length; i++) {
      const field = numFields[i];
      if (!field) continue;
      const [added, deleted, name] = field.split('\t');
      if (added === undefined || deleted === undefined) continue;
      let file = name;
      // A rename's numstat entry is "a\td\t" followed by the old and the new path.
      if (file === '') {
        file = numFields[i + 2];
        i += 2;
      }
      const binary = added === '-' && deleted === '-';
      counts.set(file, { additions: binary ? 0 : Number(added), deletions: binary ? 0 : Number(deleted), binary });
    }
    const files: FileChange[] = [];
    const fields = nameStatus.split('\0');
    for (let i = 0; i < fields.length; i++) {
      const letter = fields[i];
      if (!letter) continue;
      const status = statusFromLetter(letter);
      let change: FileChange;
      if (status === 'renamed' || letter.startsWith('C')) {
        const oldPath = fields[++i];
        const newPath = fields[++i];
        change = { path: newPath, oldPath, status, additions: 0, deletions: 0, binary: false };
      } else {
        change = { path: fields[++i], status, additions: 0, deletions: 0, binary: false };
      }
      Object.assign(change, counts.get(change.path) ?? {});
      files.push(change);
    }
    return files;
  }

  /** A file's content in a snapshot, or undefined when the snapshot has no such file. */
  async readFile(snapshot: string, filePath: string): Promise<Buffer | undefined> {
    const relative = filePath.split(path.sep).join('/').replace(/^\/+/, '');
    try {
      return await this.reader.showBuffer([`${snapshot}:${relative}`]);
    } catch {
      return undefined;
    }
  }
}
