/** What an operation implementation sees, and what the executor reports while it runs. */
import type { OpName, OpParams, OpSummary } from '../../compiler/contract.js';
import type { DagNode } from '../../compiler/dag.js';
import type { Artifact } from '../artifact.js';

export interface Progress {
  phase: string;
  done: number;
  total: number;
  unit?: string;
  metrics?: Record<string, number>;
  /** Units per second over the node so far (images/s for training and attacks). */
  rate?: number;
  /** Estimated seconds until the node is done (all epochs, all batches). */
  eta?: number;
}

/** The context of operation K: its parameters as the contract (compiler/contract.ts) types them. */
export interface OpContext<K extends OpName = OpName> {
  node: DagNode;
  /** The node's parameters in JSON form (exact numbers as "a/b" strings). */
  params: OpParams<K>;
  /** Input artifacts by role (lists for list roles), in the DAG's order. */
  inputs: Record<string, Artifact | Artifact[]>;
  progress(p: Progress): void;
  log(message: string): void;
  /** The backend actually in use (recorded with the artifact). */
  backend: string;
  signal: AbortSignal;
}

export interface OpResult<K extends OpName = OpName> {
  /** The summary is the contract's for K. */
  artifact: Artifact & { summary: OpSummary<K> };
  /** Run-dependent facts (timings) kept in metadata, never in the payload. */
  extra?: Record<string, unknown>;
}

/** Operation K's implementation. */
export type OpFn<K extends OpName> = (ctx: OpContext<K>) => Promise<OpResult<K>>;
export type OpImpl = OpFn<OpName>;

/** Supplies operation implementations; the runtime's registry loads TF.js only when asked. */
export interface OpProvider {
  /** Prepares the compute backend; called once, only if some node must run. */
  init(): Promise<string>;
  get<K extends OpName>(op: K): Promise<OpFn<K>>;
}

/** An error with a message meant for the user (no stack trace needed). */
export { StepError } from '../../common/errors.js';

export type RunEvent =
  | { type: 'run-start'; runId: string; total: number; toRun: number; cached: number }
  | { type: 'backend'; name: string }
  | { type: 'node-start'; id: string; op: string; label: string }
  | { type: 'node-wait'; id: string; owner?: number }
  | { type: 'node-progress'; id: string; progress: Progress }
  | { type: 'node-log'; id: string; message: string }
  | { type: 'node-end'; id: string; status: 'ran' | 'cached' | 'failed' | 'skipped'; ms?: number; error?: string; where?: string }
  | { type: 'run-end'; runId: string; status: string; counts: Record<string, number>; ms: number };
