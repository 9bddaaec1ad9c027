import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { Queue, Worker } from 'bullmq';
import { Registry } from 'prom-client';
import {
  effectOnce,
  jobEffectKey,
  QueueMetrics,
  type Job,
  type JobQueue,
  type RedisJobQueueOptions,
} from '../src/queue/index.js';
import { catchUpRuns, Pacer, REPLAY_SHARE_BUSY, replayRest } from '../src/failover/index.js';
import { REPLAY_STEP } from '../src/queue/spool-replay.js';
import { BULK_FROM } from '../src/queue/bullmq-jobs.js';
import type { Store } from '../src/store/types.js';
import { createBulwark, type Bulwark } from '../src/runtime/create.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { LogCapture } from './helpers/app.js';
import { rejection } from './helpers/store.js';
import { until } from './helpers/wait.js';
import { redisDriver as sharedRedisDriver } from './helpers/queue.js';

// Redis persists every write (AOF, fsync always), as a deployment that keeps jobs must configure it:
// a killed server comes back with every acknowledged job.
const DURABLE = ['--appendonly', 'yes', '--appendfsync', 'always'];

let redis: RedisServer;
const dirs: string[] = [];
const open: Bulwark[] = [];
beforeAll(async () => {
  redis = await startRedis({ args: DURABLE });
});
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
  for (const close of closers.splice(0)) await close();
  await redis.resume().catch(() => undefined);
  if (!(await redisUp())) await redis.restart();
  await flushAll();
});
afterAll(async () => {
  await redis.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function redisUp(): Promise<boolean> {
  const { Redis } = await import('ioredis');
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 300 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function flushAll(): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis(redis.url);
  await client.flushall();
  client.disconnect();
}

async function bulwark(dataDir?: string): Promise<Bulwark> {
  const dir = dataDir ?? mkdtempSync(path.join(tmpdir(), 'bulwark-queue-redis-'));
  if (dataDir === undefined) dirs.push(dir);
  const b = await createBulwark({
    env: { REDIS_URL: redis.url, BULWARK_DATA_DIR: dir },
    logLevel: 'error',
    defaultMetrics: false,
    queues: { leaseMs: 2000, pollMs: 20, redis: { replayIntervalMs: 200, stallMs: 3000 } },
  });
  open.push(b);
  return b;
}

/** The BullMQ driver on its own store and spool (SQLite in a temp dir), closed after the test. */
function redisDriver(name: string, extra: Partial<RedisJobQueueOptions> = {}) {
  return sharedRedisDriver(redis.url, name, { dirs, closers }, extra);
}

/** Jobs in the spool (the embedded queue's table), in any state. */
async function spooledJobs(store: Store): Promise<number> {
  return Number(
    (await sql<{ n: number }>`select count(*) as n from bulwark_jobs`.execute(store.db)).rows[0]?.n,
  );
}

/** Every job of `queue`, in BullMQ and in the spool, is done. */
function drained(b: Bulwark, queue: string): Promise<boolean> {
  return drainedQueue(b.queues, queue);
}

async function drainedQueue(queues: JobQueue, queue: string): Promise<boolean> {
  const c = (await queues.counts(queue)).get(queue);
  return c !== undefined && c.waiting + c.delayed + c.retrying + c.active === 0;
}

describe('queues on Redis (BullMQ behind the failover, embedded spool)', () => {
  it('runs jobs through BullMQ with attempts, dead letter, redrive, dedupe and timeouts', async () => {
    const b = await bulwark();
    // Up once a probe answered in time (on a busy machine the first one may not have).
    await until(() => b.dependencies['redis']?.mode === 'primary', 10_000, 'on Redis');
    const switches = b.dependencies['redis']?.switches;
    const seen: Job[] = [];
    let healthy = false;
    b.queues.process('mail', async (job, { signal }) => {
      seen.push(job);
      if (job.data === 'slow') await new Promise((resolve) => signal.addEventListener('abort', resolve));
      if (job.data === 'flaky' && !healthy) throw new Error(`boom ${job.attempt}`);
    });
    await b.queues.add('mail', 'hello', { id: 'one' });
    expect(await b.queues.add('mail', 'again', { id: 'one' })).toBe('one'); // dedupe
    await b.queues.add('mail', 'flaky', {
      id: 'flaky',
      attempts: 2,
      backoff: { type: 'fixed', delay: 50, jitter: 0 },
    });
    await b.queues.add('mail', 'slow', { id: 'slow', attempts: 1, timeout: 100 });
    await until(async () => (await b.queues.counts('mail')).get('mail')?.dead === 2, 15_000);
    // Redis stayed up: an add that missed its deadline on a busy machine was spooled and replayed
    // into BullMQ (where the second `one` is deduped), not run here.
    expect(b.dependencies['redis']?.switches).toBe(switches);
    await until(async () => (await spooledJobs(b.store)) === 0, 10_000, 'the spool replayed');
    expect(seen.filter((j) => j.id === 'one')).toHaveLength(1);
    expect(seen.filter((j) => j.id === 'flaky').map((j) => j.attempt)).toEqual([1, 2]);
    const dead = await b.queues.list('mail', 'dead');
    expect(dead.map((j) => j.id).sort()).toEqual(['flaky', 'slow']);
    expect(dead.find((j) => j.id === 'slow')?.lastError).toContain('timeout');
    healthy = true;
    expect(await b.queues.redrive('mail', ['flaky'])).toEqual(['flaky']);
    await until(async () => (await b.queues.counts('mail')).get('mail')?.dead === 1, 5000);
    await b.queues.add('mail', 'later', { id: 'later', delay: 60_000 });
    expect((await b.queues.counts('mail')).get('mail')?.delayed).toBe(1);
    await b.queues.promote('mail', 'later');
    await until(() => seen.some((j) => j.id === 'later'), 5000);
    await rejection(b.queues.promote('mail', 'nope'), 'BWK_ERR_QUEUE_JOB_NOT_FOUND');
  });

  it('boots with Redis down: jobs are spooled durably and run locally; when Redis appears the rest moves to BullMQ', async () => {
    await redis.kill();
    const b = await bulwark();
    expect(b.dependencies['redis']?.mode).toBe('fallback');
    const ran: string[] = [];
    b.queues.process('local', async (job) => {
      ran.push(job.id);
    });
    await b.queues.add('local', 1, { id: 'a' });
    await b.queues.add('elsewhere', 2, { id: 'b' }); // no worker here: waits in the spool
    // Neither hangs nor throws: both were written to the spool while Redis is still down.
    const spooled = await sql<{
      id: string;
    }>`select id from bulwark_jobs where queue = 'elsewhere'`.execute(b.store.db);
    expect(spooled.rows.map((r) => r.id)).toEqual(['b']);
    expect(await redisUp()).toBe(false);
    await until(() => ran.includes('a'), 3000);
    await redis.restart();
    await until(() => b.dependencies['redis']?.mode === 'primary', 5000);
    await until(async () => (await spooledJobs(b.store)) === 0, 5000);
    expect((await b.queues.list('elsewhere', 'waiting')).map((j) => j.id)).toEqual(['b']); // now in BullMQ
    await b.queues.add('local', 3, { id: 'c' });
    await until(() => ran.includes('c'), 5000);
  });

  it('bad input is refused the same way as on the embedded queue', async () => {
    const b = await bulwark();
    await rejection(b.queues.add('bad name!', 1), 'BWK_ERR_QUEUE_OPTIONS');
    await rejection(b.queues.add('ok', undefined), 'BWK_ERR_QUEUE_DATA_INVALID');
    const error = await b.queues.add('ok', 1, { attempts: -1 }).catch((e: unknown) => e);
    expect(isBulwarkError(error, 'BWK_ERR_QUEUE_OPTIONS')).toBe(true);
    // Ids BullMQ reserves, refused before anything is added (else one would fail its whole batch).
    await rejection(b.queues.add('ok', 1, { id: '0' }), 'BWK_ERR_QUEUE_OPTIONS');
    await rejection(b.queues.add('ok', 1, { id: '0:x' }), 'BWK_ERR_QUEUE_OPTIONS');
    expect(await b.queues.add('ok', 1, { id: '0x' })).toBe('0x');
  });
});

/**
 * Adds `total` jobs with ids `<prefix><i>` at a steady pace; returns the ids whose add resolved.
 * `acked` fills as they resolve, for a fault to be placed mid-stream.
 */
async function produce(b: Bulwark, total: number, prefix: string, acked: string[] = []): Promise<string[]> {
  for (let from = 0; from < total; from += 20) {
    const batch = [];
    for (let i = from; i < Math.min(total, from + 20); i += 1)
      batch.push(b.queues.add('work', { i }, { id: `${prefix}${i}` }));
    acked.push(...(await Promise.all(batch)));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return acked;
}

describe('a burst of adds in one turn', () => {
  it('goes to BullMQ once: a small one job by job, a large one in one addBulk; each job once, under its id', async () => {
    const { queues } = await redisDriver('burst');
    const bulk = vi.spyOn(Queue.prototype, 'addBulk');
    try {
      await Promise.all(Array.from({ length: 3 }, (_, i) => queues.add('burst', i, { id: `s${i}` })));
      expect(bulk).not.toHaveBeenCalled();
      const large = BULK_FROM + 1;
      await Promise.all(Array.from({ length: large }, (_, i) => queues.add('burst', i, { id: `l${i}` })));
      expect(bulk).toHaveBeenCalledTimes(1);
      expect(bulk.mock.calls[0]?.[0]).toHaveLength(large);
      // Added again (a retry after a lost answer): the ids keep each job once.
      await Promise.all(Array.from({ length: large }, (_, i) => queues.add('burst', i, { id: `l${i}` })));
      expect((await queues.counts('burst')).get('burst')?.waiting).toBe(3 + large);
      expect((await queues.job('burst', `l${BULK_FROM}`))?.state).toBe('waiting');
    } finally {
      bulk.mockRestore();
    }
  });
});

describe('queues on Redis under faults: every acknowledged job takes effect exactly once', () => {
  for (const fault of ['kill', 'pause', 'flap'] as const) {
    it(`Redis ${fault} mid-stream`, { timeout: 60_000 }, async () => {
      const b = await bulwark();
      await sql`create table if not exists effect_log (job_id text not null)`.execute(b.store.db);
      b.queues.process(
        'work',
        async (job) => {
          await effectOnce(b.store, jobEffectKey(job), async (trx) => {
            await sql`insert into effect_log (job_id) values (${job.id})`.execute(trx);
          });
        },
        { concurrency: 8 },
      );
      const ackedSoFar: string[] = [];
      const producing = produce(b, 1500, `${fault}-`, ackedSoFar);
      // Mid-stream: some jobs are in, most are still to come when the fault lands.
      await until(() => ackedSoFar.length >= 100, 30_000, 'jobs flowing');
      expect(ackedSoFar.length).toBeLessThan(1500);
      const fellBack = () =>
        until(() => b.dependencies['redis']?.mode === 'fallback', 30_000, 'on the spool');
      if (fault === 'kill') {
        await redis.kill();
        await fellBack(); // down until the app has gone to its spool
        await redis.restart();
      } else if (fault === 'pause') {
        await redis.pause();
        await fellBack();
        await redis.resume();
      } else await redis.flap({ downMs: 500, upMs: 500, cycles: 3 }).done;
      const acked = await producing;
      await until(() => b.dependencies['redis']?.mode === 'primary', 30_000, 'back on Redis');
      // The fault was felt: the app went to its spool and back at least once.
      expect(b.dependencies['redis']?.switches).toBeGreaterThanOrEqual(2);
      await until(() => drained(b, 'work'), 30_000, 'all jobs done');
      const rows = await sql<{
        job_id: string;
        n: number;
      }>`select job_id, count(*) as n from effect_log group by job_id`.execute(b.store.db);
      const effects = new Map(rows.rows.map((r) => [r.job_id, Number(r.n)]));
      expect(acked.filter((id) => !effects.has(id))).toEqual([]); // 0 lost
      expect([...effects].filter(([, n]) => n !== 1)).toEqual([]); // 0 duplicated
      expect(acked).toHaveLength(1500);
    });
  }
});

describe('a job in BullMQ and in the spool at once', () => {
  it(
    'an add that missed its deadline but reached Redis: counted once, run once (the spool copy is replayed, BullMQ dedupes its id)',
    { timeout: 30_000 },
    async () => {
      // Only the explicit replay below moves the spool to BullMQ.
      const { store, redisDep, spool, queues } = await redisDriver('both', { replayIntervalMs: 600_000 });
      const spooled = () => spooledJobs(store);
      expect(redisDep.failover.mode).toBe('primary');
      // Redis is up: into BullMQ (or, past the add's deadline on a busy machine, into the spool and
      // replayed into BullMQ at once).
      await queues.add('dup', 'x', { id: 'twice' });
      await until(async () => (await spooled()) === 0, 10_000, 'the job in BullMQ');
      // The copy a timed-out add leaves in the spool when Redis applied the add after all (or a
      // second add of the id that missed its deadline): same queue, same id, in both stores.
      await spool.add('dup', 'x', { id: 'twice' });
      expect(await spooled()).toBe(1);
      expect((await queues.counts('dup')).get('dup')).toMatchObject({ waiting: 1 });
      expect((await queues.list('dup', 'waiting')).map((j) => j.id)).toEqual(['twice']);
      const ran: string[] = [];
      queues.process('dup', async (job) => {
        ran.push(job.id);
      });
      await until(() => ran.length === 1, 10_000, 'the job ran');
      // The spool copy goes to BullMQ, which knows the id already and adds nothing.
      expect(await queues.replay()).toBe(1);
      expect(await spooled()).toBe(0);
      // The handler has returned; BullMQ marks the job completed a moment later.
      const counts = async () => (await queues.counts('dup')).get('dup');
      await until(async () => (await counts())?.active === 0, 10_000, 'the job completed');
      expect(await counts()).toMatchObject({ waiting: 0, delayed: 0, retrying: 0, active: 0 });
      expect(ran).toEqual(['twice']);
    },
  );
});

describe('an add slower than its deadline', () => {
  it('goes to the spool, reaches Redis late, and is counted as added once', { timeout: 30_000 }, async () => {
    const registry = new Registry();
    const { queues } = await redisDriver('late-add', { metrics: new QueueMetrics(registry) });
    const ran: string[] = [];
    queues.process('late', async (job) => {
      ran.push(job.id);
    });
    await redis.pause(); // the add is sent, and answered only after the resume: past its deadline
    await queues.add('late', 1, { id: 'late-job' });
    await redis.resume();
    await until(() => ran.length === 1, 10_000, 'the job ran');
    await until(() => drainedQueue(queues, 'late'), 10_000, 'the queue drained');
    expect(ran).toEqual(['late-job']);
    expect(await registry.metrics()).toContain('bulwark_queue_jobs_total{queue="late",event="added"} 1');
  });
});

describe('the spool replayed into BullMQ', () => {
  it('moves a large spool in small steps, one at a time, resting longer the busier the app keeps its loop', async () => {
    const rests: number[] = [];
    let inFlight = 0;
    let most = 0;
    // Every step "takes" 10 ms on the fake clock (read at its start and end); the app keeps its loop busy.
    let tick = 0;
    const { queues, redisDep } = await redisDriver('replay-paced', {
      replayIntervalMs: 600_000,
      replayPacing: {
        pause: async (ms) => {
          rests.push(ms);
          await new Promise((resolve) => setImmediate(resolve));
        },
        load: () => 1,
        clock: () => (tick += 10),
      },
    });
    queues.redisEnabled = false; // new jobs go to the spool
    for (let i = 0; i < 110; i += 1) await queues.add('paced', i, { id: `p${i}` });
    queues.redisEnabled = true;
    // Count the replay's batches in flight on Redis (each step is one batch).
    const original = redisDep.failover.execute.bind(redisDep.failover);
    redisDep.failover.execute = (async (...args: Parameters<typeof original>) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      try {
        return await original(...args);
      } finally {
        inFlight -= 1;
      }
    }) as typeof original;
    expect(await queues.replay()).toBe(110);
    // Steps of REPLAY_STEP: every full one rests, the last (partial) one ends the run.
    expect(rests.length).toBe(Math.floor(110 / REPLAY_STEP));
    // A busy loop: the replay takes a twentieth of the time (a 10 ms step rests 190 ms).
    for (const ms of rests) expect(ms).toBeCloseTo((10 * (1 - REPLAY_SHARE_BUSY)) / REPLAY_SHARE_BUSY, 6);
    expect(most).toBe(1);
    expect((await queues.counts('paced')).get('paced')?.waiting).toBe(110);
    expect(catchUpRuns()).toBe(0);

    // Beside another catch-up run (a cache's journal replay after the same failback) it takes half.
    const other = new Pacer({ pause: async () => undefined, load: () => 1, clock: () => 0 });
    other.start();
    rests.length = 0;
    queues.redisEnabled = false;
    for (let i = 0; i < 2 * REPLAY_STEP + 1; i += 1) await queues.add('paced', i, { id: `q${i}` });
    queues.redisEnabled = true;
    expect(await queues.replay()).toBe(2 * REPLAY_STEP + 1);
    other.end();
    expect(rests).toEqual([replayRest(10, 1, 2), replayRest(10, 1, 2)]);
    expect(rests[0]).toBeCloseTo(390, 6);
    expect(catchUpRuns()).toBe(0);
  });

  it('rests from the share the loop left free: a twentieth of the time when busy, half when idle', () => {
    expect(replayRest(10, 1)).toBeCloseTo(190, 6);
    expect(replayRest(10, 0)).toBeCloseTo(10, 6);
    expect(replayRest(10, 0.5)).toBeCloseTo(30, 6); // share 0.25
    expect(replayRest(10, Number.NaN)).toBeCloseTo(190, 6); // unknown: assume busy
    expect(replayRest(0, 0)).toBe(1); // always a turn of the loop between steps
    const rests = [0, 0.2, 0.4, 0.6, 0.8, 1].map((load) => replayRest(4, load));
    for (let i = 1; i < rests.length; i += 1) expect(rests[i]).toBeGreaterThanOrEqual(rests[i - 1]!);
    // Runs at the same time split the share: two take a fortieth of a busy loop each.
    expect(replayRest(10, 1, 2)).toBeCloseTo(390, 6);
    expect(replayRest(10, 0, 2)).toBeCloseTo(30, 6);
    expect(replayRest(10, 1, 0)).toBeCloseTo(190, 6);
  });

  it('catch-up runs in progress together take the one share: each from its first step until it ends', async () => {
    const rests: number[] = [];
    // Each run's own clock moves 5 ms per reading: every step takes 5 ms.
    const pacing = () => {
      let clock = 0;
      return { pause: async (ms: number) => void rests.push(ms), load: () => 1, clock: () => (clock += 5) };
    };
    const a = new Pacer(pacing());
    const b = new Pacer(pacing());
    expect(catchUpRuns()).toBe(0);
    a.start();
    await a.rest(); // alone
    b.start();
    a.start();
    await a.rest(); // beside b
    await b.rest();
    b.end();
    b.end(); // ending twice gives back once
    a.start();
    await a.rest(); // alone again
    a.end();
    expect(rests).toEqual([replayRest(5, 1), replayRest(5, 1, 2), replayRest(5, 1, 2), replayRest(5, 1)]);
    [95, 195, 195, 95].forEach((ms, i) => expect(rests[i]).toBeCloseTo(ms, 6));
    expect(catchUpRuns()).toBe(0);
  });

  it('keeps a delayed job due when it was due, however late the replay', async () => {
    let clock = Date.now();
    const { queues } = await redisDriver('replay-due', { now: () => clock });
    queues.redisEnabled = false; // new jobs go to the spool
    await queues.add('later', 1, { id: 'd', delay: 60_000 });
    const due = clock + 60_000;
    clock += 30_000; // replayed 30 s after it was added
    queues.redisEnabled = true;
    expect(await queues.replay()).toBe(1);
    const { Redis } = await import('ioredis');
    const client = new Redis(redis.url);
    const score = Number(await client.zscore('bulwark:q:later:delayed', 'd'));
    client.disconnect();
    // BullMQ's delayed score is the due time × 4096 plus a tie-breaker.
    expect(Math.floor(score / 0x1000)).toBe(due);
    expect((await queues.list('later', 'delayed')).map((j) => j.runAt)).toEqual([due]);
  });
});

describe('pause and resume while Redis is down', () => {
  it(
    'reach BullMQ on the failback: the store says which queues are paused',
    { timeout: 30_000 },
    async () => {
      const { redisDep, queues } = await redisDriver('pause-sync');
      const bull = new Queue('held', {
        connection: { host: '127.0.0.1', port: redis.port },
        prefix: 'bulwark:q',
      });
      closers.push(() => bull.close());
      await queues.pause('other');
      expect(await bull.isPaused()).toBe(false);
      // The kill switch sends every Redis call to its fallback: an outage without a dead server.
      redisDep.failover.setForced(true);
      await queues.pause('held');
      await queues.resume('other');
      redisDep.failover.setForced(false);
      await until(() => redisDep.failover.mode === 'primary', 5000);
      await until(() => bull.isPaused(), 10_000, 'the pause made during the outage reached BullMQ');
      const other = new Queue('other', {
        connection: { host: '127.0.0.1', port: redis.port },
        prefix: 'bulwark:q',
      });
      closers.push(() => other.close());
      await until(
        async () => !(await other.isPaused()),
        10_000,
        'the resume made during the outage reached BullMQ',
      );
    },
  );
});

describe('BullMQ worker watchdog', () => {
  it(
    'a worker that makes no progress with jobs waiting after a reconnect is replaced',
    { timeout: 30_000 },
    async () => {
      let built = 0;
      const { redisDep, queues } = await redisDriver('watchdog', {
        stallMs: 500,
        // The first worker is wedged: it listens on another queue and never takes ours.
        createWorker: (queue, processor, opts) => {
          built += 1;
          return new Worker(built === 1 ? `${queue}-nowhere` : queue, processor, opts);
        },
      });
      const ran: string[] = [];
      queues.process('w', async (job) => {
        ran.push(job.id);
      });
      for (const id of ['a', 'b', 'c']) await queues.add('w', id, { id });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(ran).toEqual([]); // wedged: jobs wait
      // A reconnect: the kill switch on and off makes the failover fail back and arm the watchdog.
      redisDep.failover.setForced(true);
      redisDep.failover.setForced(false);
      await until(() => redisDep.failover.mode === 'primary', 5000);
      await until(() => ran.length === 3, 10_000, 'jobs run by the replacement worker');
      expect(built).toBe(2);
    },
  );
});

/** `promise`'s value, or `'hung'` if it has not settled within `ms`. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms)));
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

describe('admin calls while Redis is frozen (SIGSTOP)', () => {
  it(
    'counts, list and pausedQueues answer from the spool within the admin deadline; a promote BullMQ alone could answer fails coded',
    { timeout: 30_000 },
    async () => {
      const adminDeadlineMs = 300;
      // Only what the test puts in the spool is there: no replay moves it to BullMQ meanwhile.
      const { redisDep, spool, queues } = await redisDriver('frozen', {
        replayIntervalMs: 600_000,
        adminDeadlineMs,
      });
      await until(() => redisDep.failover.mode === 'primary', 10_000, 'on Redis');
      await spool.add('frozen', 'x', { id: 'spooled' });
      await queues.pause('held');
      // Redis up: BullMQ is asked too (and its connection is open when Redis freezes).
      expect((await queues.counts('frozen')).get('frozen')).toMatchObject({ waiting: 1 });
      await redis.pause();
      try {
        // Each call waits for BullMQ at most the admin deadline; the rest is the store's reads on a
        // loaded machine. Without a deadline they wait for as long as Redis is frozen.
        const bound = 2 * adminDeadlineMs + 2000;
        // Every call settles (a rejection is an answer too) and is judged on its own.
        const answer = <T>(call: Promise<T>) =>
          within(
            bound,
            call.catch((error: unknown) => error as Error),
          );
        const [one, all, waiting, paused, promoted] = await Promise.all([
          answer(queues.counts('frozen')),
          answer(queues.counts()),
          answer(queues.list('frozen', 'waiting')),
          answer(queues.pausedQueues()),
          within(
            bound,
            rejection(queues.promote('frozen', 'not-in-the-spool'), 'BWK_ERR_QUEUE_REDIS_UNAVAILABLE'),
          ),
        ]);
        expect.soft(one instanceof Map ? one.get('frozen') : one).toMatchObject({ waiting: 1 });
        expect.soft(all instanceof Map ? all.get('frozen') : all).toMatchObject({ waiting: 1 });
        expect.soft(Array.isArray(waiting) ? waiting.map((j) => j.id) : waiting).toEqual(['spooled']);
        expect.soft(paused instanceof Set ? [...paused] : paused).toEqual(['held']);
        expect.soft(promoted).not.toBe('hung');
        // A CLI command closes what it opened: that does not wait for Redis either.
        expect.soft(await within(bound + 1000, queues.close(1000))).not.toBe('hung');
      } finally {
        await redis.resume();
      }
    },
  );
});

describe('driver options', () => {
  it('adminDeadlineMs reaches the driver from createBulwark; a bad one is refused naming the field', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-queue-redis-'));
    dirs.push(dir);
    const start = (adminDeadlineMs: number) =>
      createBulwark({
        env: { REDIS_URL: redis.url, BULWARK_DATA_DIR: dir },
        logLevel: 'error',
        defaultMetrics: false,
        metricsHistory: false,
        queues: { redis: { adminDeadlineMs, replayIntervalMs: 600_000 } },
      });
    await expect(start(0)).rejects.toMatchObject({
      code: 'BWK_ERR_QUEUE_OPTIONS',
      message: expect.stringContaining('redis.adminDeadlineMs') as unknown,
    });
    // A longer deadline than the default (1 000 ms): a frozen Redis holds the read for all of it
    // (a lower bound, which a loaded machine cannot make pass wrongly).
    const b = await start(2500);
    open.push(b);
    await until(() => b.dependencies['redis']?.mode === 'primary', 10_000, 'on Redis');
    await b.queues.counts('deadline');
    await redis.pause();
    try {
      const started = Date.now();
      await b.queues.counts('deadline');
      expect(Date.now() - started).toBeGreaterThanOrEqual(2400);
    } finally {
      await redis.resume();
    }
  });
});

describe('the spool replay in the background', () => {
  it('a store failure during a replay is logged, never an unhandled rejection (which would exit the app)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-queue-redis-'));
      dirs.push(dir);
      const logs = new LogCapture();
      const b = await createBulwark({
        env: { REDIS_URL: redis.url, BULWARK_DATA_DIR: dir },
        logLevel: 'warn',
        logDestination: logs,
        defaultMetrics: false,
        metricsHistory: false,
        queues: { redis: { replayIntervalMs: 100 } },
      });
      open.push(b);
      await until(() => b.dependencies['redis']?.mode === 'primary', 10_000, 'on Redis');
      // The store goes away under the running queue: every replay (every 100 ms) fails to take its batch.
      await b.store.close();
      await until(
        () =>
          logs.lines.filter((l) => l['msg'] === 'queues: spool replay failed; the next interval retries')
            .length >= 2,
        20_000,
        'two background replays failed',
      );
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
