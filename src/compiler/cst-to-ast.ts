/** Turns Chevrotain's concrete syntax tree into the AST (src/compiler/ast.ts) with a CST visitor. */
import type { CstElement, CstNode, IToken } from 'chevrotain';
import { parserInstance } from '../../grammar/parser.js';
import { tokenLoc } from '../common/location.js';
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

/** What every visit method gets besides its children: its node, location and statement index. */
interface At {
  node: CstNode;
  loc: A.Loc;
  index: number;
}

/**
 * The builder class, made once from the parser's visitor base (Chevrotain's tutorial, step 3):
 * one method per grammar rule, and validateVisitor() at construction, so a rule without a visit
 * method fails at start-up instead of being dropped.
 */
let builderClass: (new (file: string) => AstBuilder) | undefined;

export interface AstBuilder {
  /** Returns undefined when recovery left the statement incomplete (an error was already reported). */
  statement(cst: CstNode, index: number): A.Statement | undefined;
}

export function astBuilderClass(): new (file: string) => AstBuilder {
  builderClass ??= makeBuilderClass();
  return builderClass;
}

/** A builder for one file's statements. */
export function astBuilder(file: string): AstBuilder {
  return new (astBuilderClass())(file);
}

// One visit method per grammar rule, each short: the class body is the unit here, not a function.
// eslint-disable-next-line max-lines-per-function
function makeBuilderClass(): new (file: string) => AstBuilder {
  const Base = parserInstance().getBaseCstVisitorConstructor() as new () => { visit(n: CstNode, param?: unknown): unknown; validateVisitor(): void };

  class Builder extends Base implements AstBuilder {
    constructor(private readonly file: string) {
      super();
      this.validateVisitor();
    }

    statement(cst: CstNode, index: number): A.Statement | undefined;
    statement(ch: Children, at: At): A.Statement;
    statement(a: CstNode | Children, b: number | At): A.Statement | undefined {
      if (typeof b === 'number') {
        try {
          return this.sub<A.Statement>(a as CstNode, b);
        } catch (e) {
          if (e instanceof IncompleteCst) return undefined;
          throw e;
        }
      }
      const inner = Object.values(a as Children)[0]?.[0];
      if (!inner || isToken(inner)) throw new IncompleteCst();
      return this.sub<A.Statement>(inner, b.index);
    }

    /** Visits a (required) child node. */
    private sub<T>(n: CstNode | undefined, index = 0): T {
      const node = need(n);
      return this.visit(node, { node, loc: this.nodeLoc(node), index } satisfies At) as T;
    }

    private tokLoc(t: IToken): A.Loc {
      return tokenLoc(this.file, t);
    }
    private nodeLoc(n: CstNode): A.Loc {
      const l = n.location;
      return {
        file: this.file,
        line: l?.startLine ?? 0,
        col: l?.startColumn ?? 0,
        endLine: l?.endLine ?? l?.startLine ?? 0,
        endCol: l?.endColumn ?? l?.startColumn ?? 0,
      };
    }
    private name(t: IToken | undefined): A.Name {
      const k = need(t);
      return { name: k.image, loc: this.tokLoc(k) };
    }

    // ---- statements ----

    datasetStmt(ch: Children, { loc, index }: At): A.DatasetStmt {
      return { kind: 'dataset', loc, index, name: this.name(tok(ch, 'name')), subset: !!ch.Subset?.length, params: this.params(ch) };
    }

    trainStmt(ch: Children, { loc, index }: At): A.TrainStmt {
      const m = tok(ch, 'method');
      return { kind: 'train', loc, index, ...(m ? { method: this.name(m) } : {}), params: this.mixedParams(ch) };
    }

    modelStmt(ch: Children, { loc, index }: At): A.ModelStmt {
      const method = node(ch, 'methodClause');
      const from = node(ch, 'fromClause');
      return {
        kind: 'model',
        loc,
        index,
        name: this.name(tok(ch, 'name')),
        arch: this.name(tok(ch, 'arch')),
        quant: nodes(ch, 'quantClause').map((q) => this.sub<A.QuantClause>(q)),
        noise: nodes(ch, 'noiseClause').map((q) => this.sub<A.NoiseClause>(q)),
        ...(method ? { method: this.sub<A.Name>(method) } : {}),
        ...(from ? { from: this.sub<A.Name>(from) } : {}),
        params: this.mixedParams(ch),
      };
    }

    attackStmt(ch: Children, { loc, index }: At): A.AttackStmt {
      return { kind: 'attack', loc, index, name: this.name(tok(ch, 'name')), spec: this.sub(node(ch, 'attackSpec')) };
    }

    transferStmt(ch: Children, { loc, index }: At): A.TransferStmt {
      const w = node(ch, 'withClause');
      return {
        kind: 'transfer',
        loc,
        index,
        attacks: this.sub(node(ch, 'attackList')),
        sources: this.sub(node(ch, 'sources')),
        targets: this.sub(node(ch, 'targets')),
        with: w ? this.sub(w) : [],
      };
    }

    ensembleStmt(ch: Children, { loc, index }: At): A.EnsembleStmt {
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
                ...(fromSel ? { from: this.sub<A.Selection>(fromSel) } : {}),
                ...(using ? { using: this.sub<A.AttackSpec>(using) } : {}),
              },
            }
          : {}),
        ...(members ? { members: this.sub<A.Selection>(members) } : {}),
        params: this.mixedParams(ch),
      };
    }

    evaluateStmt(ch: Children, { loc, index }: At): A.EvaluateStmt {
      const list = node(ch, 'attackList');
      const w = node(ch, 'withClause');
      return {
        kind: 'evaluate',
        loc,
        index,
        targets: this.sub(node(ch, 'targets')),
        attacks: list ? this.sub(list) : [],
        with: w ? this.sub(w) : [],
        union: !!ch.Union?.length,
      };
    }

    smoothStmt(ch: Children, { loc, index }: At): A.SmoothStmt {
      return { kind: 'smooth', loc, index, name: this.name(tok(ch, 'name')), base: this.name(tok(ch, 'base')), params: this.mixedParams(ch) };
    }

    reportStmt(ch: Children, { loc, index }: At): A.ReportStmt {
      return { kind: 'report', loc, index, params: this.params(ch) };
    }

    backendStmt(ch: Children, { loc, index }: At): A.BackendStmt {
      return { kind: 'backend', loc, index, name: this.name(tok(ch, 'name')) };
    }

    // ---- clauses ----

    /** Params plus clause sugar (`optimizer sgd`, `seed 2`, `vote soft`) in source order. */
    private mixedParams(ch: Children): A.Param[] {
      const sugar = ['optimizerClause', 'seedClause', 'voteClause'].flatMap((rule) => nodes(ch, rule).map((c) => this.sub<A.Param>(c)));
      return [...this.params(ch), ...sugar].sort((a, b) => a.loc.line - b.loc.line || a.loc.col - b.loc.col);
    }

    optimizerClause(ch: Children, at: At): A.Param {
      return this.sugar('optimizer', at, this.identValue(tok(ch, 'name')));
    }
    seedClause(ch: Children, at: At): A.Param {
      return this.sugar('seed', at, this.sub<A.Scalar>(node(ch, 'scalar')));
    }
    voteClause(ch: Children, at: At): A.Param {
      return this.sugar('vote', at, this.identValue(tok(ch, 'name')));
    }

    private identValue(t: IToken | undefined): A.Value {
      const k = need(t);
      return { kind: 'ident', name: k.image, text: k.image, loc: this.tokLoc(k) };
    }

    private sugar(key: string, { node: clause, loc }: At, value: A.Value): A.Param {
      const kw = Object.values(clause.children)[0]?.find(isToken);
      return { key, keyLoc: kw ? this.tokLoc(kw) : loc, value, loc };
    }

    methodClause(ch: Children): A.Name {
      return this.name(tok(ch, 'name'));
    }
    fromClause(ch: Children): A.Name {
      return this.name(tok(ch, 'name'));
    }
    fromSelection(ch: Children): A.Selection {
      return this.sub(node(ch, 'selection'));
    }
    usingClause(ch: Children): A.AttackSpec {
      return this.sub(node(ch, 'attackSpec'));
    }
    withClause(ch: Children): A.Param[] {
      return this.params(ch);
    }

    private params(ch: Children): A.Param[] {
      return nodes(ch, 'param').map((p) => this.sub<A.Param>(p));
    }

    param(ch: Children, { loc }: At): A.Param {
      const key = need(tok(ch, 'key'));
      return { key: key.image, keyLoc: this.tokLoc(key), value: this.sub(node(ch, 'value')), loc };
    }

    value(ch: Children, { loc }: At): A.Value {
      if (ch.LBracket?.length) {
        const items = nodes(ch, 'scalar').map((s) => this.sub<A.Scalar>(s));
        return { kind: 'list', items, text: `[${items.map((i) => i.text).join(', ')}]`, loc };
      }
      return this.sub(node(ch, 'scalar'));
    }

    scalar(ch: Children, { loc }: At): A.Scalar {
      const lo = node(ch, 'lo');
      if (lo) {
        const a = this.sub<Num>(lo);
        const hi = node(ch, 'hi');
        if (!hi) return { kind: 'number', value: a.value, text: a.text, loc };
        const b = this.sub<Num>(hi);
        const step = node(ch, 'step');
        const c = step ? this.sub<Num>(step) : undefined;
        return { kind: 'range', lo: a.value, hi: b.value, ...(c ? { by: c.value } : {}), text: `${a.text}..${b.text}${c ? ` by ${c.text}` : ''}`, loc };
      }
      const bits = tok(ch, 'Bits');
      if (bits) return { kind: 'bits', bits: parseInt(bits.image, 10), text: bits.image, loc };
      const str = tok(ch, 'StringLit');
      if (str) return { kind: 'string', value: unquote(str.image), text: str.image, loc };
      const id = need(tok(ch, 'Identifier'));
      return { kind: 'ident', name: id.image, text: id.image, loc };
    }

    number(ch: Children): Num {
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

    quantClause(ch: Children, { loc }: At): A.QuantClause {
      const bits = tok(ch, 'Bits');
      const value = bits
        ? { kind: 'bits' as const, bits: parseInt(bits.image, 10), text: bits.image, loc: this.tokLoc(bits) }
        : (this.identValue(tok(ch, 'kind')) as A.QuantClause['value']);
      return { target: this.name(tok(ch, 'target')), value, loc };
    }

    noiseClause(ch: Children, { loc }: At): A.NoiseClause {
      const num = node(ch, 'number');
      const value = num
        ? { kind: 'number' as const, ...this.sub<Num>(num), loc: this.nodeLoc(num) }
        : (this.identValue(tok(ch, 'kind')) as A.NoiseClause['value']);
      return { target: this.name(tok(ch, 'target')), value, loc };
    }

    attackList(ch: Children): A.AttackSpec[] {
      return nodes(ch, 'attackSpec').map((a) => this.sub<A.AttackSpec>(a));
    }

    attackSpec(ch: Children, { loc }: At): A.AttackSpec {
      return { name: this.name(tok(ch, 'name')), params: this.params(ch), loc };
    }

    selection(ch: Children, { loc }: At): A.Selection {
      return { items: nodes(ch, 'selItem').map((it) => this.sub<A.SelItem>(it)), loc };
    }

    selItem(ch: Children): A.SelItem {
      const g = tok(ch, 'Glob');
      if (g) return { kind: 'glob', pattern: g.image, loc: this.tokLoc(g) };
      const id = need(tok(ch, 'Identifier'));
      return { kind: 'name', name: id.image, loc: this.tokLoc(id) };
    }
  }
  return Builder as unknown as new (file: string) => AstBuilder;
}

interface Num {
  value: Rational;
  text: string;
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
