import { Cron } from 'croner';
import { isBulwarkError } from '../errors/index.js';
import type { KvRepository } from '../store/types.js';
import type { JobOptions, RepeatOptions } from './types.js';
import { checkJobOptions, checkQueue, optionsError, positiveInt } from './validate.js';

const REPEAT = 'bulwark.queues.repeat';

interface Schedule {
  queue: string;
  name: string;
  data: unknown;
  every?: number;
  cron?: string;
  tz?: string;
  job?: Omit<JobOptions, 'id'>;
  /** Next occurrence, ms since the epoch. */
  next: number;
}

/** What {@link Schedules} needs: the store's key-value table, the clock, where occurrences go. */
export interface SchedulesOptions {
  kv: KvRepository;
  now: () => number;
  /** Adds one occurrence (the queue itself, or the Redis driver's `add`). */
  add: (queue: string, data: unknown, opts: JobOptions) => Promise<string>;
}

/**
 * Repeatable jobs: schedules live in the store, shared by every instance; {@link run} adds the due
 * occurrences, once each across instances.
 */
export class Schedules {
  readonly #o: SchedulesOptions;

  constructor(opts: SchedulesOptions) {
    this.#o = opts;
  }

  /** Stores (or replaces) the schedule `name` of `queue`; refuses bad options with `BWK_ERR_QUEUE_OPTIONS`. */
  async repeat(queue: string, name: string, data: unknown, opts: RepeatOptions): Promise<void> {
    checkQueue(queue);
    if (typeof name !== 'string' || name.length === 0 || name.length > 200)
      throw optionsError('repeat name must be a string of 1–200 characters');
    if ((opts.every === undefined) === (opts.cron === undefined))
      throw optionsError('repeat needs exactly one of every or cron');
    positiveInt(opts.every, 'every');
    if (opts.job !== undefined) checkJobOptions(opts.job);
    const schedule: Schedule = { queue, name, data, next: 0 };
    if (opts.every !== undefined) schedule.every = opts.every;
    if (opts.cron !== undefined) schedule.cron = opts.cron;
    if (opts.tz !== undefined) schedule.tz = opts.tz;
    if (opts.job !== undefined) schedule.job = opts.job;
    schedule.next = following(schedule, this.#o.now());
    await this.#o.kv.put(REPEAT, `${queue}/${name}`, schedule);
  }

  /** Removes a schedule; resolves true if there was one. */
  unrepeat(queue: string, name: string): Promise<boolean> {
    return this.#o.kv.delete(REPEAT, `${queue}/${name}`);
  }

  /**
   * Adds due occurrences. The schedule is advanced with a compare-and-set before the job is added:
   * of several instances racing, one wins and adds; the occurrence id dedupes the rest. (A process
   * dying between the two loses that one occurrence rather than running it twice.)
   */
  async run(): Promise<void> {
    const now = this.#o.now();
    for (const entry of await this.#o.kv.list<Schedule>(REPEAT)) {
      const schedule = entry.value;
      if (schedule.next > now) continue;
      const occurrence = schedule.next;
      // The next occurrence after now: anchored to the schedule (no drift), missed ones skipped.
      let next = following(schedule, occurrence);
      if (next <= now) next = following(schedule, now);
      try {
        await this.#o.kv.put(REPEAT, entry.key, { ...schedule, next }, { ifVersion: entry.version });
      } catch (error) {
        if (isBulwarkError(error, 'BWK_ERR_STORE_CONFLICT')) continue; // another instance took it
        throw error;
      }
      await this.#o.add(schedule.queue, schedule.data, {
        ...schedule.job,
        id: `repeat:${schedule.name}:${occurrence}`,
      });
    }
  }
}

/** The occurrence of `schedule` after `after` (ms since the epoch). */
function following(schedule: Schedule, after: number): number {
  if (schedule.every !== undefined) return after + schedule.every;
  let cron: Cron;
  try {
    cron = new Cron(schedule.cron ?? '', {
      paused: true,
      ...(schedule.tz === undefined ? { timezone: 'UTC' } : { timezone: schedule.tz }),
    });
  } catch (error) {
    throw optionsError(
      `cron ${JSON.stringify(schedule.cron)} is not a valid pattern: ${(error as Error).message}`,
    );
  }
  const next = cron.nextRun(new Date(after));
  if (next === null) throw optionsError(`cron ${JSON.stringify(schedule.cron)} never runs again`);
  return next.getTime();
}
