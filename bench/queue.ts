// End-to-end job throughput: the durable embedded queue (SQLite, WAL, synchronous=NORMAL) against raw
// BullMQ on a local redis-server, in the same run, alternating. A producer adds N jobs in chunks of
// 1 000 while a worker (concurrency 128) runs a no-op handler; the time runs from the first add to
// the moment the queue holds no job (every completion durable). Prints medians and the ratio.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue, Worker } from 'bullmq';
import { EmbeddedJobQueue } from '../src/queue/index.js';
import { createStore } from '../src/store/index.js';
import { startRedis } from '../test/helpers/redis.js';
import { describeMachine, median, sleep } from './lib.js';

const N = Number(process.env['JOBS'] ?? 20_000);
const ROUNDS = Number(process.env['ROUNDS'] ?? 3);
const CHUNK = 1000;
const CONCURRENCY = 128;

async function embedded(): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-queue-'));
  const store = await createStore({ dataDir: dir });
  const queue = new EmbeddedJobQueue({ store, pollMs: 10, claimBatch: CONCURRENCY });
  try {
    let done = 0;
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    queue.process(
      'bench',
      async () => {
        done += 1;
        if (done === N) finish();
      },
      { concurrency: CONCURRENCY },
    );
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
      if (counts !== undefined && counts.waiting + counts.active + counts.retrying + counts.delayed === 0) break;
      await sleep(1);
    }
    return N / ((performance.now() - started) / 1000);
  } finally {
    await queue.close(1000);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bullmq(port: number): Promise<number> {
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const name = `bench-${Date.now()}`;
  const queue = new Queue(name, { connection });
  let done = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const worker = new Worker(name, async () => undefined, { connection, concurrency: CONCURRENCY });
  worker.on('completed', () => {
    done += 1;
    if (done === N) finish();
  });
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
console.log(`${N} jobs per run, added in chunks of ${CHUNK}, worker concurrency ${CONCURRENCY}, ${ROUNDS} rounds alternating`);
const redis = await startRedis();
const results: Record<'embedded' | 'bullmq', number[]> = { embedded: [], bullmq: [] };
try {
  await embedded(); // warm-up of both (JIT, file system, Redis)
  await bullmq(redis.port);
  for (let round = 1; round <= ROUNDS; round += 1) {
    const order = round % 2 === 1 ? (['embedded', 'bullmq'] as const) : (['bullmq', 'embedded'] as const);
    for (const which of order) {
      const rate = which === 'embedded' ? await embedded() : await bullmq(redis.port);
      results[which].push(rate);
      console.log(`round ${round} ${which.padEnd(8)} ${Math.round(rate).toLocaleString('en')} jobs/s`);
    }
  }
} finally {
  await redis.stop();
}
const e = median(results.embedded);
const b = median(results.bullmq);
console.log('');
console.log('| queue | jobs/s (median) | vs raw BullMQ |');
console.log('|---|---|---|');
console.log(`| embedded (SQLite, durable) | ${Math.round(e).toLocaleString('en')} | ${(e / b).toFixed(2)}× |`);
console.log(`| raw BullMQ (local Redis) | ${Math.round(b).toLocaleString('en')} | 1.00× |`);
console.log('');
console.log(`embedded queue: ${Math.round(e).toLocaleString('en')} jobs/s (target ≥ 25,000: ${e >= 25_000 ? 'met' : 'NOT met'})`);
