import { beforeAll, describe, expect, it } from 'vitest';
import { netFlops, totals, traceLayers } from '../../bench/flops.js';
import { netSpec, NETS } from '../../bench/nets.js';
import { selectBackend } from '../../src/runtime/backends/select.js';
import { Model } from '../../src/runtime/models/model.js';
import { Net, seq } from '../../src/runtime/models/net.js';
import { tf } from '../../src/runtime/tf.js';

/** Hand counts: multiply-adds of a conv with output side s (square), and of a dense layer. */
const conv = (s: number, cout: number, cin: number, k: number) => s * s * cout * cin * k * k;
const dense = (i: number, o: number) => i * o;

/** Parameters written out by hand (bn: gamma and beta; the running statistics are not trained). */
const convP = (cin: number, cout: number, k: number) => k * k * cin * cout;
const bnP = (c: number) => 2 * c;

describe('bench FLOP counter', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('counts the bench cnn as bench/cnn.ts does by hand', async () => {
    const m = Model.create(netSpec('cnn', 1), 1);
    const f = await netFlops(m);
    m.dispose();
    // bench/cnn.ts's constants.
    const FWD_FLOPS = 2 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10);
    const INPUT_GRAD_FLOPS = FWD_FLOPS + 2 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10);
    const TRAIN_FLOPS = FWD_FLOPS + 2 * (14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10) + 2 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10);
    expect(f.layers.map((l) => l.flops)).toEqual([2 * 28 * 28 * 32 * 9, 2 * 14 * 14 * 64 * 32 * 9, 2 * 7 * 7 * 64 * 10]);
    expect(f.forward).toBe(FWD_FLOPS);
    expect(f.inputGrad).toBe(INPUT_GRAD_FLOPS);
    expect(f.train).toBe(TRAIN_FLOPS);
  });

  it('counts a strided basic block with a projected shortcut', async () => {
    // 14x14x8 -> 7x7x16: two 3x3 convs (the first at stride 2) and a 1x1 stride-2 shortcut.
    const net = new Net({});
    const main = seq(
      net.conv('c1', 8, 16, 3, 2, { bias: false }),
      net.bn('bn1', 16),
      net.act(),
      net.conv('c2', 16, 16, 3, 1, { bias: false }),
      net.bn('bn2', 16),
    );
    const short = seq(net.conv('sc', 8, 16, 1, 2, { bias: false }), net.bn('scbn', 16));
    const P = new Map(net.decls.map((d) => [d.name, tf.ones(d.shape)]));
    const x = tf.ones([1, 14, 14, 8]);
    const layers = await traceLayers(() => tf.relu(tf.add(main(P, x, { training: false }), short(P, x, { training: false }))));
    [x, ...P.values()].forEach((t) => t.dispose());
    expect(layers.map((l) => l.flops)).toEqual([2 * 7 * 7 * 16 * 8 * 9, 2 * 7 * 7 * 16 * 16 * 9, 2 * 7 * 7 * 16 * 8]);
    const t = totals(layers);
    expect(t.forward).toBe(2 * (7 * 7 * 16 * 8 * 9 + 7 * 7 * 16 * 16 * 9 + 7 * 7 * 16 * 8));
    // The first conv is the block's 3x3: its input gradient is left out of training.
    expect(t.train).toBe(3 * t.forward - 2 * 7 * 7 * 16 * 8 * 9);
  });

  it("counts the benchmarked networks' layers and parameters by hand", async () => {
    const block = (s: number, cin: number, cout: number) => conv(s, cout, cin, 3) + conv(s, cout, cout, 3) + (cin !== cout ? conv(s, cout, cin, 1) : 0);
    const resnetMacs =
      conv(28, 4, 1, 3) +
      2 * block(28, 4, 4) +
      block(14, 4, 8) +
      block(14, 8, 8) +
      block(7, 8, 16) +
      block(7, 16, 16) +
      block(4, 16, 32) +
      block(4, 32, 32) +
      dense(32, 10);
    const vggMacs =
      conv(28, 8, 1, 3) +
      conv(14, 16, 8, 3) +
      conv(7, 32, 16, 3) +
      conv(7, 32, 32, 3) +
      conv(3, 64, 32, 3) +
      conv(3, 64, 64, 3) +
      conv(1, 64, 64, 3) +
      conv(1, 64, 64, 3) +
      dense(64, 10);
    const blockP = (cin: number, cout: number) =>
      convP(cin, cout, 3) + convP(cout, cout, 3) + 2 * bnP(cout) + (cin !== cout ? convP(cin, cout, 1) + bnP(cout) : 0);
    const resnetP =
      convP(1, 4, 3) +
      bnP(4) +
      2 * blockP(4, 4) +
      blockP(4, 8) +
      blockP(8, 8) +
      blockP(8, 16) +
      blockP(16, 16) +
      blockP(16, 32) +
      blockP(32, 32) +
      32 * 10 +
      10;
    const vggChannels = [1, 8, 16, 32, 32, 64, 64, 64, 64];
    const vggP = vggChannels.slice(1).reduce((s, c, i) => s + convP(vggChannels[i]!, c, 3) + bnP(c), 0) + 64 * 10 + 10;
    const want = { resnet18_w16: { macs: resnetMacs, params: resnetP }, vgg11bn_w8: { macs: vggMacs, params: vggP } };
    for (const n of NETS) {
      const m = Model.create(netSpec(n.arch, n.width), 1);
      const f = await netFlops(m);
      expect(f.forward, n.id).toBe(2 * want[n.id].macs);
      expect(m.paramCount(), n.id).toBe(want[n.id].params);
      m.dispose();
    }
    // The figures scripts/bench/torch_nets.py checks PyTorch's copies against.
    expect([resnetP, vggP, 2 * resnetMacs, 2 * vggMacs]).toEqual([44_550, 145_410, 3_614_464, 3_063_296]);
  });
});
