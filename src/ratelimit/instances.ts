import type { Redis } from 'ioredis';
import type { Failover } from '../failover/index.js';

// One round trip per beat, and O(log n) instead of a SCAN over the keyspace: the live set is one
// sorted set scored by the time of each instance's last beat.
const HEARTBEAT_LUA = `
-- Input:  KEYS[1] the sorted set of instances (<prefix>instances), member = instance id,
--         score = time of its last beat (ms, the server's clock).
--         ARGV[1] this instance's id. ARGV[2] liveness TTL (ms): older beats are dropped.
-- Output: the number of live instances, this one included.
-- The server's clock scores every beat, so skewed instance clocks cannot keep a dead member alive.
-- TIME comes before any write, as Redis < 7 requires of non-deterministic commands in scripts.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
`;

/** Options of an {@link InstanceCounter}. Times in milliseconds. */
export interface InstanceCounterOptions {
  client: Redis;
  failover: Failover;
  /** The sorted set's key. */
  key: string;
  instanceId: string;
  intervalMs: number;
  /** The count assumed until the first beat answers (at least 1). */
  initial: number;
  /** Called when the count changes. Must not throw. */
  onChange: (count: number) => void;
}

/**
 * Learns how many instances share a limit: each beats every `intervalMs` into one sorted set, and
 * an instance counts as live for 3 × `intervalMs` after its last beat. Beats go through the
 * failover: on the fallback side they are skipped and the last known count is kept, which is what
 * sizes the in-memory share during an outage. The count rises at once and falls a TTL late (see
 * `#learn`). A beat never rejects and never throws from a timer.
 */
export class InstanceCounter {
  readonly #opts: InstanceCounterOptions;
  readonly #ttlMs: number;
  #count: number;
  /** Since when successful beats have seen fewer than `#count` (ms, real time like the timers). */
  #lowSince: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<number> | undefined;
  #closed = false;

  constructor(opts: InstanceCounterOptions) {
    this.#opts = opts;
    this.#ttlMs = opts.intervalMs * 3;
    this.#count = Math.max(1, Math.floor(opts.initial));
  }

  /** Live instances as last learned (at least 1). */
  get count(): number {
    return this.#count;
  }

  /** Beats now and then every `intervalMs` (an unref'd timer); beats again at once on failback. */
  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => void this.beat(), this.#opts.intervalMs).unref();
    // A recovered Redis may have dropped the set (a restart without persistence): rejoin at once.
    this.#opts.failover.onChange((change) => {
      if (change.to === 'primary') void this.beat();
    });
    void this.beat();
  }

  /** One beat (concurrent calls share it); resolves with the count afterwards. */
  beat(): Promise<number> {
    if (this.#closed) return Promise.resolve(this.#count);
    this.#inflight ??= this.#beat().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  /** Stops beating and removes this instance from the set, so peers notice at their next beat. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    // A beat still in flight would otherwise re-add this instance after the removal.
    await this.#inflight;
    const { client, failover, key, instanceId } = this.#opts;
    await failover
      .execute(
        () => client.zrem(key, instanceId),
        () => 0,
      )
      .catch(() => 0);
  }

  async #beat(): Promise<number> {
    const { client, failover, key, instanceId } = this.#opts;
    const seen = await failover
      .execute(
        async () => Number(await client.eval(HEARTBEAT_LUA, 1, key, instanceId, this.#ttlMs)),
        () => undefined,
      )
      // A failover whose isFailure lets an error through must still not break the timer.
      .catch(() => undefined);
    if (this.#closed) return this.#count;
    if (seen === undefined || !Number.isFinite(seen)) this.#lowSince = undefined;
    else this.#learn(Math.max(1, seen));
    return this.#count;
  }

  /**
   * Rises at once; falls only after successful beats have seen fewer instances for a whole TTL in a
   * row. After a Redis restart the set refills one beat at a time, so the first instance back would
   * otherwise see itself alone and size its share to the whole limit; a peer is only declared dead
   * after a TTL anyway. A failed beat breaks the row, so an outage never counts as seeing fewer.
   */
  #learn(seen: number): void {
    if (seen < this.#count) {
      const now = Date.now();
      this.#lowSince ??= now;
      if (now - this.#lowSince < this.#ttlMs) return;
    }
    this.#lowSince = undefined;
    if (seen === this.#count) return;
    this.#count = seen;
    this.#opts.onChange(seen);
  }
}
