#!/usr/bin/env bash
# Builds the kernel modules from kernels/*.c (the .wasm outputs are committed):
#   kernels.wasm / kernels-shared.wasm         imported plain / shared memory, FMA as mul+add
#   kernels-fma-shared.wasm                    shared memory, relaxed-SIMD FMA
# clang 14 only knows the prototype f32x4.fma (opcode 0xfd 0xaf 0x01, computing a + b*c); the
# final relaxed-SIMD f32x4.relaxed_madd is 0xfd 0x85 0x02 (a*b + c). The FMA build's prototype
# instructions are located with llvm-objdump and rewritten in place (kernels/patch-fma.mjs); the
# sources call FMA(a, b, c) meaning a*b + c, so the rewrite is what makes them correct.
# Every module is checked to hold no data segment and use no stack: they must write nothing but
# the buffers they are given. Needs Debian's clang, lld and wabt.
set -euo pipefail
cd "$(dirname "$0")/.."
src=(kernels/kernels.c kernels/conv.c)
flags=(--target=wasm32 -O3 -msimd128 -nostdlib -fno-builtin -mbulk-memory -Wl,--no-entry -Wl,--import-memory -Wl,--max-memory=4294967296 -Wl,--strip-all)
clang "${flags[@]}" -DNO_FMA -o kernels/kernels.wasm "${src[@]}"
clang "${flags[@]}" -DNO_FMA -matomics -Wl,--shared-memory -o kernels/kernels-shared.wasm "${src[@]}"
clang "${flags[@]}" -mrelaxed-simd -matomics -Wl,--shared-memory -o kernels/kernels-fma-shared.wasm "${src[@]}"
llvm-objdump -d kernels/kernels-fma-shared.wasm > /tmp/trend-fma.dis
node kernels/patch-fma.mjs kernels/kernels-fma-shared.wasm /tmp/trend-fma.dis
for f in kernels/kernels.wasm kernels/kernels-shared.wasm kernels/kernels-fma-shared.wasm; do
  if wasm-objdump -h "$f" | grep -q ' Data '; then echo "$f has a data section" >&2; exit 1; fi
  if wasm2wat --enable-all "$f" | grep -q 'global.set'; then echo "$f uses the stack pointer" >&2; exit 1; fi
  wasm-validate --enable-all "$f"
  echo "$f: $(wc -c <"$f") bytes, valid, no data, no stack"
done
