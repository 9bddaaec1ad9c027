import { Queue, type ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Failover } from '../failover/index.js';
import { coalesceBullWrites, PREFIX } from './bullmq-worker.js';

/**
 * The Redis set naming every queue Bulwark's BullMQ driver has used, so reads over all queues (the
 * state gauge at each scrape, the admin API) find them with one SMEMBERS instead of a SCAN of the
 * whole keyspace, whose cost grows with every key of the database (each job is a key).
 */
export const QUEUE_REGISTRY = `${PREFIX}:queues`;

/** BullMQ's connection options for a `redis://…` URL (BullMQ opens its own connections). */
export function connectionOptions(redisUrl: string): ConnectionOptions {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
    ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
    retryStrategy: (times: number) => Math.min(times * 50, 500),
  };
}

/** What a call on Redis is given: BullMQ's queue handles and the shared (fail-fast) client. */
export interface BullAccess {
  readonly queue: (name: string) => Queue;
  /** The handle of a queue jobs are added to; it also names the queue in {@link QUEUE_REGISTRY}. */
  readonly producer: (name: string) => Queue;
  /** Every queue under Bulwark's prefix, from {@link QUEUE_REGISTRY} (see `BullQueues.#names`). */
  readonly names: () => Promise<string[]>;
  readonly client: Redis;
}

/** Options of {@link BullQueues}. */
export interface BullQueuesOptions {
  connection: ConnectionOptions;
  client: Redis;
  failover: Failover;
  logger?: Logger | undefined;
}

/**
 * The BullMQ queue handles of the Redis driver, reachable only through {@link run}: every call the
 * driver makes on Redis goes through the failover engine, which bounds it by a deadline, answers
 * with the fallback when Redis is down, frozen or late, and alone decides when Redis is down
 * (STYLE.md §2). BullMQ's own calls have no timeout: a frozen Redis would hang them for good.
 */
export class BullQueues {
  readonly #o: BullQueuesOptions;
  readonly #queues = new Map<string, Queue>();
  readonly #access: BullAccess;
  /** Queues named in {@link QUEUE_REGISTRY} over the client's current connection. */
  readonly #registered = new Set<string>();
  /** The scan for queues the registry lacks, once per connection (see `#names`). */
  #scan: Promise<void> | undefined;

  constructor(opts: BullQueuesOptions) {
    this.#o = opts;
    this.#access = {
      queue: (name) => this.#queue(name),
      producer: (name) => {
        if (!this.#registered.has(name)) this.#register(name);
        return this.#queue(name);
      },
      names: () => this.#names(),
      client: opts.client,
    };
    // A Redis that restarted empty has lost the registry with the rest: name the queues again.
    opts.client.on('ready', () => {
      this.#registered.clear();
      this.#scan = undefined;
    });
  }

  /**
   * Every queue under Bulwark's prefix, from the registry. Where it does not exist yet (queues made
   * before it, a Redis that restarted empty), the keyspace is scanned once per connection in the
   * background and what is found is added: a read never waits for a scan, whose length grows with
   * the database.
   */
  async #names(): Promise<string[]> {
    const { client } = this.#o;
    if (this.#scan === undefined)
      this.#scan = client
        .exists(QUEUE_REGISTRY)
        .then((found) => (found === 0 ? this.#scanKeyspace(client) : undefined))
        .catch((error: unknown) => {
          this.#scan = undefined; // tried again by a later read
          this.#o.logger?.debug({ err: error }, 'queues: scan for BullMQ queues failed');
        });
    return client.smembers(QUEUE_REGISTRY);
  }

  /**
   * Runs `call` under the failover: `fallback` answers instead when Redis is down (or forced off)
   * or when `call` fails or misses the deadline (`deadlineMs`, default the failover's own). The
   * signal aborts at the deadline; what `call` sent may still be applied by Redis later.
   */
  run<T>(
    call: (bull: BullAccess, signal: AbortSignal) => Promise<T>,
    fallback: () => T | Promise<T>,
    deadlineMs?: number,
  ): Promise<T> {
    return this.#o.failover.execute(
      (signal) => call(this.#access, signal),
      fallback,
      deadlineMs === undefined ? {} : { deadlineMs },
    );
  }

  /** Drops every handle (connections made before or during an outage may be wedged): new ones on next use. */
  drop(): void {
    for (const queue of this.#queues.values()) void queue.close().catch(() => undefined);
    this.#queues.clear();
  }

  /**
   * Closes every handle within `deadlineMs`; past it (a frozen Redis never answers QUIT) their
   * connections are dropped instead.
   */
  async close(deadlineMs: number): Promise<void> {
    const queues = [...this.#queues.values()];
    this.#queues.clear();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const closing = Promise.allSettled(queues.map((q) => q.close())).then(() => 'closed' as const);
    const outcome = await Promise.race([closing, deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') for (const q of queues) void q.disconnect().catch(() => undefined);
  }

  #queue(name: string): Queue {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      // Producers fail fast while disconnected (no offline queue); the failover does the rest.
      queue = new Queue(name, {
        connection: { ...this.#o.connection, enableOfflineQueue: false, maxRetriesPerRequest: 1 },
        prefix: PREFIX,
      });
      coalesceBullWrites(queue);
      queue.on('error', (error) =>
        this.#o.logger?.debug({ err: error, queue: name }, 'queues: BullMQ queue error'),
      );
      this.#queues.set(name, queue);
    }
    return queue;
  }

  #register(name: string): void {
    this.#registered.add(name);
    this.#o.client.sadd(QUEUE_REGISTRY, name).catch(() => this.#registered.delete(name));
  }

  async #scanKeyspace(client: Redis): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${PREFIX}:*:meta`, 'COUNT', 1000);
      cursor = next;
      const names = keys.map((key) => key.slice(PREFIX.length + 1, -':meta'.length));
      if (names.length > 0) await client.sadd(QUEUE_REGISTRY, ...names);
    } while (cursor !== '0');
  }
}
