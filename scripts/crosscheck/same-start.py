#!/usr/bin/env python3
"""One APGD run (the reference's attack_single_run) from a start point both sides share.

  python3 scripts/crosscheck/same-start.py --aa /tmp/aa-ref --case DIR --norm L2 --eps 1.5 --out DIR2 [--seed 0]

Takes the images of the case that the model classifies correctly, draws the reference's random
start for them once (Linf: x + eps t / ||t||_inf, t uniform in [-1, 1]; L2: x + eps t / ||t||_2,
t standard normal; clipped to [0, 1]) and writes it to DIR2 (start.npy, NHWC, with idx.npy, the
images' indices, and target.npy, the second-highest clean logit, for APGD-T's first target).
Then runs attack_single_run with x_init = that start on the CE loss, the DLR loss and the
targeted DLR loss towards target.npy, and prints per run the fooled flags and best losses as
JSON. same-start.ts runs trend's apgdRunSteps from the same start: with the random start taken
out, the two runs differ only in arithmetic.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import TrendNet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--aa', required=True)
    ap.add_argument('--case', required=True)
    ap.add_argument('--norm', choices=['Linf', 'L2'], required=True)
    ap.add_argument('--eps', type=float, required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    sys.path.insert(0, a.aa)
    from autoattack.autopgd_base import APGDAttack, APGDAttack_targeted
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    model = TrendNet(a.case).eval()
    x = torch.from_numpy(np.load(os.path.join(a.case, 'x.npy'))).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.load(os.path.join(a.case, 'y.npy')).astype(np.int64))
    with torch.no_grad():
        logits = model(x)
    idx = (logits.argmax(1) == y).nonzero().squeeze(1)
    xs, ys = x[idx], y[idx]
    flat = lambda v: v.reshape(v.shape[0], -1)
    if a.norm == 'Linf':
        t = 2 * torch.rand(xs.shape) - 1
        size = flat(t).abs().max(1)[0]
    else:
        t = torch.randn(xs.shape)
        size = flat(t).norm(dim=1)
    start = (xs + a.eps * t / (size.view(-1, 1, 1, 1) + 1e-12)).clamp(0., 1.)
    target = logits[idx].sort(dim=1)[1][:, -2]
    os.makedirs(a.out, exist_ok=True)
    np.save(os.path.join(a.out, 'start.npy'), start.permute(0, 2, 3, 1).contiguous().numpy())
    np.save(os.path.join(a.out, 'idx.npy'), idx.numpy().astype(np.int32))
    np.save(os.path.join(a.out, 'target.npy'), target.numpy().astype(np.int32))
    out = {'side': 'reference', 'n': len(ys), 'runs': {}}
    for loss in ('ce', 'dlr', 'dlr-targeted'):
        if loss in ('ce', 'dlr'):
            att = APGDAttack(model, n_iter=100, norm=a.norm, n_restarts=1, eps=a.eps, seed=a.seed, loss=loss, rho=.75, device='cpu')
        else:
            att = APGDAttack_targeted(model, n_iter=100, norm=a.norm, n_restarts=1, eps=a.eps, seed=a.seed, rho=.75, device='cpu')
            att.y_target = target
        att.init_hyperparam(xs)
        _, acc, loss_best, _ = att.attack_single_run(xs, ys, x_init=start)
        out['runs'][loss] = {'fooled': ''.join('0' if v else '1' for v in acc.bool().tolist()), 'lossBest': loss_best.tolist()}
        print(f'{loss}: fooled {int((acc == 0).sum())} of {len(ys)}', file=sys.stderr)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
