/** Max pooling 2x2/2 and its gradient: one SIMD pass each, split across threads by image. */
import { tf } from '../../tf.js';
import { bothThreads, k, off, pair, stock, type KernelArgs, type TensorInfo, type WasmBackend } from './memory.js';

export function maxPool(args: KernelArgs): TensorInfo {
  const b = args.backend as WasmBackend;
  const { x } = args.inputs as { x: TensorInfo };
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const fs = pair(args.attrs.filterSize as number | number[]);
  const st = pair(args.attrs.strides as number | number[]);
  const even = H % 2 === 0 && W % 2 === 0;
  if (
    x.dtype !== 'float32' ||
    fs[0] !== 2 ||
    fs[1] !== 2 ||
    st[0] !== 2 ||
    st[1] !== 2 ||
    !(args.attrs.pad === 'valid' || (args.attrs.pad === 'same' && even))
  ) {
    return stock('MaxPool', args);
  }
  const out = b.makeOutput([N, Math.floor(H / 2), Math.floor(W / 2), C], 'float32');
  const xi = H * W * C * 4;
  const yi = Math.floor(H / 2) * Math.floor(W / 2) * C * 4;
  bothThreads('maxpool2x2', N, H * W * C, (a, e) => [off(b, x) + a * xi, off(b, out) + a * yi, e - a, H, W, C]);
  return out;
}

export function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize as number,
    attrs.strides as number,
    1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined,
  );
  const [N, H, W, C] = input.shape as [number, number, number, number];
  const dx = b.makeOutput(input.shape, 'float32');
  const two =
    info.filterHeight === 2 && info.filterWidth === 2 && info.strideHeight === 2 && info.strideWidth === 2 && info.padInfo.top === 0 && info.padInfo.left === 0;
  if (two && H % 2 === 0 && W % 2 === 0) {
    const xi = H * W * C * 4;
    const yi = (H / 2) * (W / 2) * C * 4;
    bothThreads('maxpool2x2_backward', N, H * W * C, (a, e) => [off(b, input) + a * xi, off(b, dy) + a * yi, off(b, dx) + a * xi, e - a, H, W, C]);
    return dx;
  }
  k().maxpool_backward(
    off(b, input),
    off(b, dy),
    off(b, dx),
    N,
    H,
    W,
    C,
    info.outHeight,
    info.outWidth,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  );
  return dx;
}
