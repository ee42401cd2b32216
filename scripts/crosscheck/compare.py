#!/usr/bin/env python3
"""Compares trend-attacks.ts and reference.py outputs: one Markdown row per attack.

  python3 scripts/crosscheck/compare.py TREND.json REFERENCE.json [more pairs...]

Columns: model case, norm, eps, N, attack, trend and reference robust accuracy (%), the
difference in points, whether it is within 1 point, and per image how many are robust only
under trend (trend's attack missed them) and only under the reference.
"""
import json
import os
import sys

NAMES = ['apgd-ce', 'apgd-t', 'fab-t', 'square', 'square-resc', 'apgd-dlr', 'standard', 'rand']


def rows(t, r):
    case = os.path.basename(os.path.normpath(t['case']))
    for tn in NAMES:
        rn = tn
        if tn not in t['attacks'] or rn not in r['attacks']:
            continue
        ta, ra = t['attacks'][tn], r['attacks'][rn]
        d = 100 * (ta['flags'].count('1') - ra['flags'].count('1')) / t['n']  # counts: no float32 rounding
        only_t = sum(1 for a, b in zip(ta['flags'], ra['flags']) if a == '1' and b == '0')
        only_r = sum(1 for a, b in zip(ta['flags'], ra['flags']) if a == '0' and b == '1')
        name = tn
        yield (f"| {case} | {t['norm']} | {t['eps']:g} | {t['n']} | {name} | {100 * ta['robust']:.1f} | {100 * ra['robust']:.1f} | "
               f"{d:+.1f} | {'yes' if abs(d) <= 1 + 1e-9 else '**no**'} | {only_t} | {only_r} |")


def main():
    args = sys.argv[1:]
    if len(args) < 2 or len(args) % 2:
        raise SystemExit(__doc__)
    print('| model | norm | eps | N | attack | trend % | reference % | diff (points) | within 1 | robust only in trend | robust only in reference |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for i in range(0, len(args), 2):
        t = json.load(open(args[i]))
        r = json.load(open(args[i + 1]))
        if t['n'] != r['n'] or abs(t['eps'] - r['eps']) > 1e-12 or t['norm'].lower() != r['norm'].lower():
            raise SystemExit(f'{args[i]} and {args[i + 1]} are not the same case')
        for row in rows(t, r):
            print(row)
        if t.get('missing'):
            print(f"<!-- missing in trend: {', '.join(t['missing'])} -->")


if __name__ == '__main__':
    main()
