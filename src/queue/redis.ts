import { randomUUID } from 'node:crypto';
import { Queue, type ConnectionOptions, type Job as BullJob, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { bulwarkError } from '../errors/index.js';
import type { Failover } from '../failover/index.js';
import type { Store } from '../store/types.js';
import { BullWorker, PREFIX, type Envelope, type WorkerFactory } from './bullmq-worker.js';
import {
  Batch,
  checkJobOptions,
  checkQueue,
  optionsError,
  positiveInt,
  serialise,
  type EmbeddedJobQueue,
} from './embedded.js';
import type { QueueMetrics } from './metrics.js';
import { emptyCounts, SqlJobs, type JobRow } from './sql-jobs.js';
import type {
  JobHandler,
  JobOptions,
  JobQueue,
  JobState,
  JobSummary,
  QueueCounts,
  RepeatOptions,
  WorkerOptions,
} from './types.js';

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
  /** The Redis failover shared with the cache and the rate limiter. */
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
  metrics?: QueueMetrics;
  logger?: Logger;
  now?: () => number;
  /**
   * Builds BullMQ workers (default `new Worker(...)`). For tests that need a worker which stops
   * making progress, to prove the watchdog replaces it.
   */
  createWorker?: WorkerFactory;
}

/** Every job's retry delays come from its own backoff options, through the workers' strategy. */
const BACKOFF = Object.freeze({ type: 'bulwark' });
const REPLAY_BATCH = 500;

/**
 * BullMQ on Redis behind the shared failover, with the embedded queue as its durable outage spool.
 *
 * - `add` goes to BullMQ (bounded by the failover's deadline) while Redis is up; otherwise, or when
 *   it fails, to the spool with the same id, where local workers run it if they can.
 * - On every failback (and every `replayIntervalMs` while up) the spool's queued jobs are moved to
 *   BullMQ with their id as the BullMQ job id, so a job that reached both is added once; completed
 *   jobs are kept `keepCompletedMs` for that.
 * - `process` runs a BullMQ worker and an embedded worker for the spool; a BullMQ worker that makes
 *   no progress with jobs waiting after a reconnect is closed and recreated.
 */
export class RedisJobQueue implements JobQueue {
  readonly #o: Required<Omit<RedisJobQueueOptions, 'metrics' | 'logger' | 'createWorker'>> &
    Pick<RedisJobQueueOptions, 'metrics' | 'logger' | 'createWorker'>;
  readonly #connection: ConnectionOptions;
  readonly #queues = new Map<string, Queue>();
  readonly #workers = new Map<string, BullWorker>();
  readonly #known = new Set<string>();
  /** Queues whose pause or resume may not have reached BullMQ: set from the store once Redis is up. */
  readonly #unsynced = new Set<string>();
  readonly #jobs: SqlJobs;
  readonly #timer: NodeJS.Timeout;
  /** Completed jobs are kept this long so a replayed id is recognised (shared by every job's options). */
  readonly #keepCompleted: JobsOptions['removeOnComplete'];
  readonly #adds = new Batch<PendingAdd>((adds) => this.#flush(adds));
  #replaying: Promise<number> | undefined;
  #closed = false;
  #redisEnabled = true;
  /** Held by {@link holdLocal} (the spool's workers are also held while jobs go to BullMQ). */
  #held = false;

  constructor(opts: RedisJobQueueOptions) {
    this.#o = {
      leaseMs: 30_000,
      keepCompletedMs: 3_600_000,
      replayIntervalMs: 5000,
      stallMs: 15_000,
      now: Date.now,
      ...opts,
    };
    this.#keepCompleted =
      this.#o.keepCompletedMs === 0
        ? true
        : Object.freeze({ age: Math.ceil(this.#o.keepCompletedMs / 1000) });
    const url = new URL(opts.url);
    this.#connection = {
      host: url.hostname,
      port: Number(url.port || 6379),
      ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
      ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
      ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
      retryStrategy: (times: number) => Math.min(times * 50, 500),
    };
    this.#jobs = new SqlJobs(opts.store.db, opts.store.engine);
    // The state gauge reports BullMQ and the spool together (the spool attached its own first).
    opts.metrics?.attach((queue) => this.counts(queue));
    this.#holdSpool();
    opts.failover.onChange((change) => {
      this.#holdSpool();
      if (change.to === 'primary') {
        // Connections made before or during the outage may be wedged: start afresh.
        this.#dropQueues();
        void this.replay();
        void this.#syncPaused();
        for (const worker of this.#workers.values()) worker.watch();
      }
    });
    this.#timer = setInterval(() => {
      if (this.#o.failover.mode !== 'primary') return;
      void this.replay();
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
   * id BullMQ has), and only BullMQ can tell; run here as well, it would run twice.
   */
  #holdSpool(): void {
    this.#o.spool.holdLocal(this.#held || (this.#redisEnabled && this.#o.failover.mode === 'primary'));
  }

  async add<T>(queue: string, data: T, opts: JobOptions = {}): Promise<string> {
    if (this.#closed) throw bulwarkError('BWK_ERR_QUEUE_CLOSED', { operation: 'add a job' });
    checkQueue(queue);
    checkJobOptions(opts);
    const id = opts.id ?? randomUUID();
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
   * Adds of one event-loop turn go to BullMQ together, one `addBulk` per queue under one deadline
   * that grows with the batch (a burst of single adds would each race the 25 ms deadline behind
   * the others and fall to the spool while Redis is merely busy). A batch Redis fails or misses
   * the deadline with goes to the spool whole, with the same ids.
   */
  async #flush(adds: PendingAdd[]): Promise<void> {
    const deadlineMs = 25 + Math.ceil(adds.length / 4);
    await this.#o.failover.execute(
      async (signal) => {
        const byQueue = new Map<string, PendingAdd[]>();
        for (const add of adds) {
          const batch = byQueue.get(add.queue);
          if (batch === undefined) byQueue.set(add.queue, [add]);
          else batch.push(add);
        }
        await Promise.all(
          [...byQueue].map(([queue, batch]) =>
            this.#queue(queue).addBulk(
              batch.map((a) => ({
                name: 'job',
                data: envelope(a.data, a.opts),
                opts: this.#bullOptions(a.id, a.opts),
              })),
            ),
          ),
        );
        // Past the deadline the batch went to the spool, which counted it: once is enough.
        if (signal.aborted) return;
        for (const [queue, batch] of byQueue) this.#o.metrics?.added(queue, batch.length);
      },
      async () => {
        await Promise.all(adds.map((a) => this.#o.spool.add(a.queue, a.data, { ...a.opts, id: a.id })));
        // Spooled while Redis is up (a missed deadline, a refused batch): no local worker runs
        // these, so move them to BullMQ now rather than at the next interval.
        if (this.#o.failover.mode === 'primary') void this.replay();
      },
      { deadlineMs },
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
    const worker = new BullWorker(queue, gated, opts, this.#connection, this.#o, () => this.#counts(queue));
    this.#workers.set(queue, worker);
    this.#known.add(queue);
  }

  async pause(queue: string): Promise<void> {
    await this.#o.spool.pause(queue); // the store is the source of truth for every instance
    await this.#onRedis((q) => q.pause(), queue);
  }

  async resume(queue: string): Promise<void> {
    await this.#o.spool.resume(queue);
    await this.#onRedis((q) => q.resume(), queue);
  }

  get paused(): ReadonlySet<string> {
    return this.#o.spool.paused;
  }

  holdLocal(held: boolean): void {
    this.#held = held;
    this.#holdSpool();
    for (const worker of this.#workers.values()) worker.hold(held);
  }

  get heldLocal(): boolean {
    return this.#held;
  }

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

  /**
   * The spool's counts plus BullMQ's while Redis is up (BullMQ's delayed jobs all count as delayed);
   * a job in both stores counts once.
   */
  async counts(queue?: string): Promise<Map<string, QueueCounts>> {
    const result = await this.#o.spool.counts(queue);
    if (this.#o.failover.mode !== 'primary') return result;
    const names = queue === undefined ? await this.#queueNames() : [queue];
    for (const name of names) {
      const bull = await this.#counts(name).catch(() => undefined);
      if (bull === undefined) continue;
      const sum = result.get(name) ?? emptyCounts();
      await this.#uncountKnown(name, sum).catch(() => undefined);
      for (const state of Object.keys(sum) as JobState[]) sum[state] += bull[state];
      result.set(name, sum);
    }
    return result;
  }

  /**
   * Takes out of a queue's spool counts the jobs whose id BullMQ holds too (an add that missed its
   * deadline but reached Redis, a replay in flight): they run once, from BullMQ, so they count
   * once. Looks at the first {@link REPLAY_BATCH} spooled jobs.
   */
  async #uncountKnown(queue: string, spooled: QueueCounts): Promise<void> {
    if (spooled.waiting + spooled.delayed + spooled.retrying + spooled.active === 0) return;
    const rows = await this.#jobs.unfinished(queue, this.#o.now(), REPLAY_BATCH);
    const known = await this.#o.client
      .pipeline(rows.map((row) => ['exists', `${PREFIX}:${queue}:${row.id}`]))
      .exec();
    rows.forEach((row, i) => {
      if (known?.[i]?.[1] === 1) spooled[row.reported] = Math.max(0, spooled[row.reported] - 1);
    });
  }

  async list(queue: string, state: JobState, limit = 100): Promise<JobSummary[]> {
    checkQueue(queue);
    const max = Math.min(Math.max(1, limit), 1000);
    const spooled = await this.#o.spool.list(queue, state, max);
    if (this.#o.failover.mode !== 'primary' || spooled.length >= max) return spooled;
    const types = {
      waiting: ['wait', 'prioritized'],
      delayed: ['delayed'],
      retrying: ['delayed'],
      active: ['active'],
      dead: ['failed'],
    } as const;
    const jobs = (await this.#queue(queue).getJobs([...types[state]], 0, max - 1, true)) as BullJob[];
    // A job in both stores (an add that missed its deadline but reached Redis) is listed once.
    const listed = new Set(spooled.map((j) => j.id));
    const wanted = jobs.filter(
      (j) =>
        !listed.has(j.id ?? '') &&
        (state === 'delayed' ? j.attemptsMade === 0 : state === 'retrying' ? j.attemptsMade > 0 : true),
    );
    return [...spooled, ...wanted.slice(0, max - spooled.length).map((j) => summary(queue, state, j))];
  }

  async redrive(queue: string, ids?: string[]): Promise<string[]> {
    checkQueue(queue);
    const done = await this.#o.spool.redrive(queue, ids);
    if (this.#o.failover.mode !== 'primary') return done;
    const q = this.#queue(queue);
    const failed = ids === undefined ? ((await q.getJobs(['failed'], 0, -1)) as BullJob[]) : [];
    for (const id of ids ?? []) {
      const job = (await q.getJob(id)) as BullJob | undefined;
      if (job !== undefined && (await job.isFailed())) failed.push(job);
    }
    for (const job of failed) {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      if (job.id !== undefined) done.push(job.id);
    }
    return done;
  }

  async promote(queue: string, id: string): Promise<void> {
    checkQueue(queue);
    try {
      await this.#o.spool.promote(queue, id);
      return;
    } catch (error) {
      if (this.#o.failover.mode !== 'primary') throw error;
    }
    const job = (await this.#queue(queue).getJob(id)) as BullJob | undefined;
    if (job === undefined || !(await job.isDelayed()))
      throw bulwarkError('BWK_ERR_QUEUE_JOB_NOT_FOUND', { queue, id, state: 'delayed or retrying' });
    await job.promote();
  }

  async remove(queue: string, id: string): Promise<void> {
    checkQueue(queue);
    try {
      await this.#o.spool.remove(queue, id);
      return;
    } catch (error) {
      if (this.#o.failover.mode !== 'primary') throw error;
    }
    const job = (await this.#queue(queue).getJob(id)) as BullJob | undefined;
    if (job === undefined || (await job.isActive()))
      throw bulwarkError('BWK_ERR_QUEUE_JOB_NOT_FOUND', {
        queue,
        id,
        state: 'waiting, delayed, retrying or dead',
      });
    await job.remove();
  }

  /**
   * Moves the spool's queued jobs to BullMQ, idempotently (the spool id is the BullMQ job id), in
   * batches: taken under a lease, added, then deleted; a batch BullMQ refuses goes back to the spool.
   * Resolves with how many were moved. Concurrent calls share one run.
   */
  replay(): Promise<number> {
    this.#replaying ??= this.#replay().finally(() => {
      this.#replaying = undefined;
    });
    return this.#replaying;
  }

  async #replay(): Promise<number> {
    const owner = `replay:${this.#o.instanceId}`;
    let moved = 0;
    while (!this.#closed && this.redisEnabled && this.#o.failover.mode === 'primary') {
      const rows = await this.#jobs.take(REPLAY_BATCH, owner, this.#o.now(), this.#o.leaseMs);
      if (rows.length === 0) break;
      try {
        const byQueue = new Map<string, JobRow[]>();
        for (const row of rows) {
          const batch = byQueue.get(row.queue);
          if (batch === undefined) byQueue.set(row.queue, [row]);
          else batch.push(row);
        }
        for (const [queue, batch] of byQueue) {
          await this.#queue(queue).addBulk(batch.map((row) => this.#replayed(row)));
          this.#known.add(queue);
        }
      } catch (error) {
        await this.#jobs
          .release(
            owner,
            rows.map((r) => r.seq),
            false,
          )
          .catch(() => undefined); // else their lease runs out and recovery gives them back
        this.#o.logger?.warn({ err: error, jobs: rows.length }, 'queues: spool replay interrupted');
        break;
      }
      await this.#jobs.complete(
        owner,
        rows.map((r) => r.seq),
      );
      moved += rows.length;
    }
    if (moved > 0) this.#o.logger?.info({ jobs: moved }, 'queues: spooled jobs replayed into BullMQ');
    return moved;
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
    await this.#replaying?.catch(() => undefined);
    await Promise.allSettled([...this.#queues.values()].map((q) => q.close()));
  }

  #queue(name: string): Queue {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      // Producers fail fast while disconnected (no offline queue); the failover does the rest.
      queue = new Queue(name, {
        connection: { ...this.#connection, enableOfflineQueue: false, maxRetriesPerRequest: 1 },
        prefix: PREFIX,
      });
      queue.on('error', (error) =>
        this.#o.logger?.debug({ err: error, queue: name }, 'queues: BullMQ queue error'),
      );
      this.#queues.set(name, queue);
    }
    return queue;
  }

  #dropQueues(): void {
    for (const queue of this.#queues.values()) void queue.close().catch(() => undefined);
    this.#queues.clear();
  }

  async #onRedis(run: (queue: Queue) => Promise<void>, name: string): Promise<void> {
    checkQueue(name);
    await this.#o.failover.execute(
      () => run(this.#queue(name)),
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
      await this.#onRedis((q) => (paused.has(name) ? q.pause() : q.resume()), name);
    }
  }

  async #counts(name: string): Promise<QueueCounts> {
    const c = await this.#queue(name).getJobCounts('wait', 'prioritized', 'delayed', 'active', 'failed');
    return {
      waiting: (c['wait'] ?? 0) + (c['prioritized'] ?? 0),
      delayed: c['delayed'] ?? 0,
      retrying: 0,
      active: c['active'] ?? 0,
      dead: c['failed'] ?? 0,
    };
  }

  /** Queues this process knows of, plus every BullMQ queue under Bulwark's prefix. */
  async #queueNames(): Promise<string[]> {
    const names = new Set(this.#known);
    const client = this.#o.client;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${PREFIX}:*:meta`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) names.add(key.slice(PREFIX.length + 1, -':meta'.length));
    } while (cursor !== '0');
    return [...names];
  }

  #bullOptions(id: string, opts: JobOptions): JobsOptions {
    const bull: JobsOptions = {
      jobId: id,
      attempts: opts.attempts ?? 3,
      backoff: BACKOFF,
      removeOnComplete: this.#keepCompleted,
    };
    if (opts.delay) bull.delay = opts.delay;
    // BullMQ runs jobs without a priority first, then priority 1, 2, …: the same order as
    // Bulwark's 0 first, then higher numbers later. Negative priorities run as 0.
    if (opts.priority !== undefined && opts.priority > 0) bull.priority = Math.min(opts.priority, 2_097_152);
    return bull;
  }

  #replayed(row: JobRow): { name: string; data: Envelope; opts: JobsOptions } {
    const options = row.options === null ? {} : (JSON.parse(row.options) as Envelope['o'] & object);
    const delay = Math.max(0, Number(row.run_at) - this.#o.now());
    const opts: JobOptions = {
      attempts: Math.max(1, row.max_attempts - row.attempts),
      priority: row.priority,
      delay,
      ...options,
    };
    return {
      name: 'job',
      data: envelope(JSON.parse(row.data) as unknown, opts),
      opts: { ...this.#bullOptions(row.id, opts), timestamp: Number(row.created_at) },
    };
  }
}

/** `handler`, run at most `limit` at a time; callers beyond wait their turn in order. */
function gate(limit: number, handler: JobHandler): JobHandler {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (job, ctx) => {
    // A finishing call hands its slot straight to the next waiter, so no newcomer can slip in between.
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    else running += 1;
    try {
      return await handler(job, ctx);
    } finally {
      const next = waiting.shift();
      if (next === undefined) running -= 1;
      else next();
    }
  };
}

function envelope(data: unknown, opts: JobOptions): Envelope {
  const o: Envelope['o'] = {};
  if (opts.backoff !== undefined) o.backoff = opts.backoff;
  if (opts.timeout !== undefined) o.timeout = opts.timeout;
  return Object.keys(o).length === 0 ? { d: data } : { d: data, o };
}

function summary(queue: string, state: JobState, job: BullJob): JobSummary {
  const data = job.data as Envelope;
  return {
    queue,
    id: job.id ?? '',
    state,
    attempts: job.attemptsMade,
    maxAttempts: job.opts.attempts ?? 1,
    priority: job.opts.priority ?? 0,
    createdAt: job.timestamp,
    runAt: job.timestamp + (job.opts.delay ?? 0),
    lastError: job.failedReason ?? null,
    data: data.d,
  };
}
