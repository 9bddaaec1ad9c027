import { isBulwarkError } from '../errors/index.js';
import type { KvRepository } from '../store/types.js';

interface LeaseValue {
  owner: string;
  until: number;
}

/**
 * A lease in the store's key-value table: at most one instance holds a role (such as "the alert
 * evaluator and sender") at a time. Taken or renewed with compare-and-set; a holder that stops
 * renewing (crashed, partitioned) loses it after `ttlMs`.
 */
export class StoreLease {
  readonly #kv: KvRepository;
  readonly #key: string;
  readonly #owner: string;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(opts: { kv: KvRepository; key: string; owner: string; ttlMs: number; now?: () => number }) {
    this.#kv = opts.kv;
    this.#key = opts.key;
    this.#owner = opts.owner;
    this.#ttlMs = opts.ttlMs;
    this.#now = opts.now ?? Date.now;
  }

  /** Takes or renews the lease; resolves whether this instance holds it now. */
  async acquire(): Promise<boolean> {
    const now = this.#now();
    const entry = await this.#kv.get<LeaseValue>('bulwark.leases', this.#key);
    if (entry !== undefined && entry.value.owner !== this.#owner && entry.value.until > now) return false;
    try {
      await this.#kv.put<LeaseValue>(
        'bulwark.leases',
        this.#key,
        { owner: this.#owner, until: now + this.#ttlMs },
        { ifVersion: entry?.version ?? 0 },
      );
      return true;
    } catch (error) {
      if (isBulwarkError(error, 'BWK_ERR_STORE_CONFLICT')) return false;
      throw error;
    }
  }

  /** Gives the lease up if held (on a clean shutdown, so another instance takes over at once). */
  async release(): Promise<void> {
    const entry = await this.#kv.get<LeaseValue>('bulwark.leases', this.#key);
    if (entry?.value.owner !== this.#owner) return;
    await this.#kv
      .put<LeaseValue>('bulwark.leases', this.#key, { owner: '', until: 0 }, { ifVersion: entry.version })
      .catch(() => undefined);
  }
}
