/**
 * Fuzzing the index: random pages overwritten with random bytes, random 256-byte ranges
 * overwritten, data.mdb truncated at random offsets. Every damaged index must be either noticed
 * or harmless, never fatal: no command dies by a signal, each ends with a message, and after
 * `cache verify --repair` a run computes nothing and gives the clean run's checksums.
 *
 * Two parts: many faults judged by one child process that opens each damaged copy through the
 * store's API (a SIGBUS there kills the child and fails the test), and fewer faults driven
 * through the CLI commands themselves. Set TREND_FUZZ_SEED to replay a failure.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, summaryCounts, TOY, workdir } from '../helpers/cli.js';
import { checksums, cli, expectClean, fake, show } from './helpers.js';

const SEED = Number(process.env.TREND_FUZZ_SEED ?? Date.now() % 2 ** 31);
const TOTAL = 22;
/** Faults judged through the API (TREND_FUZZ_CASES for a longer hunt). */
const BULK = Number(process.env.TREND_FUZZ_CASES ?? 150);

type Fault = { kind: 'page'; page: number; bytes: Uint8Array } | { kind: 'overwrite'; offset: number; bytes: Uint8Array } | { kind: 'truncate'; at: number };

const pageFault = fc.record({ kind: fc.constant('page' as const), page: fc.nat(), bytes: fc.uint8Array({ minLength: 4096, maxLength: 4096 }) });
const overwriteFault = fc.record({ kind: fc.constant('overwrite' as const), offset: fc.nat(), bytes: fc.uint8Array({ minLength: 256, maxLength: 256 }) });
const truncateFault = fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() });

/** Applies a fault to a data.mdb file; returns a description for messages. */
function apply(file: string, f: Fault): string {
  const bytes = readFileSync(file);
  const ps = 4096;
  if (f.kind === 'truncate') {
    const at = f.at % bytes.length;
    truncateSync(file, at);
    return `truncated at ${at} of ${bytes.length}`;
  }
  if (f.kind === 'page') {
    const page = f.page % Math.floor(bytes.length / ps);
    bytes.set(f.bytes, page * ps);
    writeFileSync(file, bytes);
    return `page ${page} overwritten`;
  }
  const offset = f.offset % (bytes.length - 256);
  bytes.set(f.bytes, offset);
  writeFileSync(file, bytes);
  return `256 bytes overwritten at ${offset}`;
}

let base: string;
let clean: Record<string, string>;
beforeAll(async () => {
  base = workdir({ 'toy.trend': TOY });
  const r = await cli(['run', 'toy.trend', '--quiet'], { cwd: base, env: fake() });
  expect(r.code, show(['run'], r)).toBe(0);
  clean = await checksums(base);
});

function damagedCopy(f: Fault): { dir: string; what: string } {
  const dir = mkdtempSync(join(tmpdir(), 'trend-fuzz-'));
  cpSync(join(base, 'cache'), join(dir, 'cache'), { recursive: true });
  writeFileSync(join(dir, 'toy.trend'), TOY);
  return { dir, what: apply(join(dir, 'cache', 'data.mdb'), f) };
}

/** Opens each store through the API, reads everything, and (where the index was judged sound) writes to it. */
const PROBE = `
const { Store } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'store', 'store.js'))});
for (const dir of JSON.parse(process.argv[1])) {
  process.stdout.write(JSON.stringify({ dir, start: true }) + '\\n');
  const s = await Store.open(dir, { create: false });
  const status = s.indexStatus.status;
  const nodes = [...s.nodes()].map((m) => [m.key, m.checksum]);
  const runs = s.runs();
  s.stats();
  await s.verify(false);
  const afterReads = s.indexStatus.status;
  s.memoPut('fuzz', 'x');
  s.putRun({ ...runs[0], id: 'fuzz-run' });
  s.deleteRun('fuzz-run');
  const afterWrites = s.indexStatus.status;
  await s.close();
  process.stdout.write(JSON.stringify({ dir, status, nodes: Object.fromEntries(nodes), runs: runs.length, afterReads, afterWrites }) + '\\n');
}
`;

function probe(dirs: string[]): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, ['--input-type=module', '-e', PROBE, JSON.stringify(dirs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => p.on('close', (status, signal) => resolve({ status, signal, stdout, stderr })));
}

describe(`fuzzing data.mdb (seed ${SEED})`, () => {
  it(
    'many faults through the store API: each is noticed or harmless, and none kills the process',
    async () => {
      const faults = fc.sample(fc.oneof(pageFault, overwriteFault, truncateFault), { numRuns: BULK, seed: SEED });
      const cases: Array<{ dir: string; what: string; f: Fault }> = [];
      for (const f of faults) {
        cases.push({ ...damagedCopy(f), f });
        if (cases.length % 50 === 0) await new Promise((r) => setImmediate(r)); // let vitest's worker answer
      }
      const r = await probe(cases.map((c) => join(c.dir, 'cache')));
      const lines = r.stdout
        .trim()
        .split('\n')
        .map(
          (l) =>
            JSON.parse(l) as {
              dir: string;
              start?: true;
              status: string;
              nodes: Record<string, string>;
              runs: number;
              afterReads: string;
              afterWrites: string;
            },
        );
      const last = lines.at(-1);
      const describeCase = (dir: string) => cases.find((c) => join(c.dir, 'cache') === dir)?.what;
      expect(r.signal, `the probe died on ${last ? describeCase(last.dir) : '?'}:\n${r.stderr}`).toBeNull();
      expect(r.status, r.stderr).toBe(0);
      let damaged = 0;
      for (const l of lines.filter((x) => !x.start)) {
        const what = describeCase(l.dir);
        expect(l.nodes, what).toEqual(clean);
        expect(l.runs, what).toBe(1);
        if (l.status === 'damaged') damaged++;
        else {
          // An index judged sound is used for reads and takes writes without an lmdb error.
          expect(l.status, what).toBe('ok');
          expect([l.afterReads, l.afterWrites], what).toEqual(['ok', 'ok']);
        }
      }
      expect(lines.filter((x) => !x.start)).toHaveLength(cases.length);
      expect(damaged).toBeGreaterThan(cases.length / 4); // the faults do hit the index
    },
    60_000 + BULK * 400,
  );

  for (const [kind, arb] of [
    ['random pages', pageFault],
    ['random 256-byte ranges', overwriteFault],
    ['truncation at random offsets', truncateFault],
  ] as const) {
    it(`${kind} through the CLI: every command ends with a message, verify --repair restores the clean results`, async () => {
      await fc.assert(
        fc.asyncProperty(arb as fc.Arbitrary<Fault>, async (f) => {
          const { dir, what } = damagedCopy(f);
          const gcDir = damagedCopy(f).dir;
          const step = async (args: string[], codes: number[], cwd = dir, env: Record<string, string> = {}) => {
            const r = await cli(args, { cwd, env });
            try {
              expectClean(args, r, codes);
            } catch (e) {
              throw new Error(`${what}: ${(e as Error).message}`);
            }
            return r;
          };
          const v = await step(['cache', 'verify'], [0, 1]);
          if (v.code === 1) expect(v.stdout, what).toMatch(/DAMAGED/);
          await step(['cache', 'ls'], [0]);
          await step(['cache', 'stats'], [0]);
          await step(['cache', 'gc'], [0], gcDir);
          await step(['cache', 'verify', '--repair'], [0]);
          const run = await step(['run', 'toy.trend', '--quiet'], [0], dir, fake());
          expect(summaryCounts(run.stdout), what).toEqual({ ran: 0, cached: TOTAL, failed: 0, skipped: 0 });
          expect(await checksums(dir), what).toEqual(clean);
        }),
        { numRuns: 2, seed: SEED, endOnFailure: true },
      );
    });
  }
});
