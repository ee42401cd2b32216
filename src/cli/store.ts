/** Opening the cache for a command: --cache, then $TREND_CACHE, then ./cache. */
import { resolve } from 'node:path';
import type { IdentityMemo } from '../runtime/data/files.js';
import { Store, StoreError, type OpenOptions } from '../store/store.js';

export function cacheDir(flag?: string): string {
  return resolve(flag ?? (process.env.TREND_CACHE || 'cache'));
}

/**
 * Opens the store. create: false for commands that only look at an existing store (they say
 * "no store at DIR", exit 2, and create nothing); a command that writes creates the store at its
 * first write. Warnings (a damaged index) go to stderr.
 */
export async function openStore(flag?: string, opts: Omit<OpenOptions, 'onWarning'> = {}): Promise<Store> {
  const dir = cacheDir(flag);
  const from = flag !== undefined ? '--cache' : process.env.TREND_CACHE ? 'TREND_CACHE' : undefined;
  try {
    return await Store.open(dir, { ...opts, onWarning: (m) => process.stderr.write(`trendc: warning: ${m}\n`) });
  } catch (e) {
    if (e instanceof StoreError && from && e.exitCode === 2) throw new StoreError(`${e.message} (from ${from})`, 2, e.code);
    throw e;
  }
}

/** Opens the store, calls `fn` with it, and closes it whatever happens. */
export async function withStore<T>(flag: string | undefined, opts: Omit<OpenOptions, 'onWarning'>, fn: (store: Store) => Promise<T> | T): Promise<T> {
  const store = await openStore(flag, opts);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The store's memo of dataset file identities, as loadPlan takes it. */
export function storeMemo(store: Store): IdentityMemo {
  return { get: (k) => store.memoGet(k), put: (k, v) => store.memoPut(k, v) };
}
