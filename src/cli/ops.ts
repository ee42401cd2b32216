/** The operation set a run uses: the runtime's, or the module named by $TREND_OPS_MODULE (tests). */
import { resolve } from 'node:path';
import type { OpProvider } from '../runtime/executor/types.js';

export async function loadOps(backend: string): Promise<OpProvider> {
  const custom = process.env.TREND_OPS_MODULE;
  if (custom) {
    const mod = (await import(resolve(custom))) as { createOps(b: string): OpProvider };
    return mod.createOps(backend);
  }
  const { createOps } = await import('../runtime/ops/registry.js');
  return createOps(backend);
}
