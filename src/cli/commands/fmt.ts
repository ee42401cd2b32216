/** `trendc fmt FILE... [--check] [--write]`: canonical formatting. */
import { writeFileSync } from 'node:fs';
import { readSource } from '../../compiler/compile.js';
import { format } from '../../compiler/format.js';
import { parse } from '../../compiler/parse.js';
import { EXIT, printDiagnostics } from '../output.js';

export async function fmtCommand(files: string[], o: { check?: boolean; write?: boolean }): Promise<number> {
  let code: number = EXIT.ok;
  for (const file of files) {
    const source = readSource(file);
    const parsed = parse(source, file);
    if (parsed.diagnostics.length) {
      printDiagnostics(parsed.diagnostics, new Map([[file, source]]));
      process.stderr.write(`${file}: not formatted (fix the syntax errors first)\n`);
      code = EXIT.user;
      continue;
    }
    const out = format(parsed.program, source);
    if (o.check) {
      if (out !== source) {
        process.stdout.write(`${file}: not formatted\n`);
        if (code === EXIT.ok) code = EXIT.failed;
      }
    } else if (o.write) {
      if (out !== source) writeFileSync(file, out);
    } else process.stdout.write(out);
  }
  return code;
}
