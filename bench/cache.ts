// Cost of a cache read, in process, same run, alternating rounds, medians, ratios:
//  (a) L1 hit: TieredCache.get on MemoryCacheStore (as createBulwark wires it, with its metrics)
//      vs the peer, a raw lru-cache `get` of the same values; throughput and p99 per op.
//  (b) L2 hit, i.e. what an L1 miss costs: the failover onto a real local redis-server
//      vs the peer, a raw ioredis GET + JSON.parse of the same key; sequential, p50/p99 per op.
//   npm run bench:cache        (defaults: ROUNDS=5 L1_OPS=500000 L1_SAMPLES=100000 L2_OPS=10000;
//                               writes bench/results/cache.json; a run with any of them set writes no result)
import { execFileSync } from 'node:child_process';
import { hrtime } from 'node:process';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import pino from 'pino';
import { Registry } from 'prom-client';
import { CacheJournal } from '../src/cache/journal.js';
import { MemoryCacheStore } from '../src/cache/memory.js';
import { CacheMetrics } from '../src/cache/metrics.js';
import { RedisCacheStore } from '../src/cache/redis.js';
import { TieredCache } from '../src/cache/tiered.js';
import { connectRedis } from '../src/redis/connection.js';
import { createStore } from '../src/store/index.js';
import { startRedis } from '../test/helpers/redis.js';
import { describeMachine, median, packageVersion, percentile, knob, writeResult } from './lib.js';

const rounds = knob('ROUNDS', 5, 1);
const l1Ops = knob('L1_OPS', 500_000, 20000);
const l1Samples = knob('L1_SAMPLES', 100_000, 2000);
const l2Ops = knob('L2_OPS', 10_000, 500);
const BATCH = 10_000;
const KEYS = Array.from({ length: 1000 }, (_, i) => `item:${i}`);
const TTL = { ttl: 3_600_000 };

/** A typical small API object (~190 bytes of JSON). */
function makeValue(i: number) {
  return {
    id: i,
    sku: `SKU-${String(i).padStart(6, '0')}`,
    name: `Item number ${i}`,
    priceCents: 1999 + i,
    tags: ['catalogue', 'eu', i % 2 === 0 ? 'even' : 'odd'],
    stock: { warehouse: 'eu-west-1', count: i % 50 },
    updatedAt: '2026-11-22T10:00:00.000Z',
  };
}

/** One way of reading a key: sync (the peers) or async (Bulwark's stores are async). */
type Reader =
  | { name: string; sync: (key: string) => unknown }
  | { name: string; async: (key: string) => Promise<unknown> };

/** Times one batch of `count` reads; returns nanoseconds. Every read must hit. */
async function timeBatch(reader: Reader, count: number): Promise<number> {
  let misses = 0;
  const start = hrtime.bigint();
  if ('sync' in reader) {
    const get = reader.sync;
    for (let i = 0; i < count; i++) if (get(KEYS[i % KEYS.length]!) === undefined) misses++;
  } else {
    const get = reader.async;
    for (let i = 0; i < count; i++) if ((await get(KEYS[i % KEYS.length]!)) === undefined) misses++;
  }
  const ns = Number(hrtime.bigint() - start);
  if (misses > 0) throw new Error(`${reader.name}: ${misses} misses; every read must hit`);
  return ns;
}

/**
 * Times `count` reads one by one (`hrtime.bigint()` either side) into `out` from `at`, in µs, minus
 * `overheadNs` (the median cost of an empty `hrtime.bigint()` pair).
 */
async function timeEach(reader: Reader, count: number, out: Float64Array, at: number, overheadNs: number) {
  let misses = 0;
  if ('sync' in reader) {
    const get = reader.sync;
    for (let i = 0; i < count; i++) {
      const start = hrtime.bigint();
      const value = get(KEYS[i % KEYS.length]!);
      out[at + i] = Math.max(0, Number(hrtime.bigint() - start) - overheadNs) / 1000;
      if (value === undefined) misses++;
    }
  } else {
    const get = reader.async;
    for (let i = 0; i < count; i++) {
      const start = hrtime.bigint();
      const value = await get(KEYS[i % KEYS.length]!);
      out[at + i] = Math.max(0, Number(hrtime.bigint() - start) - overheadNs) / 1000;
      if (value === undefined) misses++;
    }
  }
  if (misses > 0) throw new Error(`${reader.name}: ${misses} misses; every read must hit`);
}

function timerOverheadNs(): number {
  const pairs: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const start = hrtime.bigint();
    pairs.push(Number(hrtime.bigint() - start));
  }
  return median(pairs);
}

interface RoundFigures {
  /** Reads / summed batch time (0 when the round had no throughput part). */
  opsPerSec: number;
  /** Per-read latencies, µs. */
  mean: number;
  p50: number;
  p99: number;
}

/**
 * One round: `batches` timed batches of {@link BATCH} reads per reader, then `samples` reads per
 * reader timed one by one, in blocks of `block`. Readers take turns batch by batch and block by
 * block, the order rotating each turn, so noise from a shared machine lands on all of them alike.
 */
async function round(
  readers: Reader[],
  batches: number,
  samples: number,
  block: number,
): Promise<RoundFigures[]> {
  const elapsed = readers.map(() => 0);
  const latencies = readers.map(() => new Float64Array(samples));
  const turn = (t: number) => readers.map((_, i) => (i + t) % readers.length);
  for (let b = 0; b < batches; b++)
    for (const j of turn(b)) elapsed[j]! += await timeBatch(readers[j]!, BATCH);
  const overhead = timerOverheadNs();
  for (let k = 0; k * block < samples; k++)
    for (const j of turn(k)) await timeEach(readers[j]!, block, latencies[j]!, k * block, overhead);
  return readers.map((_, j) => {
    const sample = latencies[j]!;
    return {
      opsPerSec: batches === 0 ? 0 : (batches * BATCH) / (elapsed[j]! / 1e9),
      mean: sample.reduce((a, b) => a + b, 0) / sample.length,
      p50: percentile(sample, 50),
      p99: percentile(sample, 99),
    };
  });
}

/** Every round's figures of each reader, keyed by reader name (the result's `data`). */
const perRoundData: Record<string, Record<string, RoundFigures[]>> = {};

/** `rounds` rounds; each reader's figures, median over rounds; the rounds kept under `label`. */
async function measure(readers: Reader[], batches: number, samples: number, block: number, label?: string) {
  const perRound: RoundFigures[][] = [];
  for (let r = 0; r < rounds; r++) perRound.push(await round(readers, batches, samples, block));
  if (label !== undefined)
    perRoundData[label] = Object.fromEntries(
      readers.map((reader, j) => [reader.name, perRound.map((figures) => figures[j]!)]),
    );
  return readers.map((_, j) => {
    const of = (f: (x: RoundFigures) => number) => median(perRound.map((figures) => f(figures[j]!)));
    return {
      opsPerSec: of((x) => x.opsPerSec),
      mean: of((x) => x.mean),
      p50: of((x) => x.p50),
      p99: of((x) => x.p99),
    };
  });
}

const redisVersion = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).split(' sha=')[0]!;
console.log(`${describeMachine(['ioredis', 'prom-client'])}, lru-cache ${packageVersion('lru-cache')}`);
console.log(`${redisVersion} on 127.0.0.1, same machine`);
const md: string[] = [
  `${rounds} rounds, readers interleaved within each round; medians over rounds. ${redisVersion} on 127.0.0.1, same machine.`,
  '',
];

// (a) L1 hit -------------------------------------------------------------------------------------
const registry = new Registry();
const l1Cache = new TieredCache({
  name: 'default',
  l1: new MemoryCacheStore({ name: 'l1' }),
  metrics: new CacheMetrics(registry),
});
const l1Store = new MemoryCacheStore({ name: 'l1' });
const lruObjects = new LRUCache<string, object>({ max: 10_000 });
const lruJson = new LRUCache<string, string>({ max: 10_000 });
for (const [i, key] of KEYS.entries()) {
  const value = makeValue(i);
  await l1Cache.set(key, value, TTL);
  const now = Date.now();
  await l1Store.set(key, { value, expiresAt: now + TTL.ttl, staleUntil: now + TTL.ttl, version: 1 });
  lruObjects.set(key, value);
  lruJson.set(key, JSON.stringify(value));
}
const bareCache = new TieredCache({ name: 'default', l1: l1Store });
const l1Readers: Reader[] = [
  { name: 'lru-cache `get` (peer)', sync: (key) => lruObjects.get(key) },
  { name: 'lru-cache `get` + `JSON.parse`', sync: (key) => JSON.parse(lruJson.get(key)!) as unknown },
  { name: 'MemoryCacheStore.get', async: (key) => l1Store.get(key) },
  { name: 'TieredCache.get, L1 hit, no metrics', async: (key) => bareCache.get(key) },
  { name: 'TieredCache.get, L1 hit (Bulwark)', async: (key) => l1Cache.get(key) },
];
await measure(l1Readers, 10, 10_000, 1000); // warm-up: JIT every path before the first timed round
const l1 = await measure(l1Readers, l1Ops / BATCH, l1Samples, 1000, 'l1');
md.push(
  `(a) L1 hit, per round and reader: ${l1Ops} reads in batches of ${BATCH} (ops/s = reads / summed batch time),` +
    ` then ${l1Samples} reads timed one by one (p50/p99, empty hrtime pair subtracted);` +
    ` readers take turns batch by batch; 1000 keys, values ~190 B of JSON`,
  '',
  '| reader | median ops/s | median p50 (µs) | median p99 (µs) |',
  '|---|---|---|---|',
);
for (const [j, reader] of l1Readers.entries()) {
  const r = l1[j]!;
  md.push(
    `| ${reader.name} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`,
  );
}
const l1Peer = l1[0]!;
const l1Bulwark = l1[l1.length - 1]!;
md.push(
  '',
  `L1 hit: Bulwark ${Math.round(l1Bulwark.opsPerSec).toLocaleString('en-US')} ops/s,` +
    ` ${(l1Bulwark.opsPerSec / l1Peer.opsPerSec).toFixed(3)}× raw lru-cache; p99 ${l1Bulwark.p99.toFixed(2)} µs` +
    ` (${(l1Bulwark.p99 / Math.max(l1Peer.p99, 0.01)).toFixed(1)}×). Target ≥ 2,000,000 ops/s:` +
    ` ${l1Bulwark.opsPerSec >= 2_000_000 ? 'met' : 'NOT met'}.`,
  '',
);

// (b) L2 hit -------------------------------------------------------------------------------------
const server = await startRedis();
const logger = pino({ level: 'silent' });
const store = await createStore({ sqliteFile: ':memory:' });
// The client and failover exactly as createBulwark makes them.
const dependency = await connectRedis(server.url, logger);
const l2Store = new RedisCacheStore({ client: dependency.client, prefix: 'bulwark:cache:' });
// An L1 that keeps nothing: its clock is past every entry's life, so each read misses and each
// fill is encoded and dropped. Every TieredCache.get then pays the whole L1-miss path.
const forgetfulL1 = new MemoryCacheStore({ name: 'l1', now: () => Number.MAX_SAFE_INTEGER });
const l2Cache = new TieredCache({
  name: 'default',
  l1: forgetfulL1,
  l2: { store: l2Store, failover: dependency.failover, journal: new CacheJournal(store.kv, 'default') },
  metrics: new CacheMetrics(registry),
});
const peer = new Redis(server.url);
for (const [i, key] of KEYS.entries()) await l2Cache.set(key, makeValue(i), TTL);
if (dependency.failover.mode !== 'primary') throw new Error('Redis failover is not on the primary');
const l2Readers: Reader[] = [
  {
    name: 'ioredis GET + JSON.parse (peer)',
    async: async (key) => {
      const json = await peer.get(`bulwark:cache:v:${key}`);
      return json === null ? undefined : (JSON.parse(json) as unknown);
    },
  },
  {
    name: 'Failover.execute(RedisCacheStore.get)',
    async: (key) =>
      dependency.failover.execute(
        () => l2Store.get(key),
        () => undefined,
      ),
  },
  { name: 'TieredCache.get, L1 miss → L2 hit (Bulwark)', async: (key) => l2Cache.get(key) },
];
await measure(l2Readers, 0, 1000, 100); // warm-up
const l2 = await measure(l2Readers, 0, l2Ops, 500, 'l2');
if (dependency.failover.mode !== 'primary') throw new Error('Redis failover left the primary during the run');
md.push(
  `(b) L2 hit, per round and reader: ${l2Ops} sequential reads, each timed (empty hrtime pair subtracted),` +
    ` readers taking turns every 500 reads; the same 1000 keys in Redis`,
  '',
  '| reader | median mean (µs) | median p50 (µs) | median p99 (µs) |',
  '|---|---|---|---|',
);
for (const [j, reader] of l2Readers.entries()) {
  const r = l2[j]!;
  md.push(`| ${reader.name} | ${r.mean.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`);
}
const [l2Peer, l2Failover, l2Bulwark] = [l2[0]!, l2[1]!, l2[2]!];
md.push(
  '',
  `L2 hit p99: Bulwark ${l2Bulwark.p99.toFixed(1)} µs, ${(l2Bulwark.p99 / l2Peer.p99).toFixed(2)}× raw ioredis` +
    ` (failover path alone ${l2Failover.p99.toFixed(1)} µs, ${(l2Failover.p99 / l2Peer.p99).toFixed(2)}×).` +
    ` Target ≤ 1 ms: ${l2Bulwark.p99 <= 1000 ? 'met' : 'NOT met'}.`,
);
const markdown = md.join('\n');
console.log(`\n${markdown}`);
writeResult(
  {
    benchmark: 'cache',
    packages: ['ioredis', 'prom-client', 'lru-cache'],
    settings: { rounds, l1Ops, l1Samples, l2Ops, batch: BATCH, keys: KEYS.length, redis: redisVersion },
    markdown,
    data: perRoundData,
  },
  ['ROUNDS', 'L1_OPS', 'L1_SAMPLES', 'L2_OPS'],
);

peer.disconnect();
dependency.close();
await store.close();
await server.stop();
