/**
 * Pacing long computations. TF.js kernels on wasm run synchronously, so a training or attack loop
 * that never awaits holds the event loop for the whole node: signal handlers (Ctrl-C, SIGTERM),
 * progress redraws and timers all wait until it ends. Loops call `tick()` between steps: once
 * `intervalMs` has passed since the last yield it gives the event loop one turn (setImmediate:
 * timers, I/O and signal handlers run), and it throws StepError('interrupted') as soon as the
 * signal is aborted. Between yields a tick costs a clock read.
 *
 * Attacks are written as generators that yield the fraction of their work done after each step
 * (so they stay plain synchronous functions for callers that do not pace them); `paced` drives
 * one with a tick between steps and, if it stops early, closes it so its `finally` blocks free
 * the tensors it holds.
 */
import { StepError } from '../common/errors.js';

/** How often long loops yield to the event loop, in milliseconds. */
export const YIELD_INTERVAL_MS = 100;

export class Pacer {
  private last = performance.now();
  constructor(
    readonly signal?: AbortSignal,
    readonly intervalMs = YIELD_INTERVAL_MS,
  ) {}

  /** Throws if the run was interrupted. */
  check(): void {
    if (this.signal?.aborted) throw new StepError('interrupted');
  }

  /** Between steps: yield to the event loop now and then, and stop if interrupted. */
  async tick(): Promise<void> {
    this.check();
    if (performance.now() - this.last < this.intervalMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.last = performance.now();
    this.check();
  }
}

/** A computation in steps: yields the fraction done (0..1) after each step, returns its result. */
export type Steps<T> = Generator<number, T, void>;

/** Runs steps to the end without pausing (the synchronous form). */
export function runSteps<T>(g: Steps<T>): T {
  for (;;) {
    const s = g.next();
    if (s.done) return s.value;
  }
}

/** Runs steps with `between(fraction)` awaited after each; an error there closes the generator. */
export async function paced<T>(g: Steps<T>, between: (fraction: number) => Promise<void> | void): Promise<T> {
  let finished = false;
  try {
    for (;;) {
      const s = g.next();
      if (s.done) {
        finished = true;
        return s.value;
      }
      await between(s.value);
    }
  } finally {
    // Stopped early (interrupted, or `between` threw): run the generator's finally blocks.
    if (!finished) g.return(undefined as never);
  }
}

/** Maps the fractions of `g` into [lo, hi] (for one part of a larger computation). */
export function* scaled<T>(g: Steps<T>, lo: number, hi: number): Steps<T> {
  try {
    for (;;) {
      const s = g.next();
      if (s.done) return s.value;
      yield lo + (hi - lo) * s.value;
    }
  } finally {
    g.return(undefined as never);
  }
}
