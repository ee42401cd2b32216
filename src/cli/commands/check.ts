/** `trendc check FILE...`: diagnostics only. */
import { checkSource, readSource } from '../../compiler/compile.js';
import { UserError, type Diagnostic } from '../../compiler/diagnostics.js';
import { EXIT, json, printDiagnostics } from '../output.js';
import { inspectImported } from '../weights.js';

export async function checkCommand(files: string[], o: { json?: boolean }): Promise<number> {
  let code: number = EXIT.ok;
  const all: Array<{ file: string; diagnostics: Diagnostic[] }> = [];
  for (const file of files) {
    let source: string;
    try {
      source = readSource(file);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      process.stderr.write(`trendc: ${e.message}\n`);
      code = EXIT.user;
      continue;
    }
    const c = checkSource(source, file);
    // Imported weights files are read and checked against their architectures too.
    if (c.checked && !c.diagnostics.some((d) => d.severity === 'error')) c.diagnostics.push(...(await inspectImported(c.checked)).diagnostics);
    const errors = c.diagnostics.filter((d) => d.severity === 'error').length;
    if (errors) code = EXIT.user;
    if (o.json) all.push({ file, diagnostics: c.diagnostics });
    else {
      printDiagnostics(c.diagnostics, new Map([[file, source]]));
      if (errors) process.stderr.write(`${file}: ${errors} error${errors === 1 ? '' : 's'}\n`);
      else {
        const ch = c.checked!;
        process.stdout.write(
          `${file}: ok (${ch.models.length} model${ch.models.length === 1 ? '' : 's'}, ${ch.transfers.length} transfer, ${ch.ensembles.length} ensemble, ${ch.evaluates.length} evaluate, ${ch.smooths.length} smooth statements)\n`,
        );
      }
    }
  }
  if (o.json) process.stdout.write(json(all) + '\n');
  return code;
}
