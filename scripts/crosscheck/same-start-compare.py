#!/usr/bin/env python3
"""Compares same-start.py's and same-start.ts's outputs: per run, how many images each side
fooled, on how many they disagree, and the largest difference of the best losses.

  python3 scripts/crosscheck/same-start-compare.py REF.json TREND.json
"""
import json
import sys


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    r, t = (json.load(open(f)) for f in sys.argv[1:])
    print('| run | images | fooled (reference) | fooled (trend) | fooled on one side only | max abs diff of best loss | median |')
    print('|---|---|---|---|---|---|---|')
    for name, rr in r['runs'].items():
        tr = t['runs'][name]
        diff = sorted(abs(a - b) for a, b in zip(rr['lossBest'], tr['lossBest']))
        one = sum(a != b for a, b in zip(rr['fooled'], tr['fooled']))
        print(f"| {name} | {r['n']} | {rr['fooled'].count('1')} | {tr['fooled'].count('1')} | {one} | {diff[-1]:.2g} | {diff[len(diff) // 2]:.2g} |")


if __name__ == '__main__':
    main()
