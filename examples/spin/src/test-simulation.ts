// Simulated arrivals on one instance, for load tests and demos (`POST /api/test/simulate`): seeded
// Poisson arrivals of a mix of groups (domain/simulate.ts), each a new user that joins the queue at
// its time, the impatient ones leaving after their patience. Arrivals are drawn a minute at a time,
// so memory stays bounded whatever the duration; each due batch is written in one transaction.
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  BALANCED_MIX,
  IMBALANCED_MIX,
  mixStreams,
  simulateArrivals,
  type MixShare,
  type Patience,
  type SimulatedArrival,
} from './domain/simulate.js';
import { groupKey } from './domain/groups.js';
import type { Group, GroupKey } from './domain/types.js';
import type { FeedEvent, SpinStore, SpinUser } from './store.js';

/** A mix as the API takes it: a named one, or shares of groups. */
export type MixInput = 'balanced' | 'imbalanced' | readonly (Group & { share: number })[];

/** The shares of a mix. */
export function mixOf(input: MixInput): readonly MixShare[] {
  if (input === 'balanced') return BALANCED_MIX;
  if (input === 'imbalanced') return IMBALANCED_MIX;
  return input.map(({ gender, seeking, share }) => ({ group: { gender, seeking }, share }));
}

/**
 * `total` split over the mix's groups in proportion to their shares, as whole numbers that add up to
 * `total` (largest remainder; ties to the group listed first), by group key (a group listed twice
 * adds up).
 */
export function apportion(
  mix: readonly MixShare[],
  total: number,
): Map<GroupKey, { group: Group; count: number }> {
  const sum = mix.reduce((s, part) => s + part.share, 0);
  const exact = mix.map((part) => (total * part.share) / sum);
  const counts = exact.map(Math.floor);
  const left = total - counts.reduce((s, n) => s + n, 0);
  const order = exact.map((x, i) => ({ i, rest: x - Math.floor(x) })).sort((a, b) => b.rest - a.rest);
  for (let k = 0; k < left; k += 1) counts[order[k]!.i]! += 1;
  const byGroup = new Map<GroupKey, { group: Group; count: number }>();
  mix.forEach((part, i) => {
    const key = groupKey(part.group);
    const entry = byGroup.get(key) ?? { group: part.group, count: 0 };
    entry.count += counts[i]!;
    byGroup.set(key, entry);
  });
  return byGroup;
}

/** What to simulate. */
export interface SimulationSpec {
  /** Arrivals a minute, all groups together (on average: a Poisson process). */
  readonly perMinute: number;
  readonly durationMs: number;
  readonly mix: readonly MixShare[];
  /** Same seed, same arrivals (their times relative to the start, their groups and patience). */
  readonly seed: number;
  /** Default: everyone waits until matched. */
  readonly patience?: Patience | undefined;
}

/** Where a simulation stands. Counts are of its own users. */
export interface SimulationProgress {
  state: 'running' | 'completed' | 'stopped' | 'failed';
  startedAt: number;
  /** When arrivals stop (ms). */
  endsAt: number;
  endedAt: number | null;
  /** Users created and joined. */
  arrived: number;
  /** Matched (as the feed told this instance). */
  matched: number;
  /** Left after their patience ran out. */
  left: number;
  /** Still in the queue. */
  waiting: number;
  /** Arrivals and departures that could not be written (the store was unavailable). */
  failed: number;
  /** Why the simulation stopped, when it failed. */
  error: string | null;
}

export interface SimulationDeps {
  store: SpinStore;
  /** Where the queue's events come from (the instance's event feed). */
  feed: { subscribe(listener: (events: FeedEvent[]) => void): () => void };
  logger: Logger;
  now?: () => number;
  /** Waits `ms`, or less when `signal` aborts (default: a timer). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Arrivals are drawn this much simulated time at a time. */
const SLICE_MS = 60_000;
/** The longest wait between two looks at the clock (how late a stop or an arrival can be). */
const TICK_MS = 250;

const defaultSleep = (ms: number, signal: AbortSignal) =>
  sleepFor(ms, undefined, { signal }).catch(() => undefined);

/**
 * One simulation, started at once. Arrivals join at their time (batched per look at the clock, at
 * most {@link TICK_MS} apart); an impatient user leaves at joining time + patience if still waiting.
 * Arrivals end at `endsAt`; departures due after that do not happen. `stop()` ends it within a tick.
 * A failed write is counted in `failed` and logged once until writes succeed again; nothing throws.
 */
export class Simulation {
  readonly spec: SimulationSpec;
  readonly #deps: SimulationDeps;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #stopping = new AbortController();
  readonly #waiting = new Set<string>();
  readonly #leaves = new LeaveHeap();
  readonly #progress: SimulationProgress;
  readonly #done: Promise<void>;
  #failing = false;

  constructor(spec: SimulationSpec, deps: SimulationDeps) {
    this.spec = spec;
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#sleep = deps.sleep ?? defaultSleep;
    const startedAt = this.#now();
    this.#progress = {
      state: 'running',
      startedAt,
      endsAt: startedAt + spec.durationMs,
      endedAt: null,
      arrived: 0,
      matched: 0,
      left: 0,
      waiting: 0,
      failed: 0,
      error: null,
    };
    this.#done = this.#run();
  }

  get progress(): SimulationProgress {
    return { ...this.#progress, waiting: this.#waiting.size };
  }

  get running(): boolean {
    return this.#progress.state === 'running';
  }

  /** Resolves once it ended by itself. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Stops it (no more arrivals or departures); resolves once its last write is done. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#done;
  }

  async #run(): Promise<void> {
    const stopListening = this.#deps.feed.subscribe((events) => this.#hear(events));
    const { startedAt, endsAt } = this.#progress;
    const slices = Math.ceil(this.spec.durationMs / SLICE_MS);
    let slice = 0;
    let arrivals: SimulatedArrival[] = [];
    let next = 0;
    try {
      while (!this.#stopping.signal.aborted) {
        const now = this.#now();
        const due: SimulatedArrival[] = [];
        for (;;) {
          if (next >= arrivals.length) {
            if (slice >= slices) break;
            arrivals = this.#draw(slice, startedAt);
            slice += 1;
            next = 0;
            continue;
          }
          if (arrivals[next]!.waiter.joinedAt > now) break;
          due.push(arrivals[next]!);
          next += 1;
        }
        if (due.length > 0) await this.#arrive(due, now);
        await this.#leave(now);
        if (next >= arrivals.length && slice >= slices && now >= endsAt) {
          this.#progress.state = 'completed';
          break;
        }
        const wake = Math.min(
          arrivals[next]?.waiter.joinedAt ?? endsAt,
          this.#leaves.peek() ?? endsAt,
          endsAt,
        );
        await this.#sleep(Math.max(0, Math.min(TICK_MS, wake - now)), this.#stopping.signal);
      }
      if (this.#progress.state === 'running') this.#progress.state = 'stopped';
    } catch (error) {
      this.#progress.state = 'failed';
      this.#progress.error = error instanceof Error ? error.message : String(error);
      this.#deps.logger.error({ err: error }, 'spin: a simulation failed');
    } finally {
      stopListening();
      this.#progress.endedAt = this.#now();
    }
  }

  /** The arrivals of one slice of simulated time (a seed of its own, derived from the simulation's). */
  #draw(slice: number, startedAt: number): SimulatedArrival[] {
    const start = slice * SLICE_MS;
    return simulateArrivals({
      seed: (this.spec.seed + Math.imul(slice, 0x9e3779b1)) >>> 0,
      startAt: startedAt + start,
      phases: [
        {
          durationMs: Math.min(SLICE_MS, this.spec.durationMs - start),
          streams: mixStreams(this.spec.mix, this.spec.perMinute),
        },
      ],
      ...(this.spec.patience === undefined ? {} : { patience: this.spec.patience }),
    });
  }

  async #arrive(due: SimulatedArrival[], now: number): Promise<void> {
    const first = this.#progress.arrived + this.#progress.failed + 1;
    const inputs = due.map((arrival, i) => ({
      displayName: `sim ${first + i}`,
      gender: arrival.waiter.gender,
      seeking: arrival.waiter.seeking,
    }));
    const created = await this.#write(() => this.#deps.store.createUsers(inputs, { join: true, now }));
    if (created === undefined) {
      this.#progress.failed += due.length;
      return;
    }
    this.#progress.arrived += created.length;
    created.forEach(({ user }, i) => {
      this.#waiting.add(user.id);
      const patienceMs = due[i]!.patienceMs;
      if (Number.isFinite(patienceMs)) this.#leaves.push(due[i]!.waiter.joinedAt + patienceMs, user);
    });
  }

  async #leave(now: number): Promise<void> {
    for (let at = this.#leaves.peek(); at !== undefined && at <= now; at = this.#leaves.peek()) {
      const user = this.#leaves.pop()!;
      if (!this.#waiting.has(user.id)) continue; // matched meanwhile
      const left = await this.#write(() => this.#deps.store.leave(user, now));
      if (left === undefined) this.#progress.failed += 1;
      else if (left) {
        this.#progress.left += 1;
        this.#waiting.delete(user.id);
      }
    }
  }

  /** Runs a write; resolves undefined when it failed (logged once until one succeeds). */
  async #write<T>(write: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await write();
      if (this.#failing) this.#deps.logger.info('spin: the simulation writes again');
      this.#failing = false;
      return result;
    } catch (error) {
      if (!this.#failing)
        this.#deps.logger.warn({ err: error }, 'spin: a simulated arrival could not be written');
      this.#failing = true;
      return undefined;
    }
  }

  /** Matches of its users, and a reset (which empties the queue of them). */
  #hear(events: FeedEvent[]): void {
    for (const event of events) {
      if (event.type === 'reset') this.#waiting.clear();
      else if (event.type === 'matched' && this.#waiting.delete(String(event.data['userId'])))
        this.#progress.matched += 1;
    }
  }
}

/** Departures by time: a binary min-heap. */
class LeaveHeap {
  readonly #items: { at: number; user: SpinUser }[] = [];

  /** The earliest departure's time. */
  peek(): number | undefined {
    return this.#items[0]?.at;
  }

  push(at: number, user: SpinUser): void {
    const items = this.#items;
    items.push({ at, user });
    for (let i = items.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.at <= items[i]!.at) break;
      [items[parent], items[i]] = [items[i]!, items[parent]!];
      i = parent;
    }
  }

  pop(): SpinUser | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top?.user;
    items[0] = last;
    for (let i = 0; ;) {
      const [l, r] = [2 * i + 1, 2 * i + 2];
      let least = i;
      if (l < items.length && items[l]!.at < items[least]!.at) least = l;
      if (r < items.length && items[r]!.at < items[least]!.at) least = r;
      if (least === i) break;
      [items[least], items[i]] = [items[i]!, items[least]!];
      i = least;
    }
    return top.user;
  }
}
