/** Source positions: where a token of the lexer starts and ends. Imports nothing of the project. */

/** A span in a source file, 1-based, both ends inclusive (the same shape as the compiler's Loc). */
export interface SourceSpan {
  file: string;
  line: number;
  col: number;
  endLine: number;
  endCol: number;
}

/** The position fields of a lexer token (Chevrotain's IToken, with position tracking "full"). */
export interface TokenPosition {
  startLine?: number;
  startColumn?: number;
  endLine?: number;
  endColumn?: number;
}

/** The span of a token; an end the lexer did not record is taken to be the start (never line 0 after a real start). */
export function tokenLoc(file: string, t: TokenPosition): SourceSpan {
  const line = t.startLine ?? 0;
  const col = t.startColumn ?? 0;
  return { file, line, col, endLine: t.endLine ?? line, endCol: t.endColumn ?? col };
}
