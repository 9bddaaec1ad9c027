import {
  Worker,
  type ConnectionOptions,
  type Job as BullJob,
  type MinimalJob,
  type RedisQueueBackend,
  type WorkerOptions as BullWorkerOptions,
} from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { coalesceWrites } from '../redis/coalesce.js';
import { retryDelay } from './backoff.js';
import { runHandler } from './run-handler.js';
import type { QueueMetrics } from './metrics.js';
import type { BackoffOptions, Job, JobHandler, QueueCounts, WorkerOptions } from './types.js';

/** Key prefix of Bulwark's BullMQ queues. */
export const PREFIX = 'bulwark:q';

/**
 * BullMQ's command connection of a queue or worker (not a worker's blocking one) sends a turn's
 * commands in at most two socket writes ({@link coalesceWrites}): a worker with many jobs running
 * finishes many in one turn, each a script call, and a producer's batch is one. BullMQ opens the
 * connection itself; its client (a proxy over the ioredis instance) is handed over once connected.
 */
export function coalesceBullWrites(owner: { backend: RedisQueueBackend }): void {
  owner.backend.client.then(
    (client) => coalesceWrites(client as unknown as Redis),
    () => undefined, // not connected: BullMQ reports it through its own 'error' events
  );
}

/** What a Bulwark job carries in BullMQ: the data and the options BullMQ has no field for. */
export interface Envelope {
  d: unknown;
  o?: { backoff?: BackoffOptions; timeout?: number };
}

/**
 * When a BullMQ job was first due: added, plus its delay (BullMQ keeps no record of when a retry
 * fell due).
 */
export function dueAt(job: BullJob): number {
  return job.timestamp + (job.opts.delay ?? 0);
}

/** Builds BullMQ workers (tests substitute one that stops making progress). */
export type WorkerFactory = (
  queue: string,
  processor: (job: BullJob) => Promise<void>,
  opts: BullWorkerOptions,
) => Worker;

/** What a {@link BullWorker} needs of its queue's options. Times in milliseconds. */
export interface WorkerSettings {
  leaseMs: number;
  /** How long the jobs this worker completes are kept in BullMQ (the replay's dedupe window). */
  keepCompletedMs: number;
  stallMs: number;
  now: () => number;
  metrics?: QueueMetrics | undefined;
  logger?: Logger | undefined;
  createWorker?: WorkerFactory | undefined;
}

/** One queue's BullMQ worker in this process, recreated when it wedges after a reconnect. */
export class BullWorker {
  readonly #queue: string;
  readonly #handler: JobHandler;
  readonly #opts: WorkerOptions;
  readonly #connection: ConnectionOptions;
  readonly #o: WorkerSettings;
  readonly #counts: () => Promise<QueueCounts | undefined>;
  #worker: Worker;
  #progress = 0;
  #watch: NodeJS.Timeout | undefined;
  #closing = false;
  #held = false;

  constructor(
    queue: string,
    handler: JobHandler,
    opts: WorkerOptions,
    connection: ConnectionOptions,
    o: WorkerSettings,
    counts: () => Promise<QueueCounts | undefined>,
  ) {
    this.#queue = queue;
    this.#handler = handler;
    this.#opts = opts;
    this.#connection = connection;
    this.#o = o;
    this.#counts = counts;
    this.#worker = this.#start();
  }

  /** Holds this process's BullMQ worker (no new jobs; running ones finish), or releases it. */
  hold(held: boolean): void {
    if (this.#held === held) return;
    this.#held = held;
    if (held) void this.#worker.pause(true).catch(() => undefined);
    else void this.#worker.resume();
  }

  #start(): Worker {
    const create =
      this.#o.createWorker ??
      ((queue: string, processor: (job: BullJob) => Promise<void>, opts: BullWorkerOptions) =>
        new Worker(queue, processor, opts));
    const worker = create(this.#queue, (job: BullJob) => this.#run(job), {
      connection: { ...this.#connection, maxRetriesPerRequest: null },
      prefix: PREFIX,
      concurrency: this.#opts.concurrency ?? 1,
      ...(this.#opts.limiter === undefined ? {} : { limiter: this.#opts.limiter }),
      lockDuration: this.#o.leaseMs,
      stalledInterval: Math.max(1000, Math.floor(this.#o.leaseMs / 2)),
      maxStalledCount: 100, // a stalled job (its worker died) is retried, not failed
      // Every job this worker completes is kept this long, so that a replayed id is recognised and
      // not added again. A worker option rather than a job option: the same for every job, and not
      // packed, stored, read back and parsed once per job.
      removeOnComplete: { age: Math.ceil(this.#o.keepCompletedMs / 1000) },
      settings: {
        backoffStrategy: (attemptsMade: number, _type?: string, _error?: Error, job?: MinimalJob) =>
          retryDelay((job?.data as Envelope | undefined)?.o?.backoff, attemptsMade),
      },
    });
    coalesceBullWrites(worker);
    worker.on('error', (error) =>
      this.#o.logger?.debug({ err: error, queue: this.#queue }, 'queues: BullMQ worker error'),
    );
    worker.on('completed', () => (this.#progress += 1));
    worker.on('failed', (job, error) => {
      this.#progress += 1;
      if (job === undefined) return;
      const dead = job.attemptsMade >= (job.opts.attempts ?? 1);
      this.#o.logger?.warn(
        {
          queue: this.#queue,
          jobId: job.id,
          attempt: job.attemptsMade,
          maxAttempts: job.opts.attempts,
          err: error,
        },
        dead ? 'job failed on its last attempt: dead-lettered' : 'job failed: will retry',
      );
    });
    return worker;
  }

  async #run(bull: BullJob): Promise<void> {
    const data = bull.data as Envelope;
    const runAt = dueAt(bull);
    const job: Job = {
      queue: this.#queue,
      id: bull.id ?? '',
      data: data.d,
      attempt: bull.attemptsMade + 1,
      maxAttempts: bull.opts.attempts ?? 1,
      priority: bull.opts.priority ?? 0,
      createdAt: bull.timestamp,
      runAt,
    };
    const startedAt = this.#o.now();
    // The wait is known for a first attempt only: BullMQ keeps no record of when a retry fell due.
    this.#o.metrics?.started(job.queue, bull.attemptsMade === 0 ? (startedAt - runAt) / 1000 : undefined);
    try {
      await runHandler(this.#handler, job, data.o?.timeout);
    } catch (error) {
      const dead = job.attempt >= job.maxAttempts;
      this.#o.metrics?.finished(
        job.queue,
        dead ? 'dead' : 'retried',
        (this.#o.now() - startedAt) / 1000,
        undefined,
      );
      throw error;
    }
    const now = this.#o.now();
    this.#o.metrics?.finished(job.queue, 'completed', (now - startedAt) / 1000, (now - job.createdAt) / 1000);
  }

  /**
   * After a failback: if jobs are waiting and this worker completes nothing for `stallMs`, it is
   * wedged (a known BullMQ failure after Redis failovers): close it and start a new one.
   */
  watch(): void {
    clearTimeout(this.#watch);
    const before = this.#progress;
    this.#watch = setTimeout(() => void this.#check(before), this.#o.stallMs);
    this.#watch.unref();
  }

  async #check(before: number): Promise<void> {
    if (this.#closing || this.#progress !== before) return;
    const counts = await this.#counts().catch(() => undefined);
    if (counts === undefined || counts.waiting === 0 || this.#worker.isPaused()) return;
    this.#o.logger?.warn(
      { queue: this.#queue, waiting: counts.waiting },
      'queues: BullMQ worker made no progress after a reconnect: recreating it',
    );
    const old = this.#worker;
    this.#worker = this.#start();
    void old.close(true).catch(() => undefined);
    this.watch();
  }

  async close(deadlineMs: number): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#watch);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const outcome = await Promise.race([this.#worker.close().then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    // Past the deadline: force-close; BullMQ's stalled check gives the unfinished jobs back.
    if (outcome === 'deadline') await this.#worker.close(true).catch(() => undefined);
  }
}
