import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** What another instance must drop from its L1 (the cache's message; other users pick their own). */
export interface CacheInvalidation {
  keys?: string[];
  tag?: string;
}

/** A message as received: the sender's payload and the instance that sent it. */
export type Invalidation<T extends object = CacheInvalidation> = T & {
  /** Instance that made the change; it ignores its own messages. */
  origin: string;
};

/** Options of {@link InvalidationBus}. */
export interface InvalidationBusOptions {
  /** The shared client, used to publish (a subscriber connection is duplicated from it). */
  client: Redis;
  channel: string;
  instanceId: string;
  logger?: Logger;
}

/**
 * Cross-instance invalidation over Redis pub/sub, one channel per user (the cache's L1, the flags'
 * in-memory copy). Every change an instance makes is announced; the others drop their copies. While the subscription is down, an instance
 * cannot hear about changes, so the tiered cache bypasses L1 (when L2 is up), and when the
 * subscription comes back every L1 entry from before is distrusted (`onResubscribed`).
 */
export class InvalidationBus<T extends object = CacheInvalidation> {
  readonly #client: Redis;
  readonly #channel: string;
  readonly #instanceId: string;
  readonly #logger: Logger | undefined;
  readonly #subscriber: Redis;
  readonly #handlers: ((message: Invalidation<T>) => void)[] = [];
  readonly #resubscribed: (() => Promise<void> | void)[] = [];
  #subscribed = false;
  #everSubscribed = false;

  constructor(opts: InvalidationBusOptions) {
    this.#client = opts.client;
    this.#channel = opts.channel;
    this.#instanceId = opts.instanceId;
    this.#logger = opts.logger;
    // A subscriber connection cannot run other commands; ioredis re-subscribes it after reconnects.
    this.#subscriber = opts.client.duplicate({ lazyConnect: true, enableOfflineQueue: true });
    this.#subscriber.on('error', () => undefined); // the main client's failover reports outages
    this.#subscriber.on('close', () => {
      this.#subscribed = false;
    });
    this.#subscriber.on('ready', () => void this.#subscribe());
    this.#subscriber.on('message', (channel: string, text: string) => this.#receive(channel, text));
  }

  /** True while this instance hears other instances' invalidations. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /** Calls `handler` for every invalidation from another instance. */
  onInvalidate(handler: (message: Invalidation<T>) => void): void {
    this.#handlers.push(handler);
  }

  /**
   * Calls `handler` when the subscription comes back after a drop (not on the first subscribe);
   * `subscribed` turns true only once every handler has settled.
   */
  onResubscribed(handler: () => Promise<void> | void): void {
    this.#resubscribed.push(handler);
  }

  /** Connects the subscriber in the background; resolves at once. */
  start(): void {
    this.#subscriber.connect().catch(() => undefined);
  }

  /** Announces a change; rejects when Redis does not take it (the caller's failover handles that). */
  async publish(change: T): Promise<void> {
    await this.#client.publish(this.#channel, JSON.stringify({ origin: this.#instanceId, ...change }));
  }

  close(): void {
    this.#subscriber.disconnect();
  }

  async #subscribe(): Promise<void> {
    try {
      await this.#subscriber.subscribe(this.#channel);
    } catch (error) {
      this.#logger?.warn({ err: error, channel: this.#channel }, 'invalidation subscribe failed');
      return;
    }
    if (this.#everSubscribed) {
      await Promise.allSettled(this.#resubscribed.map(async (handler) => handler()));
    }
    this.#everSubscribed = true;
    this.#subscribed = true;
  }

  #receive(channel: string, text: string): void {
    if (channel !== this.#channel) return;
    let message: Invalidation<T>;
    try {
      message = JSON.parse(text) as Invalidation<T>;
    } catch {
      return; // not ours
    }
    if (message.origin === this.#instanceId) return;
    for (const handler of this.#handlers) handler(message);
  }
}
