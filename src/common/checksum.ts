/**
 * 128-bit hashes from xxHash64 (xxhash-wasm) under two seeds: content addresses of bytes (the
 * store's payload names and integrity checks) and digests of strings (node keys). Shared by the
 * compiler and the store, which know nothing of each other.
 */
import xxhash from 'xxhash-wasm';

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let hasher: Hasher | undefined;

export async function initHash(): Promise<void> {
  hasher ??= await xxhash();
}

function h(): Hasher {
  if (!hasher) throw new Error('initHash() must be awaited before hashing');
  return hasher;
}

const SEED_A = 0n;
const SEED_B = 0x9e3779b97f4a7c15n;

/** 128-bit hex digest of a string. */
export function digest(s: string): string {
  const x = h();
  return x.h64(s, SEED_A).toString(16).padStart(16, '0') + x.h64(s, SEED_B).toString(16).padStart(16, '0');
}

/**
 * checksumBytes of the concatenation of `parts`; large parts are streamed in place instead of
 * being copied into one buffer (the streaming state costs more than a copy of a few kB).
 */
export function checksumParts(parts: readonly Uint8Array[]): string {
  const x = h();
  if (parts.reduce((n, p) => n + p.length, 0) < 8192) return checksumBytes(Buffer.concat(parts));
  const one = (seed: bigint) => {
    const s = x.create64(seed);
    for (const p of parts) s.update(p);
    return s.digest().toString(16).padStart(16, '0');
  };
  return one(SEED_A) + one(SEED_B);
}

/** 128-bit hex content address of bytes: payload integrity and object file names. */
export function checksumBytes(bytes: Uint8Array): string {
  const x = h();
  return x.h64Raw(bytes, SEED_A).toString(16).padStart(16, '0') + x.h64Raw(bytes, SEED_B).toString(16).padStart(16, '0');
}
