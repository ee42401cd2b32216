// Rewrites clang 14's prototype f32x4.fma (fd af 01) into relaxed-SIMD f32x4.relaxed_madd
// (fd 85 02) at exactly the offsets llvm-objdump reports, checking each site's bytes.
import { readFileSync, writeFileSync } from 'node:fs';

const [file, dis] = process.argv.slice(2);
const bytes = readFileSync(file);
// Offsets in llvm-objdump's wasm listing are relative to the start of the code section's payload.
let p = 8;
let codeStart = -1;
const leb = () => {
  let r = 0;
  let s = 0;
  for (;;) {
    const b = bytes[p++];
    r |= (b & 0x7f) << s;
    if (!(b & 0x80)) return r >>> 0;
    s += 7;
  }
};
while (p < bytes.length) {
  const id = bytes[p++];
  const size = leb();
  if (id === 10) codeStart = p;
  p += size;
}
if (codeStart < 0) throw new Error('no code section');
const sites = readFileSync(dis, 'utf8')
  .split('\n')
  .filter((l) => /\bf32x4\.fma\b/.test(l))
  .map((l) => parseInt(l.trim().split(':')[0], 16));
let patched = 0;
for (const off of sites) {
  const at = codeStart + off;
  if (bytes[at] !== 0xfd || bytes[at + 1] !== 0xaf || bytes[at + 2] !== 0x01) throw new Error(`unexpected bytes at code offset 0x${off.toString(16)}`);
  bytes[at + 1] = 0x85;
  bytes[at + 2] = 0x02;
  patched++;
}
if (!patched) throw new Error('no f32x4.fma found: was the module built with -mrelaxed-simd?');
writeFileSync(file, bytes);
console.log(`${file}: ${patched} fma sites rewritten to relaxed_madd`);
