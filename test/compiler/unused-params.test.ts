// A parameter written where it cannot take effect is a warning and stays out of the key; the
// same parameter where it does take effect changes the key.
import { describe, expect, it } from 'vitest';
import { diagnose, keysById, plan } from '../helpers/compile.js';

const HEAD = `dataset toy subset train=400 test=100
train epochs=1 batch=50
`;

async function keyOf(src: string, id: string): Promise<string> {
  const k = keysById(await plan(HEAD + src)).get(id);
  if (!k) throw new Error(`no node ${id}`);
  return k;
}

const warnings = (src: string) => diagnose(HEAD + src).filter((d) => d.severity === 'warning');

describe('parameters that cannot take effect', () => {
  const cases: Array<{ what: string; id: string; ignored: [string, string]; base: string; warn: RegExp; used?: [string, string] }> = [
    {
      what: 'bpda on K-bit input quantisation (its backward is the identity)',
      id: 'train/m',
      base: 'model m = mlp quant input 2bit',
      ignored: ['model m = mlp quant input 2bit bpda=sigmoid', 'model m = mlp quant input 2bit bpda=identity'],
      warn: /'bpda' applies only to 'quant input halftone'/,
      used: ['model m = mlp quant input halftone bpda=sigmoid', 'model m = mlp quant input halftone bpda=identity'],
    },
    {
      what: 'qstats on halftone (normalised per image)',
      id: 'train/m',
      base: 'model m = mlp quant input halftone',
      ignored: ['model m = mlp quant input halftone qstats=batch', 'model m = mlp quant input halftone qstats=image'],
      warn: /'qstats' applies only to K-bit input quantisation/,
      used: ['model m = mlp quant input 2bit qstats=batch', 'model m = mlp quant input 2bit qstats=image'],
    },
    {
      what: 'momentum and wd under Adam',
      id: 'train/m',
      base: 'model m = mlp optimizer adam',
      ignored: ['model m = mlp optimizer adam momentum=0.5', 'model m = mlp optimizer adam wd=0.01'],
      warn: /'(momentum|wd)' applies only to optimizer sgd/,
      used: ['model m = mlp optimizer sgd momentum=0.5', 'model m = mlp optimizer sgd wd=0.01'],
    },
    {
      what: 'topk on l_inf PGD',
      id: 'adv/pgd/m',
      base: 'model m = mlp\ntransfer pgd eps=0.1 from m to m',
      ignored: ['model m = mlp\ntransfer pgd eps=0.1 topk=0.05 from m to m', 'model m = mlp\ntransfer pgd eps=0.1 topk=0.5 from m to m'],
      warn: /'topk' applies only to norm=l1/,
      used: ['model m = mlp\ntransfer pgd norm=l1 eps=2 topk=0.05 from m to m', 'model m = mlp\ntransfer pgd norm=l1 eps=2 topk=0.5 from m to m'],
    },
    {
      what: 'beta without gradient projection',
      id: 'train/m',
      base: 'model m = mlp train ramp gp=false',
      ignored: ['model m = mlp train ramp gp=false beta=0.1', 'model m = mlp train ramp gp=false beta=0.9'],
      warn: /'beta' .* is ignored with gp=false/,
      used: ['model m = mlp train ramp gp=true beta=0.1', 'model m = mlp train ramp gp=true beta=0.9'],
    },
    {
      what: 'average of a vote other than soft',
      id: 'predict/s',
      base: 'model m = mlp\nsmooth s = m vote=prediction',
      ignored: ['model m = mlp\nsmooth s = m vote=prediction average=logits', 'model m = mlp\nsmooth s = m vote=prediction average=probs'],
      warn: /'average' applies only to vote=soft/,
      used: ['model m = mlp\nsmooth s = m vote=soft average=logits', 'model m = mlp\nsmooth s = m vote=soft average=probs'],
    },
  ];

  for (const c of cases) {
    it(c.what, async () => {
      expect(warnings(c.base)).toEqual([]);
      const base = await keyOf(c.base, c.id);
      for (const src of c.ignored) {
        expect(await keyOf(src, c.id), src).toBe(base);
        const w = warnings(src);
        expect(w.map((d) => d.message).join('\n'), src).toMatch(c.warn);
        expect(diagnose(HEAD + src).filter((d) => d.severity === 'error')).toEqual([]);
      }
      if (c.used) {
        const [x, y] = c.used;
        expect(await keyOf(x, c.id)).not.toBe(await keyOf(y, c.id));
        expect(warnings(x)).toEqual([]);
      }
    });
  }

  it("a training attack's images, batch and seed stay out of the model's key (they apply to evaluation)", async () => {
    const key = (a: string) => keyOf(`attack t = pgd eps=0.1 steps=2${a}\nmodel m = mlp train adversarial attack=t\nevaluate m against t`, 'train/m');
    const evalKey = (a: string) => keyOf(`attack t = pgd eps=0.1 steps=2${a}\nmodel m = mlp train adversarial attack=t\nevaluate m against t`, 'robust/t/m');
    const base = await key('');
    for (const extra of [' images=50', ' batch=10', ' seed=3']) {
      expect(await key(extra)).toBe(base);
      expect(await evalKey(extra)).not.toBe(await evalKey(''));
    }
    expect(await key(' step=0.02')).not.toBe(base);
  });

  it('momentum and wd in a train statement with optimizer adam are warned about there', () => {
    const src = 'model m = mlp';
    const d = diagnose(`dataset toy\ntrain epochs=1 optimizer adam momentum=0.5\n${src}\n`).filter((x) => x.severity === 'warning');
    expect(d.map((x) => x.message)).toEqual(["'momentum' applies only to optimizer sgd; Adam ignores it"]);
    expect(d[0]!.loc.line).toBe(2);
    // An SGD default that an Adam model overrides is not a mistake.
    expect(diagnose(`dataset toy\ntrain epochs=1 momentum=0.5\nmodel m = mlp optimizer adam\nmodel n = mlp\n`).filter((x) => x.severity === 'warning')).toEqual(
      [],
    );
  });
});
