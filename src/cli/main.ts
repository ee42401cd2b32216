/**
 * trendc: the command line. Each command is a small function in src/cli/commands/; this file
 * wires them to commander and turns errors into exit codes: 2 for user errors (with a message,
 * never a stack trace), 1 for failed steps or checks and for files that cannot be read or written
 * (with the path and the reason), 70 for internal errors.
 */
import { Command, CommanderError } from 'commander';
import { UserError } from '../compiler/diagnostics.js';
import { StoreError } from '../store/fsx.js';
import { PACKAGE_VERSION } from '../version.js';
import { registerCacheCommands } from './commands/cache.js';
import { checkCommand } from './commands/check.js';
import { registerExecNode } from './commands/exec-node.js';
import { fmtCommand } from './commands/fmt.js';
import { registerStatus } from './commands/status.js';
import { planCommand } from './commands/plan.js';
import { registerRunCommands } from './commands/run.js';
import { describeFsError, EXIT } from './output.js';
import { ExitError } from './pipeline.js';

export function buildProgram(setCode: (c: number) => void): Command {
  const program = new Command();
  program
    .name('trendc')
    .description('Compile and run .trend adversarial-robustness pipelines')
    .version(PACKAGE_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('check')
    .description('check pipelines and print diagnostics (exit 2 on errors)')
    .argument('<files...>', '.trend files')
    .option('--json', 'print diagnostics as JSON')
    .action(async (files: string[], o: { json?: boolean }) => setCode(await checkCommand(files, o)));

  program
    .command('plan')
    .description('print the DAG: nodes, keys, edges')
    .argument('<file>', '.trend file')
    .option('--json', 'print the DAG as JSON')
    .option('--dot', 'print the DAG in Graphviz DOT')
    .option('--cache <dir>', 'cache directory (to mark what is cached)')
    .action(async (file: string, o: { json?: boolean; dot?: boolean; cache?: string }) => setCode(await planCommand(file, o)));

  program
    .command('fmt')
    .description('format pipelines canonically (prints to stdout unless --write or --check)')
    .argument('<files...>', '.trend files')
    .option('--check', 'exit 1 if a file is not formatted')
    .option('--write', 'rewrite the files in place')
    .action(async (files: string[], o: { check?: boolean; write?: boolean }) => setCode(await fmtCommand(files, o)));

  registerRunCommands(program, setCode);
  registerStatus(program, setCode);
  registerExecNode(program, setCode);
  registerCacheCommands(program, setCode);
  for (const c of program.commands) {
    c.exitOverride();
    c.showHelpAfterError('(run with --help for usage)');
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      return EXIT.user;
    }
    if (e instanceof ExitError) {
      if (e.message) process.stderr.write(`trendc: ${e.message}\n`);
      return e.code;
    }
    if (e instanceof UserError) {
      process.stderr.write(`trendc: ${e.message}\n`);
      return EXIT.user;
    }
    if (e instanceof StoreError) {
      // The store's own failures (disk full, read-only, no store there): the path and the reason.
      process.stderr.write(`trendc: ${e.message}\n`);
      return e.exitCode;
    }
    // A file or directory the command could not read or write: the path and the reason, exit 1.
    const fs = describeFsError(e);
    if (fs) {
      process.stderr.write(`trendc: ${fs}\n`);
      if (process.env.TREND_DEBUG) process.stderr.write(`${(e as Error).stack ?? ''}\n`);
      return EXIT.failed;
    }
    const err = e as Error;
    process.stderr.write(`trendc: internal error: ${err?.message ?? String(e)}\n`);
    if (process.env.TREND_DEBUG) process.stderr.write(`${err?.stack ?? ''}\n`);
    else process.stderr.write('(set TREND_DEBUG=1 for a stack trace, and please report it)\n');
    return EXIT.internal;
  }
}
