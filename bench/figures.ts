/** A benchmark figure: printed as a table row, or as one JSON object a line with --json. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

export function printFigures(figs: Figure[], json: boolean): void {
  for (const f of figs) {
    if (json) process.stdout.write(JSON.stringify({ name: f.name, value: f.value, unit: f.unit }) + '\n');
    else process.stdout.write(`${f.name.padEnd(46)} ${String(f.value).padStart(10)} ${f.unit}${f.note ? `   (${f.note})` : ''}\n`);
  }
}
