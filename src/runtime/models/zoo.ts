/**
 * Architectures, NHWC, for 28x28x1 and 32x32x3 inputs, with a width multiplier on every channel
 * count so the papers' networks fit a CPU:
 *   mlp       dense 256 - dense 128 - dense classes
 *   cnn       conv3x3x32 - pool - conv3x3x64 - pool - dense classes (the bench CNN)
 *   resnet18  CIFAR-style ResNet, basic blocks 2-2-2-2 on 64-128-256-512 channels
 *   resnet34  basic blocks 3-4-6-3
 *   vgg11/19  CIFAR-style VGG (pools skipped once the feature map is 1x1), optionally with BN
 */
import { tf } from '../tf.js';
import { ch, VGG } from './layout.js';
import { flatten, globalAvgPool, maxPool2, Net, seq, type Layer, type NetOptions } from './net.js';

export interface ArchInput {
  arch: string;
  width: number;
  shape: [number, number, number];
  classes: number;
}

type Built = { net: Net; forward: Layer };

export function buildArch(a: ArchInput, opts: NetOptions): Built {
  const net = new Net(opts);
  switch (a.arch) {
    case 'mlp':
      return mlp(net, a);
    case 'cnn':
      return cnn(net, a);
    case 'resnet18':
    case 'resnet34':
      return resnet(net, a);
    default:
      return vgg(net, a);
  }
}

function mlp(net: Net, a: ArchInput): Built {
  const [H, W, C] = a.shape;
  const h1 = ch(256, a.width);
  const h2 = ch(128, a.width);
  return {
    net,
    forward: seq(flatten, net.dense('fc1', H * W * C, h1), net.act(), net.dense('fc2', h1, h2), net.act(), net.dense('out', h2, a.classes, 'last')),
  };
}

function cnn(net: Net, a: ArchInput): Built {
  const [H, W, C] = a.shape;
  const c1 = ch(32, a.width);
  const c2 = ch(64, a.width);
  const side = (s: number) => Math.floor(Math.floor(s / 2) / 2);
  return {
    net,
    forward: seq(
      net.convAct('conv1', C, c1, 3, 1, { bias: true, role: 'first' }),
      maxPool2,
      net.convAct('conv2', c1, c2, 3, 1, { bias: true }),
      maxPool2,
      flatten,
      net.dense('out', side(H) * side(W) * c2, a.classes, 'last'),
    ),
  };
}

/** One basic block: two 3x3 convs with batch norm, plus the (projected) shortcut, then the activation. */
function basicBlock(net: Net, p: string, cin: number, cout: number, stride: number): Layer {
  const main = seq(
    net.conv(`${p}_c1`, cin, cout, 3, stride, { bias: false }),
    net.bn(`${p}_bn1`, cout),
    net.act(),
    net.conv(`${p}_c2`, cout, cout, 3, 1, { bias: false }),
    net.bn(`${p}_bn2`, cout),
  );
  const short: Layer | undefined =
    stride !== 1 || cin !== cout ? seq(net.conv(`${p}_sc`, cin, cout, 1, stride, { bias: false }), net.bn(`${p}_scbn`, cout)) : undefined;
  const act = net.act();
  return (P, x, ctx) => act(P, tfAdd(main(P, x, ctx), short ? short(P, x, ctx) : x), ctx);
}

function resnet(net: Net, a: ArchInput): Built {
  const C = a.shape[2];
  const blocks = a.arch === 'resnet18' ? [2, 2, 2, 2] : [3, 4, 6, 3];
  const planes = [64, 128, 256, 512].map((p) => ch(p, a.width));
  const layers: Layer[] = [net.conv('stem', C, planes[0]!, 3, 1, { bias: false, role: 'first' }), net.bn('stem_bn', planes[0]!), net.act()];
  let cin = planes[0]!;
  blocks.forEach((n, stage) => {
    for (let b = 0; b < n; b++) {
      const cout = planes[stage]!;
      layers.push(basicBlock(net, `s${stage + 1}b${b + 1}`, cin, cout, b === 0 && stage > 0 ? 2 : 1));
      cin = cout;
    }
  });
  layers.push(globalAvgPool, net.dense('out', cin, a.classes, 'last'));
  return { net, forward: seq(...layers) };
}

function vgg(net: Net, a: ArchInput): Built {
  const [H, W, C] = a.shape;
  const bn = a.arch.endsWith('bn');
  const cfg = VGG[a.arch.replace(/bn$/, '')];
  if (!cfg) throw new Error(`unknown architecture ${a.arch}`);
  const layers: Layer[] = [];
  let cin = C;
  let side = Math.min(H, W);
  let i = 0;
  for (const v of cfg) {
    if (v === 'M') {
      if (side >= 2) {
        layers.push(maxPool2);
        side = Math.floor(side / 2);
      }
      continue;
    }
    const cout = ch(v, a.width);
    i++;
    if (bn) layers.push(net.conv(`conv${i}`, cin, cout, 3, 1, { bias: false, role: i === 1 ? 'first' : 'hidden' }), net.bn(`bn${i}`, cout), net.act());
    else layers.push(net.convAct(`conv${i}`, cin, cout, 3, 1, { bias: true, role: i === 1 ? 'first' : 'hidden' }));
    cin = cout;
  }
  layers.push(flatten, net.dense('out', side * side * cin, a.classes, 'last'));
  return { net, forward: seq(...layers) };
}

function tfAdd(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.add(a, b);
}
