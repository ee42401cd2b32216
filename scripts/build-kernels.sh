#!/usr/bin/env bash
# Builds kernels/kernels.c into two wasm modules (shared and plain imported memory) and checks that
# they hold no data segments and no stack use (they must write nowhere but their arguments).
# Needs Debian's clang and lld (apt-get install clang lld wabt). The outputs are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
flags=(--target=wasm32 -O3 -msimd128 -nostdlib -fno-builtin -mbulk-memory -Wl,--no-entry -Wl,--import-memory -Wl,--max-memory=4294967296 -Wl,--strip-all)
clang "${flags[@]}" -matomics -Wl,--shared-memory -o kernels/kernels-shared.wasm kernels/kernels.c
clang "${flags[@]}" -o kernels/kernels.wasm kernels/kernels.c
for f in kernels/kernels-shared.wasm kernels/kernels.wasm; do
  if wasm-objdump -h "$f" | grep -q ' Data '; then echo "$f has a data section" >&2; exit 1; fi
  if wasm2wat --enable-all "$f" | grep -q 'global.set'; then echo "$f uses the stack pointer" >&2; exit 1; fi
  echo "$f: $(wc -c <"$f") bytes, no data, no stack"
done
