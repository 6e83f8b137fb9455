/**
 * Where an export writes: a file or a folder that appears whole when the export succeeds and
 * not at all when it fails or is cancelled (it is written beside the target, then renamed).
 */
import { createWriteStream, promises as fs, type WriteStream } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export class ExportError extends Error {}

function partialName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.partial-${randomBytes(4).toString('hex')}`);
}

/** JSON lines written with back-pressure, so memory stays flat however much is written. */
export class JsonlSink {
  private readonly stream: WriteStream;
  private failure: Error | undefined;
  lines = 0;

  constructor(readonly file: string) {
    this.stream = createWriteStream(file, { flags: 'wx' });
    this.stream.on('error', (error) => (this.failure = error));
  }

  async write(record: unknown): Promise<void> {
    if (this.failure) throw this.failure;
    this.lines++;
    if (!this.stream.write(JSON.stringify(record) + '\n')) {
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error) => reject(error);
        this.stream.once('drain', () => {
          this.stream.off('error', onError);
          resolve();
        });
        this.stream.once('error', onError);
      });
    }
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.stream.end((error?: Error | null) => (error ? reject(error) : resolve()));
    });
  }

  destroy(): void {
    this.stream.destroy();
  }
}

async function checkParent(target: string): Promise<void> {
  const parent = path.dirname(target);
  const stat = await fs.stat(parent).catch(() => undefined);
  if (!stat?.isDirectory()) throw new ExportError(`The folder ${parent} does not exist; create it or choose another output path.`);
}

/** A single output file: written as a partial file, renamed over the target at the end. */
export class FileOutput {
  private constructor(
    readonly target: string,
    readonly partial: string,
  ) {}

  static async open(target: string): Promise<FileOutput> {
    await checkParent(target);
    const stat = await fs.stat(target).catch(() => undefined);
    if (stat?.isDirectory()) throw new ExportError(`${target} is a folder; this format writes one file, so give a file path such as ${path.join(target, 'export.jsonl')}.`);
    return new FileOutput(target, partialName(target));
  }

  async commit(): Promise<void> {
    await fs.rename(this.partial, this.target);
  }

  async discard(): Promise<void> {
    await fs.rm(this.partial, { force: true });
  }
}

/** An output folder: built as a partial folder, renamed into place at the end; never merged into an existing one. */
export class FolderOutput {
  private constructor(
    readonly target: string,
    readonly partial: string,
  ) {}

  static async open(target: string): Promise<FolderOutput> {
    await checkParent(target);
    const stat = await fs.stat(target).catch(() => undefined);
    if (stat && !stat.isDirectory()) throw new ExportError(`${target} is a file; this format writes a folder, so give a folder path that does not exist yet.`);
    if (stat && (await fs.readdir(target)).length) {
      throw new ExportError(`The folder ${target} is not empty; choose a new folder so nothing in it is overwritten.`);
    }
    const output = new FolderOutput(target, partialName(target));
    await fs.mkdir(output.partial);
    return output;
  }

  file(...parts: string[]): string {
    return path.join(this.partial, ...parts);
  }

  async commit(): Promise<void> {
    await fs.rmdir(this.target).catch(() => undefined);
    await fs.rename(this.partial, this.target);
  }

  async discard(): Promise<void> {
    await fs.rm(this.partial, { recursive: true, force: true });
  }
}

/**
 * A dataset folder with `data/train.jsonl` and, once a branch left by a rewind is written,
 * `data/abandoned.jsonl`: the shape of the hf, trl and llamafactory exports.
 */
export class SplitFolder {
  private abandoned: JsonlSink | undefined;

  private constructor(
    readonly output: FolderOutput,
    private readonly train: JsonlSink,
  ) {}

  static async open(out: string): Promise<SplitFolder> {
    const output = await FolderOutput.open(out);
    await fs.mkdir(output.file('data'));
    return new SplitFolder(output, new JsonlSink(output.file('data', 'train.jsonl')));
  }

  /** Where a row of a trajectory goes: its branch left by a rewind, or the train split. */
  sink(abandoned: boolean): JsonlSink {
    return abandoned ? (this.abandoned ??= new JsonlSink(this.output.file('data', 'abandoned.jsonl'))) : this.train;
  }

  get hasAbandoned(): boolean {
    return this.abandoned !== undefined;
  }

  /** Closes the splits, writes the folder's other files, and puts the folder in place. */
  async commit(files: Record<string, string>): Promise<void> {
    await this.train.close();
    await this.abandoned?.close();
    for (const [name, text] of Object.entries(files)) await fs.writeFile(this.output.file(name), text);
    await this.output.commit();
  }

  async discard(): Promise<void> {
    this.train.destroy();
    this.abandoned?.destroy();
    await this.output.discard();
  }
}
