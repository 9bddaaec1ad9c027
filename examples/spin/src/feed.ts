// The event feed as every instance reads it: one query every `pollMs` for the events written since
// the last (by any instance), handed to listeners in id order. This is how a match made by the
// instance running the matcher reaches a user connected to another, and how each instance keeps its
// copy of the queue and its wait statistics.
//
// On PostgreSQL, identity values can commit out of order (a transaction that took id 10 commits
// after one that took 11), so a reader could step past 10. Spin writes its events in short
// transactions; a reader that finds a gap waits `gapGraceMs` for it to fill before moving on
// (claim.test.ts makes ids commit out of order and sees every event once, in order). A transaction
// that holds its id longer than the grace would still be stepped past: the limit left.
import type { Logger } from 'pino';
import type { FeedEvent, SpinStore } from './store.js';

export interface EventFeedOptions {
  store: SpinStore;
  logger: Logger;
  /** How often the feed is read (default 50 ms): the floor of the match-to-event latency. */
  pollMs?: number;
  /** How long a gap in event ids is waited for before it is taken as a rolled-back write (default 1 s). */
  gapGraceMs?: number;
}

const PAGE = 1000;

export class EventFeed {
  readonly #o: Required<Omit<EventFeedOptions, 'logger' | 'store'>> & EventFeedOptions;
  readonly #listeners = new Set<(events: FeedEvent[]) => void>();
  #last = 0;
  #gapSince: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #failing = false;
  #reading = false;
  #again = false;

  constructor(options: EventFeedOptions) {
    this.#o = { pollMs: 50, gapGraceMs: 1000, ...options };
  }

  /** Starts reading after the newest event now stored. */
  async start(): Promise<void> {
    this.#last = await this.#o.store.lastEventId();
    this.#schedule();
  }

  /** The id of the last event handed to listeners. */
  get position(): number {
    return this.#last;
  }

  subscribe(listener: (events: FeedEvent[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reads the feed now rather than at the next poll (this instance just wrote events that matter). */
  readNow(): void {
    if (this.#closed) return;
    if (this.#reading) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    void this.#poll();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #schedule(delay = this.#o.pollMs): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#poll(), delay);
    this.#timer.unref();
  }

  async #poll(): Promise<void> {
    this.#reading = true;
    let more = false;
    try {
      const events = await this.#o.store.events(this.#last, PAGE);
      const taken = this.#contiguous(events);
      if (taken.length > 0) {
        this.#last = taken.at(-1)!.id;
        for (const listener of this.#listeners) {
          try {
            listener(taken);
          } catch (error) {
            this.#o.logger.error({ err: error }, 'spin: an event listener failed');
          }
        }
      }
      more = events.length === PAGE && taken.length === events.length;
      if (this.#failing) this.#o.logger.info('spin: the event feed is read again');
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) this.#o.logger.warn({ err: error }, 'spin: reading the event feed failed');
      this.#failing = true;
    }
    this.#reading = false;
    more ||= this.#again;
    this.#again = false;
    this.#schedule(more ? 0 : this.#o.pollMs);
  }

  /**
   * The events up to the first gap in ids, unless the gap has been open longer than the grace. A
   * feed that started on an empty table expects id 1 first (its ids may start higher after a prune:
   * that gap costs one grace period, once); taking the first id seen lost an event whose id was
   * taken first but committed second.
   */
  #contiguous(events: FeedEvent[]): FeedEvent[] {
    let expected = this.#last + 1;
    for (let i = 0; i < events.length; i += 1) {
      const id = events[i]!.id;
      if (id !== expected) {
        const now = Date.now();
        this.#gapSince ??= now;
        if (now - this.#gapSince < this.#o.gapGraceMs) return events.slice(0, i);
      }
      expected = id + 1;
    }
    this.#gapSince = undefined;
    return events;
  }
}
