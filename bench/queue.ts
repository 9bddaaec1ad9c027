// End-to-end job throughput, each row with the durability it gives: the embedded queue exactly as
// createBulwark() wires it (SQLite, default options, metrics on) with the store's default
// synchronous=NORMAL and with synchronous: 'full'; the BullMQ driver (bulwark.queues with
// REDIS_URL) and raw BullMQ, each on a redis-server without persistence and on one with
// `appendonly yes, appendfsync everysec`, and raw BullMQ set up for the driver's work (own ids,
// retries, completed jobs kept), all in the same run, rotating the order each round. A
// producer adds N jobs in chunks of 1 000 while a worker (concurrency 128) runs a no-op handler; the
// clock runs from the first add until every job is done. Prints medians, spread and the ratio.
//   npm run bench:queue                 (3 rounds of 20 000 jobs per subject)
//   QUEUE_SUBJECTS=driver,bullmq JOBS=60000 ROUNDS=1 node --cpu-prof --import tsx bench/queue.ts
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue, Worker } from 'bullmq';
import { createBulwark, type BulwarkOptions } from '../src/runtime/create.js';
import { startRedis, type RedisServer } from '../test/helpers/redis.js';
import { describeMachine, median, sleep, knob, SMOKE, writeResult } from './lib.js';

const N = knob('JOBS', 20_000, 300);
const ROUNDS = knob('ROUNDS', 3, 1);
const CHUNK = 1000;
const CONCURRENCY = 128;
const PACKAGES = ['better-sqlite3', 'bullmq', 'ioredis'];
const AOF = ['--appendonly', 'yes', '--appendfsync', 'everysec'];

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

/**
 * `bulwark.queues` from `createBulwark()` with nothing but `env` (and `store` when given): the
 * embedded queue without `REDIS_URL`, the BullMQ driver with it. Jobs/s until `counts()` shows
 * nothing left (embedded: the completions are committed; the driver: BullMQ recorded them).
 */
async function viaBulwark(env: Record<string, string>, store?: BulwarkOptions['store']): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-queue-'));
  const bulwark = await createBulwark({
    env: { ...env, BULWARK_DATA_DIR: dir, LOG_LEVEL: 'error' },
    ...(store === undefined ? {} : { store }),
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
    for (;;) {
      const counts = (await bulwark.queues.counts(name)).get(name);
      if (counts !== undefined && counts.waiting + counts.active + counts.retrying + counts.delayed === 0)
        break;
      await sleep(1);
    }
    return N / ((performance.now() - started) / 1000);
  } finally {
    await bulwark.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Raw BullMQ: `addBulk`, a `Worker` counting `completed`. `sameWork: false`: its lightest setup
 * (`removeOnComplete: true`, one attempt, BullMQ's own ids). `true`: what
 * a BullMQ user sets for the work the driver does on every job — an id of its own (a UUID, so a
 * retried add is recognised), 3 attempts with exponential backoff, completed jobs kept an hour.
 */
async function bullmq(port: number, sameWork: boolean): Promise<number> {
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const name = `bench-${Date.now()}`;
  const queue = new Queue(name, { connection });
  const { tick, finished } = countdown(N);
  const worker = new Worker(name, async () => undefined, {
    connection,
    concurrency: CONCURRENCY,
    ...(sameWork ? { removeOnComplete: { age: 3600 } } : {}),
  });
  worker.on('completed', tick);
  await worker.waitUntilReady();
  try {
    const started = performance.now();
    for (let from = 0; from < N; from += CHUNK) {
      const jobs = [];
      for (let i = from; i < Math.min(N, from + CHUNK); i += 1)
        jobs.push({
          name: 'job',
          data: { i },
          opts: sameWork
            ? { jobId: randomUUID(), attempts: 3, backoff: { type: 'exponential', delay: 1000 } }
            : { removeOnComplete: true },
        });
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

interface Subject {
  name: string;
  what: string;
  durability: string;
  run: (redis: { plain: RedisServer; aof: RedisServer }) => Promise<number>;
}

const SUBJECTS: Subject[] = [
  {
    name: 'embedded',
    what: 'embedded queue (SQLite, `createBulwark()` defaults)',
    durability: '`synchronous=NORMAL`: survives `kill -9`, not power loss',
    run: () => viaBulwark({}),
  },
  {
    name: 'embedded-full',
    what: "embedded queue, `store: { synchronous: 'full' }`",
    durability: '`synchronous=FULL`: fsync per commit, survives power loss',
    run: () => viaBulwark({}, { synchronous: 'full' }),
  },
  {
    name: 'driver',
    what: 'Bulwark BullMQ driver (`REDIS_URL`)',
    durability: 'Redis without persistence: lost if Redis stops',
    run: ({ plain }) => viaBulwark({ REDIS_URL: plain.url }),
  },
  {
    name: 'bullmq',
    what: 'raw BullMQ',
    durability: 'Redis without persistence: lost if Redis stops',
    run: ({ plain }) => bullmq(plain.port, false),
  },
  {
    name: 'bullmq-same',
    what: 'raw BullMQ doing the driver’s work: own UUID ids, 3 attempts with backoff, completed jobs kept 1 h',
    durability: 'Redis without persistence: lost if Redis stops',
    run: ({ plain }) => bullmq(plain.port, true),
  },
  {
    name: 'driver-aof',
    what: 'Bulwark BullMQ driver (`REDIS_URL`)',
    durability: 'Redis AOF, `appendfsync everysec`: survives a Redis restart, ≤ ~1 s lost on power loss',
    run: ({ aof }) => viaBulwark({ REDIS_URL: aof.url }),
  },
  {
    name: 'bullmq-aof',
    what: 'raw BullMQ',
    durability: 'Redis AOF, `appendfsync everysec`: survives a Redis restart, ≤ ~1 s lost on power loss',
    run: ({ aof }) => bullmq(aof.port, false),
  },
];

// QUEUE_SUBJECTS=driver,bullmq runs only those (to profile one); no result is written then.
const only = process.env['QUEUE_SUBJECTS']?.split(',').filter((s) => s !== '');
const chosen = only === undefined ? SUBJECTS : SUBJECTS.filter((s) => only.includes(s.name));

console.log(describeMachine(PACKAGES));
console.log(
  `${N} jobs per run, added in chunks of ${CHUNK}, worker concurrency ${CONCURRENCY}, ${ROUNDS} rounds rotating`,
);
const plain = await startRedis();
const aof = await startRedis({ args: AOF });
const results = new Map<string, number[]>(chosen.map((s) => [s.name, []]));
try {
  if (!SMOKE) for (const subject of chosen) await subject.run({ plain, aof }); // warm-up
  for (let round = 0; round < ROUNDS; round += 1) {
    // Rotate the order each round so no subject always runs first or last.
    const order = chosen.map((_s, i) => chosen[(i + round) % chosen.length]!);
    for (const subject of order) {
      const rate = await subject.run({ plain, aof });
      results.get(subject.name)!.push(rate);
      console.log(
        `round ${round + 1} ${subject.name.padEnd(13)} ${Math.round(rate).toLocaleString('en')} jobs/s`,
      );
    }
  }
} finally {
  await plain.stop();
  await aof.stop();
}

const fmt = (n: number) => Math.round(n).toLocaleString('en');
// e.g. "Redis server v=7.0.15 sha=…": the version is in the doc's text, not in the packages line.
const redisVersion = /v=(\S+)/.exec(
  spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout,
)?.[1];
const lines = [
  `${fmt(N)} jobs per run added in chunks of ${fmt(CHUNK)} (\`Promise.all\` over \`add()\` through ` +
    `Bulwark, \`addBulk()\` for raw BullMQ), a worker with concurrency ${CONCURRENCY} running a no-op ` +
    `handler; the clock runs from the first add until every job is done. ${SMOKE ? 'No' : 'One'} warm-up run of each, ` +
    `then ${ROUNDS} round${ROUNDS === 1 ? '' : 's'} rotating the order; medians, spread min–max. Ratios: a Redis row against ` +
    `raw BullMQ (its lightest setup) on the same Redis, an embedded row against raw BullMQ on Redis without persistence. ` +
    `redis-server ${redisVersion ?? '?'}, started by the benchmark, its data in a temp dir on the local disk.`,
  '',
  '| queue | durability of an added job | jobs/s (median) | spread | vs raw BullMQ (on the same Redis) |',
  '|---|---|---|---|---|',
];
const rate = (name: string) => {
  const values = results.get(name);
  return values === undefined || values.length === 0 ? undefined : median(values);
};
const peerOf = (name: string) => (name.endsWith('-aof') ? 'bullmq-aof' : 'bullmq');
for (const subject of chosen) {
  const values = results.get(subject.name)!;
  const r = median(values);
  const peer = rate(peerOf(subject.name));
  lines.push(
    `| ${subject.what} | ${subject.durability} | ${fmt(r)} | ${fmt(Math.min(...values))}–${fmt(Math.max(...values))} | ` +
      `${peer === undefined ? '—' : `${(r / peer).toFixed(2)}×`} |`,
  );
}
const driver = rate('driver');
const raw = rate('bullmq');
const same = rate('bullmq-same');
const embedded = rate('embedded');
lines.push('');
if (embedded !== undefined)
  lines.push(
    `Embedded queue: ${fmt(embedded)} jobs/s (target ≥ 25,000: ${embedded >= 25_000 ? 'met' : 'not met'}).`,
  );
if (driver !== undefined && raw !== undefined)
  lines.push(
    `BullMQ driver: ${(driver / raw).toFixed(2)}× raw BullMQ on Redis without persistence (target ≥ 0.9×: ${driver / raw >= 0.9 ? 'met' : 'not met'}).`,
  );
if (driver !== undefined && same !== undefined) {
  // Round by round: the two ran in the same round, so the host’s swings between rounds cancel.
  const ratios = results.get('driver')!.map((d, i) => d / results.get('bullmq-same')![i]!);
  lines.push(
    `BullMQ driver against raw BullMQ doing the same work: ${(driver / same).toFixed(2)}× (per round ` +
      `${ratios.map((r) => r.toFixed(2)).join(', ')}).`,
  );
}
const markdown = lines.join('\n');
console.log(`\n${markdown}`);
writeResult(
  {
    benchmark: 'queue',
    packages: PACKAGES,
    settings: { jobs: N, rounds: ROUNDS, chunk: CHUNK, concurrency: CONCURRENCY, aofArgs: AOF },
    markdown,
    data: Object.fromEntries(results),
  },
  ['JOBS', 'ROUNDS', 'QUEUE_SUBJECTS'],
);
