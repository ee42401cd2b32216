/** The abstract syntax tree of a .trend file: what was written, with locations, nothing resolved. */
import type { Rational } from './rational.js';

export interface Loc {
  file: string;
  line: number;
  col: number;
  endLine: number;
  endCol: number;
}

export type Scalar =
  | { kind: 'number'; value: Rational; text: string; loc: Loc }
  | { kind: 'range'; lo: Rational; hi: Rational; by?: Rational; text: string; loc: Loc }
  | { kind: 'bits'; bits: number; text: string; loc: Loc }
  | { kind: 'string'; value: string; text: string; loc: Loc }
  | { kind: 'ident'; name: string; text: string; loc: Loc };

export type Value = Scalar | { kind: 'list'; items: Scalar[]; text: string; loc: Loc };

export interface Param {
  key: string;
  keyLoc: Loc;
  value: Value;
  loc: Loc;
}

export interface Name {
  name: string;
  loc: Loc;
}

export interface AttackSpec {
  name: Name;
  params: Param[];
  loc: Loc;
}

export type SelItem = { kind: 'glob'; pattern: string; loc: Loc } | { kind: 'name'; name: string; loc: Loc };

export interface Selection {
  items: SelItem[];
  loc: Loc;
}

export interface QuantClause {
  target: Name; // input | weight | activation
  value: { kind: 'bits'; bits: number; text: string; loc: Loc } | { kind: 'ident'; name: string; text: string; loc: Loc };
  loc: Loc;
}

export interface NoiseClause {
  target: Name; // input | weight | activation
  value: { kind: 'number'; value: Rational; text: string; loc: Loc } | { kind: 'ident'; name: string; text: string; loc: Loc };
  loc: Loc;
}

interface StmtBase {
  loc: Loc;
  /** Index of the statement in its file (0-based), used to keep a stable order. */
  index: number;
}

export interface DatasetStmt extends StmtBase {
  kind: 'dataset';
  name: Name;
  subset: boolean;
  params: Param[];
}
export interface TrainStmt extends StmtBase {
  kind: 'train';
  method?: Name;
  params: Param[]; // optimizer and seed clauses are normalised into params
}
export interface ModelStmt extends StmtBase {
  kind: 'model';
  name: Name;
  arch: Name;
  quant: QuantClause[];
  noise: NoiseClause[];
  method?: Name;
  from?: Name;
  params: Param[];
}
export interface AttackStmt extends StmtBase {
  kind: 'attack';
  name: Name;
  spec: AttackSpec;
}
export interface TransferStmt extends StmtBase {
  kind: 'transfer';
  attacks: AttackSpec[];
  sources: Selection;
  targets: Selection;
  with: Param[];
}
export interface EnsembleStmt extends StmtBase {
  kind: 'ensemble';
  name?: Name;
  trend?: { loc: Loc; from?: Selection; using?: AttackSpec };
  members?: Selection;
  params: Param[]; // k, vote, seed ...
}
export interface EvaluateStmt extends StmtBase {
  kind: 'evaluate';
  targets: Selection;
  attacks: AttackSpec[];
  with: Param[];
  union: boolean;
}
export interface SmoothStmt extends StmtBase {
  kind: 'smooth';
  name: Name;
  base: Name;
  params: Param[];
}
export interface ReportStmt extends StmtBase {
  kind: 'report';
  params: Param[];
}
export interface BackendStmt extends StmtBase {
  kind: 'backend';
  name: Name;
}

export type Statement = DatasetStmt | TrainStmt | ModelStmt | AttackStmt | TransferStmt | EnsembleStmt | EvaluateStmt | SmoothStmt | ReportStmt | BackendStmt;

export interface Comment {
  text: string;
  line: number;
  /** True when the comment follows code on the same line. */
  trailing: boolean;
}

export interface Program {
  file: string;
  statements: Statement[];
  comments: Comment[];
}
