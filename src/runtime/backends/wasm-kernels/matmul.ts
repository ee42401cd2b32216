/** BatchMatMul without broadcasting, transposed operands included (the shipped path is slow). */
import { free, k, malloc, off, stock, type KernelArgs, type TensorInfo, type WasmBackend } from './memory.js';

/** Batched matmul without broadcasting, including transposed operands (the shipped path is slow). */
export function batchMatMul(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { a, b: bb } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const ta = !!args.attrs.transposeA;
  const tb = !!args.attrs.transposeB;
  if (a.dtype !== 'float32' || a.shape.length !== 3 || bb.shape.length !== 3 || a.shape[0] !== bb.shape[0]) return stock('BatchMatMul', args);
  const [batch, a1, a2] = a.shape as [number, number, number];
  const [, b1, b2] = bb.shape as [number, number, number];
  const [M, Ka] = ta ? [a2, a1] : [a1, a2];
  const [Kb, N] = tb ? [b2, b1] : [b1, b2];
  if (Ka !== Kb) return stock('BatchMatMul', args);
  const out = b.makeOutput([batch, M, N], 'float32');
  // The plain product vectorises over N, so operands are arranged (with cheap transposes) to
  // make the longer output side N: C = A B, or C^T = B^T A^T then transposed back.
  const flip = N < 16 && M > N;
  const tmp: number[] = [];
  const arrange = (t: TensorInfo, transposed: boolean, wantTransposed: boolean, r: number, c: number): number => {
    if (transposed === wantTransposed) return off(b, t);
    const p = malloc(batch * r * c * 4);
    tmp.push(p);
    k().transpose4(off(b, t), p, 1, batch, r, c, 0, 1, 3, 2);
    return p;
  };
  const co = off(b, out);
  if (!flip) {
    const ao = arrange(a, ta, false, a1, a2);
    const bo = arrange(bb, tb, false, b1, b2);
    for (let i = 0; i < batch; i++) k().matmul(ao + i * M * Ka * 4, bo + i * Ka * N * 4, co + i * M * N * 4, M, Ka, N, 0, 0);
  } else {
    const bo = arrange(bb, tb, true, b1, b2); // B^T: [N, K]
    const ao = arrange(a, ta, true, a1, a2); // A^T: [K, M]
    const ct = malloc(batch * N * M * 4);
    tmp.push(ct);
    for (let i = 0; i < batch; i++) k().matmul(bo + i * N * Ka * 4, ao + i * Ka * M * 4, ct + i * N * M * 4, N, Ka, M, 0, 0);
    k().transpose4(ct, co, 1, batch, N, M, 0, 1, 3, 2);
  }
  tmp.forEach(free);
  return out;
}
