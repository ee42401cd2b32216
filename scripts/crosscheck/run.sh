#!/usr/bin/env bash
# The whole cross-check, one step at a time: export the two cases, run trend's attacks and the
# reference's on each (Linf eps 0.1, L2 eps 1.5, L1 eps 10), the rand version on the mlp (Linf eps
# 0.1), and print the comparison table.
#   scripts/crosscheck/run.sh /path/to/auto-attack [OUT_DIR] [N]
# /path/to/auto-attack is the folder holding the reference's `autoattack` package.
set -euo pipefail
AA=${1:?usage: run.sh /path/to/auto-attack [OUT_DIR] [N]}
OUT=${2:-.scratch/crosscheck}
N=${3:-200}
PY=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/../.."
mkdir -p "$OUT"
pairs=()
for arch in mlp cnn; do
  [ -f "$OUT/$arch/model.json" ] || npx tsx scripts/crosscheck/export-case.ts --arch "$arch" --out "$OUT/$arch" --n "$N"
  for budget in "linf 0.1" "l2 1.5" "l1 10"; do
    set -- $budget
    refnorm=$(case $1 in linf) echo Linf ;; l2) echo L2 ;; l1) echo L1 ;; esac)
    npx tsx scripts/crosscheck/trend-attacks.ts --case "$OUT/$arch" --norm "$1" --eps "$2" > "$OUT/trend-$arch-$1.json"
    "$PY" scripts/crosscheck/reference.py --aa "$AA" --case "$OUT/$arch" --norm "$refnorm" --eps "$2" > "$OUT/ref-$arch-$1.json"
    pairs+=("$OUT/trend-$arch-$1.json" "$OUT/ref-$arch-$1.json")
  done
done
# AutoAttack's rand version (APGD-CE, APGD-DLR, eot_iter 20) on the mlp, deterministic model.
npx tsx scripts/crosscheck/trend-attacks.ts --case "$OUT/mlp" --norm linf --eps 0.1 --attacks apgd-dlr,rand > "$OUT/trend-mlp-rand.json"
"$PY" scripts/crosscheck/reference.py --aa "$AA" --case "$OUT/mlp" --norm Linf --eps 0.1 --attacks apgd-dlr,rand > "$OUT/ref-mlp-rand.json"
pairs+=("$OUT/trend-mlp-rand.json" "$OUT/ref-mlp-rand.json")
"$PY" scripts/crosscheck/compare.py "${pairs[@]}"
