import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import {
  EmbeddedJobQueue,
  effectOnce,
  QueueMetrics,
  RedisJobQueue,
  retryDelay,
  typedQueues,
  type Job,
  type JobOptions,
  type JobQueue,
} from '../src/queue/index.js';
import { connectRedis, type RedisDependency } from '../src/redis/connection.js';
import type { Store } from '../src/store/types.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { postgresForFile, rejection, storeFixture } from './helpers/store.js';
import { until } from './helpers/wait.js';

const pgUrl = postgresForFile();
let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('retry delay', () => {
  it('grows exponentially up to the ceiling, with equal jitter', () => {
    const none = () => 0;
    expect([1, 2, 3, 4].map((n) => retryDelay({ delay: 100, jitter: 0.5 }, n, none))).toEqual([
      100, 200, 400, 800,
    ]);
    expect(retryDelay({ delay: 100, maxDelay: 300 }, 10, none)).toBe(300);
    expect(retryDelay({ type: 'fixed', delay: 100 }, 7, none)).toBe(100);
    expect(retryDelay({ delay: 100, jitter: 0.5 }, 1, () => 1)).toBe(50); // never below half
    expect(retryDelay({ delay: 100, jitter: 0 }, 1, () => 1)).toBe(100);
  });
});

const drivers = [
  { name: 'embedded on SQLite', engine: 'sqlite', redis: false },
  { name: 'embedded on PostgreSQL', engine: 'postgres', redis: false },
  { name: 'BullMQ on Redis (SQLite spool)', engine: 'sqlite', redis: true },
] as const;

describe.each(drivers)('job queue conformance: $name', (driver) => {
  const fixture = storeFixture(driver.engine, pgUrl);
  const queues: JobQueue[] = [];
  const deps: RedisDependency[] = [];
  afterEach(async () => {
    for (const q of queues.splice(0)) await q.close(1000);
    for (const dep of deps.splice(0)) dep.close();
    if (driver.redis) {
      const client = new Redis(redis.url);
      await client.flushall();
      client.disconnect();
    }
  });

  /** A queue of this driver on `store` (a fresh one by default); several may share one store. */
  async function open(extra: { leaseMs?: number; store?: Store; metrics?: QueueMetrics } = {}) {
    const store = extra.store ?? (await fixture.open());
    const leaseMs = extra.leaseMs ?? 5000;
    const metrics = extra.metrics === undefined ? {} : { metrics: extra.metrics };
    let redisQueue: RedisJobQueue | undefined;
    const embedded: EmbeddedJobQueue = new EmbeddedJobQueue({
      store,
      pollMs: 20,
      leaseMs,
      ...metrics,
      ...(driver.redis
        ? {
            schedulerAdd: (q: string, data: unknown, o: JobOptions): Promise<string> =>
              (redisQueue ?? embedded).add(q, data, o),
          }
        : {}),
    });
    let queue: JobQueue = embedded;
    if (driver.redis) {
      const dep = await connectRedis(redis.url, pino({ level: 'silent' }));
      deps.push(dep);
      redisQueue = new RedisJobQueue({
        url: redis.url,
        failover: dep.failover,
        client: dep.client,
        spool: embedded,
        store,
        instanceId: randomUUID(),
        leaseMs,
        replayIntervalMs: 200,
        ...metrics,
      });
      queue = redisQueue;
    }
    queues.push(queue);
    return { store, queue, embedded };
  }

  /** Tests of the embedded queue's own machinery (leases in SQL, release on close, effect markers). */
  const embeddedOnly = driver.redis ? ((() => undefined) as unknown as typeof it) : it;

  it('add resolves with the id once durable; a worker runs the job once with its data', async () => {
    const { queue } = await open();
    const id = await queue.add('mail', { to: 'a@example.com' });
    expect((await queue.counts('mail')).get('mail')).toMatchObject({ waiting: 1 });
    const seen: Job[] = [];
    queue.process('mail', async (job) => {
      seen.push(job);
    });
    // Done once nothing is left: the completion is written after the handler returns.
    await until(async () => {
      const c = (await queue.counts('mail')).get('mail');
      return seen.length === 1 && c !== undefined && c.waiting + c.active === 0;
    });
    await sleep(100);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      id,
      queue: 'mail',
      data: { to: 'a@example.com' },
      attempt: 1,
      maxAttempts: 3,
    });
    expect((await queue.counts('mail')).get('mail')).toEqual({
      waiting: 0,
      delayed: 0,
      retrying: 0,
      active: 0,
      dead: 0,
    });
  });

  it('runs by priority (lower first), then in the order added; a duplicate id adds nothing', async () => {
    const { queue } = await open();
    await queue.add('q', 'low-1', { priority: 5 });
    await queue.add('q', 'high', { priority: -1 });
    await queue.add('q', 'normal-1');
    await queue.add('q', 'normal-2', { id: 'dup' });
    expect(await queue.add('q', 'normal-2-again', { id: 'dup' })).toBe('dup');
    await queue.add('q', 'low-2', { priority: 5 });
    const order: unknown[] = [];
    queue.process('q', async (job) => {
      order.push(job.data);
    });
    await until(() => order.length === 5);
    await sleep(100);
    expect(order).toEqual(['high', 'normal-1', 'normal-2', 'low-1', 'low-2']);
  });

  it('a delayed job is reported delayed and runs once due; promote runs it at once', async () => {
    const { queue } = await open();
    const ran: string[] = [];
    let soonRanAt = 0;
    queue.process('d', async (job) => {
      ran.push(job.id);
      if (job.id === 'soon') soonRanAt = Date.now();
    });
    const addedAt = Date.now();
    await queue.add('d', 1, { id: 'soon', delay: 300 });
    await queue.add('d', 2, { id: 'later', delay: 60_000 });
    expect((await queue.counts('d')).get('d')).toMatchObject({ delayed: 2 });
    await until(() => ran.length === 1, 10_000);
    expect(ran).toEqual(['soon']);
    // Not before it was due (a busy machine can only make it later).
    expect(soonRanAt - addedAt).toBeGreaterThanOrEqual(300);
    await queue.promote('d', 'later');
    await until(() => ran.length === 2);
    await rejection(queue.promote('d', 'later'), 'BWK_ERR_QUEUE_JOB_NOT_FOUND');
  });

  it('retries with backoff, then dead-letters with the last error; redrive runs it again', async () => {
    const { queue } = await open();
    const attempts: number[] = [];
    let healthy = false;
    queue.process('r', async (job) => {
      attempts.push(job.attempt);
      if (!healthy) throw new Error(`boom ${job.attempt}`);
    });
    await queue.add('r', {}, { id: 'flaky', attempts: 3, backoff: { type: 'fixed', delay: 100, jitter: 0 } });
    await until(async () => (await queue.counts('r')).get('r')?.dead === 1, 10_000);
    expect(attempts).toEqual([1, 2, 3]);
    const [dead] = await queue.list('r', 'dead');
    expect(dead).toMatchObject({ id: 'flaky', attempts: 3, maxAttempts: 3 });
    expect(dead?.lastError).toContain('boom 3');
    healthy = true;
    expect(await queue.redrive('r')).toEqual(['flaky']);
    await until(() => attempts.length === 4);
    await until(async () => (await queue.counts('r')).get('r')?.dead === 0);
    expect(attempts[3]).toBe(1); // fresh attempts
    expect(await queue.redrive('r', ['nope'])).toEqual([]);
  });

  it('a retrying job is reported as retrying until its backoff has passed', async () => {
    const { queue } = await open();
    let calls = 0;
    queue.process('b', async () => {
      calls += 1;
      if (calls === 1) throw new Error('first');
    });
    await queue.add('b', {}, { backoff: { delay: 60_000 } });
    // BullMQ's counts do not tell a retry from a delay: both are `delayed` there.
    const waitingOut = async () => {
      const c = (await queue.counts('b')).get('b');
      return driver.redis ? c?.delayed === 1 : c?.retrying === 1;
    };
    await until(waitingOut);
    const [job] = await queue.list('b', 'retrying');
    expect(job).toMatchObject({ attempts: 1 });
    expect(job?.lastError).toContain('first');
    await queue.promote('b', job!.id);
    await until(() => calls === 2);
  });

  it('a job over its timeout fails with BWK_ERR_QUEUE_JOB_TIMEOUT and its signal aborts', async () => {
    const { queue } = await open();
    let aborted: unknown;
    queue.process('t', (_job, { signal }) => {
      return new Promise((resolve) => {
        signal.addEventListener('abort', () => {
          aborted = signal.reason;
          resolve(undefined);
        });
      });
    });
    await queue.add('t', {}, { attempts: 1, timeout: 50 });
    await until(async () => (await queue.counts('t')).get('t')?.dead === 1, 10_000);
    expect(isBulwarkError(aborted, 'BWK_ERR_QUEUE_JOB_TIMEOUT')).toBe(true);
    expect((await queue.list('t', 'dead'))[0]?.lastError).toContain('50 ms timeout');
  });

  it('runs at most `concurrency` jobs at once', async () => {
    const { queue } = await open();
    let running = 0;
    let peak = 0;
    let done = 0;
    queue.process(
      'c',
      async () => {
        running += 1;
        peak = Math.max(peak, running);
        // Each job waits until four run at once (or only the last ones are left), so a machine
        // slow to hand out the next job cannot keep the peak under the limit; a fifth would start
        // while these four wait.
        await until(() => running >= 4 || done + running === 20);
        running -= 1;
        done += 1;
      },
      { concurrency: 4 },
    );
    await Promise.all(Array.from({ length: 20 }, (_, i) => queue.add('c', i)));
    await until(() => done === 20, 15_000);
    expect(peak).toBe(4);
  });

  it('the limiter starts at most max jobs per duration', async () => {
    const { queue } = await open();
    await Promise.all(Array.from({ length: 12 }, (_, i) => queue.add('lim', i)));
    const starts: number[] = [];
    // No job is handed out before the worker exists, so the first window opens at `before` or
    // later. Not measured from the first handler's start: BullMQ opens its window when it hands
    // the jobs out in Redis, and a handler may start any time after that on a busy machine.
    const before = Date.now();
    queue.process(
      'lim',
      async () => {
        starts.push(Date.now());
      },
      { concurrency: 10, limiter: { max: 5, duration: 400 } },
    );
    await until(() => starts.length === 12, 10_000);
    // At most 5 per window: the 6th is handed out a window after the first, the 11th two.
    expect(starts[5]! - before).toBeGreaterThanOrEqual(400);
    expect(starts[10]! - before).toBeGreaterThanOrEqual(800);
  });

  (driver.engine === 'postgres' && !driver.redis ? it : ((() => undefined) as unknown as typeof it))(
    'a slow claim does not shorten the limiter window it opens (PostgreSQL: the jobs table locked for 300 ms)',
    async () => {
      const { queue, store } = await open();
      await Promise.all(Array.from({ length: 10 }, (_, i) => queue.add('slow', i)));
      const locker = new pg.Client({ connectionString: pgUrl() });
      await locker.connect();
      try {
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE "${fixture.options().schema}".bulwark_jobs IN EXCLUSIVE MODE`);
        const starts: number[] = [];
        queue.process(
          'slow',
          async () => {
            starts.push(Date.now());
          },
          { concurrency: 10, limiter: { max: 5, duration: 400 } },
        );
        await sleep(300); // the first claim waits on the lock all this time
        await locker.query('COMMIT');
        await until(() => starts.length === 10, 5000);
        // The window opened when the first five started, so the sixth waits a whole window after them.
        expect(starts[5]! - starts[0]!).toBeGreaterThanOrEqual(390);
      } finally {
        await locker.end();
      }
      expect(store.engine).toBe('postgres');
    },
  );

  it('pause stops every worker from starting jobs; resume starts them again', async () => {
    const { queue } = await open();
    const ran: unknown[] = [];
    queue.process('p', async (job) => {
      ran.push(job.data);
    });
    await queue.pause('p');
    expect(queue.paused.has('p')).toBe(true);
    await queue.add('p', 'held');
    await sleep(200);
    expect(ran).toEqual([]);
    await queue.resume('p');
    await until(() => ran.length === 1);
  });

  it('holdLocal holds the workers of this process without touching the store; release runs what waited', async () => {
    const { queue } = await open();
    const ran: unknown[] = [];
    queue.process('h', async (job) => {
      ran.push(job.data);
    });
    queue.holdLocal(true);
    expect(queue.heldLocal).toBe(true);
    await queue.add('h', 'waits');
    await sleep(300);
    expect(ran).toEqual([]);
    expect(queue.paused.has('h')).toBe(false);
    queue.holdLocal(false);
    await until(() => ran.length === 1);
    expect(queue.heldLocal).toBe(false);
  });

  it('holdLocal by several holders: the workers run again only once every holder has released', async () => {
    const { queue } = await open();
    const ran: unknown[] = [];
    queue.process('h2', async (job) => {
      ran.push(job.data);
    });
    queue.holdLocal(true, 'degradation');
    queue.holdLocal(true, 'supervisor');
    await queue.add('h2', 'waits');
    queue.holdLocal(false, 'supervisor'); // the supervisor's "normal" must not undo the other hold
    expect(queue.heldLocal).toBe(true);
    await sleep(300);
    expect(ran).toEqual([]);
    queue.holdLocal(false, 'degradation');
    await until(() => ran.length === 1);
  });

  it('a queue paused before a restart starts nothing after it, from the first moment', async () => {
    const { store, queue } = await open();
    await queue.pause('held');
    await queue.add('held', 'x');
    await queue.close();
    const { queue: restarted } = await open({ store });
    const ran: unknown[] = [];
    restarted.process('held', async (job) => {
      ran.push(job.data);
    });
    await sleep(300);
    expect(ran).toEqual([]);
    expect([...(await restarted.pausedQueues())]).toEqual(['held']);
    await restarted.resume('held');
    await until(() => ran.length === 1);
  });

  embeddedOnly(
    'recovers jobs whose worker died (lease expired): queued again, or dead on the last attempt',
    async () => {
      const { store, embedded: queue } = await open();
      await queue.add('crash', 'again', { id: 'retry-me', attempts: 2 });
      await queue.add('crash', 'gone', { id: 'last-try', attempts: 1 });
      // A worker that claimed both and died: active, lease long expired.
      await sql`update bulwark_jobs set state = 'active', attempts = 1, lease_owner = 'dead-worker', lease_until = 1`.execute(
        store.db,
      );
      expect((await queue.counts('crash')).get('crash')).toMatchObject({ active: 2 });
      expect(await queue.recover()).toBe(2);
      const counts = (await queue.counts('crash')).get('crash');
      expect(counts).toMatchObject({ active: 0, waiting: 1, dead: 1 });
      expect((await queue.list('crash', 'dead'))[0]).toMatchObject({
        id: 'last-try',
        lastError: expect.stringContaining('lease expired') as unknown,
      });
      const ran: string[] = [];
      queue.process('crash', async (job) => {
        ran.push(`${job.id}#${job.attempt}`);
      });
      await until(() => ran.length === 1);
      expect(ran).toEqual(['retry-me#2']);
    },
  );

  it('renews leases while a job runs longer than the lease', async () => {
    // A lease well above the event-loop stalls of a busy machine (a renewal held up past the
    // lease loses it, and the job runs again: at least once). The job outlives the lease and two
    // of the checks that would give it back: BullMQ's stalled check (every max(1 s, lease / 2))
    // needs two passes, the embedded recovery runs every lease / 2.
    const leaseMs = 1000;
    const outlives = leaseMs + 2 * Math.max(1000, leaseMs / 2) + leaseMs / 2;
    const { queue } = await open({ leaseMs });
    let runs = 0;
    queue.process('long', async () => {
      runs += 1;
      await sleep(outlives);
    });
    await queue.add('long', {});
    await until(() => runs === 1);
    // Done when nothing of the queue is left: a job given back would be waiting or running again.
    await until(async () => {
      const c = (await queue.counts('long')).get('long');
      return c !== undefined && c.waiting + c.delayed + c.retrying + c.active + c.dead === 0;
    }, outlives + 10_000);
    expect(runs).toBe(1); // never given back and run twice
  });

  embeddedOnly(
    'close waits for running jobs; past its deadline it releases them without counting the attempt',
    async () => {
      const { store, embedded: queue } = await open();
      let started = 0;
      let finished = 0;
      queue.process(
        'g',
        async (job, { signal }) => {
          started += 1;
          if (job.data === 'quick') {
            await sleep(100);
            finished += 1;
          } else await new Promise((resolve) => signal.addEventListener('abort', resolve));
        },
        { concurrency: 2 },
      );
      await queue.add('g', 'quick');
      await queue.add('g', 'stuck', { id: 'stuck' });
      // Both running in their handlers: a job claimed (active in the store) but not yet handed to
      // its handler is released by close, not waited for, which would leave nothing to wait for.
      await until(async () => started === 2);
      expect((await queue.counts('g')).get('g')?.active).toBe(2);
      // A deadline well past the quick job's 100 ms, so a busy machine still sees it finish in time.
      await queue.close(1500);
      expect(finished).toBe(1);
      const next = new EmbeddedJobQueue({ store, pollMs: 20 });
      queues.push(next);
      expect((await next.counts('g')).get('g')).toMatchObject({ waiting: 1, active: 0 });
      expect((await next.list('g', 'waiting'))[0]).toMatchObject({ id: 'stuck', attempts: 0 });
      await rejection(queue.add('g', 1), 'BWK_ERR_QUEUE_CLOSED');
    },
  );

  it('two instances on one store share the work: every job runs exactly once', async () => {
    const first = await open();
    const second = await open({ store: await fixture.open() });
    const runs = new Map<string, number>();
    for (const { queue } of [first, second])
      queue.process(
        'shared',
        async (job) => {
          runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
          await sleep(1);
        },
        { concurrency: 4 },
      );
    const ids = await Promise.all(
      Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? first : second).queue.add('shared', i)),
    );
    await until(() => runs.size === 400, 10_000);
    await sleep(100);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(ids).size).toBe(400);
  });

  it('a repeatable job is added once per occurrence across instances; cron patterns are validated', async () => {
    const first = await open();
    const second = await open({ store: await fixture.open() });
    const ran: string[] = [];
    first.queue.process('tick', async (job) => {
      ran.push(job.id);
    });
    await first.queue.repeat('tick', 'heartbeat', { n: 1 }, { every: 300 });
    await second.queue.repeat('tick', 'heartbeat', { n: 1 }, { every: 300 });
    await until(() => ran.length >= 3, 10_000, 'three occurrences');
    await first.queue.unrepeat('tick', 'heartbeat');
    await sleep(300);
    expect(new Set(ran).size).toBe(ran.length);
    expect(ran.every((id) => id.startsWith('repeat:heartbeat:'))).toBe(true);
    // One job per occurrence, not one per instance: the occurrences (in the ids) are a period apart.
    const occurrences = ran.map((id) => Number(id.slice('repeat:heartbeat:'.length))).sort((a, b) => a - b);
    for (let i = 1; i < occurrences.length; i += 1)
      expect(occurrences[i]! - occurrences[i - 1]!).toBeGreaterThanOrEqual(300);
    await first.queue.repeat('tick', 'nightly', {}, { cron: '0 3 * * *', tz: 'Europe/Paris' });
    await rejection(first.queue.repeat('tick', 'bad', {}, { cron: 'not a cron' }), 'BWK_ERR_QUEUE_OPTIONS');
    await rejection(
      first.queue.repeat('tick', 'both', {}, { cron: '* * * * *', every: 5 }),
      'BWK_ERR_QUEUE_OPTIONS',
    );
  });

  it('typed queues: payload types per queue name, checked at compile time', async () => {
    const { queue } = await open();
    const typed = typedQueues<{ email: { to: string }; report: { day: string } }>(queue);
    const seen: string[] = [];
    typed.process('email', async (job) => {
      seen.push(job.data.to); // job.data is { to: string }
    });
    await typed.add('email', { to: 'ada@example.com' });
    // @ts-expect-error: wrong payload for the queue
    await expect(typed.add('email', { day: 'monday' })).resolves.toBeTypeOf('string');
    // @ts-expect-error: a queue not in the map
    expect(() => typed.process('nope', async () => undefined)).not.toThrow();
    await until(() => seen.length === 2);
    expect(seen[0]).toBe('ada@example.com');
  });

  it('bad input is refused with a coded error naming the field, and adds nothing', async () => {
    const { queue } = await open();
    const cases: [Promise<unknown>, string][] = [
      [queue.add('bad name!', 1), 'queue name'],
      [queue.add('ok', 1, { attempts: 0 }), 'attempts'],
      [queue.add('ok', 1, { delay: -1 }), 'delay'],
      [queue.add('ok', 1, { priority: 1.5 }), 'priority'],
      [queue.add('ok', 1, { backoff: { jitter: 2 } }), 'backoff.jitter'],
      [queue.add('ok', 1, { id: '' }), 'id'],
    ];
    for (const [promise, field] of cases) {
      const params = await rejection(promise, 'BWK_ERR_QUEUE_OPTIONS');
      expect(String(params['detail'])).toContain(field);
    }
    await rejection(queue.add('ok', undefined), 'BWK_ERR_QUEUE_DATA_INVALID');
    await rejection(queue.add('ok', { n: 1n }), 'BWK_ERR_QUEUE_DATA_INVALID');
    expect(() => queue.process('ok', async () => undefined, { concurrency: 0 })).toThrow(/concurrency/);
    expect((await queue.counts()).get('ok')).toBeUndefined();
  });

  embeddedOnly("effectOnce applies an effect once per key, in the effect's transaction", async () => {
    const { store } = await open();
    await sql`create table effect_log (k text)`.execute(store.db);
    const write = (key: string) =>
      effectOnce(store, key, async (trx) => {
        await sql`insert into effect_log (k) values (${key})`.execute(trx);
        return 'done';
      });
    expect(await write('a')).toEqual({ applied: true, value: 'done' });
    expect(await write('a')).toEqual({ applied: false });
    // An effect that fails leaves no marker: it runs again next time.
    await expect(
      effectOnce(store, 'b', async (trx) => {
        await sql`insert into effect_log (k) values ('b')`.execute(trx);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await write('b')).toEqual({ applied: true, value: 'done' });
    const rows = await sql<{ k: string }>`select k from effect_log order by k`.execute(store.db);
    expect(rows.rows.map((r) => r.k)).toEqual(['a', 'b']);
  });

  it('pages through the jobs of a state with previews of their data; one job whole; the oldest waiting', async () => {
    const { queue } = await open();
    const before = Date.now();
    const big = 'é'.repeat(1000); // 2 000 bytes of UTF-8
    await queue.add('pg', { n: 1 }, { id: 'a' });
    await queue.add('pg', { big }, { id: 'b' });
    await queue.add('pg', { n: 3 }, { id: 'c', delay: 60_000 });
    await queue.add('pg', { n: 4 }, { id: 'd' });
    await queue.add('pg', { n: 5 }, { id: 'e' });
    const ids: string[] = [];
    const pages: (string | null)[] = [];
    let after: string | undefined;
    do {
      const page = await queue.page('pg', 'waiting', { limit: 2, ...(after === undefined ? {} : { after }) });
      ids.push(...page.jobs.map((j) => j.id));
      pages.push(page.next);
      after = page.next ?? undefined;
    } while (after !== undefined && pages.length < 5);
    expect(ids).toEqual(['a', 'b', 'd', 'e']);
    expect(pages.at(-1)).toBeNull();

    const [first, second] = (await queue.page('pg', 'waiting')).jobs;
    expect(first).toMatchObject({
      queue: 'pg',
      id: 'a',
      state: 'waiting',
      attempts: 0,
      data: { text: '{"n":1}', bytes: 7, truncated: false },
      lastError: null,
    });
    const json = JSON.stringify({ big });
    expect(second?.data).toEqual({
      text: json.slice(0, 8 + 508), // {"big":" is 8 bytes, then 508 é of 2 bytes: 1 024
      bytes: Buffer.byteLength(json),
      truncated: true,
    });
    expect((await queue.page('pg', 'waiting', { previewBytes: 10 })).jobs[1]?.data.text).toBe('{"big":"é');
    expect((await queue.page('pg', 'delayed')).jobs.map((j) => j.id)).toEqual(['c']);

    expect(await queue.job('pg', 'b')).toMatchObject({
      queue: 'pg',
      id: 'b',
      state: 'waiting',
      data: { big },
      lastError: null,
      startedAt: null,
      finishedAt: null,
      options: {},
    });
    expect((await queue.job('pg', 'c'))?.state).toBe('delayed');
    expect(await queue.job('pg', 'nope')).toBeUndefined();

    const oldest = await queue.oldestWaiting();
    expect(oldest.get('pg')).toBeGreaterThanOrEqual(before);
    expect(oldest.get('pg')).toBeLessThanOrEqual(Date.now());
    expect((await queue.oldestWaiting('pg')).get('pg')).toBe(oldest.get('pg'));
    expect((await queue.oldestWaiting('empty')).has('empty')).toBe(false);
    await rejection(queue.page('pg', 'waiting', { after: 'x' }), 'BWK_ERR_QUEUE_OPTIONS');
    await rejection(queue.page('bad name', 'waiting'), 'BWK_ERR_QUEUE_OPTIONS');
  });

  it('measures the wait from when the job fell due, and keeps recent wait and run times', async () => {
    const registry = new Registry();
    const { queue } = await open({ metrics: new QueueMetrics(registry) });
    expect(queue.timings('w')).toEqual({
      windowMs: 300_000,
      wait: { count: 0, p50: null, p95: null },
      run: { count: 0, p50: null, p95: null },
    });
    await queue.add('w', 1);
    const added = Date.now();
    // The wait being measured: no worker for 250 ms.
    await sleep(250);
    const ran: number[] = [];
    queue.process('w', async () => {
      ran.push(Date.now() - added);
    });
    await until(() => ran.length === 1);
    await until(() => queue.timings('w').run.count === 1);
    const sum = /bulwark_queue_wait_seconds_sum\{queue="w"\} ([\d.e-]+)/.exec(await registry.metrics());
    expect(Number(sum?.[1])).toBeGreaterThanOrEqual(0.25);
    const { wait, run } = queue.timings('w');
    expect(wait.count).toBe(1);
    expect(wait.p50).toBeGreaterThanOrEqual(250);
    expect(wait.p95).toBe(wait.p50);
    expect(run.p50).toBeGreaterThanOrEqual(0);
  });

  it('exports per-state counts at scrape time and job events', async () => {
    const registry = new Registry();
    const { queue } = await open({ metrics: new QueueMetrics(registry) });
    await queue.add('m', 1, { delay: 60_000 });
    await queue.add('m', 2);
    let text = await registry.metrics();
    expect(text).toContain('bulwark_queue_jobs{queue="m",state="delayed"} 1');
    expect(text).toContain('bulwark_queue_jobs{queue="m",state="waiting"} 1');
    queue.process('m', async () => undefined);
    await until(async () =>
      (await registry.metrics()).includes('bulwark_queue_jobs_total{queue="m",event="completed"} 1'),
    );
    text = await registry.metrics();
    expect(text).toContain('bulwark_queue_jobs_total{queue="m",event="added"} 2');
    expect(text).toContain('bulwark_queue_jobs_total{queue="m",event="completed"} 1');
    expect(text).toMatch(/bulwark_queue_latency_seconds_count\{queue="m"\} 1/);
  });
});
