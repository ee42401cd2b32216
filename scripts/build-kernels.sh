#!/usr/bin/env bash
# Builds the kernel modules from kernels/*.c (the .wasm outputs are committed):
#   kernels.wasm / kernels-shared.wasm         imported plain / shared memory, FMA as mul+add
#   kernels-fma.wasm / kernels-fma-shared.wasm plain / shared memory, relaxed-SIMD FMA
# (the FMA choice depends only on the engine, never on the thread count: see wasm.ts)
# clang 14 only knows the prototype f32x4.fma (opcode 0xfd 0xaf 0x01, computing a + b*c); the
# final relaxed-SIMD f32x4.relaxed_madd is 0xfd 0x85 0x02 (a*b + c). The FMA build's prototype
# instructions are located with llvm-objdump and rewritten in place (kernels/patch-fma.mjs); the
# sources call FMA(a, b, c) meaning a*b + c, so the rewrite is what makes them correct.
# Every module is checked by kernels/check-module.mjs: no data, no statics, one exported stack
# pointer that each thread points at a stack of its own (kernel-pool.ts), every stack access a
# provable frame, and the deepest chain of frames within STACK_BUDGET bytes. Needs Debian's clang,
# lld and wabt.
set -euo pipefail
cd "$(dirname "$0")/.."
src=(kernels/kernels.c kernels/conv.c)
LINK_STACK=65536   # the linker's stack (unused: every thread sets its own before any call)
STACK_BUDGET=4096  # the most stack a kernel call chain may use; threads get 64 KiB each
flags=(--target=wasm32 -O3 -msimd128 -mmutable-globals -nostdlib -fno-builtin -mbulk-memory -Wl,--no-entry -Wl,--import-memory -Wl,--max-memory=4294967296 -Wl,--strip-all -Wl,--export=__stack_pointer -Wl,-z,stack-size=$LINK_STACK)
clang "${flags[@]}" -DNO_FMA -o kernels/kernels.wasm "${src[@]}"
clang "${flags[@]}" -DNO_FMA -matomics -Wl,--shared-memory -o kernels/kernels-shared.wasm "${src[@]}"
clang "${flags[@]}" -mrelaxed-simd -o kernels/kernels-fma.wasm "${src[@]}"
clang "${flags[@]}" -mrelaxed-simd -matomics -Wl,--shared-memory -o kernels/kernels-fma-shared.wasm "${src[@]}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in kernels/kernels-fma.wasm kernels/kernels-fma-shared.wasm; do
  llvm-objdump -d "$f" > "$tmp/fma.dis"
  node kernels/patch-fma.mjs "$f" "$tmp/fma.dis"
done
for f in kernels/kernels.wasm kernels/kernels-shared.wasm kernels/kernels-fma.wasm kernels/kernels-fma-shared.wasm; do
  wasm-validate --enable-all "$f"
  node kernels/check-module.mjs "$f" --stack-size $LINK_STACK --budget $STACK_BUDGET > "$tmp/check.txt"
  echo "$f: $(wc -c <"$f") bytes, valid; $(cat "$tmp/check.txt")"
done
