/** Error types shared across layers (they import nothing of the project). */

/** A step (an operation on its inputs) failed: the run records it and caches nothing. */
export class StepError extends Error {}
