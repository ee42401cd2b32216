/**
 * What `trendc export` writes for a trained model: model.json (the spec, the training summary,
 * the parameter shapes and the complete network description of ./network.ts) and, with
 * `--format onnx`, model.onnx. Models whose inference draws noise (input, weight or activation
 * noise) have no deterministic ONNX graph: they are refused unless `withoutNoise` asks for the
 * noise-free graph, which model.json then says.
 */
import { UserError } from '../../compiler/diagnostics.js';
import { PACKAGE_VERSION } from '../../version.js';
import type { TensorData } from '../artifact.js';
import type { ModelSpec } from '../models/model.js';
import { buildOnnx, ONNX_INPUT, ONNX_OUTPUT } from './graph.js';
import { describeNetwork, type NetworkDesc } from './network.js';
import { OPSET } from './proto.js';

export type ExportFormat = 'trend' | 'onnx';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['trend', 'onnx'];

export interface ModelExportOptions {
  format?: ExportFormat;
  /** Export a noise-injecting model's graph without its noise. */
  withoutNoise?: boolean;
}

function noiseKinds(spec: ModelSpec): string[] {
  return (['input', 'weight', 'activation'] as const).filter((k) => spec.noise[k]).map((k) => `${k} noise (${spec.noise[k]!.learned ? 'learned' : 'fixed'})`);
}

/** Refuses what cannot be exported, before anything is written. */
export function checkModelExport(spec: ModelSpec | undefined, key: string, opts: ModelExportOptions): void {
  if (opts.format !== 'onnx') return;
  if (!spec) throw new UserError(`model ${key.slice(0, 12)} has no model spec (it was not made by trend's train operation)`);
  const noise = noiseKinds(spec);
  if (noise.length && !opts.withoutNoise)
    throw new UserError(
      `model ${key.slice(0, 12)} draws ${noise.join(' and ')} at inference, which ONNX cannot reproduce (its random draws are trend's seeded stream); ` +
        `add --without-noise to export the noise-free graph (a different, deterministic classifier)`,
    );
}

/** DoReFa-quantised weights computed by trend's own quantiser, on the backend trend runs on. */
async function quantizer(): Promise<{ quantize: (t: TensorData, bits: number) => Float32Array; backend: string }> {
  const { tf } = await import('../tf.js');
  const { quantizeWeights } = await import('../models/quant.js');
  if (!tf.engine().backendName) {
    const { selectBackend } = await import('../backends/select.js');
    await selectBackend(process.env.TREND_BACKEND ?? 'auto');
  }
  const quantize = (t: TensorData, bits: number) =>
    tf.tidy(() => quantizeWeights(tf.tensor(t.data as Float32Array, t.shape, 'float32'), bits).dataSync() as Float32Array).slice();
  return { quantize, backend: tf.getBackend() };
}

export interface ModelFiles {
  json: Record<string, unknown>;
  onnx?: Uint8Array;
}

function onnxSection(spec: ModelSpec, desc: NetworkDesc, backend: string): Record<string, unknown> {
  const [H, W, C] = spec.shape;
  return {
    file: 'model.onnx',
    opset: OPSET,
    input: { name: ONNX_INPUT, layout: 'NCHW', shape: ['N', C, H, W], dtype: 'float32', range: [0, 1], value: 'pixel / 255' },
    output: { name: ONNX_OUTPUT, shape: ['N', spec.classes], meaning: 'logits' },
    noise_dropped: noiseKinds(spec),
    weights_quantized: desc.layers.some((l) => (l.op === 'conv2d' || l.op === 'dense') && l.weight_quant) ? `by trend's quantiser on ${backend}` : null,
    dense_after_flatten: 'rows permuted from trend HWC order to ONNX CHW order',
  };
}

/** model.json's content, and the ONNX model's bytes when asked for. */
export async function modelFiles(
  summary: Record<string, unknown>,
  tensors: Record<string, TensorData>,
  key: string,
  opts: ModelExportOptions,
): Promise<ModelFiles> {
  const spec = summary.spec as ModelSpec | undefined;
  const parameters = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.shape]));
  if (!spec) return { json: { ...summary, parameters } };
  const desc = describeNetwork(spec, Object.keys(tensors));
  const json: Record<string, unknown> = { ...summary, parameters, network: desc };
  if (opts.format !== 'onnx') return { json };
  const q = await quantizer();
  const onnx = buildOnnx({
    desc,
    params: tensors,
    quantized: (name, bits) => q.quantize(tensors[name]!, bits),
    producerVersion: PACKAGE_VERSION,
    doc: `trend ${spec.arch} (width ${spec.width}); input NCHW float32 in [0, 1] (pixel/255), output logits; normalisation and input quantisation inside`,
    metadata: { trend_key: key, arch: spec.arch, noise_dropped: noiseKinds(spec).join('; ') || 'none' },
  });
  json.onnx = onnxSection(spec, desc, q.backend);
  return { json, onnx };
}
