import type { DagNode } from '../../src/compiler/dag.js';
import type { Artifact } from '../../src/runtime/artifact.js';
import type { OpContext } from '../../src/runtime/executor/types.js';

/** An operation context for calling an op directly in a test. */
export function fakeContext(params: unknown, inputs: Record<string, Artifact | Artifact[]> = {}, info: DagNode['info'] = {}): OpContext {
  return {
    node: { id: 'test', op: 'dataset', key: 'k', params, inputs: {}, loc: { file: 't', line: 1, col: 1, endLine: 1, endCol: 1 }, info },
    params,
    inputs,
    progress: () => {},
    log: () => {},
    backend: 'test',
    signal: new AbortController().signal,
  };
}
