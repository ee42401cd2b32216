/**
 * RAMP's gradient projection, per tensor: from weights th_old, an adversarial epoch gives th_adv
 * and a clean epoch th_nat; with g_a = th_adv - th_old, g_n = th_nat - th_old, c = cos(g_a, g_n):
 *   th = th_old + (1 - beta) g_a + (c > 0 ? beta c g_n : 0)
 * Non-trainable tensors (batch-norm statistics) take their adversarial-epoch values.
 */
export function gradientProjection(
  old: Map<string, Float32Array>,
  adv: Map<string, Float32Array>,
  nat: Map<string, Float32Array>,
  beta: number,
  trainable: Set<string>,
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, o] of old) {
    const a = adv.get(name)!;
    if (!trainable.has(name)) {
      out.set(name, a.slice());
      continue;
    }
    const nt = nat.get(name)!;
    let dot = 0;
    let na = 0;
    let nn = 0;
    for (let i = 0; i < o.length; i++) {
      const ga = a[i]! - o[i]!;
      const gn = nt[i]! - o[i]!;
      dot += ga * gn;
      na += ga * ga;
      nn += gn * gn;
    }
    const c = na > 0 && nn > 0 ? dot / Math.sqrt(na * nn) : 0;
    const r = new Float32Array(o.length);
    for (let i = 0; i < o.length; i++) {
      const ga = a[i]! - o[i]!;
      const gn = nt[i]! - o[i]!;
      r[i] = o[i]! + (1 - beta) * ga + (c > 0 ? beta * c * gn : 0);
    }
    out.set(name, r);
  }
  return out;
}
