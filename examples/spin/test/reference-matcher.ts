/**
 * The matching rule written the obvious way, O(n²): walk the queue oldest first and give each waiter
 * not yet paired the oldest compatible waiter not yet paired. The property test holds the fast
 * matcher to it, and the matcher benchmark measures against it.
 */
import { compatible, queueOrder } from '../src/domain/matcher.js';
import type { Match, Waiter } from '../src/domain/types.js';

export function referenceMatches(waiting: readonly Waiter[]): Match[] {
  const seen = new Set<string>();
  const order = [...waiting].sort(queueOrder).filter((w) => !seen.has(w.userId) && seen.add(w.userId));
  const paired = new Set<number>();
  const pairs: Match[] = [];
  order.forEach((first, i) => {
    if (paired.has(i)) return;
    const j = order.findIndex((second, k) => k !== i && !paired.has(k) && compatible(first, second));
    if (j < 0) return;
    paired.add(i).add(j);
    pairs.push({ first, second: order[j] as Waiter });
  });
  return pairs;
}
