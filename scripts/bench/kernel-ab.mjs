// A/B of two builds of the convolution kernels, in one process and on one thread: both modules
// share one memory and run the same call on the same data, alternately, best of 40 each; the
// outputs must agree bit for bit. On a noisy VM this separates a 5% change from noise, which
// timing two whole processes does not.
//   node scripts/bench/kernel-ab.mjs OLD.wasm NEW.wasm
// e.g. OLD from `git show HEAD:kernels/kernels-fma.wasm > /tmp/old.wasm`. trend runs the FMA
// build where the engine has relaxed SIMD (Node 20: behind a flag trend sets), so time that one
// with `node --experimental-wasm-relaxed-simd scripts/bench/kernel-ab.mjs ...`.
import { readFileSync } from 'node:fs';
const [oldF, newF] = [process.argv[2], process.argv[3]];
const memory = new WebAssembly.Memory({ initial: 2048, maximum: 65536 });
const mk = (f) => {
  const i = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(f)), { env: { memory } });
  i.exports.__stack_pointer.value = 1 << 20;
  return i.exports;
};
const A = mk(oldF),
  B = mk(newF);
const f32 = () => new Float32Array(memory.buffer);
let top = 2 << 20;
const alloc = (n) => {
  const p = top;
  top += n * 4 + 64;
  top = (top + 63) & ~63;
  return p;
};
const shapes = [
  [28, 4, 4, 3, 1],
  [14, 8, 8, 3, 1],
  [7, 16, 16, 3, 1],
  [28, 4, 8, 3, 2],
  [14, 8, 16, 3, 2],
  [4, 32, 32, 3, 1],
  [28, 1, 4, 3, 1],
  [14, 32, 64, 3, 1],
];
const N = 64;
for (const [H, C, CO, K, s] of shapes) {
  top = 2 << 20;
  const OH = Math.ceil(H / s);
  const padTotal = Math.max((OH - 1) * s + K - H, 0);
  const Hp = H + padTotal,
    Wp = Hp;
  const xp = alloc(N * Hp * Wp * C),
    w = alloc(K * K * C * CO),
    bp = alloc(K * K * C * (Math.ceil(CO / 8) * 8)),
    y1 = alloc(N * OH * OH * CO),
    y2 = alloc(N * OH * OH * CO),
    scratch = alloc(1 << 16),
    bias = alloc(CO);
  const m = f32();
  for (let i = 0; i < N * Hp * Wp * C; i++) m[xp / 4 + i] = Math.random() - 0.5;
  for (let i = 0; i < K * K * C * CO; i++) m[w / 4 + i] = Math.random() - 0.5;
  A.pack_filter(w, bp, K, K, C, CO, 0);
  const M = N * OH * OH;
  const run = (E, y) => {
    const t = performance.now();
    E.conv_fwd_padded(xp, bp, bias, y, scratch, Hp, Wp, C, K, K, s, s, OH, OH, CO, 0, 0, M);
    return performance.now() - t;
  };
  let ta = 1e9,
    tb = 1e9;
  for (let r = 0; r < 40; r++) {
    ta = Math.min(ta, run(A, y1));
    tb = Math.min(tb, run(B, y2));
  }
  const mm = f32();
  let same = true;
  for (let i = 0; i < M * CO; i++)
    if (mm[y1 / 4 + i] !== mm[y2 / 4 + i]) {
      same = false;
      break;
    }
  console.log(`${H}x${H} ${C}->${CO} k${K} s${s}: old ${ta.toFixed(3)} new ${tb.toFixed(3)} ms (${(ta / tb).toFixed(2)}x) same=${same}`);
}
console.log('--- conv_dw_padded');
for (const [H, C, CO, K, s] of shapes) {
  top = 2 << 20;
  const OH = Math.ceil(H / s);
  const padTotal = Math.max((OH - 1) * s + K - H, 0);
  const Hp = H + padTotal,
    Wp = Hp,
    M = N * OH * OH;
  const xp = alloc(N * Hp * Wp * C),
    dy = alloc(M * CO),
    d1 = alloc(K * K * C * CO),
    d2 = alloc(K * K * C * CO),
    scratch = alloc(1 << 16);
  const m = f32();
  for (let i = 0; i < N * Hp * Wp * C; i++) m[xp / 4 + i] = Math.random() - 0.5;
  for (let i = 0; i < M * CO; i++) m[dy / 4 + i] = Math.random() - 0.5;
  const run = (E, d) => {
    f32().fill(0, d / 4, d / 4 + K * K * C * CO);
    const t = performance.now();
    E.conv_dw_padded(xp, dy, d, scratch, Hp, Wp, C, K, K, s, s, OH, OH, CO, 0, M);
    return performance.now() - t;
  };
  let ta = 1e9,
    tb = 1e9;
  for (let r = 0; r < 40; r++) {
    ta = Math.min(ta, run(A, d1));
    tb = Math.min(tb, run(B, d2));
  }
  const mm = f32();
  let same = true;
  for (let i = 0; i < K * K * C * CO; i++)
    if (mm[d1 / 4 + i] !== mm[d2 / 4 + i]) {
      same = false;
      break;
    }
  console.log(`${H}x${H} ${C}->${CO} k${K} s${s}: old ${ta.toFixed(3)} new ${tb.toFixed(3)} ms (${(ta / tb).toFixed(2)}x) same=${same}`);
}

console.log('--- conv_fwd, direct kernel (few outputs over many inputs: a first layer input gradient)');
for (const [H, C, CO, K] of [
  [28, 32, 1, 3],
  [28, 8, 1, 3],
  [28, 16, 3, 3],
  [14, 64, 4, 3],
]) {
  top = 2 << 20;
  const pt = (K - 1) >> 1;
  const M = N * H * H;
  const kdim = K * K * C;
  const ldk = Math.ceil(kdim / 4) * 4;
  const x = alloc(N * H * H * C),
    w = alloc(kdim * CO),
    bp = alloc(kdim * 8),
    bt = alloc(ldk * CO),
    y1 = alloc(M * CO),
    y2 = alloc(M * CO),
    scratch = alloc(1 << 16);
  const m = f32();
  for (let i = 0; i < N * H * H * C; i++) m[x / 4 + i] = Math.random() - 0.5;
  for (let i = 0; i < kdim * CO; i++) m[w / 4 + i] = Math.random() - 0.5;
  A.pack_filter(w, bp, K, K, C, CO, 0);
  A.narrow_from_panels(bp, bt, kdim, CO, ldk);
  const run = (E, y) => {
    const t = performance.now();
    E.conv_fwd(x, bt, 0, y, scratch, N, H, H, C, K, K, 1, 1, pt, pt, H, H, CO, 0, 0, M);
    return performance.now() - t;
  };
  let ta = 1e9,
    tb = 1e9;
  for (let r = 0; r < 40; r++) {
    ta = Math.min(ta, run(A, y1));
    tb = Math.min(tb, run(B, y2));
  }
  const mm = f32();
  let same = true;
  for (let i = 0; i < M * CO; i++)
    if (mm[y1 / 4 + i] !== mm[y2 / 4 + i]) {
      same = false;
      break;
    }
  console.log(`${H}x${H} ${C}->${CO} k${K}: old ${ta.toFixed(3)} new ${tb.toFixed(3)} ms (${(ta / tb).toFixed(2)}x) same=${same}`);
}
