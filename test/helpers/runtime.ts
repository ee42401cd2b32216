import type { OpName, OpParams } from '../../src/compiler/contract.js';
import type { DagNode } from '../../src/compiler/dag.js';
import type { Artifact } from '../../src/runtime/artifact.js';
import type { OpContext } from '../../src/runtime/executor/types.js';

/**
 * An operation context for calling an op directly in a test. The parameters are taken as the test
 * writes them (some tests give deliberately partial or other-version parameters); K is the
 * operation called, inferred from the call the context is passed to.
 */
export function fakeContext<K extends OpName = OpName>(
  params: unknown,
  inputs: Record<string, Artifact | Artifact[]> = {},
  info: DagNode['info'] = {},
): OpContext<K> {
  return {
    node: {
      id: 'test',
      op: 'dataset',
      key: 'k',
      params: params as DagNode['params'],
      inputs: {},
      loc: { file: 't', line: 1, col: 1, endLine: 1, endCol: 1 },
      info,
    },
    params: params as OpParams<K>,
    inputs,
    progress: () => {},
    log: () => {},
    backend: 'test',
    signal: new AbortController().signal,
  };
}
