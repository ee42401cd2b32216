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
import { describeFsError, EXIT, ExitError } from './output.js';

type SetCode = (c: number) => void;
type Registrar = (program: Command, setCode: SetCode) => void;

/**
 * The modules that register the commands, in help order, each imported only when its command is
 * run (or for the full help): `trendc check` never loads the executor, the store or LMDB.
 */
const REGISTRARS: Array<{ commands: string[]; load: () => Promise<Registrar> }> = [
  { commands: ['check', 'plan', 'fmt'], load: async () => (await import('./commands/static.js')).registerStaticCommands },
  { commands: ['run', 'explain', 'runs', 'diff', 'report'], load: async () => (await import('./commands/run.js')).registerRunCommands },
  { commands: ['status'], load: async () => (await import('./commands/status.js')).registerStatus },
  { commands: ['exec-node'], load: async () => (await import('./commands/exec-node.js')).registerExecNode },
  { commands: ['cache', 'export'], load: async () => (await import('./commands/cache.js')).registerCacheCommands },
];

/** The program with the commands `argv` can reach: one command's module, or all (help, typos). */
export async function buildProgram(setCode: SetCode, argv: string[] = []): Promise<Command> {
  const program = new Command();
  program
    .name('trendc')
    .description('Compile and run .trend adversarial-robustness pipelines')
    .version(PACKAGE_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const first = argv[2];
  const one = REGISTRARS.find((r) => first !== undefined && r.commands.includes(first));
  for (const r of one ? [one] : REGISTRARS) (await r.load())(program, setCode);
  for (const c of program.commands) {
    c.exitOverride();
    c.showHelpAfterError('(run with --help for usage)');
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = await buildProgram((c) => (code = c), argv);
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
