/** What the checker's passes share: the scope of declared names and the program built so far. */
import type * as A from '../ast.js';
import type { CDataset, CEnsemble, CModel, CSmooth } from '../checked.js';
import type { Diagnostic } from '../diagnostics.js';

export type DeclKind = 'model' | 'family' | 'ensemble' | 'smooth' | 'smoothfamily' | 'attack';

export interface Decl {
  kind: DeclKind;
  loc: A.Loc;
}

/** The classifiers built so far, which selections (`from a, q* to *`) resolve against. */
export interface Built {
  dataset: CDataset;
  models: CModel[];
  ensembles: CEnsemble[];
  smooths: CSmooth[];
}

/** Reports one diagnostic. */
export type Accept = (d: Diagnostic) => void;
