/**
 * `apollo`: the headless CLI on the same engine as the extension.
 * Exit status: 0 run finished or hit its step limit or budget (sample: every run did), 1 a run
 * failed or stopped (or a command failed), 2 usage error.
 */
import { DatasetError } from '../core/dataset/store';
import { ConfigError } from '../core/session/runSession';
import { ExportError } from '../core/export/output';
import type { CliIo } from './io';
import { USAGE } from './usage';
import { UsageError } from './options';
import { commandRun } from './commands/run';
import { commandSample } from './commands/sample';
import { commandHint } from './commands/hint';
import { commandLabel } from './commands/label';
import { commandStats } from './commands/stats';
import { commandGc } from './commands/gc';
import { commandRewind } from './commands/rewind';
import { commandAdopt } from './commands/adopt';
import { commandExport } from './commands/export';
import { commandValidate } from './commands/validate';
import { commandRelabel } from './commands/relabel';
import { commandMerge } from './commands/merge';
import { commandVerify } from './commands/verify';
import { commandImport } from './commands/import';
import { enterPrivateMounts } from './privateMounts';

export type { CliIo } from './io';
export { describeContextWindow, describeStep, describeTrouble, REASONING_SHOWN } from './output';

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await commandRun(rest, io);
      case 'sample':
        return await commandSample(rest, io);
      case 'hint':
        return await commandHint(rest, io);
      case 'label':
        return await commandLabel(rest, io);
      case 'stats':
        return await commandStats(rest, io);
      case 'gc':
        return await commandGc(rest, io);
      case 'rewind':
        return await commandRewind(rest, io);
      case 'adopt':
        return await commandAdopt(rest, io);
      case 'export':
        return await commandExport(rest, io);
      case 'validate':
        return await commandValidate(rest, io);
      case 'relabel':
        return await commandRelabel(rest, io);
      case 'merge':
        return await commandMerge(rest, io);
      case 'verify':
        return await commandVerify(rest, io);
      case 'import':
        return await commandImport(rest, io);
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.stdout(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`Unknown command "${command}".`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith?.('ERR_PARSE_ARGS')) {
      io.stderr(`apollo: ${(error as Error).message}\nRun "apollo --help" for usage.\n`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof DatasetError || error instanceof ExportError) {
      io.stderr(`apollo: ${error.message}\n`);
      return 1;
    }
    io.stderr(`apollo: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

if (require.main === module) {
  const io: CliIo = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    onInterrupt: (stop) => {
      const handler = () => {
        process.stderr.write('Stopping the run…\n');
        stop();
      };
      process.on('SIGINT', handler);
      return () => process.off('SIGINT', handler);
    },
  };
  const argv = process.argv.slice(2);
  void (enterPrivateMounts(argv) ?? main(argv, io)).then((code) => {
    process.exitCode = code;
  });
}
