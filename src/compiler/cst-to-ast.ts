/** Turns Chevrotain's concrete syntax tree into the AST (src/compiler/ast.ts). */
import type { CstElement, CstNode, IToken } from 'chevrotain';
import type * as A from './ast.js';
import { Rational } from './rational.js';

type Children = Record<string, CstElement[] | undefined>;

function isToken(e: CstElement): e is IToken {
  return (e as IToken).image !== undefined;
}
function tok(ch: Children, name: string, i = 0): IToken | undefined {
  const e = ch[name]?.[i];
  return e && isToken(e) ? e : undefined;
}
function node(ch: Children, name: string, i = 0): CstNode | undefined {
  const e = ch[name]?.[i];
  return e && !isToken(e) ? e : undefined;
}
function nodes(ch: Children, name: string): CstNode[] {
  return (ch[name] ?? []).filter((e): e is CstNode => !isToken(e));
}

export class AstBuilder {
  constructor(private readonly file: string) {}

  tokLoc(t: IToken): A.Loc {
    return {
      file: this.file,
      line: t.startLine ?? 0,
      col: t.startColumn ?? 0,
      endLine: t.endLine ?? t.startLine ?? 0,
      endCol: t.endColumn ?? t.startColumn ?? 0,
    };
  }
  nodeLoc(n: CstNode): A.Loc {
    const l = n.location;
    return {
      file: this.file,
      line: l?.startLine ?? 0,
      col: l?.startColumn ?? 0,
      endLine: l?.endLine ?? l?.startLine ?? 0,
      endCol: l?.endColumn ?? l?.startColumn ?? 0,
    };
  }
  private name(t: IToken): A.Name {
    return { name: t.image, loc: this.tokLoc(t) };
  }

  /** Returns undefined when recovery left the statement incomplete (an error was already reported). */
  statement(cst: CstNode, index: number): A.Statement | undefined {
    const inner = Object.values(cst.children)[0]?.[0];
    if (!inner || isToken(inner)) return undefined;
    try {
      return this.dispatch(inner, index);
    } catch (e) {
      if (e instanceof IncompleteCst) return undefined;
      throw e;
    }
  }

  private dispatch(n: CstNode, index: number): A.Statement {
    const ch = n.children as Children;
    const loc = this.nodeLoc(n);
    switch (n.name) {
      case 'datasetStmt':
        return { kind: 'dataset', loc, index, name: this.name(need(tok(ch, 'name'))), subset: !!ch.Subset?.length, params: this.params(ch) };
      case 'trainStmt': {
        const m = tok(ch, 'method');
        return { kind: 'train', loc, index, ...(m ? { method: this.name(m) } : {}), params: this.mixedParams(ch) };
      }
      case 'modelStmt': {
        const method = node(ch, 'methodClause');
        const from = node(ch, 'fromClause');
        return {
          kind: 'model',
          loc,
          index,
          name: this.name(need(tok(ch, 'name'))),
          arch: this.name(need(tok(ch, 'arch'))),
          quant: nodes(ch, 'quantClause').map((q) => this.quant(q)),
          noise: nodes(ch, 'noiseClause').map((q) => this.noise(q)),
          ...(method ? { method: this.name(need(tok(method.children as Children, 'name'))) } : {}),
          ...(from ? { from: this.name(need(tok(from.children as Children, 'name'))) } : {}),
          params: this.mixedParams(ch),
        };
      }
      case 'attackStmt':
        return { kind: 'attack', loc, index, name: this.name(need(tok(ch, 'name'))), spec: this.attackSpec(need(node(ch, 'attackSpec'))) };
      case 'transferStmt':
        return {
          kind: 'transfer',
          loc,
          index,
          attacks: this.attackList(need(node(ch, 'attackList'))),
          sources: this.selection(need(node(ch, 'sources'))),
          targets: this.selection(need(node(ch, 'targets'))),
          with: this.withParams(node(ch, 'withClause')),
        };
      case 'ensembleStmt': {
        const name = tok(ch, 'name');
        const trendTok = tok(ch, 'Trend');
        const fromSel = node(ch, 'fromSelection');
        const using = node(ch, 'usingClause');
        const members = node(ch, 'members');
        return {
          kind: 'ensemble',
          loc,
          index,
          ...(name ? { name: this.name(name) } : {}),
          ...(trendTok
            ? {
                trend: {
                  loc: this.tokLoc(trendTok),
                  ...(fromSel ? { from: this.selection(need(node(fromSel.children as Children, 'selection'))) } : {}),
                  ...(using ? { using: this.attackSpec(need(node(using.children as Children, 'attackSpec'))) } : {}),
                },
              }
            : {}),
          ...(members ? { members: this.selection(members) } : {}),
          params: this.mixedParams(ch),
        };
      }
      case 'evaluateStmt': {
        const list = node(ch, 'attackList');
        return {
          kind: 'evaluate',
          loc,
          index,
          targets: this.selection(need(node(ch, 'targets'))),
          attacks: list ? this.attackList(list) : [],
          with: this.withParams(node(ch, 'withClause')),
          union: !!ch.Union?.length,
        };
      }
      case 'smoothStmt':
        return {
          kind: 'smooth',
          loc,
          index,
          name: this.name(need(tok(ch, 'name'))),
          base: this.name(need(tok(ch, 'base'))),
          params: this.mixedParams(ch),
        };
      case 'reportStmt':
        return { kind: 'report', loc, index, params: this.params(ch) };
      case 'backendStmt':
        return { kind: 'backend', loc, index, name: this.name(need(tok(ch, 'name'))) };
      default:
        throw new IncompleteCst();
    }
  }

  /** Params plus clause sugar (`optimizer sgd`, `seed 2`, `vote soft`) in source order. */
  private mixedParams(ch: Children): A.Param[] {
    const out: A.Param[] = [];
    for (const p of nodes(ch, 'param')) out.push(this.param(p));
    for (const c of nodes(ch, 'optimizerClause')) {
      const t = need(tok(c.children as Children, 'name'));
      out.push(this.sugar('optimizer', c, { kind: 'ident', name: t.image, text: t.image, loc: this.tokLoc(t) }));
    }
    for (const c of nodes(ch, 'seedClause')) {
      out.push(this.sugar('seed', c, this.scalar(need(node(c.children as Children, 'scalar')))));
    }
    for (const c of nodes(ch, 'voteClause')) {
      const t = need(tok(c.children as Children, 'name'));
      out.push(this.sugar('vote', c, { kind: 'ident', name: t.image, text: t.image, loc: this.tokLoc(t) }));
    }
    return out.sort((a, b) => a.loc.line - b.loc.line || a.loc.col - b.loc.col);
  }

  private sugar(key: string, clause: CstNode, value: A.Value): A.Param {
    const loc = this.nodeLoc(clause);
    const kw = Object.values(clause.children)[0]?.find(isToken);
    return { key, keyLoc: kw ? this.tokLoc(kw) : loc, value, loc };
  }

  private params(ch: Children): A.Param[] {
    return nodes(ch, 'param').map((p) => this.param(p));
  }

  private withParams(w: CstNode | undefined): A.Param[] {
    return w ? this.params(w.children as Children) : [];
  }

  private param(p: CstNode): A.Param {
    const ch = p.children as Children;
    const key = need(tok(ch, 'key'));
    return { key: key.image, keyLoc: this.tokLoc(key), value: this.value(need(node(ch, 'value'))), loc: this.nodeLoc(p) };
  }

  private value(v: CstNode): A.Value {
    const ch = v.children as Children;
    if (ch.LBracket?.length) {
      const items = nodes(ch, 'scalar').map((s) => this.scalar(s));
      return { kind: 'list', items, text: `[${items.map((i) => i.text).join(', ')}]`, loc: this.nodeLoc(v) };
    }
    return this.scalar(need(node(ch, 'scalar')));
  }

  private scalar(s: CstNode): A.Scalar {
    const ch = s.children as Children;
    const loc = this.nodeLoc(s);
    const lo = node(ch, 'lo');
    if (lo) {
      const a = this.number(lo);
      const hi = node(ch, 'hi');
      if (!hi) return { kind: 'number', value: a.value, text: a.text, loc };
      const b = this.number(hi);
      const step = node(ch, 'step');
      const c = step ? this.number(step) : undefined;
      return {
        kind: 'range',
        lo: a.value,
        hi: b.value,
        ...(c ? { by: c.value } : {}),
        text: `${a.text}..${b.text}${c ? ` by ${c.text}` : ''}`,
        loc,
      };
    }
    const bits = tok(ch, 'Bits');
    if (bits) return { kind: 'bits', bits: parseInt(bits.image, 10), text: bits.image, loc };
    const str = tok(ch, 'StringLit');
    if (str) return { kind: 'string', value: unquote(str.image), text: str.image, loc };
    const id = need(tok(ch, 'Identifier'));
    return { kind: 'ident', name: id.image, text: id.image, loc };
  }

  private number(n: CstNode): { value: Rational; text: string } {
    const ch = n.children as Children;
    const neg = !!ch.Minus?.length;
    const num = need(tok(ch, 'num'));
    const den = tok(ch, 'den');
    let v = Rational.parseDecimal(num.image);
    if (den) {
      const d = Rational.parseDecimal(den.image);
      if (d.num === 0n) throw new ZeroDenominator(this.tokLoc(den));
      v = v.div(d);
    }
    if (neg) v = v.neg();
    return { value: v, text: `${neg ? '-' : ''}${num.image}${den ? `/${den.image}` : ''}` };
  }

  private quant(q: CstNode): A.QuantClause {
    const ch = q.children as Children;
    const bits = tok(ch, 'Bits');
    const kind = tok(ch, 'kind');
    const value = bits
      ? { kind: 'bits' as const, bits: parseInt(bits.image, 10), text: bits.image, loc: this.tokLoc(bits) }
      : { kind: 'ident' as const, name: need(kind).image, text: need(kind).image, loc: this.tokLoc(need(kind)) };
    return { target: this.name(need(tok(ch, 'target'))), value, loc: this.nodeLoc(q) };
  }

  private noise(q: CstNode): A.NoiseClause {
    const ch = q.children as Children;
    const num = node(ch, 'number');
    const kind = tok(ch, 'kind');
    const value = num
      ? { kind: 'number' as const, ...this.number(num), loc: this.nodeLoc(num) }
      : { kind: 'ident' as const, name: need(kind).image, text: need(kind).image, loc: this.tokLoc(need(kind)) };
    return { target: this.name(need(tok(ch, 'target'))), value, loc: this.nodeLoc(q) };
  }

  private attackList(n: CstNode): A.AttackSpec[] {
    return nodes(n.children as Children, 'attackSpec').map((a) => this.attackSpec(a));
  }

  private attackSpec(n: CstNode): A.AttackSpec {
    const ch = n.children as Children;
    return { name: this.name(need(tok(ch, 'name'))), params: this.params(ch), loc: this.nodeLoc(n) };
  }

  private selection(n: CstNode): A.Selection {
    const items = nodes(n.children as Children, 'selItem').map((it): A.SelItem => {
      const ch = it.children as Children;
      const g = tok(ch, 'Glob');
      if (g) return { kind: 'glob', pattern: g.image, loc: this.tokLoc(g) };
      const id = need(tok(ch, 'Identifier'));
      return { kind: 'name', name: id.image, loc: this.tokLoc(id) };
    });
    return { items, loc: this.nodeLoc(n) };
  }
}

/** Raised when error recovery produced a CST with a missing piece; the parse error covers it. */
export class IncompleteCst extends Error {}
export class ZeroDenominator extends Error {
  constructor(readonly loc: A.Loc) {
    super('division by zero');
  }
}

function need<T>(x: T | undefined): T {
  if (x === undefined) throw new IncompleteCst();
  // Tokens inserted by recovery have no image text worth trusting.
  if (isTokenLike(x) && (x as unknown as IToken).isInsertedInRecovery) throw new IncompleteCst();
  return x;
}
function isTokenLike(x: unknown): boolean {
  return typeof x === 'object' && x !== null && 'image' in x;
}

function unquote(s: string): string {
  return s.slice(1, -1).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}
