// `trendc export KEY --format onnx` end to end: a model trained by `trendc run`, exported, and run
// in ONNX Runtime on the exported test set classifies it exactly as trend measured (the same
// accuracy, in one batch as trend's evaluation, so the 2-bit input quantiser sees the same batch
// statistics); and what cannot be exported is refused with exit 2 before anything is written.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import { trendcAwait, workdir, type CliResult } from '../helpers/cli.js';

const PIPELINE = `dataset mnist subset train=1000 test=100
train epochs=2 batch=32
model a = cnn width=1/8 quant input 2bit
model n = cnn width=1/8 noise weight learned
`;

const trendc = (args: string[], cwd: string): Promise<CliResult> => trendcAwait(args, { cwd });

/** A .npy file's shape and data (version 1 header, little-endian, C order). */
function npy(file: string): { shape: number[]; data: Uint8Array } {
  const b = readFileSync(file);
  const n = b.readUInt16LE(8);
  const header = b.toString('latin1', 10, 10 + n);
  const shape = /'shape': \(([^)]*)\)/
    .exec(header)![1]!
    .split(',')
    .filter((s) => s.trim())
    .map(Number);
  expect(header).toMatch(/'descr': '\|u1'/);
  return { shape, data: new Uint8Array(b.subarray(10 + n)) };
}

describe('trendc export --format onnx', () => {
  const dir = workdir({ 'p.trend': PIPELINE });
  let datasetId: string;

  beforeAll(async () => {
    const r = await trendc(['run', 'p.trend', '--quiet', '--no-report'], dir);
    expect(r.code, r.stderr).toBe(0);
    const ls = JSON.parse((await trendc(['cache', 'ls', '--json', '--op', 'dataset'], dir)).stdout) as Array<{ id: string }>;
    datasetId = ls[0]!.id;
    expect((await trendc(['export', datasetId, '--out', 'data'], dir)).code).toBe(0);
  }, 300_000);

  it('the exported model classifies the test set exactly as trend measured', { timeout: 120_000 }, async () => {
    const r = await trendc(['export', 'train/a', '--format', 'onnx', '--out', 'exp'], dir);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['model.onnx', 'model.json', 'model.safetensors', 'summary.json']) expect(r.stdout).toContain(join(dir, 'exp', f));
    const x = npy(join(dir, 'data', 'testX.npy'));
    const y = npy(join(dir, 'data', 'testY.npy'));
    const [n, H, W] = x.shape as [number, number, number];
    expect(x.shape).toEqual([100, 28, 28, 1]);
    // One channel: NHWC and NCHW hold the same order.
    const input = new ort.Tensor(
      'float32',
      Float32Array.from(x.data, (v) => v / 255),
      [n, 1, H, W],
    );
    ort.env.wasm.numThreads = 1;
    const session = await ort.InferenceSession.create(readFileSync(join(dir, 'exp', 'model.onnx')));
    expect(session.inputNames).toEqual(['input']);
    expect(session.outputNames).toEqual(['logits']);
    const logits = (await session.run({ input })).logits!;
    expect(logits.dims).toEqual([n, 10]);
    const v = logits.data as Float32Array;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      let b = 0;
      for (let j = 1; j < 10; j++) if (v[i * 10 + j]! > v[i * 10 + b]!) b = j;
      if (b === y.data[i]) correct++;
    }
    const summary = JSON.parse(readFileSync(join(dir, 'exp', 'summary.json'), 'utf8')) as { summary: { testAccuracy: number } };
    expect(correct / n).toBe(summary.summary.testAccuracy);
    expect(correct).toBeGreaterThan(50);
    const model = JSON.parse(readFileSync(join(dir, 'exp', 'model.json'), 'utf8')) as {
      network: { layers: Array<{ id: string }>; input_quant: { bits: number } };
      onnx: { opset: number };
    };
    expect(model.network.layers.map((l) => l.id)).toEqual(['conv1', 'conv1_relu', 'pool1', 'conv2', 'conv2_relu', 'pool2', 'flatten', 'out']);
    expect(model.network.input_quant.bits).toBe(2);
    expect(model.onnx.opset).toBe(13);
  });

  it('a noise-injecting model is refused (exit 2, nothing written) unless --without-noise', { timeout: 120_000 }, async () => {
    const r = await trendc(['export', 'train/n', '--format', 'onnx', '--out', 'n1'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/draws weight noise \(learned\) at inference.*--without-noise/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(join(dir, 'n1'))).toBe(false);
    const ok = await trendc(['export', 'train/n', '--format', 'onnx', '--without-noise', '--out', 'n2'], dir);
    expect(ok.code, ok.stderr).toBe(0);
    const model = JSON.parse(readFileSync(join(dir, 'n2', 'model.json'), 'utf8')) as { onnx: { noise_dropped: string[] } };
    expect(model.onnx.noise_dropped).toEqual(['weight noise (learned)']);
    expect(existsSync(join(dir, 'n2', 'model.onnx'))).toBe(true);
  });

  it('bad requests: exit 2 with the reason, no output directory', { timeout: 120_000 }, async () => {
    const cases: Array<[string[], RegExp]> = [
      [[datasetId, '--format', 'onnx', '--out', 'b1'], /--format onnx exports trained models; .* is a dataset artifact/],
      [['train/a', '--format', 'tflite', '--out', 'b2'], /unknown export format 'tflite' \(expected trend or onnx\)/],
      [['train/a', '--without-noise', '--out', 'b3'], /--without-noise applies to --format onnx only/],
    ];
    for (const [args, msg] of cases) {
      const r = await trendc(['export', ...args], dir);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(existsSync(join(dir, args[args.length - 1]!))).toBe(false);
    }
  });
});
