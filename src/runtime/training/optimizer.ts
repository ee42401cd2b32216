/**
 * Optimizers with PyTorch semantics: SGD (momentum, weight decay added to the gradient) and Adam.
 * On the wasm backend an SGD step is one SIMD kernel per tensor (writing new tensors: XNNPACK
 * caches packed weights by tensor, so weights are never changed in place); elsewhere TF.js ops.
 * State can be snapshotted and restored (gradient projection needs that).
 */
import { sgdStep } from '../backends/wasm-kernels/elementwise.js';
import { kernelModule } from '../backends/wasm-kernels/memory.js';
import { tf } from '../tf.js';

export interface Optimizer {
  step(vars: tf.Variable[], grads: tf.Tensor[], lr: number): void;
  snapshot(): unknown;
  restore(s: unknown): void;
  dispose(): void;
}

/** A zero-filled variable shaped like v (tf.variable keeps, and does not free, its initial value). */
function zerosVar(v: tf.Tensor): tf.Variable {
  const z = tf.zerosLike(v);
  const out = tf.variable(z, false);
  z.dispose();
  return out;
}

export class SGD implements Optimizer {
  private readonly velocity = new Map<tf.Variable, tf.Variable>();
  constructor(
    private readonly momentum: number,
    private readonly wd: number,
  ) {}

  private vel(v: tf.Variable): tf.Variable {
    let m = this.velocity.get(v);
    if (!m) {
      m = zerosVar(v);
      this.velocity.set(v, m);
    }
    return m;
  }

  step(vars: tf.Variable[], grads: tf.Tensor[], lr: number): void {
    const K = kernelModule();
    vars.forEach((v, i) => {
      const g = grads[i]!;
      const m = this.vel(v);
      if (K) {
        const [nw, nv] = sgdStep(v, g, m, lr, this.momentum, this.wd);
        v.assign(nw);
        m.assign(nv);
        nw.dispose();
        nv.dispose();
        return;
      }
      tf.tidy(() => {
        const gw = this.wd ? tf.add(g, tf.mul(v, this.wd)) : g;
        const nm = tf.add(tf.mul(m, this.momentum), gw);
        m.assign(nm);
        v.assign(tf.sub(v, tf.mul(nm, lr)));
      });
    });
  }

  snapshot(): Map<tf.Variable, Float32Array> {
    return new Map([...this.velocity].map(([v, m]) => [v, (m.dataSync() as Float32Array).slice()]));
  }

  restore(s: unknown): void {
    for (const [v, data] of s as Map<tf.Variable, Float32Array>) {
      const m = this.vel(v);
      tf.tidy(() => m.assign(tf.tensor(data, m.shape)));
    }
  }

  dispose(): void {
    for (const m of this.velocity.values()) m.dispose();
  }
}

export class Adam implements Optimizer {
  private readonly m = new Map<tf.Variable, tf.Variable>();
  private readonly v = new Map<tf.Variable, tf.Variable>();
  private t = 0;
  constructor(
    private readonly b1 = 0.9,
    private readonly b2 = 0.999,
    private readonly eps = 1e-8,
  ) {}

  step(vars: tf.Variable[], grads: tf.Tensor[], lr: number): void {
    this.t++;
    const c1 = 1 - this.b1 ** this.t;
    const c2 = 1 - this.b2 ** this.t;
    vars.forEach((w, i) => {
      const g = grads[i]!;
      if (!this.m.has(w)) {
        this.m.set(w, zerosVar(w));
        this.v.set(w, zerosVar(w));
      }
      const m = this.m.get(w)!;
      const v = this.v.get(w)!;
      tf.tidy(() => {
        const nm = tf.add(tf.mul(m, this.b1), tf.mul(g, 1 - this.b1));
        const nv = tf.add(tf.mul(v, this.b2), tf.mul(tf.square(g), 1 - this.b2));
        m.assign(nm);
        v.assign(nv);
        w.assign(tf.sub(w, tf.mul(lr, tf.div(tf.div(nm, c1), tf.add(tf.sqrt(tf.div(nv, c2)), this.eps)))));
      });
    });
  }

  snapshot(): unknown {
    const copy = (mp: Map<tf.Variable, tf.Variable>) => new Map([...mp].map(([k, x]) => [k, (x.dataSync() as Float32Array).slice()]));
    return { t: this.t, m: copy(this.m), v: copy(this.v) };
  }

  restore(s: unknown): void {
    const st = s as { t: number; m: Map<tf.Variable, Float32Array>; v: Map<tf.Variable, Float32Array> };
    this.t = st.t;
    for (const [mp, src] of [
      [this.m, st.m],
      [this.v, st.v],
    ] as const) {
      for (const [k, data] of src) tf.tidy(() => mp.get(k)!.assign(tf.tensor(data, k.shape)));
    }
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}
