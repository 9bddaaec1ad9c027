import { Counter, type Registry } from 'prom-client';
import type { RateLimitDecision } from './types.js';

const NAME = 'bulwark_ratelimit_decisions_total';

type Labels = 'policy' | 'result' | 'source';

/**
 * `bulwark_ratelimit_decisions_total{policy,result="allowed"|"limited",source="redis"|"memory"}` on
 * a registry, reused when already registered there (several limiters may share one registry).
 * Label values are bounded: policy names are configuration, never keys.
 */
export class RateLimitMetrics {
  readonly #decisions: Counter<Labels>;
  readonly #children = new Map<string, { inc(): void }>();

  constructor(registry: Registry) {
    this.#decisions =
      (registry.getSingleMetric(NAME) as Counter<Labels> | undefined) ??
      new Counter({
        name: NAME,
        help: 'Rate-limit decisions by policy, result (allowed|limited) and source (redis|memory).',
        labelNames: ['policy', 'result', 'source'],
        registers: [registry],
      });
  }

  /** Counts one decision. */
  observe(decision: RateLimitDecision): void {
    const result = decision.allowed ? 'allowed' : 'limited';
    const id = `${decision.policy}\u0000${result}\u0000${decision.source}`;
    let child = this.#children.get(id);
    if (child === undefined) {
      // Resolving labels hashes them on every call; the bound child is resolved once.
      child = this.#decisions.labels({ policy: decision.policy, result, source: decision.source });
      this.#children.set(id, child);
    }
    child.inc();
  }
}
