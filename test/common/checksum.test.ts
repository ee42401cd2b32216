import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { checksumBytes, checksumParts, initHash } from '../../src/common/checksum.js';

beforeAll(initHash);

describe('checksumParts', () => {
  it('equals checksumBytes of the parts joined, for any split (index values sealed before and after agree)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }), (parts) => {
        expect(checksumParts(parts)).toBe(checksumBytes(Buffer.concat(parts)));
      }),
      { numRuns: 300, seed: 11 },
    );
    // Large enough for the streaming branch (8 kB and more in all).
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1000, maxLength: 6000 }), { minLength: 2, maxLength: 6 }), (parts) => {
        expect(checksumParts(parts)).toBe(checksumBytes(Buffer.concat(parts)));
      }),
      { numRuns: 40, seed: 12 },
    );
    // Longer than xxHash64's 32-byte stripes and its internal buffers, split off the boundaries.
    const big = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 31 + 7) & 0xff);
    expect(checksumParts([big.subarray(0, 33), big.subarray(33, 70_001), big.subarray(70_001)])).toBe(checksumBytes(big));
  });

  it('depends on every byte', () => {
    const a = Buffer.from('nodes/abc');
    const b = Buffer.from('{"st":"1:2:3","v":4}');
    const base = checksumParts([a, b]);
    for (let i = 0; i < b.length; i++) {
      const c = Buffer.from(b);
      c[i]! ^= 1;
      expect(checksumParts([a, c])).not.toBe(base);
    }
  });
});
