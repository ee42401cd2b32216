/**
 * TREND selection: the k candidates with the lowest pairwise transferability. Symmetric
 * TM(i, j) = (TM(i -> j) + TM(j -> i)) / 2; the objective is the sum (or the max) of it over the
 * chosen pairs; the search is exact over all k-subsets when there are at most 200,000 of them,
 * greedy otherwise; ties go to the lexicographically first subset.
 */
export interface Selection {
  chosen: number[];
  objective: number;
  method: 'exact' | 'greedy';
  evaluated: number;
}

export function symmetric(tm: (i: number, j: number) => number | null, n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 0 : ((tm(i, j) ?? 0) + (tm(j, i) ?? 0)) / 2)));
}

function score(s: number[][], set: number[], objective: 'sum' | 'max'): number {
  let acc = 0;
  for (let a = 0; a < set.length; a++) {
    for (let b = a + 1; b < set.length; b++) {
      const v = s[set[a]!]![set[b]!]!;
      acc = objective === 'sum' ? acc + v : Math.max(acc, v);
    }
  }
  return acc;
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

export function selectLowest(s: number[][], k: number, objective: 'sum' | 'max'): Selection {
  const n = s.length;
  if (binomial(n, k) <= 200_000) {
    let best: number[] = [];
    let bestScore = Infinity;
    let evaluated = 0;
    const cur: number[] = [];
    const rec = (start: number) => {
      if (cur.length === k) {
        evaluated++;
        const v = score(s, cur, objective);
        if (v < bestScore - 1e-12) {
          bestScore = v;
          best = [...cur];
        }
        return;
      }
      for (let i = start; i <= n - (k - cur.length); i++) {
        cur.push(i);
        rec(i + 1);
        cur.pop();
      }
    };
    rec(0);
    return { chosen: best, objective: bestScore, method: 'exact', evaluated };
  }
  // Greedy: start from the lowest pair, add the candidate that raises the objective least.
  let best: number[] = [0, 1];
  let bestScore = Infinity;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++)
      if (s[i]![j]! < bestScore) {
        bestScore = s[i]![j]!;
        best = [i, j];
      }
  while (best.length < k) {
    let pick = -1;
    let pickScore = Infinity;
    for (let c = 0; c < n; c++) {
      if (best.includes(c)) continue;
      const v = score(s, [...best, c], objective);
      if (v < pickScore) [pick, pickScore] = [c, v];
    }
    best.push(pick);
  }
  best.sort((a, b) => a - b);
  return { chosen: best, objective: score(s, best, objective), method: 'greedy', evaluated: n * n };
}
