/** The commands that only read pipeline files: check, plan, fmt (no store, no runtime). */
import type { Command } from 'commander';
import { checkCommand } from './check.js';
import { fmtCommand } from './fmt.js';
import { planCommand } from './plan.js';

export function registerStaticCommands(program: Command, setCode: (c: number) => void): void {
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
}
