/**
 * The .trend grammar as a Chevrotain CST parser. It is a thin, configured wrapper: recovery and
 * full token locations on, one rule per statement and clause. Meaning (which names exist, which
 * parameters an attack takes, value ranges) is checked later, on the AST (src/compiler/check.ts).
 *
 *   statement  := dataset | train | model | attack | transfer | ensemble | evaluate | smooth | report | backend
 *   dataset    := 'dataset' ID ('subset' | param)*
 *   train      := 'train' ID? (optimizer | seed | param)*
 *   model      := 'model' ID '=' ID (quant | noise | optimizer | seed | method | from | param)*
 *   attack     := 'attack' ID '=' attackSpec
 *   transfer   := 'transfer' attackList 'from' selection 'to' selection ('with' param+)?
 *   ensemble   := 'ensemble' (ID '=')? ('trend' (param | 'from' selection | 'using' attackSpec | vote)*
 *                                      | selection (vote | param)*)
 *   evaluate   := 'evaluate' selection ('against' attackList ('with' param+)?)? 'union'?
 *   smooth     := 'smooth' ID '=' ID (vote | param)*
 *   report     := 'report' param*
 *   backend    := 'backend' ID
 *   attackList := attackSpec (',' attackSpec)*        attackSpec := ID param*
 *   selection  := selItem (',' selItem)*               selItem := '*' | GLOB | ID
 *   param      := (ID | keyword) '=' value
 *   value      := scalar | '[' scalar (',' scalar)* ']'
 *   scalar     := number ('..' number ('by' number)?)? | BITS | STRING | ID
 *   number     := '-'? NUMBER ('/' NUMBER)?
 */
import type { CstNode, IParserErrorMessageProvider, TokenType } from 'chevrotain';
import { CstParser, EOF } from './chevrotain.js';
import * as T from './lexer.js';

function describe(tt: TokenType): string {
  if (tt === EOF) return 'end of statement';
  return tt.LABEL ?? tt.name;
}

/** Error messages phrased as "expected X, found Y"; suggestions are added by the front end. */
export const errorMessages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual }) {
    return `expected ${describe(expected)}, found ${found(actual.image, actual.tokenType)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `unexpected ${found(firstRedundant.image, firstRedundant.tokenType)}`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual }) {
    const exp = uniq(expectedPathsPerAlt.flat().map((path) => describe(path[0]!)));
    return `expected ${listOf(exp)}, found ${found(actual[0]!.image, actual[0]!.tokenType)}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual }) {
    const exp = uniq(expectedIterationPaths.map((path) => describe(path[0]!)));
    return `expected ${listOf(exp)}, found ${found(actual[0]!.image, actual[0]!.tokenType)}`;
  },
};

function found(image: string, tt: TokenType): string {
  if (tt === EOF) return 'end of statement';
  return `'${image}'`;
}
function uniq(xs: string[]): string[] {
  return [...new Set(xs)];
}
function listOf(xs: string[]): string {
  if (xs.length === 1) return xs[0]!;
  return `one of ${xs.join(', ')}`;
}

export class TrendParser extends CstParser {
  /** validate: run Chevrotain's grammar checks (ambiguities, left recursion); the tests do, the CLI skips them (start-up). */
  constructor(opts: { validate?: boolean } = {}) {
    super(T.allTokens, {
      recoveryEnabled: true,
      maxLookahead: 3,
      nodeLocationTracking: 'full',
      errorMessageProvider: errorMessages,
      skipValidations: !opts.validate,
    });
    this.performSelfAnalysis();
  }

  public statement = this.RULE('statement', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.datasetStmt) },
      { ALT: () => this.SUBRULE(this.trainStmt) },
      { ALT: () => this.SUBRULE(this.modelStmt) },
      { ALT: () => this.SUBRULE(this.attackStmt) },
      { ALT: () => this.SUBRULE(this.transferStmt) },
      { ALT: () => this.SUBRULE(this.ensembleStmt) },
      { ALT: () => this.SUBRULE(this.evaluateStmt) },
      { ALT: () => this.SUBRULE(this.smoothStmt) },
      { ALT: () => this.SUBRULE(this.reportStmt) },
      { ALT: () => this.SUBRULE(this.backendStmt) },
    ]);
  });

  private datasetStmt = this.RULE('datasetStmt', () => {
    this.CONSUME(T.Dataset);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    // `subset=...` (a parameter) must win over the bare word `subset`, so the longer path goes first.
    this.MANY(() =>
      this.OR({
        IGNORE_AMBIGUITIES: true,
        DEF: [{ ALT: () => this.SUBRULE(this.param) }, { ALT: () => this.CONSUME(T.Subset) }],
      }),
    );
  });

  private trainStmt = this.RULE('trainStmt', () => {
    this.CONSUME(T.Train);
    // `train adversarial ...` names a method; `train epochs=3` starts with a parameter.
    this.OPTION({ GATE: () => this.LA(2).tokenType !== T.Equals, DEF: () => this.CONSUME(T.Identifier, { LABEL: 'method' }) });
    this.MANY(() =>
      this.OR([{ ALT: () => this.SUBRULE(this.optimizerClause) }, { ALT: () => this.SUBRULE(this.seedClause) }, { ALT: () => this.SUBRULE(this.param) }]),
    );
  });

  private modelStmt = this.RULE('modelStmt', () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.CONSUME2(T.Identifier, { LABEL: 'arch' });
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.quantClause) },
        { ALT: () => this.SUBRULE(this.noiseClause) },
        { ALT: () => this.SUBRULE(this.optimizerClause) },
        { ALT: () => this.SUBRULE(this.seedClause) },
        { ALT: () => this.SUBRULE(this.methodClause) },
        { ALT: () => this.SUBRULE(this.fromClause) },
        { ALT: () => this.SUBRULE(this.param) },
      ]),
    );
  });

  private attackStmt = this.RULE('attackStmt', () => {
    this.CONSUME(T.Attack);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.attackSpec);
  });

  private transferStmt = this.RULE('transferStmt', () => {
    this.CONSUME(T.Transfer);
    this.SUBRULE(this.attackList);
    this.CONSUME(T.From);
    this.SUBRULE(this.selection, { LABEL: 'sources' });
    this.CONSUME(T.To);
    this.SUBRULE2(this.selection, { LABEL: 'targets' });
    this.OPTION(() => this.SUBRULE(this.withClause));
  });

  private ensembleStmt = this.RULE('ensembleStmt', () => {
    this.CONSUME(T.Ensemble);
    this.OPTION(() => {
      this.CONSUME(T.Identifier, { LABEL: 'name' });
      this.CONSUME(T.Equals);
    });
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Trend);
          this.MANY(() =>
            this.OR2([
              { ALT: () => this.SUBRULE(this.voteClause) },
              { ALT: () => this.SUBRULE(this.fromSelection) },
              { ALT: () => this.SUBRULE(this.usingClause) },
              { ALT: () => this.SUBRULE(this.param) },
            ]),
          );
        },
      },
      {
        ALT: () => {
          this.SUBRULE(this.selection, { LABEL: 'members' });
          this.MANY2(() => this.OR3([{ ALT: () => this.SUBRULE2(this.voteClause) }, { ALT: () => this.SUBRULE2(this.param) }]));
        },
      },
    ]);
  });

  private evaluateStmt = this.RULE('evaluateStmt', () => {
    this.CONSUME(T.Evaluate);
    this.SUBRULE(this.selection, { LABEL: 'targets' });
    this.OPTION(() => {
      this.CONSUME(T.Against);
      this.SUBRULE(this.attackList);
      this.OPTION2(() => this.SUBRULE(this.withClause));
    });
    this.OPTION3(() => this.CONSUME(T.Union));
  });

  private smoothStmt = this.RULE('smoothStmt', () => {
    this.CONSUME(T.Smooth);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.CONSUME2(T.Identifier, { LABEL: 'base' });
    this.MANY(() => this.OR([{ ALT: () => this.SUBRULE(this.voteClause) }, { ALT: () => this.SUBRULE(this.param) }]));
  });

  private reportStmt = this.RULE('reportStmt', () => {
    this.CONSUME(T.Report);
    this.MANY({ GATE: this.paramAhead, DEF: () => this.SUBRULE(this.param) });
  });

  private backendStmt = this.RULE('backendStmt', () => {
    this.CONSUME(T.Backend);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
  });

  // ---- clauses ----
  private quantClause = this.RULE('quantClause', () => {
    this.CONSUME(T.Quant);
    this.CONSUME(T.Identifier, { LABEL: 'target' });
    this.OR([{ ALT: () => this.CONSUME(T.Bits) }, { ALT: () => this.CONSUME2(T.Identifier, { LABEL: 'kind' }) }]);
  });

  private noiseClause = this.RULE('noiseClause', () => {
    this.CONSUME(T.Noise);
    this.CONSUME(T.Identifier, { LABEL: 'target' });
    this.OR([{ ALT: () => this.SUBRULE(this.number) }, { ALT: () => this.CONSUME2(T.Identifier, { LABEL: 'kind' }) }]);
  });

  private optimizerClause = this.RULE('optimizerClause', () => {
    this.CONSUME(T.Optimizer);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
  });

  private seedClause = this.RULE('seedClause', () => {
    this.CONSUME(T.Seed);
    this.SUBRULE(this.scalar);
  });

  private methodClause = this.RULE('methodClause', () => {
    this.CONSUME(T.Train);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
  });

  private fromClause = this.RULE('fromClause', () => {
    this.CONSUME(T.From);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
  });

  private fromSelection = this.RULE('fromSelection', () => {
    this.CONSUME(T.From);
    this.SUBRULE(this.selection);
  });

  private usingClause = this.RULE('usingClause', () => {
    this.CONSUME(T.Using);
    this.SUBRULE(this.attackSpec);
  });

  private voteClause = this.RULE('voteClause', () => {
    this.CONSUME(T.Vote);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
  });

  private withClause = this.RULE('withClause', () => {
    this.CONSUME(T.With);
    this.AT_LEAST_ONE({ GATE: this.paramAhead, DEF: () => this.SUBRULE(this.param) });
  });

  // ---- shared pieces ----
  private attackList = this.RULE('attackList', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.attackSpec) });
  });

  private attackSpec = this.RULE('attackSpec', () => {
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    // A keyword may name a parameter (`train=12000`), so only `word =` starts one here: this keeps
    // `pgd eps=8/255 from *` from reading `from` as a parameter name.
    this.MANY({ GATE: this.paramAhead, DEF: () => this.SUBRULE(this.param) });
  });

  private paramAhead = (): boolean => this.LA(2).tokenType === T.Equals;

  private selection = this.RULE('selection', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.selItem) });
  });

  private selItem = this.RULE('selItem', () => {
    this.OR([{ ALT: () => this.CONSUME(T.Glob) }, { ALT: () => this.CONSUME(T.Identifier) }]);
  });

  private param = this.RULE('param', () => {
    this.OR([{ ALT: () => this.CONSUME(T.Identifier, { LABEL: 'key' }) }, { ALT: () => this.CONSUME(T.Keyword, { LABEL: 'key' }) }]);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.value);
  });

  private value = this.RULE('value', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LBracket);
          this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.scalar) });
          this.CONSUME(T.RBracket);
        },
      },
      { ALT: () => this.SUBRULE2(this.scalar) },
    ]);
  });

  private scalar = this.RULE('scalar', () => {
    this.OR([
      {
        ALT: () => {
          this.SUBRULE(this.number, { LABEL: 'lo' });
          this.OPTION(() => {
            this.CONSUME(T.DotDot);
            this.SUBRULE2(this.number, { LABEL: 'hi' });
            this.OPTION2(() => {
              this.CONSUME(T.By);
              this.SUBRULE3(this.number, { LABEL: 'step' });
            });
          });
        },
      },
      { ALT: () => this.CONSUME(T.Bits) },
      { ALT: () => this.CONSUME(T.StringLit) },
      { ALT: () => this.CONSUME(T.Identifier) },
    ]);
  });

  private number = this.RULE('number', () => {
    this.OPTION(() => this.CONSUME(T.Minus));
    this.CONSUME(T.NumberLit, { LABEL: 'num' });
    this.OPTION2(() => {
      this.CONSUME(T.Slash);
      this.CONSUME2(T.NumberLit, { LABEL: 'den' });
    });
  });
}

/** One shared instance: Chevrotain parsers are reusable by resetting `input`. */
let shared: TrendParser | undefined;
export function parserInstance(): TrendParser {
  shared ??= new TrendParser();
  return shared;
}

export type { CstNode };
