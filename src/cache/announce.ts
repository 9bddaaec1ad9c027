import type { CacheInvalidation, InvalidationBus } from './bus.js';

/** Keys named by one announcement at most; more go in further messages sent at once. */
export const ANNOUNCE_KEYS = 500;

/**
 * The cache's announcements to other instances: the keys written in one turn of the event loop go
 * out as one message (tag deletes, rarer, go alone and at once). Under load every L2 write of a miss
 * announced its key in a PUBLISH of its own, which Redis handled and every subscribed instance (the
 * writer's own included) received and parsed (issue 18: after Redis came back empty, each request
 * refilling it cost a read, a write and an announcement). A writer still resolves only once the
 * message carrying its key has reached Redis, and is rejected with it (its write is then journaled).
 */
export class Announcer {
  readonly #bus: InvalidationBus;
  #keys: string[] = [];
  #sending: Promise<void> | undefined;

  constructor(bus: InvalidationBus) {
    this.#bus = bus;
  }

  announce(change: CacheInvalidation): Promise<void> {
    if (change.keys === undefined || change.tag !== undefined) return this.#bus.publish(change);
    for (const key of change.keys) this.#keys.push(key);
    this.#sending ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#send());
    return this.#sending;
  }

  async #send(): Promise<void> {
    const keys = this.#keys;
    this.#keys = [];
    this.#sending = undefined;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < keys.length; i += ANNOUNCE_KEYS)
      sends.push(this.#bus.publish({ keys: keys.slice(i, i + ANNOUNCE_KEYS) }));
    await Promise.all(sends);
  }
}
