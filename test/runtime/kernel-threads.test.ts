import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { kernelThreads } from '../../src/runtime/backends/wasm-kernels/memory.js';
import { Model } from '../../src/runtime/models/model.js';
import { plainSpec } from '../helpers/runtime.js';
import { tf } from '../../src/runtime/tf.js';
import { ROOT } from '../helpers/cli.js';

// Per-thread state of trend's kernels is owned by exactly one thread: each thread's module
// instance runs on a stack of its own, and each range of a job gets its own scratch slot.

const overlaps = (a: [number, number], b: [number, number]) => a[0] < b[1] && b[0] < a[1];

describe('kernel threads own their state', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('every thread runs on its own stack, set before any kernel runs', () => {
    const kt = kernelThreads()!;
    expect(kt.pool.threads).toBe(2);
    const stacks = kt.pool.stacks();
    expect(stacks).toHaveLength(2);
    for (const s of stacks) {
      expect(s.held).toBe(s.top); // the instance holds the stack pointer it was given
      expect(s.top % 16).toBe(0);
      expect(s.top - s.base).toBe(64 * 1024);
      // Not the linker's stack (1024..66560), which lies inside the TF.js module's static data.
      expect(s.base).toBeGreaterThanOrEqual(66560);
    }
    expect(overlaps([stacks[0]!.base, stacks[0]!.top], [stacks[1]!.base, stacks[1]!.top])).toBe(false);
  });

  it('a job hands each range its own scratch slot, and no stack is used as scratch', async () => {
    const kt = kernelThreads()!;
    const seen: string[] = [];
    const problems: string[] = [];
    const stacks = kt.pool.stacks().map((s) => [s.base, s.top] as [number, number]);
    kt.pool.audit = (fn, args, ranges) => {
      const live = ranges.map(([a, b], i) => (b > a ? i : -1)).filter((i) => i >= 0);
      if (live.length < 2) return;
      seen.push(fn);
      const sc = kernelThreads()!.scratch!;
      // The scratch block the slots are cut from lies outside every stack. (Arguments are not
      // compared with the stacks one by one: an element count can equal a stack address.)
      for (const st of stacks) if (overlaps([sc.base, sc.base + sc.perThread * 2], st)) problems.push(`${fn}: scratch overlaps a stack`);
      live.forEach((i) => {
        for (const v of args[i]!) {
          if (v >= sc.base && v < sc.base + sc.perThread * 2) {
            const slot = Math.floor((v - sc.base) / sc.perThread);
            if (slot !== i) problems.push(`${fn}: range ${i} uses scratch slot ${slot}`);
          }
        }
      });
    };
    try {
      // A training step of a narrow ResNet with batch norm: conv forward and both gradients,
      // pooling and ReLU passes large enough to be split across the threads.
      const spec = plainSpec('resnet18', 1 / 16, [28, 28, 1], 10);
      const model = Model.create(spec, 1);
      const x = tf.randomUniform([64, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
      const y = tf.oneHot(
        tf.tensor1d(
          Array.from({ length: 64 }, (_, i) => i % 10),
          'int32',
        ),
        10,
      );
      const { grads, value } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.logits(x, { training: true })) as tf.Scalar);
      expect(Number.isFinite(value.dataSync()[0])).toBe(true);
      tf.dispose([x, y, value, ...Object.values(grads)]);
      model.dispose();
    } finally {
      kt.pool.audit = undefined;
    }
    expect(problems).toEqual([]);
    expect(seen).toContain('conv_fwd_padded');
    expect(seen).toContain('conv_dw_padded');
  });
});

describe('the kernel modules prove their stack use at build time', () => {
  const check = (file: string) =>
    spawnSync(process.execPath, [join(ROOT, 'kernels', 'check-module.mjs'), file, '--stack-size', '65536', '--budget', '4096'], { encoding: 'utf8' });

  it('each committed module passes: one exported stack pointer, bounded frames, nothing static', () => {
    for (const f of ['kernels.wasm', 'kernels-shared.wasm', 'kernels-fma.wasm', 'kernels-fma-shared.wasm']) {
      const r = check(join(ROOT, 'kernels', f));
      expect(r.stderr, f).toBe('');
      expect(r.stdout).toMatch(/^stack: at most (\d+) bytes per thread/);
      expect(Number(/at most (\d+)/.exec(r.stdout)![1])).toBeLessThanOrEqual(4096);
    }
  });

  it('fails a module it cannot prove safe', () => {
    const wabt = createRequire(import.meta.url)('wabt') as () => Promise<{
      readWasm(b: Uint8Array, f: object): { toText(o: object): string };
      parseWat(name: string, text: string, f: object): { toBinary(o: object): { buffer: Uint8Array } };
    }>;
    return wabt().then((w) => {
      const features = { simd: true, threads: true, relaxed_simd: true, mutable_globals: true, bulk_memory: true };
      const wat = w.readWasm(readFileSync(join(ROOT, 'kernels', 'kernels-shared.wasm')), features).toText({});
      const dir = mkdtempSync(join(tmpdir(), 'trend-kmod-'));
      const variant = (name: string, text: string) => {
        expect(text, name).not.toBe(wat);
        const file = join(dir, `${name}.wasm`);
        writeFileSync(file, w.parseWat(file, text, features).toBinary({}).buffer);
        return check(file);
      };
      // The module as built before this check existed: no exported stack pointer.
      expect(variant('unexported', wat.replace(/\s*\(export "__stack_pointer" \(global 0\)\)/, '')).stderr).toMatch(/does not export its stack pointer/);
      // A read of the stack pointer that is not a frame allocation.
      expect(variant('stray-read', wat.replace('global.get 0\n    i32.const 32\n    i32.sub', 'global.get 0\n    i32.const 32\n    i32.add')).stderr).toMatch(
        /not a frame allocation/,
      );
      // Something static below the stack.
      expect(variant('static', wat.replace('(i32.const 66560)', '(i32.const 66576)')).stderr).toMatch(/static/);
      // A frame too large for the budget.
      expect(variant('big-frame', wat.replace('global.get 0\n    i32.const 32\n    i32.sub', 'global.get 0\n    i32.const 8000\n    i32.sub')).stderr).toMatch(
        /over the budget/,
      );
      // A data segment.
      expect(variant('data', wat.replace(/\)\s*$/, '\n  (data (i32.const 2048) "x"))')).stderr).toMatch(/data segment/);
    });
  });
});
