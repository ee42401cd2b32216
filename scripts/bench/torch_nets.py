#!/usr/bin/env python3
"""PyTorch reference for `npm run bench -- --only nets` (bench/nets.ts): the same networks, timed
the same way, on the CPU.

  /usr/bin/python3 scripts/bench/torch_nets.py [--quick] [--threads 2] [--check] [--cnn]

Builds trend's resnet18 at width 1/16 and vgg11bn at width 1/8 (src/runtime/models/zoo.ts) for
28x28x1 input and 10 classes: the input is normalised inside ((x - 0.13) / 0.31), convolutions
use TensorFlow's 'same' padding (at stride 2 on an even map that pads one pixel on the bottom and
right only, as TF.js does), convolutions before batch norm have no bias, the ResNet's shortcut is
a 1x1 convolution plus batch norm when the stride or the width changes, and max-pools are skipped
once the VGG's map is 1x1. Before timing, the parameter counts and forward FLOPs are checked
against trend's (the constants below; test/bench/flops.test.ts checks trend's own networks
against the same numbers): a mismatch exits 1. --check stops there.

Then, batch 64 on random images, with torch.set_num_threads(2), each figure the best of several
repetitions after warm-up (as the TS bench):
  train       one SGD step (momentum 0.9, weight decay 5e-4, mean cross-entropy, training mode)
  input_grad  the gradient of the summed cross-entropy with respect to the input, evaluation mode
  pgd10       l_inf PGD (eps 0.3, step 0.01, random start, 10 steps) on the resnet18, then the
              vgg11bn classifies the adversarial batch
With --cnn, also bench/cnn.ts's network at its batch of 128 (cnn.torch.input_grad.*, cnn.torch.train.*).
Prints one {"name", "value", "unit"} JSON object a line, named as the TS bench's figures with
`torch.` after `nets.` (nets.torch.resnet18_w16.train.images_per_s, ...). FLOPs follow
bench/flops.ts's convention: forward F (conv and dense multiply-adds x 2), input gradient 2F,
training 3F minus the first convolution's input gradient.

On a machine whose cores are busy with other work, 2-thread timings collapse on both sides
(PyTorch's OpenMP workers and trend's thread pool wait on descheduled threads): compare on a quiet
machine, or both at one thread (--threads 1 here, TREND_WASM_NO_THREADS=1 for the TS bench).
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

B = 64
MEAN, STD = 0.13, 0.31
# trend's trainable parameters and forward FLOPs per image (test/bench/flops.test.ts).
TREND = {'resnet18_w16': (44_550, 3_614_464), 'vgg11bn_w8': (145_410, 3_063_296)}


def ch(c, w):
    """layout.ts's ch(): a channel count under a width multiplier (JS Math.round: halves up)."""
    return max(1, math.floor(c * w + 0.5))


class SameConv(nn.Conv2d):
    """A bias-free convolution with TensorFlow's 'same' padding (asymmetric when the total is odd)."""

    def __init__(self, cin, cout, k, stride):
        super().__init__(cin, cout, k, stride=stride, padding=0, bias=False)

    def forward(self, x):
        pads = []
        for size in (x.shape[3], x.shape[2]):  # F.pad takes the last dimension first
            k, s = self.kernel_size[0], self.stride[0]
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


class Normalise(nn.Module):
    def forward(self, x):
        return (x - MEAN) / STD


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.main = nn.Sequential(
            SameConv(cin, cout, 3, stride), nn.BatchNorm2d(cout), nn.ReLU(), SameConv(cout, cout, 3, 1), nn.BatchNorm2d(cout)
        )
        self.short = nn.Sequential(SameConv(cin, cout, 1, stride), nn.BatchNorm2d(cout)) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.main(x) + self.short(x))


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


def resnet18(width, cin=1, classes=10):
    planes = [ch(p, width) for p in (64, 128, 256, 512)]
    layers = [Normalise(), SameConv(cin, planes[0], 3, 1), nn.BatchNorm2d(planes[0]), nn.ReLU()]
    c = planes[0]
    for stage, n in enumerate((2, 2, 2, 2)):
        for b in range(n):
            layers.append(BasicBlock(c, planes[stage], 2 if b == 0 and stage > 0 else 1))
            c = planes[stage]
    return nn.Sequential(*layers, GlobalAvgPool(), nn.Linear(c, classes))


VGG11 = [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M']


def vgg11bn(width, side=28, cin=1, classes=10):
    layers = [Normalise()]
    for v in VGG11:
        if v == 'M':
            if side >= 2:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            continue
        cout = ch(v, width)
        layers += [SameConv(cin, cout, 3, 1), nn.BatchNorm2d(cout), nn.ReLU()]
        cin = cout
    # trend flattens NHWC; the map is 1x1 here, so the order is the channels' either way.
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(side * side * cin, classes))


def bench_cnn():
    """bench/cnn.ts's network: conv3x3x32 (same, bias), ReLU, max-pool 2, conv3x3x64, ReLU, max-pool 2, dense 10."""
    return nn.Sequential(
        Normalise(),
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 10),
    )


# bench/cnn.ts: 50,186 parameters; batch 128; its FLOP constants (input gradient: forward plus every
# layer's input gradient; training: forward, conv2's and the dense layer's input gradients and all
# filter gradients).
CNN_B = 128
CNN_FWD = 2 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10)
CNN_INPUT_GRAD = 2 * CNN_FWD
CNN_TRAIN = CNN_FWD + 2 * (14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10) + 2 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10)


def cnn_figures(reps, inner):
    """The bench cnn's two figures, named as bench/cnn.ts's with `torch` for the backend."""
    model = bench_cnn()
    params = sum(p.numel() for p in model.parameters())
    if params != 50_186:
        sys.exit(f'bench cnn: {params} parameters in PyTorch, 50186 in trend')
    x = torch.rand(CNN_B, 1, 28, 28)
    y = torch.arange(CNN_B) % 10
    ms = best_ms(lambda: input_grad(model, x, y), reps, inner)
    emit('cnn.torch.input_grad.images_per_s', round(CNN_B / ms * 1000), 'images/s')
    emit('cnn.torch.input_grad.gflops', round(CNN_INPUT_GRAD * CNN_B / ms / 1e6, 1), 'GFLOP/s')
    ms = best_ms(train_step(model, x, y), reps, inner)
    emit('cnn.torch.train.images_per_s', round(CNN_B / ms * 1000), 'images/s')
    emit('cnn.torch.train.gflops', round(CNN_TRAIN * CNN_B / ms / 1e6, 1), 'GFLOP/s')


def forward_flops(model):
    """Forward FLOPs per image and the first convolution's, by hooks on one image."""
    counts = []

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            counts.append(2 * out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1])
        else:
            counts.append(2 * m.in_features * m.out_features)

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    for h in hs:
        h.remove()
    return sum(counts), counts[0]


def best_ms(f, reps, inner, warm=3):
    for _ in range(warm):
        f()
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            f()
        best = min(best, (time.perf_counter() - t) / inner * 1000)
    return best


def train_step(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()

    return step


def input_grad(model, x, y):
    model.eval()
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction='sum'), x)
    return g


def pgd10_transfer(src, dst, x, y, gen):
    eps, step = 0.3, 0.01
    adv = (x + torch.empty_like(x).uniform_(-eps, eps, generator=gen)).clamp(0, 1)
    for _ in range(10):
        g = input_grad(src, adv, y)
        adv = torch.min(torch.max(adv + step * g.sign(), x - eps), x + eps).clamp(0, 1)
    dst.eval()
    with torch.no_grad():
        return dst(adv).argmax(1)


def emit(name, value, unit):
    print(json.dumps({'name': name, 'value': value, 'unit': unit}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--check', action='store_true', help='check the architectures, time nothing')
    ap.add_argument('--cnn', action='store_true', help="also time bench/cnn.ts's network (batch 128), as cnn.torch.*")
    a = ap.parse_args()
    torch.manual_seed(0)
    nets = {'resnet18_w16': resnet18(1 / 16), 'vgg11bn_w8': vgg11bn(1 / 8)}
    flops = {}
    for name, model in nets.items():
        params = sum(p.numel() for p in model.parameters())
        flops[name] = forward_flops(model)
        want = TREND[name]
        print(f'{name}: params torch {params} trend {want[0]}; forward FLOPs torch {flops[name][0]} trend {want[1]}', file=sys.stderr)
        if (params, flops[name][0]) != want:
            sys.exit(f'{name}: the PyTorch network does not match trend\'s')
    if a.check:
        return
    torch.set_num_threads(a.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads', file=sys.stderr)
    reps, inner = (3, 2) if a.quick else (7, 5)
    x = torch.rand(B, 1, 28, 28)
    y = torch.arange(B) % 10
    rate = lambda ms: round(B / ms * 1000)
    gflops = lambda f, ms: round(f * B / ms / 1e6, 1)
    for name, model in nets.items():
        fwd, first = flops[name]
        emit(f'nets.torch.{name}.params', sum(p.numel() for p in model.parameters()), 'params')
        ms = best_ms(train_step(model, x, y), reps, inner)
        emit(f'nets.torch.{name}.train.images_per_s', rate(ms), 'images/s')
        emit(f'nets.torch.{name}.train.gflops', gflops(3 * fwd - first, ms), 'GFLOP/s')
        ms = best_ms(lambda: input_grad(model, x, y), reps, inner)
        emit(f'nets.torch.{name}.input_grad.images_per_s', rate(ms), 'images/s')
        emit(f'nets.torch.{name}.input_grad.gflops', gflops(2 * fwd, ms), 'GFLOP/s')
    if a.cnn:
        cnn_figures(reps, inner)
    gen = torch.Generator().manual_seed(0)
    src, dst = nets['resnet18_w16'], nets['vgg11bn_w8']
    ms = best_ms(lambda: pgd10_transfer(src, dst, x, y, gen), 2 if a.quick else 5, 1, warm=1)
    fid = 'nets.torch.pgd10_transfer.resnet18_w16_to_vgg11bn_w8'
    emit(f'{fid}.images_per_s', rate(ms), 'images/s')
    emit(f'{fid}.gflops', gflops(10 * 2 * flops['resnet18_w16'][0] + flops['vgg11bn_w8'][0], ms), 'GFLOP/s')


if __name__ == '__main__':
    main()
