/** The report's sections, each a function of the run and the cache returning Markdown lines. */
import type { RunRecord, Store } from '../store/store.js';

export interface SectionContext {
  store: Store;
  run: RunRecord;
  dir: string;
  files: string[];
}

export type Section = (ctx: SectionContext) => Promise<string[]> | string[];

export const sections: Section[] = [];
