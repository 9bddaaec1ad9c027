import type { Offender } from './types.js';

interface Slot {
  count: number;
  overcount: number;
}

/**
 * The keys refused most often, per policy, in bounded memory: at most `capacity` keys per policy,
 * kept with the space-saving algorithm (a new key replaces the one with the lowest count and
 * inherits that count as its possible overcount). Any key refused more than `total / capacity`
 * times is guaranteed to be listed. Stores keys exactly as given: callers pass hashed API keys.
 */
export class TopOffenders {
  readonly #capacity: number;
  readonly #policies = new Map<string, Map<string, Slot>>();

  /** `capacity`: keys tracked per policy (default 100). */
  constructor(capacity = 100) {
    this.#capacity = Math.max(1, Math.floor(capacity));
  }

  /** Counts one refusal of `key` under `policy`. O(1), or O(capacity) when a key is replaced. */
  record(policy: string, key: string): void {
    let slots = this.#policies.get(policy);
    if (slots === undefined) {
      slots = new Map();
      this.#policies.set(policy, slots);
    }
    const slot = slots.get(key);
    if (slot !== undefined) {
      slot.count += 1;
      return;
    }
    if (slots.size < this.#capacity) {
      slots.set(key, { count: 1, overcount: 0 });
      return;
    }
    let minKey: string | undefined;
    let min: Slot | undefined;
    for (const [k, s] of slots) {
      if (min === undefined || s.count < min.count) {
        minKey = k;
        min = s;
      }
    }
    if (minKey === undefined || min === undefined) return;
    slots.delete(minKey);
    slots.set(key, { count: min.count + 1, overcount: min.count });
  }

  /** The `n` highest counts, highest first, of one policy or across all. */
  top(n = 10, policy?: string): Offender[] {
    const out: Offender[] = [];
    for (const [name, slots] of this.#policies) {
      if (policy !== undefined && name !== policy) continue;
      for (const [key, slot] of slots) out.push({ policy: name, key, ...slot });
    }
    return out.sort((a, b) => b.count - a.count).slice(0, Math.max(0, n));
  }
}
