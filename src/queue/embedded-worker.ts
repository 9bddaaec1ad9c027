import type { Logger } from 'pino';
import { bulwarkError } from '../errors/index.js';
import { DEFAULT_BACKOFF, retryDelay } from './backoff.js';
import { Batch } from './batch.js';
import type { QueueMetrics } from './metrics.js';
import { runHandler } from './run-handler.js';
import type { JobRow, SqlJobs } from './sql-jobs.js';
import type { Job, JobHandler, StoredJobOptions, WorkerOptions } from './types.js';

/** What an {@link EmbeddedWorker} needs of its queue. Times in milliseconds. */
export interface EmbeddedWorkerConfig {
  queue: string;
  handler: JobHandler;
  concurrency: number;
  limiter: WorkerOptions['limiter'];
  owner: string;
  jobs: SqlJobs;
  leaseMs: number;
  pollMs: number;
  claimBatch: number;
  paused: () => boolean;
  /** Resolves once the paused set has been read: no job of a paused queue starts before. */
  ready: Promise<void>;
  metrics: QueueMetrics | undefined;
  logger: Logger | undefined;
  now: () => number;
  onError: (error: unknown) => void;
}

/** Claims and runs the jobs of one queue of the embedded queue in this process. */
export class EmbeddedWorker {
  readonly #c: EmbeddedWorkerConfig;
  readonly #active = new Map<number, { controller: AbortController; done: Promise<void> }>();
  readonly #completions: Batch<number>;
  #pumping = false;
  /** The pump running now (or the last one): a claim in flight is in it. */
  #pumped: Promise<void> = Promise.resolve();
  #again = false;
  #closing = false;
  #poll: NodeJS.Timeout | undefined;
  #renew: NodeJS.Timeout | undefined;
  #windowStart = 0;
  #windowCount = 0;

  constructor(config: EmbeddedWorkerConfig) {
    this.#c = config;
    this.#completions = new Batch((seqs) => this.#c.jobs.complete(this.#c.owner, seqs));
  }

  start(): void {
    this.#renew = setInterval(
      () => {
        if (this.#active.size === 0) return;
        this.#c.jobs.extend(this.#c.owner, this.#c.now() + this.#c.leaseMs).catch(this.#c.onError);
      },
      Math.max(10, Math.floor(this.#c.leaseMs / 3)),
    );
    this.#renew.unref();
    void this.#c.ready.then(() => this.wake());
  }

  /** Looks for jobs now (new jobs were added, a slot freed, the queue resumed). */
  wake(): void {
    if (this.#closing) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumped = this.#pump();
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    clearTimeout(this.#poll);
    let delay = this.#c.pollMs;
    try {
      await this.#c.ready;
      do {
        this.#again = false;
        while (!this.#closing && !this.#c.paused() && this.#active.size < this.#c.concurrency) {
          let want = Math.min(this.#c.concurrency - this.#active.size, this.#c.claimBatch);
          const limiter = this.#c.limiter;
          if (limiter !== undefined) {
            const now = this.#c.now();
            if (now - this.#windowStart >= limiter.duration) this.#windowCount = 0;
            want = Math.min(want, limiter.max - this.#windowCount);
            if (want <= 0) {
              delay = Math.max(1, this.#windowStart + limiter.duration - now);
              break;
            }
          }
          const rows = await this.#c.jobs.claim(
            this.#c.queue,
            want,
            this.#c.owner,
            this.#c.now(),
            this.#c.leaseMs,
          );
          // A window opens when its first jobs are handed out, not when their claim was sent: a slow
          // claim (a round trip to PostgreSQL) must not eat into the window it opens.
          if (this.#windowCount === 0 && rows.length > 0) this.#windowStart = this.#c.now();
          this.#windowCount += rows.length;
          for (const row of rows) this.#run(row);
          if (rows.length < want) break; // drained: wait for a wake or the poll
        }
      } while (this.#again && !this.#closing);
    } catch (error) {
      this.#c.onError(error);
    } finally {
      this.#pumping = false;
      if (!this.#closing) {
        // Not unref'd: a process with a worker stays alive to run jobs until close().
        this.#poll = setTimeout(() => this.wake(), delay);
      }
    }
  }

  #run(row: JobRow): void {
    const controller = new AbortController();
    const done = this.#execute(row, controller).finally(() => {
      this.#active.delete(row.seq);
      this.wake();
    });
    this.#active.set(row.seq, { controller, done });
  }

  async #execute(row: JobRow, controller: AbortController): Promise<void> {
    const options = row.options === null ? {} : (JSON.parse(row.options) as StoredJobOptions);
    const job: Job = {
      queue: row.queue,
      id: row.id,
      data: JSON.parse(row.data) as unknown,
      attempt: row.attempts,
      maxAttempts: row.max_attempts,
      priority: row.priority,
      createdAt: Number(row.created_at),
      runAt: Number(row.run_at),
    };
    const startedAt = this.#c.now();
    this.#c.metrics?.started(job.queue, (startedAt - job.runAt) / 1000);
    try {
      await runHandler(this.#c.handler, job, options.timeout, controller);
      if (this.#closing && controller.signal.aborted) return; // released by close()
      await this.#completions.push(row.seq);
      this.#c.metrics?.finished(
        job.queue,
        'completed',
        (this.#c.now() - startedAt) / 1000,
        (this.#c.now() - job.createdAt) / 1000,
      );
    } catch (error) {
      if (this.#closing && controller.signal.aborted) return; // released by close()
      const dead = job.attempt >= job.maxAttempts;
      const now = this.#c.now();
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.#c.logger?.warn(
        { queue: job.queue, jobId: job.id, attempt: job.attempt, maxAttempts: job.maxAttempts, err: error },
        dead ? 'job failed on its last attempt: dead-lettered' : 'job failed: will retry',
      );
      try {
        await this.#c.jobs.fail(this.#c.owner, row.seq, {
          dead,
          runAt: dead ? now : now + retryDelay(options.backoff ?? DEFAULT_BACKOFF, job.attempt),
          error: message.slice(0, 2000),
          now,
        });
      } catch (storeError) {
        // The lease runs out and recovery retries the job: nothing is lost.
        this.#c.onError(storeError);
      }
      this.#c.metrics?.finished(job.queue, dead ? 'dead' : 'retried', (now - startedAt) / 1000, undefined);
    }
  }

  async close(deadlineMs: number): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#poll);
    clearInterval(this.#renew);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    // A claim in flight hands its jobs out when it returns: wait for it, so that they are waited
    // for (or released) like the others, instead of starting after close() returned.
    await Promise.race([this.#pumped, deadline]);
    const running = [...this.#active.values()].map((a) => a.done);
    const outcome = await Promise.race([Promise.all(running).then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      const left = [...this.#active.entries()];
      for (const [, a] of left)
        a.controller.abort(bulwarkError('BWK_ERR_QUEUE_CLOSED', { operation: 'finish the job' }));
      try {
        await this.#c.jobs.release(
          this.#c.owner,
          left.map(([seq]) => seq),
        );
      } catch (error) {
        this.#c.onError(error); // their leases run out and recovery gives them back
      }
      this.#c.logger?.warn(
        { queue: this.#c.queue, released: left.length },
        'queues: released jobs still running at the close deadline',
      );
    }
  }
}
