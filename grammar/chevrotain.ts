/**
 * Chevrotain, loaded from the single-file ESM bundle that the package ships (lib/chevrotain.mjs).
 * The package's exported entry is the unbundled build, which imports lodash-es one function at a
 * time: several hundred module files, about half a second of every `trendc` start. The bundle is
 * the same release in one file (about 40 ms). Every runtime use of Chevrotain goes through this
 * module, so that token types and exceptions come from one copy; type-only imports may name
 * 'chevrotain' directly. If a future release stops shipping the bundle, the package entry is used.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

type Chevrotain = typeof import('chevrotain');

const entry = createRequire(import.meta.url).resolve('chevrotain'); // <pkg>/lib/src/api.js
const bundle = join(dirname(entry), '..', 'chevrotain.mjs');
const chevrotain: Chevrotain = existsSync(bundle) ? await import(pathToFileURL(bundle).href) : await import('chevrotain');

export const { createToken, createSyntaxDiagramsCode, CstParser, EOF, Lexer, tokenMatcher } = chevrotain;
export default chevrotain;
