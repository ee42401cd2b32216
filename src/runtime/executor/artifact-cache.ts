/** A small in-memory cache of decoded artifacts (they are immutable), bounded by bytes. */
import type { Artifact } from '../artifact.js';

export class ArtifactCache {
  private readonly map = new Map<string, { a: Artifact; bytes: number }>();
  private total = 0;
  constructor(private readonly limit = 1 << 30) {}
  get(key: string): Artifact | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e.a;
  }
  set(key: string, a: Artifact, bytes: number): void {
    if (bytes > this.limit / 4) return;
    this.map.set(key, { a, bytes });
    this.total += bytes;
    for (const [k, e] of this.map) {
      if (this.total <= this.limit) break;
      this.map.delete(k);
      this.total -= e.bytes;
    }
  }
}
