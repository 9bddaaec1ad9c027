// End-to-end job throughput: the durable embedded queue (SQLite, WAL, synchronous=NORMAL) and the
// BullMQ driver (bulwark.queues with REDIS_URL) against raw BullMQ on the same local redis-server, in
// the same run, alternating. A producer adds N jobs in chunks of
// 1 000 while a worker (concurrency 128) runs a no-op handler; the time runs from the first add to
// the moment the queue holds no job (every completion durable). Prints medians and the ratio.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue, Worker } from 'bullmq';
import { EmbeddedJobQueue } from '../src/queue/index.js';
import { createBulwark } from '../src/runtime/create.js';
import { createStore } from '../src/runtime/store.js';
import { startRedis } from '../test/helpers/redis.js';
import { describeMachine, median, sleep, knob } from './lib.js';

const N = knob('JOBS', 20_000, 300);
const ROUNDS = knob('ROUNDS', 3, 1);
const CHUNK = 1000;
const CONCURRENCY = 128;

/** Counts `n` ticks; `finished` resolves on the last. */
function countdown(n: number): { tick: () => void; finished: Promise<void> } {
  let done = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  return {
    tick: () => {
      done += 1;
      if (done === n) finish();
    },
    finished,
  };
}

async function embedded(): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-queue-'));
  const store = await createStore({ dataDir: dir });
  const queue = new EmbeddedJobQueue({ store, pollMs: 10, claimBatch: CONCURRENCY });
  try {
    const { tick, finished } = countdown(N);
    queue.process('bench', async () => tick(), { concurrency: CONCURRENCY });
    const started = performance.now();
    for (let from = 0; from < N; from += CHUNK) {
      const adds = [];
      for (let i = from; i < Math.min(N, from + CHUNK); i += 1) adds.push(queue.add('bench', { i }));
      await Promise.all(adds);
    }
    await finished;
    // Then until the last completions are durable (the table is empty).
    for (;;) {
      const counts = (await queue.counts('bench')).get('bench');
      if (counts !== undefined && counts.waiting + counts.active + counts.retrying + counts.delayed === 0)
        break;
      await sleep(1);
    }
    return N / ((performance.now() - started) / 1000);
  } finally {
    await queue.close(1000);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `bulwark.queues` on Redis: BullMQ behind the failover, with the spool idle. */
async function driver(url: string): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-queue-'));
  const bulwark = await createBulwark({
    env: { REDIS_URL: url, BULWARK_DATA_DIR: dir },
    logLevel: 'error',
    defaultMetrics: false,
  });
  try {
    const { tick, finished } = countdown(N);
    const name = `bench-${Date.now()}`;
    bulwark.queues.process(name, async () => tick(), { concurrency: CONCURRENCY });
    const started = performance.now();
    for (let from = 0; from < N; from += CHUNK) {
      const adds = [];
      for (let i = from; i < Math.min(N, from + CHUNK); i += 1) adds.push(bulwark.queues.add(name, { i }));
      await Promise.all(adds);
    }
    await finished;
    // Then until BullMQ has recorded every completion.
    for (;;) {
      const counts = (await bulwark.queues.counts(name)).get(name);
      if (counts !== undefined && counts.waiting + counts.active === 0) break;
      await sleep(1);
    }
    return N / ((performance.now() - started) / 1000);
  } finally {
    await bulwark.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bullmq(port: number): Promise<number> {
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const name = `bench-${Date.now()}`;
  const queue = new Queue(name, { connection });
  const { tick, finished } = countdown(N);
  const worker = new Worker(name, async () => undefined, { connection, concurrency: CONCURRENCY });
  worker.on('completed', tick);
  await worker.waitUntilReady();
  try {
    const started = performance.now();
    for (let from = 0; from < N; from += CHUNK) {
      const jobs = [];
      for (let i = from; i < Math.min(N, from + CHUNK); i += 1)
        jobs.push({ name: 'job', data: { i }, opts: { removeOnComplete: true } });
      await queue.addBulk(jobs);
    }
    await finished;
    return N / ((performance.now() - started) / 1000);
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

console.log(describeMachine(['better-sqlite3', 'bullmq', 'ioredis']));
console.log(
  `${N} jobs per run, added in chunks of ${CHUNK}, worker concurrency ${CONCURRENCY}, ${ROUNDS} rounds alternating`,
);
const redis = await startRedis();
type Subject = 'embedded' | 'driver' | 'bullmq';
const results: Record<Subject, number[]> = { embedded: [], driver: [], bullmq: [] };
const run = (which: Subject) =>
  which === 'embedded' ? embedded() : which === 'driver' ? driver(redis.url) : bullmq(redis.port);
try {
  for (const which of ['embedded', 'driver', 'bullmq'] as const) await run(which); // warm-up
  for (let round = 1; round <= ROUNDS; round += 1) {
    const order: Subject[] = ['embedded', 'driver', 'bullmq'];
    // Rotate the order each round so no subject always runs first or last.
    for (let k = 0; k < (round - 1) % 3; k += 1) order.push(order.shift() as Subject);
    for (const which of order) {
      const rate = await run(which);
      results[which].push(rate);
      console.log(`round ${round} ${which.padEnd(8)} ${Math.round(rate).toLocaleString('en')} jobs/s`);
    }
  }
} finally {
  await redis.stop();
}
const e = median(results.embedded);
const d = median(results.driver);
const b = median(results.bullmq);
const fmt = (n: number) => Math.round(n).toLocaleString('en');
console.log('');
console.log('| queue | jobs/s (median) | vs raw BullMQ |');
console.log('|---|---|---|');
console.log(`| embedded (SQLite, durable) | ${fmt(e)} | ${(e / b).toFixed(2)}× |`);
console.log(`| Bulwark BullMQ driver (local Redis) | ${fmt(d)} | ${(d / b).toFixed(2)}× |`);
console.log(`| raw BullMQ (local Redis) | ${fmt(b)} | 1.00× |`);
console.log('');
console.log(`embedded queue: ${fmt(e)} jobs/s (target ≥ 25,000: ${e >= 25_000 ? 'met' : 'NOT met'})`);
console.log(
  `BullMQ driver: ${(d / b).toFixed(2)}× raw BullMQ (target ≥ 0.9×: ${d / b >= 0.9 ? 'met' : 'NOT met'})`,
);
