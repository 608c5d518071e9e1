/**
 * Countdown solver by depth-first search: repeatedly replace two numbers by their sum, product,
 * positive difference or exact quotient (game rules: every intermediate value a positive whole
 * number), stopping as soon as any value equals the target (so not every number must be used).
 * Multisets already seen are skipped. It also records, for the worked solution, the first
 * path tried in up to `maxDeadEnds` top-level branches that failed.
 */
import type { Expr, Op } from './expression.js';

interface Item {
  value: bigint;
  expr: Expr;
}

export interface SolverStep {
  left: bigint;
  op: Op;
  right: bigint;
  result: bigint;
}

export interface CountdownSearch {
  /** null when the target cannot be reached. */
  expr: Expr | null;
  /** The combinations of the solution, in order. */
  steps: SolverStep[];
  deadEnds: SolverStep[][];
  nodes: number;
}

function moves(x: Item, y: Item): { op: Op; left: Item; right: Item; value: bigint }[] {
  const [big, small] = x.value >= y.value ? [x, y] : [y, x];
  const out: { op: Op; left: Item; right: Item; value: bigint }[] = [
    { op: '+', left: big, right: small, value: big.value + small.value },
    { op: '*', left: big, right: small, value: big.value * small.value },
  ];
  if (big.value !== small.value) out.push({ op: '-', left: big, right: small, value: big.value - small.value });
  if (small.value !== 0n && big.value % small.value === 0n) out.push({ op: '/', left: big, right: small, value: big.value / small.value });
  return out;
}

export function solveCountdown(numbers: readonly number[], target: number, maxDeadEnds = 2): CountdownSearch {
  const goal = BigInt(target);
  const seen = new Set<string>();
  const search: CountdownSearch = { expr: null, steps: [], deadEnds: [], nodes: 0 };
  const path: SolverStep[] = [];
  let firstLeaf: SolverStep[] | null = null;

  const dfs = (items: Item[]): boolean => {
    search.nodes++;
    const hit = items.find((it) => it.value === goal);
    if (hit) {
      search.expr = hit.expr;
      search.steps = path.slice();
      return true;
    }
    if (items.length < 2) {
      firstLeaf ??= path.slice();
      return false;
    }
    const key = items.map((it) => it.value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join(',');
    if (seen.has(key)) return false;
    seen.add(key);
    for (let i = 0; i < items.length; i++) {
      for (let j = i + 1; j < items.length; j++) {
        for (const m of moves(items[i]!, items[j]!)) {
          const rest = items.filter((_, k) => k !== i && k !== j);
          rest.push({ value: m.value, expr: { kind: 'bin', op: m.op, left: m.left.expr, right: m.right.expr } });
          path.push({ left: m.left.value, op: m.op, right: m.right.value, result: m.value });
          if (path.length === 1) firstLeaf = null;
          const found = dfs(rest);
          if (path.length === 1 && !found && firstLeaf && search.deadEnds.length < maxDeadEnds) search.deadEnds.push(firstLeaf);
          path.pop();
          if (found) return true;
        }
      }
    }
    return false;
  };

  dfs(numbers.map((n) => ({ value: BigInt(n), expr: { kind: 'num', value: BigInt(n), text: String(n) } })));
  return search;
}
