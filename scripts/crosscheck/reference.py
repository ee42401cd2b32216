#!/usr/bin/env python3
"""Runs the reference AutoAttack (fra31/auto-attack, PyTorch) on a trend cross-check case.

  python3 scripts/crosscheck/reference.py --aa /tmp/aa-ref --case DIR --norm Linf --eps 0.1 \
      [--attacks apgd-ce,apgd-t,fab-t,square,square-resc,apgd-dlr,standard,rand] [--seed 0] [--threads 1]
      [--n 0] [--input-noise 0]

--aa is the folder holding the reference's `autoattack` package (it is not part of trend). The
case (export-case.ts) holds trend's weights as .npy in trend's layouts; they are loaded into an
equivalent torch module (conv [kh,kw,in,out] -> [out,in,kh,kw], dense [in,out] -> [out,in]; the
input is normalised inside, and flattened in NHWC order so that the dense weights match). The
module's logits on x.npy are first compared with trend's (logits.npy); then each attack runs
alone on all N images, with AutoAttack's 'standard' settings (APGD-CE 100 iterations 1 restart,
APGD-T 9 targets, FAB-T 9 targets, Square 5000 queries p_init 0.8 without the rescaled schedule;
`square-resc` is Square with resc_schedule=True, the schedule trend's square follows), and
`standard` is AutoAttack(version='standard').run_standard_evaluation, `rand` the same with
version='rand' (APGD-CE and APGD-DLR, 1 restart each, eot_iter 20); `apgd-dlr` is APGD on the DLR
loss alone (1 restart). --input-noise SD adds N(0, SD^2) to the normalised input on every forward
pass of the attacks and of the clean and final predictions (the logits check stays noise-free).
Under L1 the settings are set_version's for L1: APGD-CE with 5 restarts and use_largereps, APGD-T
with 5 target classes and use_largereps; FAB-T and Square as above, under L1. Prints one JSON object:
robust accuracy per attack, and per image a 0/1 string (1 = robust) for comparison with trend's.
"""
import argparse
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class TrendNet(nn.Module):
    """trend's mlp or cnn (src/runtime/models/zoo.ts) with its weights, on NCHW input in [0, 1]."""

    def __init__(self, case, input_noise=0.0):
        super().__init__()
        self.input_noise = input_noise  # sd of N(0, sd^2) added to the normalised input (trend's fixed input noise)
        info = json.load(open(os.path.join(case, 'model.json')))
        spec = info['spec']
        self.arch = spec['arch']
        p = {d['name']: torch.from_numpy(np.load(os.path.join(case, d['file'])).astype(np.float32)) for d in info['params']}
        self.register_buffer('mean', torch.tensor(spec['mean'], dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor(spec['std'], dtype=torch.float32).view(1, -1, 1, 1))
        self.layers = nn.ModuleDict()
        for name in sorted({k.split('/')[0] for k in p}):
            w = p[name + '/w']
            if w.dim() == 4:  # [kh, kw, in, out] -> [out, in, kh, kw]; 'same' padding, stride 1
                conv = nn.Conv2d(w.shape[2], w.shape[3], w.shape[0], padding=w.shape[0] // 2)
                conv.weight.data = w.permute(3, 2, 0, 1).contiguous()
                conv.bias.data = p[name + '/b'].clone()
                self.layers[name] = conv
            else:  # [in, out] -> [out, in]
                lin = nn.Linear(w.shape[0], w.shape[1])
                lin.weight.data = w.t().contiguous()
                lin.bias.data = p[name + '/b'].clone()
                self.layers[name] = lin
        if self.arch not in ('mlp', 'cnn'):
            raise SystemExit(f'architecture {self.arch} is not supported here')

    def forward(self, x):
        h = (x - self.mean) / self.std
        if self.input_noise > 0:
            h = h + self.input_noise * torch.randn_like(h)
        L = self.layers
        if self.arch == 'cnn':
            h = F.max_pool2d(F.relu(L['conv1'](h)), 2)
            h = F.max_pool2d(F.relu(L['conv2'](h)), 2)
            return L['out'](h.permute(0, 2, 3, 1).reshape(h.shape[0], -1))
        h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
        h = F.relu(L['fc1'](h))
        h = F.relu(L['fc2'](h))
        return L['out'](h)


def flags_of(model, x, y, adv, norm, eps):
    """Robust per image: adv classified as y, or (not counted as an attack success) outside the budget."""
    with torch.no_grad():
        ok = model(adv).argmax(1) == y
    d = (adv - x).reshape(x.shape[0], -1)
    size = d.abs().max(1)[0] if norm == 'Linf' else d.abs().sum(1) if norm == 'L1' else d.norm(dim=1)
    over = size > eps * (1 + 1e-5)
    return (ok | over), int(over.sum())


def run_one(name, model, x, y, norm, eps, seed):
    from autoattack.autopgd_base import APGDAttack, APGDAttack_targeted
    from autoattack.fab_pt import FABAttack_PT
    from autoattack.square import SquareAttack

    l1 = norm == 'L1'  # set_version('standard') under L1: 5 restarts / 5 targets, use_largereps
    if name == 'apgd-ce':
        a = APGDAttack(model, n_iter=100, norm=norm, n_restarts=5 if l1 else 1, eps=eps, seed=seed, loss='ce', eot_iter=1, rho=.75, device='cpu')
        a.use_largereps = l1
        return a.perturb(x, y)
    if name == 'apgd-t':
        a = APGDAttack_targeted(model, n_iter=100, norm=norm, n_restarts=1, eps=eps, seed=seed, eot_iter=1, rho=.75, n_target_classes=5 if l1 else 9,
                                device='cpu')
        a.use_largereps = l1
        return a.perturb(x, y)
    if name == 'fab-t':
        a = FABAttack_PT(model, norm=norm, n_restarts=1, n_iter=100, eps=eps, seed=seed, targeted=True, n_target_classes=9, device='cpu')
        return a.perturb(x, y)
    if name == 'apgd-dlr':
        a = APGDAttack(model, n_iter=100, norm=norm, n_restarts=1, eps=eps, seed=seed, loss='dlr', eot_iter=1, rho=.75, device='cpu')
        return a.perturb(x, y)
    if name in ('square', 'square-resc'):
        a = SquareAttack(model, p_init=.8, n_queries=5000, eps=eps, norm=norm, n_restarts=1, seed=seed, verbose=False, device='cpu',
                         resc_schedule=(name == 'square-resc'))
        with torch.no_grad():
            return a.perturb(x, y)
    raise SystemExit(f'unknown attack {name}')


class StageLog:
    """AutoAttack's logger, to stderr, keeping the robust count after each stage."""

    def __init__(self, n):
        self.n, self.after, self.clean = n, [], None

    def log(self, msg):
        print(msg, file=sys.stderr)
        m = re.match(r'robust accuracy after (\S+): ([0-9.]+)%', msg)
        if m:
            self.after.append({'name': m.group(1).lower(), 'robust': round(float(m.group(2)) * self.n / 100)})
        m = re.match(r'initial accuracy: ([0-9.]+)%', msg)
        if m:
            self.clean = round(float(m.group(1)) * self.n / 100)


def run_composite(model, x, y, a, version):
    """AutoAttack(version).run_standard_evaluation on all images in one batch; its log goes to stderr."""
    from autoattack import AutoAttack
    aa = AutoAttack(model, norm=a.norm, eps=a.eps, version=version, seed=a.seed, device='cpu', verbose=False)
    log = StageLog(len(y))
    aa.logger, aa.verbose = log, True
    for at in (aa.apgd, aa.apgd_targeted):
        at.logger = log
    adv = aa.run_standard_evaluation(x, y, bs=len(y))
    return adv, {'clean': log.clean, 'after': log.after}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--aa', required=True, help="folder holding the reference's autoattack package")
    ap.add_argument('--case', required=True)
    ap.add_argument('--norm', choices=['Linf', 'L2', 'L1'], required=True)
    ap.add_argument('--eps', type=float, required=True)
    ap.add_argument('--attacks', default='apgd-ce,apgd-t,fab-t,square,square-resc,standard')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--n', type=int, default=0, help='first n images only (0: all)')
    ap.add_argument('--input-noise', type=float, default=0.0,
                    help='randomised model: sd of N(0, sd^2) added to the normalised input on every forward pass')
    a = ap.parse_args()
    sys.path.insert(0, a.aa)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    model = TrendNet(a.case).eval()  # no noise for the logits check; --input-noise applies to the attacks
    xs = np.load(os.path.join(a.case, 'x.npy'))  # NHWC
    ys = np.load(os.path.join(a.case, 'y.npy'))
    if a.n:
        xs, ys = xs[:a.n], ys[:a.n]
    x = torch.from_numpy(xs).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(ys.astype(np.int64))
    trend_logits = np.load(os.path.join(a.case, 'logits.npy'))[:len(ys)]
    with torch.no_grad():
        logits = model(x)
    diff = float(np.abs(logits.numpy() - trend_logits).max())
    clean = (logits.argmax(1) == y)
    out = {'side': 'reference', 'case': a.case, 'norm': a.norm, 'eps': a.eps, 'n': len(ys), 'seed': a.seed,
           'inputNoise': a.input_noise, 'logitsMaxAbsDiff': diff, 'clean': float(clean.float().mean()), 'attacks': {}}
    print(f'logits: max |torch - trend| = {diff:.3g} over {len(ys)} images', file=sys.stderr)
    if diff >= 1e-4:
        raise SystemExit('the torch module does not reproduce trend\'s logits: stopping')

    model.input_noise = a.input_noise
    if a.input_noise > 0:  # randomised model: clean correctness is one noisy pass too, as trend's
        with torch.no_grad():
            clean = model(x).argmax(1) == y
        out['clean'] = float(clean.float().mean())
    for name in [s for s in a.attacks.split(',') if s]:
        t0 = time.time()
        stages = None
        if name in ('standard', 'rand'):
            adv, stages = run_composite(model, x, y, a, name)
        else:
            adv = run_one(name, model, x, y, a.norm, a.eps, a.seed)
        flags, over = flags_of(model, x, y, adv.detach(), a.norm, a.eps)
        flags = flags & clean
        out['attacks'][name] = {'robust': float(flags.float().mean()), 'flags': ''.join('1' if f else '0' for f in flags.tolist()),
                                'overBudget': over, 'seconds': round(time.time() - t0, 1)}
        if stages is not None:
            out['attacks'][name]['stages'] = stages
        print(f'{name}: robust {float(flags.float().mean()):.3f} ({time.time() - t0:.0f} s)', file=sys.stderr)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
