import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Program } from '../../src/compiler/ast.js';
import { checkSource } from '../../src/compiler/compile.js';
import { format } from '../../src/compiler/format.js';
import { parse } from '../../src/compiler/parse.js';
import { QUICKSTART } from '../helpers/compile.js';

/** The AST without source positions, for comparing programs. */
function shape(p: Program): unknown {
  return JSON.parse(
    JSON.stringify(p.statements, (k, v) => {
      if (k === 'loc' || k === 'keyLoc') return undefined;
      if (v && typeof v === 'object' && 'num' in v && 'den' in v) return String(v);
      return v;
    }),
  );
}

function roundTrips(src: string): void {
  const a = parse(src, 'x');
  expect(a.diagnostics).toEqual([]);
  const out = format(a.program, src);
  const b = parse(out, 'x');
  expect(b.diagnostics).toEqual([]);
  expect(shape(b.program)).toEqual(shape(a.program));
  expect(format(b.program, out)).toBe(out); // idempotent
}

// ---- a generator of syntactically valid pipelines
const ident = fc.constantFrom('fp', 'q1', 'q2', 'ht', 'adam', 'm_1', 'big', 'x');
const num = fc.oneof(fc.integer({ min: 0, max: 500 }).map(String), fc.constantFrom('0.01', '8/255', '5e-4', '-1', '1.5E+2', '0.5'));
const scalar = fc.oneof(
  num,
  fc.constantFrom('4bit', 'sgd', 'true', '"a path"'),
  fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 5, max: 9 })).map(([a, b]) => `${a}..${b}`),
);
const value = fc.oneof(
  scalar,
  fc.array(scalar, { minLength: 1, maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
);
const paramKey = fc.constantFrom('eps', 'steps', 'k', 'lr', 'epochs', 'train', 'seed', 'width', 'kappa');
const param = fc.tuple(paramKey, value).map(([k, v]) => `${k}=${v}`);
const params = fc.array(param, { maxLength: 3 });
const attack = fc.tuple(fc.constantFrom('pgd', 'cw', 'deepfool', 'agd', 'linf'), params).map(([a, ps]) => [a, ...ps].join(' '));
const selection = fc.oneof(
  fc.constant('*'),
  fc.constant('q*'),
  fc.array(ident, { minLength: 1, maxLength: 3 }).map((xs) => xs.join(', ')),
);
const statement = fc.oneof(
  fc
    .tuple(
      ident,
      fc.constantFrom('cnn', 'resnet18', 'mlp'),
      fc.array(fc.constantFrom('quant input 1bit', 'quant weight 2bit', 'optimizer adam', 'seed 2', 'train ramp', 'from fp', 'noise weight learned'), {
        maxLength: 3,
      }),
      params,
    )
    .map(([n, a, cl, ps]) => ['model', n, '=', a, ...cl, ...ps].join(' ')),
  fc.tuple(fc.array(attack, { minLength: 1, maxLength: 2 }), selection, selection).map(([as, s, t]) => `transfer ${as.join(', ')} from ${s} to ${t}`),
  params.map((ps) => ['ensemble trend', ...ps].join(' ')),
  fc
    .tuple(selection, fc.array(attack, { maxLength: 2 }), fc.boolean())
    .map(([s, as, u]) => `evaluate ${s}${as.length ? ' against ' + as.join(', ') : ''}${u ? ' union' : ''}`),
  params.map((ps) => ['train', ...ps].join(' ')),
  fc.tuple(ident, ident, params).map(([n, b, ps]) => ['smooth', n, '=', b, ...ps].join(' ')),
  fc.constant('dataset mnist subset train=1000 test=100'),
  fc.constant('# a comment'),
  fc.constant(''),
);
const program = fc
  .array(fc.tuple(statement, fc.constantFrom('', '  # trailing', '   ')), { maxLength: 12 })
  .map((xs) => xs.map(([s, tail]) => (s.startsWith('#') || s === '' ? s : s + tail)).join('\n') + '\n');

describe('fmt', () => {
  it('round-trips the quickstart and leaves it unchanged', () => {
    roundTrips(QUICKSTART);
    expect(format(parse(QUICKSTART, 'x').program, QUICKSTART)).toBe(QUICKSTART);
  });

  it('normalises spacing, aligns declarations and keeps comments', () => {
    const src = '# head\nmodel   a =   cnn   optimizer    adam\nmodel longer_name = cnn # note\n\n\n\ntransfer pgd  eps=8/255 from * to *\n';
    expect(format(parse(src, 'x').program, src)).toBe(
      '# head\nmodel a           = cnn optimizer adam\nmodel longer_name = cnn  # note\n\ntransfer pgd eps=8/255 from * to *\n',
    );
  });

  it('round-trips generated programs (property)', () => {
    fc.assert(
      fc.property(program, (src) => roundTrips(src)),
      { numRuns: 300 },
    );
  });
});

describe('front-end fuzzing: no input makes the compiler throw', () => {
  const tokens = [
    'model',
    'transfer',
    'from',
    'to',
    '*',
    '=',
    'eps=',
    '8/255',
    '[',
    ']',
    ',',
    '..',
    'by',
    '"',
    '#',
    '\n',
    '  ',
    'quant',
    'input',
    '1bit',
    'ensemble',
    'trend',
    'k=3',
    'cnn',
    'fp',
    '-',
    '/',
    '0',
    '1e999',
    'union',
    'with',
    'against',
    'evaluate',
    '\t',
    '\r\n',
    'é',
    '\u0007',
  ];
  const soup = fc.array(fc.constantFrom(...tokens), { maxLength: 60 }).map((xs) => xs.join(' '));
  const survives = (src: string) => {
    const r = checkSource(src, 'fuzz.trend');
    for (const d of r.diagnostics) {
      expect(d.loc.line).toBeGreaterThanOrEqual(0);
      expect(typeof d.message).toBe('string');
    }
  };

  it('token soup', () => {
    fc.assert(fc.property(soup, survives), { numRuns: 500 });
  });

  it('arbitrary unicode and bytes', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), survives), { numRuns: 300 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => survives(Buffer.from(b).toString('latin1'))),
      { numRuns: 300 },
    );
  });

  it('mutations of a valid pipeline', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: QUICKSTART.length - 1 }), fc.integer({ min: 0, max: 20 }), fc.string({ maxLength: 5 }), (at, cut, ins) => {
        survives(QUICKSTART.slice(0, at) + ins + QUICKSTART.slice(at + cut));
      }),
      { numRuns: 500 },
    );
  });

  it('huge and deeply nested inputs', () => {
    survives('model a = cnn\n'.repeat(20000));
    survives('transfer pgd eps=' + '['.repeat(5000) + ' from * to *');
    survives('model a = cnn seed ' + '1..'.repeat(5000));
    survives('"'.repeat(10000));
    survives('model a = cnn lr=' + '9'.repeat(5000));
  });
});
