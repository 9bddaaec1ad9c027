// Which pooled PostgreSQL connections are checked out, since when, and by whom: a connection held
// for long (a transaction awaiting a slow HTTP call, a client never released) starves the pool.

/** One connection out of the pool. */
export interface HeldConnection {
  /** Ms since the epoch when it was checked out. */
  since: number;
  /** How long it has been out, ms. */
  heldMs: number;
  /**
   * The stack of the last statement run on it, its pool and Bulwark frames left out when others
   * remain: inside a transaction, the application's code that ran it (V8 follows the asynchronous
   * callers along `await`s). Empty before the first statement.
   */
  stack: string;
  /** The last statement run on it (at most 200 characters), undefined before the first. */
  lastQuery: string | undefined;
}

/** What a pool tells about its connections checked out now (`Store.checkouts`). */
export interface Checkouts {
  /** How many connections are out now. */
  readonly size: number;
  /** The connections out for at least `minHeldMs`, longest held first. */
  held(minHeldMs?: number): HeldConnection[];
}

/** Frames of the pool's own machinery, which say nothing about who took the connection. */
const MACHINERY =
  /node_modules[\\/](kysely|pg|pg-pool)[\\/]|[\\/]src[\\/]store[\\/]|[\\/]dist[\\/]store|node:internal/;

/**
 * The connections checked out of a pool now. Each statement records its stack: an `Error` captured
 * with up to 40 frames (about 6 µs, measured on the development machine; one per query, whose round
 * trip takes hundreds), whose text is only formatted when a held connection is reported. The stack
 * is taken at the statement rather than at the checkout: Kysely returns its connection provider's
 * promise without awaiting it, so the asynchronous stack of a checkout ends inside Kysely.
 */
export class CheckoutTracker implements Checkouts {
  readonly #open = new Map<object, { since: number; origin?: Error; lastQuery?: string }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Records that `client` left the pool now. */
  taken(client: object): void {
    this.#open.set(client, { since: this.#now() });
  }

  /** Records the statement `client` runs now, and the stack that runs it. */
  queried(client: object, sql: string): void {
    const entry = this.#open.get(client);
    if (entry === undefined) return;
    entry.lastQuery = sql;
    const limit = Error.stackTraceLimit;
    // Past Kysely's and the driver's own frames to the application's.
    Error.stackTraceLimit = 40;
    entry.origin = new Error('store statement');
    Error.stackTraceLimit = limit;
  }

  /** Records that `client` went back (or was discarded). */
  released(client: object): void {
    this.#open.delete(client);
  }

  /** How many connections are out now. */
  get size(): number {
    return this.#open.size;
  }

  /** The connections out for at least `minHeldMs`, longest held first. */
  held(minHeldMs = 0): HeldConnection[] {
    const now = this.#now();
    return [...this.#open.values()]
      .filter((entry) => now - entry.since >= minHeldMs)
      .sort((a, b) => a.since - b.since)
      .map((entry) => ({
        since: entry.since,
        heldMs: now - entry.since,
        stack: entry.origin === undefined ? '' : callerStack(entry.origin),
        lastQuery: entry.lastQuery?.slice(0, 200),
      }));
  }
}

/** The frames of `origin` outside the pool's machinery (all of them when none is). */
function callerStack(origin: Error): string {
  const frames = (origin.stack ?? '').split('\n').slice(1);
  const callers = frames.filter((frame) => !MACHINERY.test(frame));
  return (callers.length > 0 ? callers : frames).map((frame) => frame.trim()).join('\n');
}
