// Spin's matching service on one instance: its copy of the queue and its wait statistics, both kept
// from the event feed; the matcher, run by one instance at a time (a lease in the store) and made
// safe by the claim (store.ts), which takes both users out of the queue or neither; and the
// listeners the live stream hangs on.
import type { Logger } from 'pino';
import type { Store } from 'bulwark';
import { isBulwarkError } from 'bulwark';
import { EventFeed } from './feed.js';
import { COMPATIBLE, GROUP_SLOTS, groupIndex } from './domain/groups.js';
import { pickMatches, queueOrder } from './domain/matcher.js';
import { WaitStats } from './domain/estimate.js';
import { GENDERS, type Group, type Waiter, type WaitEstimate } from './domain/types.js';
import { SpinStore, type FeedEvent, type JoinRequest, type JoinResult, type SpinUser } from './store.js';

export interface SpinServiceOptions {
  store: Store;
  logger: Logger;
  /** This process's instance id (who holds the matcher's lease). */
  instanceId: string;
  /** How often the matcher runs (default 1 000 ms). */
  matchIntervalMs?: number;
  /** How often the event feed is read (default 50 ms). */
  pollMs?: number;
  /** How long events and idempotent answers are kept (default 24 h). */
  retentionMs?: number;
  now?: () => number;
}

/** A match the matcher made: its id, the pair (first is the one whose turn it was), and when. */
export interface MadeMatch {
  matchId: string;
  first: Waiter;
  second: Waiter;
  at: number;
}

/** Where a user stands: waiting (with place and estimate) or not. */
export type QueueStatus =
  | { waiting: false }
  | { waiting: true; joinedAt: number; waitedMs: number; position: number; estimate: WaitEstimate };

const LEASE = { namespace: 'spin.matcher', key: 'lease', ttlMs: 5000 };
/** Joins written per transaction at most (a group commit). */
const JOIN_BATCH = 200;
/** A batch of joins written within this many ms means joins are coming fast... */
const JOIN_BUSY_MS = 10;
/** ...and the next batch gathers for this long before it is written. */
const JOIN_GATHER_MS = 1;
/** Ticks a second of the rolling broadcast of queue changes (see #broadcastTick). */
const BROADCAST_TICKS = 50;
/** Pairs claimed per transaction in a matcher round (the event loop turns between them). */
const CLAIM_SLICE = 50;
/** How far back the wait statistics look when an instance starts (the estimator's window). */
const HISTORY_MS = 30 * 60_000;

export class SpinService {
  readonly store: SpinStore;
  readonly stats: WaitStats;
  readonly feed: EventFeed;
  readonly #o: SpinServiceOptions;
  readonly #now: () => number;
  /** The copy of the queue, kept in queue order (see #numberPlaces). */
  readonly #waiting = new Map<string, Held>();
  #tail: Waiter | undefined;
  #ordered = true;
  #placesValid = false;
  readonly #groupCounts = new Int32Array(GROUP_SLOTS);
  #cycle: (() => void)[] = [];
  #cycleNext = 0;
  #tick = 0;
  readonly #users = new Map<string, Set<(event: FeedEvent) => void>>();
  readonly #queueListeners = new Set<() => void>();
  readonly #matchListeners = new Set<(match: MadeMatch) => void>();
  #matcher = false;
  #queueChanged = false;
  #arrivedSinceRound = true;
  readonly #timers: NodeJS.Timeout[] = [];
  #matching: Promise<void> | undefined;
  readonly #joins: {
    request: JoinRequest;
    resolve: (r: JoinResult) => void;
    reject: (e: unknown) => void;
  }[] = [];
  #joining = false;
  #lastJoinsAt = 0;

  constructor(options: SpinServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.store = new SpinStore(options.store, this.#now);
    this.stats = new WaitStats({ matchIntervalMs: options.matchIntervalMs ?? 1000 });
    this.feed = new EventFeed({
      store: this.store,
      logger: options.logger,
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    });
  }

  /** Loads the queue and recent history, then follows the feed and runs the matcher. */
  async start(): Promise<void> {
    const now = this.#now();
    for (const event of await this.store.recent(['joined', 'left', 'matched'], now - HISTORY_MS))
      this.#learn(event);
    for (const waiter of await this.store.waiting()) this.#add(waiter);
    this.feed.subscribe((events) => this.#apply(events));
    await this.feed.start();
    const every = (ms: number, run: () => unknown) => {
      const timer = setInterval(run, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.#o.matchIntervalMs ?? 1000, () => void this.matchOnce());
    // Queue statistics reach the streams coalesced: each at most once a second.
    every(1000 / BROADCAST_TICKS, () => this.#broadcastTick());
    every(3_600_000, () => {
      this.store
        .prune(this.#now() - (this.#o.retentionMs ?? 86_400_000))
        .catch((error: unknown) => this.#o.logger.warn({ err: error }, 'spin: pruning failed'));
    });
  }

  async close(): Promise<void> {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    this.feed.close();
    await this.#matching;
  }

  /**
   * Joins `request.user` to the queue (see {@link SpinStore.joinMany}); the answer is its status
   * right after. Joins asked for in the same turn of the event loop, and while one batch is being
   * written, share one transaction (a group commit): one commit for many instead of one each, the
   * cost that bounds how many joins a second one instance takes.
   */
  join(request: JoinRequest): Promise<JoinResult> {
    return new Promise((resolve, reject) => {
      this.#joins.push({ request, resolve, reject });
      if (this.#joining) return;
      this.#joining = true;
      // Busy (a batch went out a moment ago): gather for a few ms more, for fewer, larger commits.
      if (performance.now() - this.#lastJoinsAt < JOIN_BUSY_MS)
        setTimeout(() => void this.#writeJoins(), JOIN_GATHER_MS);
      else setImmediate(() => void this.#writeJoins());
    });
  }

  async #writeJoins(): Promise<void> {
    while (this.#joins.length > 0) {
      const batch = this.#joins.splice(0, JOIN_BATCH);
      try {
        const results = await this.store.joinMany(
          batch.map((b) => b.request),
          (user, joinedAt) => ({ status: 200, body: this.statusAt(user, joinedAt) }),
        );
        batch.forEach((b, i) => b.resolve(results[i]!));
      } catch (error) {
        for (const b of batch) b.reject(error);
      }
    }
    this.#joining = false;
    this.#lastJoinsAt = performance.now();
  }

  /** Hears the feed events of one user (a match, an outcome); returns the function that stops it. */
  onUser(userId: string, listener: (event: FeedEvent) => void): () => void {
    let set = this.#users.get(userId);
    if (set === undefined) this.#users.set(userId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#users.delete(userId);
    };
  }

  /** Called at most once a second while the queue changes (positions and estimates move). */
  onQueueChange(listener: () => void): () => void {
    this.#queueListeners.add(listener);
    return () => this.#queueListeners.delete(listener);
  }

  /** Hears every match this instance's matcher makes (on the instance holding the matcher's lease). */
  onMatched(listener: (match: MadeMatch) => void): () => void {
    this.#matchListeners.add(listener);
    return () => this.#matchListeners.delete(listener);
  }

  /** Whether this instance ran the matcher at its last round (it holds the lease). */
  get isMatcher(): boolean {
    return this.#matcher;
  }

  /** Everyone waiting as this instance's copy has it (at most a feed poll behind), in no set order. */
  waiters(): IterableIterator<Waiter> {
    return this.#waiting.values();
  }

  /** How many wait now, by group index (this instance's copy, at most a feed poll behind). */
  get waitingCounts(): Readonly<Int32Array> {
    return this.#groupCounts;
  }

  /**
   * Where `user` stands now: its place in its group and the wait estimate, or not waiting. From this
   * instance's copy of the queue; one who is not in it yet (joined a moment ago) is looked up in the
   * store.
   */
  async status(user: SpinUser): Promise<QueueStatus> {
    const known = this.#waiting.get(user.id);
    if (known !== undefined) return this.statusAt(user, known.joinedAt);
    return this.statusAt(user, await this.store.waitingSince(user.id));
  }

  /**
   * {@link status} from this instance's copy alone, at once: the live stream's updates, sent to
   * every connected user each second (one who joined within the last feed poll is not in it yet:
   * the next update says so).
   */
  statusNow(user: SpinUser): QueueStatus {
    return this.statusAt(user, this.#waiting.get(user.id)?.joinedAt);
  }

  /** {@link status} of `user` waiting since `joinedAt` (undefined: not waiting). */
  statusAt(user: SpinUser, joinedAt: number | undefined): QueueStatus {
    if (joinedAt === undefined) return { waiting: false };
    const now = this.#now();
    const known = this.#waiting.get(user.id);
    // Joined a moment ago, so not in the copy yet: behind everyone of its group the copy has (a
    // count from the store would read every one of them, ~0.4 ms at 10,000 waiting). Off by those of
    // the group who joined or left within the last feed poll; the next status is exact.
    const position =
      known === undefined ? (this.#groupCounts[groupIndex(user)] ?? 0) + 1 : this.#positionOf(user.id);
    return {
      waiting: true,
      joinedAt,
      waitedMs: Math.max(0, now - joinedAt),
      position,
      estimate: this.estimate(user, position, known === undefined),
    };
  }

  /** The estimate of someone of `group` at `position`; `notCounted` when they are not in the copy's counts yet. */
  estimate(group: Group, position: number, notCounted = false): WaitEstimate {
    let partners = 0;
    const index = groupIndex(group);
    for (const other of COMPATIBLE[index] ?? []) partners += this.#groupCounts[other] ?? 0;
    // Someone of a group that seeks its own kind is in that count too: not their own partner.
    if (!notCounted && (COMPATIBLE[index] ?? []).includes(index)) partners -= 1;
    return this.stats.estimate(group, position, this.#now(), { partnersWaiting: Math.max(0, partners) });
  }

  /**
   * One matcher round, if this instance holds the lease and someone arrived since the last round:
   * pairs first come first served (domain/matcher.ts) and claims each pair in the store.
   */
  matchOnce(): Promise<void> {
    this.#matching ??= this.#match().finally(() => (this.#matching = undefined));
    return this.#matching;
  }

  async #match(): Promise<void> {
    try {
      if (!this.#arrivedSinceRound || !this.#pairPossible()) return;
      this.#matcher = await this.#lease();
      if (!this.#matcher) return;
      this.#arrivedSinceRound = false;
      const pairs = pickMatches([...this.#waiting.values()]);
      const now = this.#now();
      // The round's pairs CLAIM_SLICE to a transaction (a few ms each, requests served between),
      // the feed read after each: the matched hear of it now on this instance, within a feed poll
      // on the others.
      for (let i = 0; i < pairs.length; i += CLAIM_SLICE) {
        if (i > 0) await new Promise((resolve) => setImmediate(resolve));
        const slice = pairs.slice(i, i + CLAIM_SLICE);
        const ids = await this.store.claimMany(slice, now);
        if (ids.some((id) => id !== undefined)) this.feed.readNow();
        slice.forEach(({ first, second }, j) => {
          const matchId = ids[j];
          if (matchId !== undefined)
            for (const listener of this.#matchListeners) listener({ matchId, first, second, at: now });
        });
      }
    } catch (error) {
      this.#arrivedSinceRound = true;
      if (!isBulwarkError(error, 'BWK_ERR_STORE_UNAVAILABLE'))
        this.#o.logger.error({ err: error }, 'spin: a matcher round failed');
    }
  }

  /**
   * Whether two of those waiting are compatible, from the counts by group: when not (everyone
   * waiting seeks a group nobody waiting is in), a round would sort the whole queue (~5–10 ms at
   * 10,000) to find nothing.
   */
  #pairPossible(): boolean {
    for (let g = 0; g < GROUP_SLOTS; g += 1) {
      const here = this.#groupCounts[g] ?? 0;
      if (here === 0) continue;
      for (const other of COMPATIBLE[g] ?? [])
        if ((this.#groupCounts[other] ?? 0) >= (other === g ? 2 : 1)) return true;
    }
    return false;
  }

  /** Takes or renews the matcher's lease; resolves whether this instance holds it. */
  async #lease(): Promise<boolean> {
    const { kv } = this.#o.store;
    const me = this.#o.instanceId;
    const now = this.#now();
    const held = await kv.get<{ owner: string; until: number }>(LEASE.namespace, LEASE.key);
    if (held !== undefined && held.value.owner !== me && held.value.until > now) return false;
    try {
      await kv.put(
        LEASE.namespace,
        LEASE.key,
        { owner: me, until: now + LEASE.ttlMs },
        { ifVersion: held?.version ?? 0 },
      );
      return true;
    } catch (error) {
      if (isBulwarkError(error, 'BWK_ERR_STORE_CONFLICT')) return false;
      throw error;
    }
  }

  #apply(events: FeedEvent[]): void {
    for (const event of events) {
      if (event.type === 'reset') this.#clear();
      else if (event.userId === null) this.#learn(event, true);
      else for (const listener of this.#users.get(event.userId) ?? []) listener(event);
    }
  }

  /** A global event: into the statistics, and (live) into the copy of the queue. */
  #learn(event: FeedEvent, live = false): void {
    const group = groupFromKey(String(event.data['group']));
    if (group === undefined) return;
    const userId = String(event.data['userId']);
    const waitedMs = Number(event.data['waitedMs'] ?? 0);
    if (event.type === 'joined') {
      this.stats.arrived(group, event.at);
      if (live) this.#add({ ...group, userId, joinedAt: event.at });
    } else if (event.type === 'matched') {
      this.stats.matched(group, event.at, waitedMs);
      if (live) this.#remove(userId);
    } else if (event.type === 'left') {
      this.stats.left(group, event.at, waitedMs);
      if (live) this.#remove(userId);
    }
  }

  #add(waiter: Waiter): void {
    if (this.#waiting.has(waiter.userId)) return;
    // Arrivals come in queue order but for a few (another instance's clock, a batch's time).
    if (this.#tail !== undefined && queueOrder(waiter, this.#tail) < 0) this.#ordered = false;
    this.#tail = waiter;
    const index = groupIndex(waiter);
    this.#waiting.set(waiter.userId, { ...waiter, index, place: 0 });
    this.#groupCounts[index] = (this.#groupCounts[index] ?? 0) + 1;
    this.#changed(true);
  }

  #remove(userId: string): void {
    const held = this.#waiting.get(userId);
    if (held === undefined) return;
    this.#waiting.delete(userId);
    this.#groupCounts[held.index] = (this.#groupCounts[held.index] ?? 0) - 1;
    this.#changed(false);
  }

  /** The queue was emptied (the test endpoints' reset, on any instance): so is the copy. */
  #clear(): void {
    this.#waiting.clear();
    this.#tail = undefined;
    this.#ordered = true;
    this.#groupCounts.fill(0);
    this.#changed(false);
  }

  /**
   * Queue changes reach the streams as a rolling broadcast: once a second, when the queue changed,
   * every open stream’s listener is due, and a fiftieth of them is called every 20 ms. Each stream
   * hears at most once a second and the work is spread over the second: all at once held requests
   * up for 100–200 ms every second with 10,000 streams open.
   */
  #broadcastTick(): void {
    this.#tick = (this.#tick + 1) % BROADCAST_TICKS;
    if (this.#tick === 0 && this.#queueChanged) {
      this.#queueChanged = false;
      this.#cycle = [...this.#queueListeners];
      this.#cycleNext = 0;
    }
    const end = Math.min(
      this.#cycle.length,
      this.#cycleNext + Math.ceil(this.#cycle.length / BROADCAST_TICKS),
    );
    for (; this.#cycleNext < end; this.#cycleNext += 1) {
      const listener = this.#cycle[this.#cycleNext]!;
      if (!this.#queueListeners.has(listener)) continue; // its stream closed meanwhile
      try {
        listener();
      } catch (error) {
        this.#o.logger.error({ err: error }, 'spin: a queue listener failed');
      }
    }
  }

  #changed(arrival: boolean): void {
    this.#placesValid = false;
    this.#queueChanged = true;
    if (arrival) this.#arrivedSinceRound = true;
  }

  #positionOf(userId: string): number {
    if (!this.#placesValid) this.#numberPlaces();
    return this.#waiting.get(userId)?.place ?? 1;
  }

  /**
   * Numbers everyone's place in their group in one pass over the copy, which is kept in queue
   * order (re-sorted first when someone arrived out of order): ~0.3 ms at 10,000 waiting, where a
   * sort each time took 5–10 ms.
   */
  #numberPlaces(): void {
    if (!this.#ordered) {
      const sorted = [...this.#waiting.values()].sort(queueOrder);
      this.#waiting.clear();
      for (const held of sorted) this.#waiting.set(held.userId, held);
      this.#ordered = true;
    }
    const counts = new Int32Array(GROUP_SLOTS);
    for (const held of this.#waiting.values())
      held.place = counts[held.index] = (counts[held.index] ?? 0) + 1;
    this.#placesValid = true;
  }
}

/** A waiter in the copy of the queue: its group's index and its place in the group (as last numbered). */
interface Held extends Waiter {
  readonly index: number;
  place: number;
}

/** `man:woman+nonbinary` → the group, or undefined for anything else. */
export function groupFromKey(key: string): Group | undefined {
  const [gender, seeking] = key.split(':');
  const genders: readonly string[] = GENDERS;
  const sought = seeking?.split('+') ?? [];
  if (gender === undefined || !genders.includes(gender) || sought.length === 0) return undefined;
  if (sought.some((g) => !genders.includes(g))) return undefined;
  return { gender, seeking: sought } as unknown as Group;
}
