import { COMPATIBLE, GROUP_SLOTS, groupIndex, groupsCompatible } from './groups.js';
import type { Match, Waiter } from './types.js';

/**
 * Whether two waiters may be paired: B's gender is among A's sought genders and A's among B's, and
 * they are not the same user.
 */
export function compatible(a: Waiter, b: Waiter): boolean {
  return a.userId !== b.userId && groupsCompatible(a, b);
}

/** Queue order: earlier `joinedAt` first, ties broken by `userId` (so the order is total and stable). */
export function queueOrder(a: Waiter, b: Waiter): number {
  return a.joinedAt - b.joinedAt || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0);
}

/**
 * Chooses the pairs to make now, first come first served within compatibility, with no starvation.
 *
 * The rule: walk the queue in {@link queueOrder}; the oldest waiter not yet paired is paired with the
 * oldest compatible waiter not yet paired, if there is one. So nobody is paired with a partner an
 * older compatible waiter could have had, and nobody is skipped for someone younger.
 *
 * Every returned pair is compatible, nobody is in two pairs, and among the waiters left unpaired no
 * two are compatible. A userId given twice counts once (its earlier entry). The input is not changed.
 * Cost: a sort plus O(n × groups) — waiters are kept in one FIFO per (gender, seeking) group, of
 * which there are 21, so 10,000 waiters take a few milliseconds.
 */
export function pickMatches(waiting: readonly Waiter[]): Match[] {
  const order = [...waiting].sort(queueOrder);
  // One FIFO of positions in `order` per group; every removal happens at a head (see below).
  const queues: number[][] = Array.from({ length: GROUP_SLOTS }, () => []);
  const groupOf = new Int32Array(order.length).fill(-1);
  const seen = new Set<string>();
  order.forEach((waiter, i) => {
    if (seen.has(waiter.userId)) return;
    seen.add(waiter.userId);
    const g = groupIndex(waiter);
    groupOf[i] = g;
    (queues[g] as number[]).push(i);
  });
  const heads = new Int32Array(GROUP_SLOTS);
  const taken = new Uint8Array(order.length);
  const pairs: Match[] = [];
  for (let i = 0; i < order.length; i += 1) {
    const g = groupOf[i] as number;
    if (g < 0 || taken[i] === 1) continue;
    // Everyone before i is paired or was found to have no partner, so i is its group's head: leave it.
    heads[g] = (heads[g] as number) + 1;
    let best = -1;
    let bestGroup = -1;
    for (const h of COMPATIBLE[g] as readonly number[]) {
      const candidate = (queues[h] as number[])[heads[h] as number];
      if (candidate !== undefined && (best < 0 || candidate < best)) {
        best = candidate;
        bestGroup = h;
      }
    }
    if (best < 0) continue; // nobody compatible now, and nobody younger can change that this round
    taken[best] = 1;
    heads[bestGroup] = (heads[bestGroup] as number) + 1;
    pairs.push({ first: order[i] as Waiter, second: order[best] as Waiter });
  }
  return pairs;
}

/**
 * Each waiter's place among those of its own group (same gender, same seeking set), 1 for the
 * first, in {@link queueOrder}: the `position` an estimate takes. Keyed by userId. The definition:
 * SpinService numbers places itself over its copy of the queue kept in order (no sort, no new map
 * each time), and is tested against this (places.test.ts).
 */
export function groupPositions(waiting: readonly Waiter[]): Map<string, number> {
  const counts = new Int32Array(GROUP_SLOTS);
  const positions = new Map<string, number>();
  for (const waiter of [...waiting].sort(queueOrder)) {
    if (positions.has(waiter.userId)) continue;
    const g = groupIndex(waiter);
    const position = (counts[g] as number) + 1;
    counts[g] = position;
    positions.set(waiter.userId, position);
  }
  return positions;
}
