// Proves, from a kernel module's text form (wasm2wat --enable-all), that it touches memory only
// through the buffers it is given and its own stack, and that its stack use is bounded:
//
//   - no data segment, no start function, no memory.grow, no table elements or indirect calls;
//   - exactly one global: the mutable i32 stack pointer, exported as __stack_pointer (each thread
//     sets its own instance's copy to a stack of its own: src/runtime/backends/kernel-pool.ts),
//     whose initial value is the linker's global base plus the stack size, so nothing static
//     (data or zero-initialised bss) lies below it;
//   - every read of the stack pointer is a frame allocation `global.get 0; i32.const N; i32.sub`,
//     every write either stores that frame (`local.tee; global.set 0`) or releases it
//     (`i32.const N; i32.add; global.set 0`, the same N);
//   - the call graph has no cycles, so the deepest chain of frames bounds a thread's stack use,
//     and that bound must fit in --budget bytes.
// Any other use of the global, or anything it cannot classify, fails the build.
//
// Usage: node kernels/check-module.mjs FILE.wasm --stack-size N --budget N   (prints the bound)
// The text form comes from wabt's JavaScript build (the npm package `wabt`, the same output as
// Debian's wasm2wat --enable-all), so the check runs wherever the tests do.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const args = process.argv.slice(2);
const file = args[0];
const opt = (name) => Number(args[args.indexOf(name) + 1]);
const stackSize = opt('--stack-size');
const budget = opt('--budget');
const GLOBAL_BASE = 1024;
const FEATURES = { simd: true, threads: true, relaxed_simd: true, mutable_globals: true, bulk_memory: true, sign_extension: true, sat_float_to_int: true };
const wabt = await createRequire(import.meta.url)('wabt')();
const wat = wabt.readWasm(readFileSync(file), FEATURES).toText({});
const fail = (why) => {
  process.stderr.write(`${file}: ${why}\n`);
  process.exit(1);
};

for (const [re, what] of [
  [/^\s*\(data\b/m, 'a data segment'],
  [/^\s*\(start\b/m, 'a start function'],
  [/\bmemory\.grow\b/, 'memory.grow'],
  [/^\s*\(elem\b/m, 'a table element'],
  [/\bcall_indirect\b/, 'an indirect call'],
])
  if (re.test(wat)) fail(`has ${what}: kernels must write nothing but the buffers they are given`);

const globals = [...wat.matchAll(/^\s*\(global \(;(\d+);\) (\(mut i32\)|i32|[^(]*) \(i32\.const (-?\d+)\)\)/gm)];
const anyGlobal = [...wat.matchAll(/^\s*\(global\b/gm)];
if (anyGlobal.length !== 1 || globals.length !== 1) fail(`has ${anyGlobal.length} globals: expected only the stack pointer`);
const [, gIndex, gType, gInit] = globals[0];
if (gIndex !== '0' || gType !== '(mut i32)') fail('the only global is not a mutable i32 stack pointer');
if (!/\(export "__stack_pointer" \(global 0\)\)/.test(wat))
  fail('does not export its stack pointer as __stack_pointer: threads could not be given their own stacks');
if (Number(gInit) !== GLOBAL_BASE + stackSize)
  fail(`stack pointer starts at ${gInit}, not ${GLOBAL_BASE + stackSize}: something static (data or bss) is laid out below the stack`);

// Split into functions: index -> body lines.
const funcs = [];
let cur;
for (const line of wat.split('\n')) {
  const m = /^\s*\(func \(;(\d+);\)/.exec(line);
  if (m) {
    cur = { index: Number(m[1]), lines: [] };
    funcs.push(cur);
    continue;
  }
  if (/^\s*\((export|global|memory|import|type)\b/.test(line)) cur = undefined;
  if (cur) cur.lines.push(line.trim().replace(/\)+$/, '').trim());
}
const names = new Map([...wat.matchAll(/\(export "([^"]+)" \(func (\d+)\)\)/g)].map((m) => [Number(m[2]), m[1]]));
const nameOf = (i) => names.get(i) ?? `func ${i}`;

const frame = new Map();
const calls = new Map();
for (const f of funcs) {
  const L = f.lines;
  let size = 0;
  const callees = new Set();
  for (let i = 0; i < L.length; i++) {
    const ins = L[i];
    const c = /^call (\d+)$/.exec(ins);
    if (c) callees.add(Number(c[1]));
    if (/^global\.get\b/.test(ins)) {
      const n = /^i32\.const (\d+)$/.exec(L[i + 1] ?? '');
      if (ins !== 'global.get 0' || !n || L[i + 2] !== 'i32.sub') fail(`${nameOf(f.index)}: a read of the stack pointer that is not a frame allocation`);
      if (size && size !== Number(n[1])) fail(`${nameOf(f.index)}: two different frame sizes`);
      size = Number(n[1]);
    } else if (/^global\.set\b/.test(ins)) {
      const prev = L[i - 1] ?? '';
      const release = /^i32\.const (\d+)$/.exec(L[i - 2] ?? '');
      const ok =
        ins === 'global.set 0' && (/^local\.tee \d+$/.test(prev) ? L[i - 2] === 'i32.sub' : prev === 'i32.add' && release && Number(release[1]) === size);
      if (!ok) fail(`${nameOf(f.index)}: a write of the stack pointer that is neither a frame allocation nor its release`);
    }
  }
  frame.set(f.index, size);
  calls.set(f.index, callees);
}

// Deepest chain of frames; a cycle would make the bound unknowable.
const depth = new Map();
const onPath = new Set();
const deepest = (i) => {
  if (depth.has(i)) return depth.get(i);
  if (onPath.has(i)) fail(`${nameOf(i)} is (mutually) recursive: its stack use has no bound`);
  onPath.add(i);
  let below = 0;
  for (const j of calls.get(i) ?? []) below = Math.max(below, deepest(j));
  onPath.delete(i);
  const d = frame.get(i) + below;
  depth.set(i, d);
  return d;
};
let bound = 0;
for (const f of funcs) bound = Math.max(bound, deepest(f.index));
if (bound > budget) fail(`may use ${bound} bytes of stack, over the budget of ${budget}`);
const users = funcs.filter((f) => frame.get(f.index) > 0).map((f) => `${nameOf(f.index)} ${frame.get(f.index)}`);
process.stdout.write(`stack: at most ${bound} bytes per thread (frames: ${users.join(', ') || 'none'})\n`);
