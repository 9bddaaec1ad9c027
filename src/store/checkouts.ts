// Which pooled PostgreSQL connections are checked out, since when, and by whom: a connection held
// for long (a transaction awaiting a slow HTTP call, a client never released) starves the pool.

/** One connection out of the pool. */
export interface HeldConnection {
  /** Ms since the epoch when it was checked out. */
  since: number;
  /** How long it has been out, ms. */
  heldMs: number;
  /**
   * The stack that checked it out, its pool and Bulwark frames left out when others remain. V8 keeps
   * the asynchronous callers only along `await`s: Kysely returns its connection provider's promise
   * without awaiting it, so for a Kysely transaction the stack ends inside Kysely and `lastQuery`
   * is what points at the code.
   */
  stack: string;
  /** The last statement run on it (at most 200 characters), undefined before the first. */
  lastQuery: string | undefined;
}

/** Frames of the pool's own machinery, which say nothing about who took the connection. */
const MACHINERY =
  /node_modules[\\/](kysely|pg|pg-pool)[\\/]|[\\/]src[\\/]store[\\/]|[\\/]dist[\\/]store-|node:internal/;

/**
 * The connections checked out of a pool now. Recording a checkout costs one captured stack (an
 * `Error` whose text is only formatted when a held connection is reported): microseconds per query.
 */
export class CheckoutTracker {
  readonly #open = new Map<object, { since: number; origin: Error; lastQuery?: string }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Records that `client` left the pool now, from the caller's stack. */
  taken(client: object): void {
    // Async stack traces reach the application's frames only past Kysely's and the driver's own.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 40;
    const origin = new Error('store connection checked out');
    Error.stackTraceLimit = limit;
    this.#open.set(client, { since: this.#now(), origin });
  }

  /** Records the statement `client` runs now (kept by reference: cut only when reported). */
  queried(client: object, sql: string): void {
    const entry = this.#open.get(client);
    if (entry !== undefined) entry.lastQuery = sql;
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
        stack: callerStack(entry.origin),
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
