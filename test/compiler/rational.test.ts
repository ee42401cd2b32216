import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rational } from '../../src/compiler/rational.js';

describe('Rational', () => {
  it('parses decimals and exponents exactly', () => {
    expect(Rational.parseDecimal('0.01').toString()).toBe('1/100');
    expect(Rational.parseDecimal('5e-4').toString()).toBe('1/2000');
    expect(Rational.parseDecimal('1.5E+3').toString()).toBe('1500');
    expect(Rational.parseDecimal('0.1').add(Rational.parseDecimal('0.2')).eq(Rational.parseDecimal('0.3'))).toBe(true);
  });
  it('reduces fractions so equal values are identical', () => {
    expect(Rational.of(16, 510).eq(Rational.of(8, 255))).toBe(true);
    expect(Rational.of(-2, -4).toString()).toBe('1/2');
    expect(Rational.of(3, -6).toString()).toBe('-1/2');
  });
  it('prints short decimals when exact, fractions otherwise', () => {
    expect(Rational.of(1, 100).pretty()).toBe('0.01');
    expect(Rational.of(8, 255).pretty()).toBe('8/255');
    expect(Rational.of(-3, 4).pretty()).toBe('-0.75');
  });
  it('arithmetic agrees with integer cross-multiplication', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1000, max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: -1000, max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        (a, b, c, d) => {
          const x = Rational.of(a, b);
          const y = Rational.of(c, d);
          expect(x.add(y).eq(Rational.of(a * d + c * b, b * d))).toBe(true);
          expect(x.mul(y).eq(Rational.of(a * c, b * d))).toBe(true);
          expect(Math.sign(x.cmp(y))).toBe(Math.sign(a * d - c * b));
        },
      ),
    );
  });
  it('rejects a zero denominator', () => {
    expect(() => Rational.of(1, 0)).toThrow(RangeError);
  });
});
