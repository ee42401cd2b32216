/**
 * Canonical formatting (`trendc fmt`): one statement per line, single spaces, `name=value`
 * parameters, names aligned in runs of consecutive declarations, comments and single blank
 * lines kept. Values are printed as written, so parse(format(x)) equals parse(x).
 */
import type * as A from './ast.js';

/** Clause forms (`optimizer sgd`, `seed 2`, `vote soft`) are printed where the grammar allows them. */
const TRAINING_SUGAR = new Set(['optimizer', 'seed']);
const VOTE_SUGAR = new Set(['vote']);

function sugar(p: A.Param, allowed: Set<string>): boolean {
  if (!allowed.has(p.key)) return false;
  if (p.key === 'optimizer' || p.key === 'vote') return p.value.kind === 'ident';
  return p.value.kind === 'number' || p.value.kind === 'range';
}

function params(ps: A.Param[], allowed: Set<string> = new Set()): string[] {
  return ps.map((p) => (sugar(p, allowed) ? `${p.key} ${p.value.text}` : `${p.key}=${p.value.text}`));
}
function selection(s: A.Selection): string {
  return s.items.map((i) => (i.kind === 'glob' ? i.pattern : i.name)).join(', ');
}
function spec(a: A.AttackSpec): string {
  return [a.name.name, ...a.params.map((p) => `${p.key}=${p.value.text}`)].join(' ');
}
function withClause(ps: A.Param[]): string[] {
  return ps.length ? ['with', ...ps.map((p) => `${p.key}=${p.value.text}`)] : [];
}

/** The declared name of a statement, if it has one (used for alignment). */
function declName(s: A.Statement): string | undefined {
  if (s.kind === 'model' || s.kind === 'attack' || s.kind === 'smooth') return s.name.name;
  if (s.kind === 'ensemble') return s.name?.name;
  return undefined;
}

export function formatStatement(s: A.Statement, pad = 0): string {
  const named = (name: string) => `${name.padEnd(pad)} =`;
  const parts: string[] = [];
  switch (s.kind) {
    case 'dataset': {
      parts.push('dataset', s.name.name);
      const ps = params(s.params);
      if (s.subset) {
        const i = s.params.findIndex((p) => p.key === 'train' || p.key === 'test');
        ps.splice(i < 0 ? ps.length : i, 0, 'subset');
      }
      parts.push(...ps);
      break;
    }
    case 'train':
      parts.push('train', ...(s.method ? [s.method.name] : []), ...params(s.params, TRAINING_SUGAR));
      break;
    case 'model':
      parts.push('model', named(s.name.name), s.arch.name);
      for (const q of s.quant) parts.push('quant', q.target.name, q.value.text);
      for (const n of s.noise) parts.push('noise', n.target.name, n.value.text);
      if (s.method) parts.push('train', s.method.name);
      parts.push(...params(s.params, TRAINING_SUGAR));
      if (s.from) parts.push('from', s.from.name);
      break;
    case 'attack':
      parts.push('attack', named(s.name.name), spec(s.spec));
      break;
    case 'transfer':
      parts.push('transfer', s.attacks.map(spec).join(', '), 'from', selection(s.sources), 'to', selection(s.targets), ...withClause(s.with));
      break;
    case 'ensemble':
      parts.push('ensemble');
      if (s.name) parts.push(named(s.name.name));
      if (s.trend) {
        parts.push('trend', ...params(s.params, VOTE_SUGAR));
        if (s.trend.from) parts.push('from', selection(s.trend.from));
        if (s.trend.using) parts.push('using', spec(s.trend.using));
      } else {
        parts.push(selection(s.members!), ...params(s.params, VOTE_SUGAR));
      }
      break;
    case 'evaluate':
      parts.push('evaluate', selection(s.targets));
      if (s.attacks.length) parts.push('against', s.attacks.map(spec).join(', '), ...withClause(s.with));
      if (s.union) parts.push('union');
      break;
    case 'smooth':
      parts.push('smooth', named(s.name.name), s.base.name, ...params(s.params, VOTE_SUGAR));
      break;
    case 'report':
      parts.push('report', ...params(s.params));
      break;
    case 'backend':
      parts.push('backend', s.name.name);
      break;
  }
  return parts.join(' ');
}

export function format(program: A.Program, source: string): string {
  const lines = source.split(/\r?\n/);
  const stmts = [...program.statements].sort((a, b) => a.loc.line - b.loc.line);
  const commentsByLine = new Map<number, A.Comment>();
  for (const c of program.comments) commentsByLine.set(c.line, c);

  // Alignment groups: runs of consecutive same-kind named declarations on adjacent lines.
  const pad = new Map<A.Statement, number>();
  for (let i = 0; i < stmts.length;) {
    let j = i;
    const kind = stmts[i]!.kind;
    while (j + 1 < stmts.length && stmts[j + 1]!.kind === kind && declName(stmts[j + 1]!) !== undefined && stmts[j + 1]!.loc.line === stmts[j]!.loc.endLine + 1)
      j++;
    const group = stmts.slice(i, j + 1).filter((s) => declName(s) !== undefined);
    const width = Math.max(0, ...group.map((s) => declName(s)!.length));
    for (const s of group) pad.set(s, group.length > 1 ? width : 0);
    i = j + 1;
  }

  const out: string[] = [];
  let line = 1;
  let pendingBlank = false;
  const emit = (text: string) => {
    if (pendingBlank && out.length > 0) out.push('');
    pendingBlank = false;
    out.push(text);
  };
  const flushGap = (until: number) => {
    for (; line < until; line++) {
      const c = commentsByLine.get(line);
      if (c && !c.trailing) emit(c.text.trimEnd());
      else if ((lines[line - 1] ?? '').trim() === '') pendingBlank = true;
    }
  };
  for (const s of stmts) {
    flushGap(s.loc.line);
    let text = formatStatement(s, pad.get(s) ?? 0);
    const trailing = [];
    for (let l = s.loc.line; l <= s.loc.endLine; l++) {
      const c = commentsByLine.get(l);
      if (c?.trailing) trailing.push(c.text.trimEnd());
      else if (c && l > s.loc.line) trailing.push(c.text.trimEnd());
    }
    if (trailing.length) text += '  ' + trailing.join(' ');
    emit(text);
    line = s.loc.endLine + 1;
  }
  flushGap(lines.length + 1);
  return out.join('\n') + '\n';
}
