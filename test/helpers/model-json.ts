/**
 * An independent forward pass built from what `trendc export` writes and nothing of trend's:
 * model.json's `network` (docs/export.md) and the tensors of model.safetensors, read by a
 * parser of its own, computed in float64 with plain loops (NHWC). If model.json left anything
 * out (a pad, a shortcut, an epsilon, a quantiser's statistics), this would not match trend.
 */

export interface StTensor {
  shape: number[];
  v: Float32Array;
}

/** safetensors: 8-byte little-endian header length, JSON header, then the raw data. */
export function parseSafetensors(bytes: Uint8Array): Record<string, StTensor> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out: Record<string, StTensor> = {};
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (h.dtype !== 'F32') throw new Error(`${name}: dtype ${h.dtype}`);
    const [a, b] = h.data_offsets;
    out[name] = { shape: h.shape, v: new Float32Array(bytes.slice(8 + n + a, 8 + n + b).buffer) };
  }
  return out;
}

/** A batch of NHWC activations (or [N, F] features when c = f and h = w = 1). */
interface Act {
  n: number;
  h: number;
  w: number;
  c: number;
  v: Float64Array;
}

// The subset of model.json's network the forward pass reads.
interface Net {
  input: { shape: [number, number, number] };
  normalize: { mean: number[]; std: number[] };
  input_quant: { kind: 'bits'; bits: number; statistics: 'batch' | 'image' } | { kind: 'halftone'; kernel: number[][] } | null;
  layers: Array<Record<string, unknown> & { id: string; op: string; inputs: string[] }>;
  output: { id: string };
}

const rhe = (x: number) => {
  // round half to even
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
};

function range(a: Act, i0: number, i1: number): [number, number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  let s = 0;
  for (let i = i0; i < i1; i++) {
    lo = Math.min(lo, a.v[i]!);
    hi = Math.max(hi, a.v[i]!);
    s += a.v[i]!;
  }
  return [lo, hi, s / (i1 - i0)];
}

function inputQuant(a: Act, q: NonNullable<Net['input_quant']>): Act {
  const per = a.h * a.w * a.c;
  const out = new Float64Array(a.v.length);
  const groups = q.kind === 'bits' && q.statistics === 'batch' ? [[0, a.v.length]] : Array.from({ length: a.n }, (_, i) => [i * per, (i + 1) * per]);
  for (const [i0, i1] of groups) {
    const [lo, hi, mean] = range(a, i0!, i1!);
    if (q.kind === 'bits') {
      const w = Math.max((hi - lo) / 2 ** q.bits, 1e-12);
      for (let i = i0!; i < i1!; i++) {
        const x = a.v[i]! >= hi ? a.v[i]! - w / 2 : a.v[i]!;
        out[i] = Math.floor((x - lo) / w) * w + w / 2 + lo;
      }
    } else {
      const z = new Float64Array(i1! - i0!).map((_, j) => (a.v[i0! + j]! - mean) / Math.max(hi - lo, 1e-12));
      for (let y = 0; y < a.h; y++)
        for (let x = 0; x < a.w; x++)
          for (let c = 0; c < a.c; c++) {
            let r = 0;
            for (let dy = -1; dy <= 1; dy++)
              for (let dx = -1; dx <= 1; dx++) {
                const yy = y + dy;
                const xx = x + dx;
                if (yy >= 0 && yy < a.h && xx >= 0 && xx < a.w) r += q.kernel[dy + 1]![dx + 1]! * z[(yy * a.w + xx) * a.c + c]!;
              }
            out[i0! + (y * a.w + x) * a.c + c] = 0.5 * Math.sign(r + 1e-3) + 0.5;
          }
    }
  }
  return { ...a, v: out };
}

function dorefaWeights(w: Float32Array, bits: number): Float64Array {
  const t = Float64Array.from(w, Math.tanh);
  const m = t.reduce((s, x) => Math.max(s, Math.abs(x)), 0);
  const n = 2 ** bits - 1;
  return t.map((x) => m * ((2 * rhe((x / (2 * m) + 0.5) * n)) / n - 1));
}

function conv(a: Act, L: Record<string, unknown>, P: Record<string, StTensor>): Act {
  const wt = P[L.weight as string]!;
  const [kh, kw, ci, co] = wt.shape as [number, number, number, number];
  const q = L.weight_quant as { bits: number } | null;
  const w = q ? dorefaWeights(wt.v, q.bits) : Float64Array.from(wt.v);
  const b = L.bias ? P[L.bias as string]!.v : undefined;
  const [sh, sw] = L.strides as [number, number];
  const pads = L.pads as { top: number; left: number; bottom: number; right: number };
  const oh = Math.floor((a.h + pads.top + pads.bottom - kh) / sh) + 1;
  const ow = Math.floor((a.w + pads.left + pads.right - kw) / sw) + 1;
  const out = new Float64Array(a.n * oh * ow * co);
  for (let n = 0; n < a.n; n++)
    for (let y = 0; y < oh; y++)
      for (let x = 0; x < ow; x++) {
        const o0 = ((n * oh + y) * ow + x) * co;
        if (b) for (let o = 0; o < co; o++) out[o0 + o] = b[o]!;
        for (let dy = 0; dy < kh; dy++) {
          const yy = y * sh + dy - pads.top;
          if (yy < 0 || yy >= a.h) continue;
          for (let dx = 0; dx < kw; dx++) {
            const xx = x * sw + dx - pads.left;
            if (xx < 0 || xx >= a.w) continue;
            const src = ((n * a.h + yy) * a.w + xx) * a.c;
            for (let i = 0; i < ci; i++) {
              const v = a.v[src + i]!;
              const w0 = ((dy * kw + dx) * ci + i) * co;
              for (let o = 0; o < co; o++) out[o0 + o] += v * w[w0 + o]!;
            }
          }
        }
      }
  return { n: a.n, h: oh, w: ow, c: co, v: out };
}

function dense(a: Act, L: Record<string, unknown>, P: Record<string, StTensor>): Act {
  const wt = P[L.weight as string]!;
  const [nin, nout] = wt.shape as [number, number];
  const q = L.weight_quant as { bits: number } | null;
  const w = q ? dorefaWeights(wt.v, q.bits) : Float64Array.from(wt.v);
  const b = P[L.bias as string]!.v;
  const out = new Float64Array(a.n * nout);
  for (let n = 0; n < a.n; n++)
    for (let j = 0; j < nout; j++) {
      let s = b[j]!;
      for (let i = 0; i < nin; i++) s += a.v[n * nin + i]! * w[i * nout + j]!;
      out[n * nout + j] = s;
    }
  return { n: a.n, h: 1, w: 1, c: nout, v: out };
}

function maxPool(a: Act): Act {
  const oh = Math.floor(a.h / 2);
  const ow = Math.floor(a.w / 2);
  const out = new Float64Array(a.n * oh * ow * a.c);
  for (let n = 0; n < a.n; n++)
    for (let y = 0; y < oh; y++)
      for (let x = 0; x < ow; x++)
        for (let c = 0; c < a.c; c++) {
          let m = -Infinity;
          for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) m = Math.max(m, a.v[((n * a.h + 2 * y + dy) * a.w + 2 * x + dx) * a.c + c]!);
          out[((n * oh + y) * ow + x) * a.c + c] = m;
        }
  return { ...a, h: oh, w: ow, v: out };
}

function perChannel(a: Act, f: (x: number, c: number) => number): Act {
  return { ...a, v: a.v.map((x, i) => f(x, i % a.c)) };
}

function layer(L: Net['layers'][number], ins: Act[], P: Record<string, StTensor>): Act {
  const a = ins[0]!;
  switch (L.op) {
    case 'conv2d':
      return conv(a, L, P);
    case 'dense':
      return dense(a, L, P);
    case 'batch_norm': {
      const [g, b, m, v] = ['gamma', 'beta', 'mean', 'var'].map((k) => P[L[k] as string]!.v);
      return perChannel(a, (x, c) => ((x - m![c]!) / Math.sqrt(v![c]! + (L.epsilon as number))) * g![c]! + b![c]!);
    }
    case 'relu':
      return perChannel(a, (x) => Math.max(0, x));
    case 'dorefa_activation': {
      const n = 2 ** (L.bits as number) - 1;
      return perChannel(a, (x) => rhe(Math.min(1, Math.max(0, x)) * n) / n);
    }
    case 'max_pool':
      return maxPool(a);
    case 'add':
      return { ...a, v: a.v.map((x, i) => x + ins[1]!.v[i]!) };
    case 'global_avg_pool': {
      const out = new Float64Array(a.n * a.c);
      for (let i = 0; i < a.v.length; i++) out[Math.floor(i / (a.h * a.w * a.c)) * a.c + (i % a.c)]! += a.v[i]! / (a.h * a.w);
      return { n: a.n, h: 1, w: 1, c: a.c, v: out };
    }
    case 'flatten':
      if ((L.order as string) !== 'HWC') throw new Error(`flatten order ${String(L.order)}`);
      return { n: a.n, h: 1, w: 1, c: a.h * a.w * a.c, v: a.v };
  }
  throw new Error(`unknown layer op ${L.op}`);
}

/**
 * Rescales one layer's weights and bias in P so that its output has mean 0 and sd 1 per channel
 * over the batch (data-dependent initialisation), and returns that output.
 */
function normalised(L: Net['layers'][number], y: Act, P: Record<string, StTensor>): Act {
  const w = P[L.weight as string]!.v;
  const b = P[L.bias as string]!.v;
  const sum = new Float64Array(y.c);
  const sq = new Float64Array(y.c);
  y.v.forEach((x, i) => {
    sum[i % y.c]! += x;
    sq[i % y.c]! += x * x;
  });
  const count = y.v.length / y.c;
  const mean = Array.from(sum, (s) => s / count);
  const sd = Array.from(sq, (s, c) => Math.sqrt(Math.max(s / count - mean[c]! ** 2, 0)) || 1);
  w.forEach((x, i) => (w[i] = x / sd[i % y.c]!));
  b.forEach((x, c) => (b[c] = (x - mean[c]!) / sd[c]!));
  return perChannel(y, (x, c) => (x - mean[c]!) / sd[c]!);
}

/** Logits [N, classes] of NHWC images in [0, 1]; `normalise` rescales each biased, unquantised hidden layer (see normalised). */
export function forwardFromModelJson(net: Net, P: Record<string, StTensor>, images: Float32Array, n: number, normalise = false): Float64Array {
  const [h, w, c] = net.input.shape;
  let x: Act = { n, h, w, c, v: Float64Array.from(images) };
  x = perChannel(x, (v, ch) => (v - net.normalize.mean[ch]!) / net.normalize.std[ch]!);
  if (net.input_quant) x = inputQuant(x, net.input_quant);
  const values = new Map<string, Act>([['input', x]]);
  for (const L of net.layers) {
    const y = layer(
      L,
      L.inputs.map((i) => values.get(i)!),
      P,
    );
    const adjust = normalise && (L.op === 'conv2d' || L.op === 'dense') && L.bias && !L.weight_quant && L.id !== net.output.id;
    values.set(L.id, adjust ? normalised(L, y, P) : y);
  }
  return values.get(net.output.id)!.v;
}
