import { describe, expect, it } from 'vitest';
import { checkSource } from '../../src/compiler/compile.js';
import { diagnose, plan, QUICKSTART } from '../helpers/compile.js';

const msgs = (src: string) => diagnose(src).map((d) => d.message);

describe('checker', () => {
  it('resolves the quickstart: defaults, overrides and the TREND ensemble', () => {
    const c = checkSource(QUICKSTART, 'q.trend').checked!;
    expect(c.models.map((m) => m.name)).toEqual(['fp', 'rn18q1', 'q2', 'ht', 'w2', 'a2', 'adam']);
    const adam = c.models.find((m) => m.name === 'adam')!;
    expect(adam.train.optimizer).toBe('adam');
    expect(adam.train.seed).toBe(2);
    expect(adam.train.epochs).toBe(3); // from the train statement
    expect(c.models.find((m) => m.name === 'rn18q1')!.input).toEqual({ kind: 'bits', bits: 1, stats: 'batch', bpda: 'sigmoid' });
    expect(c.models.find((m) => m.name === 'ht')!.input!.kind).toBe('halftone');
    expect(c.models.find((m) => m.name === 'w2')!.weightBits).toBe(2);
    expect(c.models.find((m) => m.name === 'a2')!.activationBits).toBe(2);
    expect(c.transfers[0]!.attacks[0]!.params.eps!.toString()).toBe('8/255');
    expect(c.transfers[0]!.attacks[0]!.params.steps).toBe(40);
    expect(c.transfers[1]!.sources).toEqual(['fp', 'adam']);
    expect(c.ensembles[0]!.name).toBe('trend_k3');
    expect(c.ensembles[0]!.trend!.candidates).toHaveLength(7);
  });

  it("a tie between transfers says how to break it, never with the 'using' already written", () => {
    const src = `dataset toy
model a = mlp seed 1
model b = mlp seed 2
attack f2 = fgsm
transfer fgsm from a, b to a, b
transfer f2 from a, b to a, b
ensemble e = trend k=2 using fgsm
`;
    const d = diagnose(src).find((x) => x.code === 'E074')!;
    expect(d.message).toMatch(/several transfers could choose this ensemble \(lines 5 and 6\); say which with 'using' or name its models with 'from'/);
    expect(d.expected).toBe('e.g. using f2');
  });

  it('reports unknown and duplicate names with suggestions', () => {
    const d = diagnose('model fp = cnn\nmodel fp = mlp\ntransfer pgd from fpp to fp\n');
    expect(d.map((x) => x.message)).toEqual(["'fp' is already declared", "unknown name 'fpp'"]);
    expect(d[1]!.suggestion).toBe("'fp'");
  });

  it('reports a wildcard or pattern that selects nothing', () => {
    expect(msgs('transfer pgd from * to *\n')).toEqual([
      "'*' selects nothing: the pipeline declares no models",
      "'*' selects nothing: the pipeline declares no models",
    ]);
    expect(msgs('model a = cnn\ntransfer pgd from q* to a\n')).toEqual(["'q*' selects nothing"]);
  });

  it('checks parameter ranges', () => {
    expect(msgs('model a = cnn\ntransfer pgd eps=0 from a to a\n')).toEqual(['eps=0 is out of range']);
    expect(msgs('model a = cnn\ntransfer pgd eps=2 from a to a\n')).toEqual(['eps=2 is out of range for l_inf']);
    expect(msgs('model a = cnn quant input 64bit\n')).toEqual(['64 bits is out of range']);
    expect(msgs('model a = cnn epochs=-1\n')).toEqual(['epochs=-1 is out of range']);
    expect(msgs('dataset mnist subset train=70000\n')).toEqual(['train=70000 is larger than mnist (60000 images)']);
  });

  it('rejects a parameter an attack does not take, with a suggestion', () => {
    const d = diagnose('model a = cnn\ntransfer cw eps=0.1 kapa=30 from a to a\n');
    expect(d.map((x) => x.message)).toEqual(["unknown parameter 'eps' for attack cw", "unknown parameter 'kapa' for attack cw"]);
    expect(d[1]!.suggestion).toBe("'kappa'");
  });

  it('suggests architectures, attacks, optimizers and methods', () => {
    const d = diagnose('model a = resnet19 optimizer sdg train rampp\ntransfer pgdd from a to a\n');
    expect(d.map((x) => x.suggestion)).toEqual(["'resnet18'", "'sgd'", "'ramp'", "'pgd'"]);
  });

  it('rejects k larger than the models available', () => {
    expect(msgs('model a = cnn\nmodel b = cnn\ntransfer pgd from * to *\nensemble trend k=3\n')).toEqual(['k=3 but 2 models are available to choose from']);
  });

  it('detects cycles in fine-tuning and attack definitions', () => {
    expect(msgs('model a = cnn from b\nmodel b = cnn from a\n')).toEqual(["model 'a' is fine-tuned from itself"]);
    expect(msgs('attack x = y\nattack y = x\nmodel m = cnn\ntransfer x from m to m\n')[0]).toMatch(/defined in terms of itself/);
  });

  it('expands seed ranges into families and lists into sweeps', () => {
    const c = checkSource('model r = cnn seed 1..3\ntransfer pgd eps=[0.01, 0.02] from r to r\n', 'x').checked!;
    expect(c.models.map((m) => [m.name, m.train.seed])).toEqual([
      ['r.1', 1],
      ['r.2', 2],
      ['r.3', 3],
    ]);
    expect(c.families.r).toEqual(['r.1', 'r.2', 'r.3']);
    expect(c.transfers[0]!.attacks.map((a) => a.sweep.eps!.toString())).toEqual(['1/100', '1/50']);
  });

  it('requires ensemble attacks for ensembles and reports it once', () => {
    const d = diagnose('model a = cnn\nmodel b = cnn\nensemble e = a, b\nevaluate e against pgd\n');
    expect(d.map((x) => x.message)).toEqual(["'e' is an ensemble: attack it with an ensemble attack"]);
    expect(diagnose('model a = cnn\nmodel b = cnn\nensemble e = a, b\nevaluate e, a against agd, dag with eps=[0.01, 0.02]\n')).toEqual([]);
    // APGD and AutoAttack also take ensembles (through their soft output); FAB-T does not.
    expect(diagnose('model a = cnn\nmodel b = cnn\nensemble e = a, b\nevaluate e against apgd, apgdt, autoattack\n')).toEqual([]);
    expect(msgs('model a = cnn\nmodel b = cnn\nensemble e = a, b\nevaluate e against fabt\n')).toEqual([
      "'e' is an ensemble: attack it with an ensemble attack",
    ]);
  });

  it('resolves RAMP methods with dataset-budget attack aliases', () => {
    const c = checkSource('dataset mnist\nmodel r = cnn train ramp lambda=5\n', 'x').checked!;
    const m = c.models[0]!.method;
    if (m.name !== 'ramp') throw new Error('expected ramp');
    expect(m.pair.map((a) => `${a.params.norm}:${a.params.eps}`)).toEqual(['linf:3/10', 'l1:10']);
    expect(m.gp).toBe(true);
  });

  it('checks union evaluations', () => {
    expect(msgs('model a = cnn\nevaluate a against linf union\n')).toEqual(["'union' needs at least two attacks"]);
    expect(diagnose('model a = cnn\nevaluate a against linf, l2, l1 union\n')).toEqual([]);
    // One attack written twice with different budgets is a set of two attacks, not a sweep.
    expect(diagnose('model a = cnn\nevaluate a against autoattack norm=linf eps=0.3, autoattack norm=l1 eps=10 union\n')).toEqual([]);
    expect(diagnose('model a = cnn\nevaluate a against pgd eps=0.1, pgd norm=l2 eps=1 union\n')).toEqual([]);
    // A sweep in a union still is an error, also next to a distinguished duplicate.
    expect(msgs('model a = cnn\nevaluate a against pgd eps=[0.1, 0.2], pgd norm=l2 eps=1 union\n')).toEqual(["'union' cannot be combined with a sweep"]);
  });

  it('plans a union of one attack at several budgets as one set, not a sweep', async () => {
    const dag = await plan('dataset mnist\nmodel a = mlp\nevaluate a against apgd norm=linf eps=0.3, apgd norm=l2 eps=2 union\n');
    const robust = dag.nodes.filter((n) => n.op === 'robust');
    expect(robust.map((n) => n.id)).toEqual(['robust/apgd[eps=0.3,norm=linf]/a', 'robust/apgd[eps=2,norm=l2]/a']);
    for (const n of robust) expect(n.info.sweep).toBeUndefined();
    expect(dag.nodes.filter((n) => n.op === 'union').map((n) => n.inputs.runs)).toEqual([expect.arrayContaining(robust.map((n) => n.id))]);
  });

  it('checks smoothing declarations and sweeps', () => {
    const c = checkSource('model a = cnn\nsmooth s = a sd=[0, 0.25] m=[1, 8] vote soft\nevaluate s against epgd\n', 'x').checked!;
    expect(c.smooths.map((s) => `${s.name}:${s.sd}:${s.m}:${s.vote}`)).toEqual(['s.1:0:1:soft', 's.2:0:8:soft', 's.3:1/4:1:soft', 's.4:1/4:8:soft']);
    expect(msgs('model a = cnn\nsmooth s = b\n')).toEqual(["unknown model 'b'"]);
  });
});
