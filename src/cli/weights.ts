import type { CheckedProgram } from '../compiler/checked.js';
import type { WeightsInspection } from '../runtime/models/inspect-weights.js';

/**
 * The imported weights' checksums and diagnostics, with the weights readers (safetensors, layout
 * matching) loaded only for a pipeline that imports weights: `trendc check` and `run` of other
 * pipelines start without them.
 */
export async function inspectImported(program: CheckedProgram): Promise<WeightsInspection> {
  if (!program.models.some((m) => m.weights)) return { checksums: {}, diagnostics: [] };
  return (await import('../runtime/models/inspect-weights.js')).inspectWeights(program);
}
