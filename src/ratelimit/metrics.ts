import { Counter, type Registry } from 'prom-client';
import type { RateLimitDecision } from './types.js';

const NAME = 'bulwark_ratelimit_decisions_total';

type Labels = 'policy' | 'result' | 'source';

/** One label set's decisions not yet handed to the counter. */
interface Pending {
  labels: Record<Labels, string>;
  count: number;
}

/** The tallies of every RateLimitMetrics sharing a registry's counter, flushed when it is read. */
const tallies = new WeakMap<Counter<Labels>, Map<string, Pending>>();

/**
 * `bulwark_ratelimit_decisions_total{policy,result="allowed"|"limited",source="redis"|"memory"}` on
 * a registry, reused when already registered there (several limiters may share one registry).
 * Label values are bounded: policy names are configuration, never keys.
 *
 * A decision is tallied in a plain number and handed to prom-client when the counter is read (a
 * scrape, the metrics history): prom-client validates and hashes the labels on every `inc()`, even
 * through a bound child, which cost more than the check itself on the request path.
 */
export class RateLimitMetrics {
  readonly #pending: Map<string, Pending>;

  constructor(registry: Registry) {
    const existing = registry.getSingleMetric(NAME) as Counter<Labels> | undefined;
    const counter =
      existing ??
      new Counter({
        name: NAME,
        help: 'Rate-limit decisions by policy, result (allowed|limited) and source (redis|memory).',
        labelNames: ['policy', 'result', 'source'],
        registers: [registry],
        collect() {
          const pending = tallies.get(this);
          if (pending === undefined) return;
          for (const entry of pending.values()) {
            if (entry.count === 0) continue;
            this.inc(entry.labels, entry.count);
            entry.count = 0;
          }
        },
      });
    let pending = tallies.get(counter);
    if (pending === undefined) {
      pending = new Map();
      tallies.set(counter, pending);
    }
    this.#pending = pending;
  }

  /** Counts one decision. */
  observe(decision: RateLimitDecision): void {
    const result = decision.allowed ? 'allowed' : 'limited';
    const id = `${decision.policy}\u0000${result}\u0000${decision.source}`;
    let entry = this.#pending.get(id);
    if (entry === undefined) {
      entry = { labels: { policy: decision.policy, result, source: decision.source }, count: 0 };
      this.#pending.set(id, entry);
    }
    entry.count += 1;
  }
}
