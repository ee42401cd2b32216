/** Opening the cache for a command: --cache, then $TREND_CACHE, then ./cache. */
import { resolve } from 'node:path';
import { Store } from '../store/store.js';

export function cacheDir(flag?: string): string {
  return resolve(flag ?? (process.env.TREND_CACHE || 'cache'));
}

export async function openStore(flag?: string): Promise<Store> {
  return Store.open(cacheDir(flag));
}
