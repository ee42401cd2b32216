/**
 * `npm run bench [-- --json] [-- --quick] [-- --only NAME] [-- --profile]`: speed figures (--profile:
 * the nets suite also prints a per-kernel table of one training step to stderr). Each benchmark is a
 * function returning figures; with --json, one {"name", "value", "unit"} object per line.
 */
import { benchAutoattack, benchMatrix, benchPgd } from './attacks.js';
import { benchCnn } from './cnn.js';
import { benchCompiler } from './compiler.js';
import { benchExecutor, benchStartup } from './executor.js';
import { printFigures, type Figure } from './figures.js';
import { benchNets } from './nets.js';
import { benchSlurm } from './slurm.js';

const argv = process.argv.slice(2);
const json = argv.includes('--json');
const quick = argv.includes('--quick');
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;

const suites: Record<string, () => Promise<Figure[]>> = {
  compiler: () => benchCompiler(quick),
  executor: () => benchExecutor(quick),
  startup: async () => benchStartup(quick),
  cnn: async () => {
    const out: Figure[] = [];
    for (const b of ['wasm', 'tensorflow', 'tensorflow-gpu', 'webgpu'] as const) {
      try {
        out.push(...(await benchCnn(b, quick)));
      } catch (e) {
        if (b === 'wasm') throw e;
        if (!json) process.stderr.write(`(cnn on ${b}: not available: ${(e as Error).message.split('\n')[0]})\n`);
      }
    }
    return out;
  },
  nets: () => benchNets(quick, argv.includes('--profile')),
  pgd: () => benchPgd(quick),
  autoattack: () => benchAutoattack(quick),
  matrix: () => benchMatrix(),
  slurm: () => benchSlurm(),
};

for (const [name, run] of Object.entries(suites)) {
  if (only && only !== name) continue;
  printFigures(await run(), json);
}
process.exit(0);
