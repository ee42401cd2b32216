/**
 * Exact-valued number literals.
 *
 * Every number written in a .trend file (`3`, `0.01`, `5e-4`, `8/255`) is kept as a reduced
 * fraction of two BigInts, so `8/255`, `16/510` and `0.0313725...` (if written exactly) are the
 * same value, and the canonical encoding used for hashing never depends on how a value was written.
 */
export class Rational {
  readonly num: bigint;
  readonly den: bigint;

  private constructor(num: bigint, den: bigint) {
    this.num = num;
    this.den = den;
  }

  static of(num: bigint | number, den: bigint | number = 1n): Rational {
    let n = BigInt(num);
    let d = BigInt(den);
    if (d === 0n) throw new RangeError('division by zero in a number literal');
    if (d < 0n) {
      n = -n;
      d = -d;
    }
    const g = gcd(n < 0n ? -n : n, d);
    return new Rational(n / g, d / g);
  }

  /** Parses `12`, `0.25`, `5e-4`, `1.5E+3` exactly (no binary floating point involved). */
  static parseDecimal(text: string): Rational {
    const m = /^([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(text);
    if (!m) throw new SyntaxError(`not a number: ${text}`);
    const intPart = m[1]!;
    const frac = m[2] ?? '';
    const exp = m[3] ? parseInt(m[3], 10) : 0;
    if (Math.abs(exp) > 400) throw new RangeError(`exponent out of range: ${text}`);
    let num = BigInt(intPart + frac);
    let den = 10n ** BigInt(frac.length);
    if (exp > 0) num *= 10n ** BigInt(exp);
    else if (exp < 0) den *= 10n ** BigInt(-exp);
    return Rational.of(num, den);
  }

  /** Best exact representation of a JS number that is itself a short decimal (used by tests/tools). */
  static fromNumber(x: number): Rational {
    if (!Number.isFinite(x)) throw new RangeError(`not finite: ${x}`);
    const neg = x < 0;
    const r = Rational.parseDecimal(String(Math.abs(x)).replace(/^(\d+)e/, '$1.0e'));
    return neg ? r.neg() : r;
  }

  neg(): Rational {
    return Rational.of(-this.num, this.den);
  }
  add(o: Rational): Rational {
    return Rational.of(this.num * o.den + o.num * this.den, this.den * o.den);
  }
  sub(o: Rational): Rational {
    return this.add(o.neg());
  }
  mul(o: Rational): Rational {
    return Rational.of(this.num * o.num, this.den * o.den);
  }
  div(o: Rational): Rational {
    return Rational.of(this.num * o.den, this.den * o.num);
  }
  cmp(o: Rational): number {
    const l = this.num * o.den;
    const r = o.num * this.den;
    return l < r ? -1 : l > r ? 1 : 0;
  }
  eq(o: Rational): boolean {
    return this.num === o.num && this.den === o.den;
  }
  isInteger(): boolean {
    return this.den === 1n;
  }
  toNumber(): number {
    // Exact for integers and for den up to 2^53; otherwise correctly rounded enough for our use.
    return Number(this.num) / Number(this.den);
  }
  /** Canonical text: `3`, `-1/4`, `8/255`. Used in hashing and in `trendc fmt` output. */
  toString(): string {
    return this.den === 1n ? this.num.toString() : `${this.num}/${this.den}`;
  }
  /** A human-friendly rendering: decimals when exact and short, else the fraction. */
  pretty(): string {
    if (this.den === 1n) return this.num.toString();
    let d = this.den;
    let twos = 0;
    let fives = 0;
    while (d % 2n === 0n) {
      d /= 2n;
      twos++;
    }
    while (d % 5n === 0n) {
      d /= 5n;
      fives++;
    }
    const digits = Math.max(twos, fives);
    if (d === 1n && digits <= 8) {
      const scale = 10n ** BigInt(digits);
      const scaled = (this.num * scale) / this.den;
      const neg = scaled < 0n;
      const s = (neg ? -scaled : scaled).toString().padStart(digits + 1, '0');
      return `${neg ? '-' : ''}${s.slice(0, s.length - digits)}.${s.slice(s.length - digits)}`;
    }
    return this.toString();
  }
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a === 0n ? 1n : a;
}
