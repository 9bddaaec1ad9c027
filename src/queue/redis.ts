import type { ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { bulwarkError } from '../errors/index.js';
import type { Failover, ReplayPacing } from '../failover/index.js';
import type { Store } from '../store/types.js';
import { Batch } from './batch.js';
import { BullAdmin } from './bullmq-admin.js';
import { addJobs, BullJobs, byQueue } from './bullmq-jobs.js';
import { BullQueues, connectionOptions } from './bullmq-queues.js';
import { BullWorker, type WorkerFactory } from './bullmq-worker.js';
import type { EmbeddedJobQueue } from './embedded.js';
import { gate } from './gate.js';
import { jobId } from './ids.js';
import type { QueueMetrics } from './metrics.js';
import { SpoolReplay } from './spool-replay.js';
import { SqlJobReads } from './sql-job-reads.js';
import { SqlJobs } from './sql-jobs.js';
import { emptyTimings } from './timings.js';
import type {
  JobDetail,
  JobHandler,
  JobOptions,
  JobPage,
  JobQueue,
  JobState,
  JobSummary,
  PageOptions,
  QueueCounts,
  QueueTimings,
  RepeatOptions,
  WorkerOptions,
} from './types.js';
import { checkJobOptions, checkQueue, optionsError, positiveInt, serialise } from './validate.js';

interface PendingAdd {
  queue: string;
  id: string;
  data: unknown;
  opts: JobOptions;
}

/** Options of {@link RedisJobQueue}. Times in milliseconds. */
export interface RedisJobQueueOptions {
  /** `redis://…`: BullMQ opens its own connections (workers need blocking ones). */
  url: string;
  /** The Redis failover shared with the cache and the rate limiter: every call on Redis goes through it. */
  failover: Failover;
  /** The shared (fail-fast) Redis client, for listing queues. */
  client: Redis;
  /** The durable embedded queue on the store: the outage spool, also run locally. */
  spool: EmbeddedJobQueue;
  store: Store;
  instanceId: string;
  /** BullMQ lock duration and (half of it) stalled-job check interval (default 30 000). */
  leaseMs?: number;
  /** How long completed jobs are kept so a replayed id is recognised (default 3 600 000). */
  keepCompletedMs?: number;
  /** While on Redis, how often the spool is checked for jobs to replay (default 5 000). */
  replayIntervalMs?: number;
  /** A worker with waiting jobs and no progress for this long after a failback is recreated (default 15 000). */
  stallMs?: number;
  /**
   * Deadline of the calls on BullMQ that are more than one command and that no add waits for:
   * admin reads and operations (counts, list, redrive, promote, remove), each spool replay batch,
   * the watchdog's counts, closing the BullMQ connections (default 1 000). Past it a read answers
   * from the spool alone and the failover counts the miss against Redis.
   */
  adminDeadlineMs?: number;
  metrics?: QueueMetrics;
  /** Pacing of the spool replay's steps (default: real timers and the event loop's utilisation; tests drive it). */
  replayPacing?: ReplayPacing;
  logger?: Logger;
  now?: () => number;
  /**
   * Builds BullMQ workers (default `new Worker(...)`). For tests that need a worker which stops
   * making progress, to prove the watchdog replaces it.
   */
  createWorker?: WorkerFactory;
}

/**
 * BullMQ on Redis behind the shared failover, with the embedded queue as its durable outage spool.
 * Every call on Redis goes through the failover engine with a deadline ({@link BullQueues}): it
 * alone decides when Redis is down, and a down or frozen Redis costs a caller at most a deadline.
 *
 * - `add` goes to BullMQ (bounded by the failover's deadline) while Redis is up; otherwise, or when
 *   it fails, to the spool with the same id, where local workers run it if they can.
 * - On every failback (and every `replayIntervalMs` while up) the spool's queued jobs are moved to
 *   BullMQ with their id as the BullMQ job id, so a job that reached both is added once; completed
 *   jobs are kept `keepCompletedMs` for that ({@link SpoolReplay}).
 * - `process` runs a BullMQ worker and an embedded worker for the spool; a BullMQ worker that makes
 *   no progress with jobs waiting after a reconnect is closed and recreated.
 * - Counts, lists and the admin operations span both stores ({@link BullAdmin}).
 */
export class RedisJobQueue implements JobQueue {
  readonly #o: Required<Omit<RedisJobQueueOptions, 'metrics' | 'logger' | 'createWorker' | 'replayPacing'>> &
    Pick<RedisJobQueueOptions, 'metrics' | 'logger' | 'createWorker'>;
  readonly #connection: ConnectionOptions;
  readonly #bull: BullQueues;
  readonly #bullJobs: BullJobs;
  readonly #admin: BullAdmin;
  readonly #replay: SpoolReplay;
  readonly #workers = new Map<string, BullWorker>();
  readonly #known = new Set<string>();
  /** Queues whose pause or resume may not have reached BullMQ: set from the store once Redis is up. */
  readonly #unsynced = new Set<string>();
  readonly #timer: NodeJS.Timeout;
  readonly #adds = new Batch<PendingAdd>((adds) => this.#flush(adds));
  #closed = false;
  #redisEnabled = true;
  /** Held by {@link holdLocal} (the spool's workers are also held while jobs go to BullMQ). */
  #held = false;
  /** Who holds the local workers. */
  readonly #holders = new Set<string>();

  constructor(opts: RedisJobQueueOptions) {
    for (const name of [
      'leaseMs',
      'keepCompletedMs',
      'replayIntervalMs',
      'stallMs',
      'adminDeadlineMs',
    ] as const)
      positiveInt(opts[name], name === 'leaseMs' ? name : `redis.${name}`);
    this.#o = {
      leaseMs: 30_000,
      keepCompletedMs: 3_600_000,
      replayIntervalMs: 5000,
      stallMs: 15_000,
      adminDeadlineMs: 1000,
      now: Date.now,
      ...opts,
    };
    this.#connection = connectionOptions(opts.url);
    this.#bull = new BullQueues({
      connection: this.#connection,
      client: opts.client,
      failover: opts.failover,
      logger: opts.logger,
    });
    this.#bullJobs = new BullJobs(this.#o.now);
    const jobs = new SqlJobs(opts.store.db, opts.store.engine);
    this.#admin = new BullAdmin({
      bull: this.#bull,
      spool: opts.spool,
      jobs: new SqlJobReads(opts.store),
      known: this.#known,
      deadlineMs: this.#o.adminDeadlineMs,
      now: this.#o.now,
    });
    this.#replay = new SpoolReplay({
      bull: this.#bull,
      bullJobs: this.#bullJobs,
      jobs,
      failover: opts.failover,
      instanceId: opts.instanceId,
      leaseMs: this.#o.leaseMs,
      deadlineMs: this.#o.adminDeadlineMs,
      now: this.#o.now,
      wanted: () => !this.#closed && this.#redisEnabled,
      reached: (queue) => this.#known.add(queue),
      logger: opts.logger,
      ...(opts.replayPacing === undefined ? {} : { pacing: opts.replayPacing }),
    });
    // The state gauge reports BullMQ and the spool together (the spool attached its own first).
    opts.metrics?.attach((queue) => this.counts(queue));
    this.#holdSpool();
    opts.failover.onChange((change) => {
      this.#holdSpool();
      if (change.to === 'primary') {
        // Connections made before or during the outage may be wedged: start afresh.
        this.#bull.drop();
        this.#replayLater();
        void this.#syncPaused();
        for (const worker of this.#workers.values()) worker.watch();
      }
    });
    // Both do nothing while the failover has Redis down: the replay stops at once, a pause sync
    // falls to the fallback and waits for the next try.
    this.#timer = setInterval(() => {
      this.#replayLater();
      void this.#syncPaused();
    }, this.#o.replayIntervalMs);
    this.#timer.unref();
  }

  /**
   * Switch (flag `bulwark.queues.redis`): while false, new jobs go to the embedded queue (run by the
   * local workers) instead of BullMQ; BullMQ workers finish what BullMQ holds, and the replay into
   * BullMQ waits until the switch is on again.
   */
  get redisEnabled(): boolean {
    return this.#redisEnabled;
  }

  set redisEnabled(on: boolean) {
    this.#redisEnabled = on;
    this.#holdSpool();
  }

  /**
   * The spool's jobs run in this process only while new jobs do not go to BullMQ (Redis down or
   * switched off). While they do, the spool is replayed into BullMQ instead: a spooled job may be
   * one BullMQ also holds (an add that missed its deadline but reached Redis, a second add of an
   * id BullMQ has), and only BullMQ can tell; run here as well, it would run twice. The failover's
   * mode is read, not decided, here: this follows each of the engine's switches (`onChange`).
   */
  #holdSpool(): void {
    this.#o.spool.holdLocal(this.#held || (this.#redisEnabled && this.#o.failover.mode === 'primary'));
  }

  async add<T>(queue: string, data: T, opts: JobOptions = {}): Promise<string> {
    if (this.#closed) throw bulwarkError('BWK_ERR_QUEUE_CLOSED', { operation: 'add a job' });
    checkQueue(queue);
    checkJobOptions(opts);
    const id = opts.id ?? jobId();
    serialise(queue, data); // refuse what JSON cannot hold before it is batched with other jobs
    this.#known.add(queue);
    if (!this.redisEnabled) {
      await this.#o.spool.add(queue, data, { ...opts, id });
      return id;
    }
    await this.#adds.push({ queue, id, data, opts });
    return id;
  }

  /**
   * Adds of one event-loop turn go to BullMQ together ({@link addJobs}: one `add` per job, or one
   * `addBulk` for a large burst) under
   * one deadline that grows with the batch (a burst of single adds would each race the 25 ms
   * deadline behind the others and fall to the spool while Redis is merely busy). A batch Redis
   * fails or misses the deadline with goes to the spool whole, with the same ids.
   */
  async #flush(adds: PendingAdd[]): Promise<void> {
    const groups = byQueue(adds);
    await this.#bull.run(
      async ({ producer }, signal) => {
        await Promise.all(
          [...groups].map(([name, batch]) =>
            addJobs(
              producer(name),
              batch.map((a) => this.#bullJobs.added(a.id, a.data, a.opts)),
            ),
          ),
        );
        // Past the deadline the batch went to the spool, which counted it: once is enough.
        if (signal.aborted) return;
        for (const [name, batch] of groups) this.#o.metrics?.added(name, batch.length);
      },
      async () => {
        await Promise.all(adds.map((a) => this.#o.spool.add(a.queue, a.data, { ...a.opts, id: a.id })));
        // Spooled while Redis is up (a missed deadline, a refused batch): no local worker runs
        // these, so move them to BullMQ now rather than at the next interval. While the failover
        // has Redis down the failback starts the replay (one asked for here would stop at once,
        // and during an outage every turn's adds land here).
        if (this.#o.failover.mode === 'primary') this.#replayLater();
      },
      25 + Math.ceil(adds.length / 4),
    );
  }

  process<T>(queue: string, handler: JobHandler<T>, opts: WorkerOptions = {}): void {
    if (this.#closed) throw bulwarkError('BWK_ERR_QUEUE_CLOSED', { operation: 'start a worker' });
    checkQueue(queue);
    positiveInt(opts.concurrency, 'concurrency');
    if (this.#workers.has(queue)) throw optionsError(`queue ${queue} already has a handler in this process`);
    // One `concurrency` for this process, shared by the BullMQ worker and the spool's worker.
    const gated = gate(opts.concurrency ?? 1, handler as JobHandler);
    this.#o.spool.process(queue, gated, opts); // jobs spooled during outages, run locally
    const worker = new BullWorker(queue, gated, opts, this.#connection, this.#o, () =>
      this.#admin.queueCounts(queue),
    );
    this.#workers.set(queue, worker);
    this.#known.add(queue);
  }

  async pause(queue: string): Promise<void> {
    await this.#o.spool.pause(queue); // the store is the source of truth for every instance
    await this.#onRedis(queue, true);
  }

  async resume(queue: string): Promise<void> {
    await this.#o.spool.resume(queue);
    await this.#onRedis(queue, false);
  }

  get paused(): ReadonlySet<string> {
    return this.#o.spool.paused;
  }

  holdLocal(held: boolean, by = 'app'): void {
    if (held) this.#holders.add(by);
    else this.#holders.delete(by);
    held = this.#holders.size > 0;
    this.#held = held;
    this.#holdSpool();
    for (const worker of this.#workers.values()) worker.hold(held);
  }

  get heldLocal(): boolean {
    return this.#held;
  }

  /** From the store, the source of truth: Redis is not asked. */
  pausedQueues(): Promise<ReadonlySet<string>> {
    return this.#o.spool.pausedQueues();
  }

  /** Schedules live in the store; each occurrence is added through {@link add}. */
  repeat<T>(queue: string, name: string, data: T, opts: RepeatOptions): Promise<void> {
    this.#known.add(queue);
    return this.#o.spool.repeat(queue, name, data, opts);
  }

  unrepeat(queue: string, name: string): Promise<boolean> {
    return this.#o.spool.unrepeat(queue, name);
  }

  /** See {@link BullAdmin.counts}: the spool's counts alone when Redis does not answer in time. */
  counts(queue?: string): Promise<Map<string, QueueCounts>> {
    return this.#admin.counts(queue);
  }

  /** See {@link BullAdmin.list}: the spool's jobs alone when Redis does not answer in time. */
  list(queue: string, state: JobState, limit = 100): Promise<JobSummary[]> {
    return this.#admin.list(queue, state, limit);
  }

  /** See {@link BullAdmin.page}: the spool's jobs, then BullMQ's. */
  page(queue: string, state: JobState, opts?: PageOptions): Promise<JobPage> {
    return this.#admin.page(queue, state, opts);
  }

  /** `BWK_ERR_QUEUE_REDIS_UNAVAILABLE` for a job not in the spool while Redis does not answer in time. */
  job(queue: string, id: string): Promise<JobDetail | undefined> {
    checkQueue(queue);
    return this.#admin.job(queue, id);
  }

  /** See {@link BullAdmin.oldestWaiting}: the spool's alone when Redis does not answer in time. */
  oldestWaiting(queue?: string): Promise<Map<string, number>> {
    if (queue !== undefined) checkQueue(queue);
    return this.#admin.oldestWaiting(queue);
  }

  /** BullMQ's and the spool's workers in this process report to the same metrics. */
  timings(queue: string): QueueTimings {
    return this.#o.metrics?.timings(queue) ?? emptyTimings();
  }

  redrive(queue: string, ids?: string[]): Promise<string[]> {
    return this.#admin.redrive(queue, ids);
  }

  /** `BWK_ERR_QUEUE_REDIS_UNAVAILABLE` for a job not in the spool while Redis does not answer in time. */
  promote(queue: string, id: string): Promise<void> {
    return this.#admin.promote(queue, id);
  }

  /** `BWK_ERR_QUEUE_REDIS_UNAVAILABLE` for a job not in the spool while Redis does not answer in time. */
  remove(queue: string, id: string): Promise<void> {
    return this.#admin.remove(queue, id);
  }

  /**
   * A replay nobody awaits (failback, interval, an add that fell to the spool): its failure (the
   * store down) is logged and the next interval tries again; never an unhandled rejection, which
   * would end the process.
   */
  #replayLater(): void {
    this.replay().catch((error: unknown) =>
      this.#o.logger?.warn({ err: error }, 'queues: spool replay failed; the next interval retries'),
    );
  }

  /** Moves the spool's queued jobs to BullMQ ({@link SpoolReplay}); resolves with how many moved. */
  replay(): Promise<number> {
    return this.#replay.run();
  }

  async close(deadlineMs = 10_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.all([
      ...[...this.#workers.values()].map((w) => w.close(deadlineMs)),
      this.#o.spool.close(deadlineMs),
    ]);
    // A replay in flight still writes to BullMQ: it ends (after its batch) before close resolves.
    await this.#replay.settled();
    await this.#bull.close(this.#o.adminDeadlineMs);
  }

  /** Pauses or resumes `name` in BullMQ; one that cannot reach Redis in time is synced later. */
  async #onRedis(name: string, paused: boolean): Promise<void> {
    checkQueue(name);
    await this.#bull.run(
      async ({ queue }) => {
        if (paused) await queue(name).pause();
        else await queue(name).resume();
      },
      () => {
        this.#unsynced.add(name);
      },
    );
  }

  /**
   * Pauses and resumes that went to the failover's fallback (Redis down, or slower than the
   * deadline) are applied to BullMQ as the store has them; BullMQ's workers know only BullMQ's.
   */
  async #syncPaused(): Promise<void> {
    if (this.#unsynced.size === 0) return;
    const paused = await this.#o.spool.pausedQueues().catch(() => undefined);
    if (paused === undefined) return; // the store is down: the next failback or interval retries
    for (const name of [...this.#unsynced]) {
      this.#unsynced.delete(name);
      await this.#onRedis(name, paused.has(name));
    }
  }
}
