import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EvaluateStmt } from '../../src/compiler/ast.js';
import { withNeedsAttacks } from '../../src/compiler/check/checks/experiments.js';
import { CODES, type Code } from '../../src/compiler/codes.js';
import type { Diagnostic } from '../../src/compiler/diagnostics.js';
import { checkSource } from '../../src/compiler/compile.js';
import { readWeightsFile, weightsDiagnostics } from '../../src/runtime/models/inspect-weights.js';
import { parseSafetensors } from '../../src/runtime/models/safetensors.js';
import { diagnose } from '../helpers/compile.js';

const M = 'model a = cnn\nmodel b = cnn\n';

/**
 * Imported weights are checked by the runtime (runtime/models/inspect-weights.ts) against the
 * architecture's parameters: here one conv kernel, checked against a file holding `tensors`.
 */
function weightsCase(tensors: Record<string, number[]> | undefined): Diagnostic[] {
  const m = checkSource('model a = cnn weights="a.safetensors"\n', 'test.trend').checked!.models[0]!;
  const conv = { name: 'conv1/w', shape: [3, 3, 1, 2], init: { kind: 'zeros' as const }, trainable: true };
  if (!tensors) return weightsDiagnostics(m, readWeightsFile('/nonexistent/a.safetensors'), [conv], [28, 28, 1]);
  let off = 0;
  const header: Record<string, unknown> = {};
  for (const [name, shape] of Object.entries(tensors)) {
    const bytes = 4 * shape.reduce((x, y) => x * y, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const file = Buffer.concat([Buffer.alloc(8), json, Buffer.alloc(off)]);
  file.writeBigUInt64LE(BigInt(json.length));
  return weightsDiagnostics(m, { file: parseSafetensors(file), checksum: 'x' }, [conv], [28, 28, 1]);
}

/** One pipeline per code, producing that code and no other. */
const CASES: Record<Code, string | (() => Diagnostic[])> = {
  E001: 'model a = cnn\u0000\n',
  E002: 'model a = cnn $\n',
  E003: 'model a = cnn "abc\n',
  E004: 'modle a = cnn\n',
  E005: 'model a = cnn optimzer sgd\n',
  E006: 'model a = cnn lr=1/0\n',
  E007: 'model a = cnn lr=1e500\n',
  E010: '# nothing\n',
  E011: 'dataset mnist\ndataset mnist\n',
  E020: 'model a = cnn epochz=3\n',
  E021: 'model a = cnn epochs=3 epochs=4\n',
  E022: 'model a = cnn epochs=fast\n',
  E023: 'model a = cnn epochs=-1\n',
  E024: 'model a = cnn epochs=[1, 2]\n',
  E025: 'model a = cnn seed 3..1\n',
  E026: 'model a = cnn seed 1..20000\n',
  E027: 'attack s = pgd eps=[0.1, 0.2]\nmodel a = cnn train adversarial attack=s\n',
  E030: 'model a = cnn\nmodel a = mlp\n',
  E031: 'attack pgd = fgsm\nmodel a = cnn\n',
  E032: 'model a.1 = cnn\n',
  E033: M + 'transfer pgdd from a to b\n',
  E034: 'attack x = y\nattack y = x\n' + M + 'transfer x from a to b\n',
  E035: M + 'transfer pgd from a to c\n',
  E036: M + 'transfer pgd from q* to a\n',
  E037: M + 'transfer a from a to b\n',
  E038: 'model a = cnn from z\n',
  E039: 'model f = cnn seed 1..2\nmodel a = cnn from f\n',
  E040: 'model a = cnn from b\nmodel b = cnn from a\n',
  E041: 'backend tpu\nmodel a = cnn\n',
  E042: 'dataset imagenet\n',
  E043: 'dataset mnist subset train=70000\n',
  E044: 'dataset cifar10\n',
  E050: 'model a = resnet19\n',
  E051: 'model a = cnn train rampp\n',
  E052: 'train seed=[1, 2]\nmodel a = cnn\n',
  E053: 'model a = cnn quant output 2bit\n',
  E054: 'model a = cnn quant input 2bit quant input 4bit\n',
  E055: 'model a = cnn quant weight halftone\n',
  E056: 'model a = cnn noise output 0.1\n',
  E057: 'model a = cnn noise input 0.1 noise input 0.2\n',
  E058: 'model a = cnn noise input lots\n',
  E059: 'model a = cnn train adversarial attack=cw\n',
  E060: 'model a = cnn train avg attacks=[linf]\n',
  E061: 'model a = cnn train ramp pair=[linf, l2, l1]\n',
  E062: 'model a = cnn weights="a.safetensors" epochs=3\n',
  E063: () => weightsCase(undefined),
  E064: () => weightsCase({}),
  E065: () => weightsCase({ 'conv1/w': [3, 3, 1, 2], 'conv9/w': [1] }),
  E066: () => weightsCase({ 'conv1/w': [3, 3, 1, 4] }),
  E070: M + 'ensemble a, b\n',
  E071: M + 'ensemble e = a, b k=2\n',
  E072: M + 'ensemble e = a\n',
  E073: 'model trend_k2 = cnn\nmodel b = cnn\nmodel c = cnn\ntransfer pgd from b, c to b, c\nensemble trend k=2\n',
  E074: M + 'transfer pgd, fgsm from * to *\nensemble trend k=2\n',
  E075: M + 'ensemble trend k=2\n',
  E076: M + 'model c = cnn\ntransfer pgd from a, b to a, b\nensemble trend k=2 from a, c\n',
  E077: M + 'transfer pgd from * to *, t\nensemble t = trend k=2\n',
  E078: M + 'transfer pgd from * to *\nensemble trend k=3\n',
  E080: M + 'transfer agd from a to b\n',
  E081: M + 'transfer epgd from a to b\n',
  E082: M + 'ensemble e = a, b\nevaluate e against pgd\n',
  // The grammar puts 'with' only after 'against ...': the check is a guard, called directly.
  E083: () => {
    const d: Diagnostic[] = [];
    const loc = { file: 't', line: 1, col: 1, endLine: 1, endCol: 1 };
    const stmt = { kind: 'evaluate', loc, attacks: [], with: [{ key: 'eps', keyLoc: loc, loc, value: {} }] } as unknown as EvaluateStmt;
    withNeedsAttacks({ stmt, attacks: [], targets: [], kindOf: () => 'model' }, (x) => d.push(x));
    return d;
  },
  E084: M + 'evaluate a against pgd union\n',
  E085: M + 'evaluate a against pgd eps=[0.1, 0.2], fgsm union\n',
  W001: M + 'transfer pgd topk=0.1 from a to b\n',
  W002: 'model a = cnn bpda=identity\n',
  W003: 'model a = cnn quant input halftone qstats=image\n',
  W004: 'model a = cnn train ramp gp=false beta=0.3\n',
  W005: 'model a = cnn optimizer adam momentum=0.5\n',
  W006: 'model a = cnn\nsmooth s = a average=logits\n',
};

describe('diagnostic codes', () => {
  it('every code has a case, and every case is a declared code', () => {
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(CODES).sort());
  });

  for (const [code, src] of Object.entries(CASES)) {
    it(`${code} ${CODES[code as Code]?.name ?? '(undeclared)'}`, () => {
      const d = typeof src === 'string' ? diagnose(src) : src();
      expect(d.length).toBeGreaterThan(0);
      expect(d.map((x) => x.code)).toEqual(d.map(() => code));
      expect(d.every((x) => x.severity === CODES[code as Code].severity)).toBe(true);
    });
  }

  it('names are unique and docs/language.md lists every code with its name', () => {
    const names = Object.values(CODES).map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    const doc = readFileSync(new URL('../../docs/language.md', import.meta.url), 'utf8');
    for (const [code, info] of Object.entries(CODES)) expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\| \`${info.name}\` \\|`));
  });

  it('the CLI form shows the code: file:line:col: error[E033]: message', async () => {
    const { render } = await import('../helpers/compile.js');
    expect(render(CASES.E033 as string).split('\n')[0]).toBe("test.trend:3:10: error[E033]: unknown attack 'pgdd'");
    expect(render(CASES.W005 as string).split('\n')[0]).toMatch(/^test\.trend:1:\d+: warning\[W005\]: 'momentum' applies only to optimizer sgd/);
  });
});
