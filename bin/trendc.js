#!/usr/bin/env node
// trendc: the .trend compiler and runner. The code lives in dist/ (built by `npm ci` / `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('trendc: not built yet; run `npm ci` (or `npm run build`) in the package folder\n');
  process.exit(2);
}
// A closed pipe (trendc ... | head) ends the program quietly, as for other command-line tools.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
// `trendc --version` alone answers from the package version, without loading the CLI (start-up).
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { PACKAGE_VERSION } = await import(new URL('../dist/src/version.js', import.meta.url).href);
  process.stdout.write(`${PACKAGE_VERSION}\n`);
  process.exit(0);
}
const { main: run } = await import(main.href);
process.exitCode = await run(process.argv);
