// The window aggregates of the queue statistics, on SQLite and on a real PostgreSQL: the wait bucket
// computed in SQL is the one computed in JavaScript (the same formula on both engines), averages are
// exact, a window holds only its matches, and one over the cap is sampled and says so. Both
// engines answer the same aggregate for the same matches.
import { createStore, type Store } from 'bulwark';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresForFile } from '../../../test/helpers/store.js';
import { dropSchema, uniqueSchema } from '../../../test/helpers/postgres.js';
import { spinMigrations } from '../src/schema.js';
import { bucketOf } from '../src/stats-histogram.js';
import { aggregateWindow, byGender, sampleRanges, type WindowAggregate } from '../src/stats-windows.js';
import { SpinStore, type SpinUser } from '../src/store.js';

const pgUrl = postgresForFile();
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const NOW = 1_800_000_000_000;
const HOUR = 3_600_000;
/** Men's waits of the couples matched in the last hour, one per match (women wait 1 s each). */
const WAITS = [0, 400, 999, 1000, 59_000, 61_000, 14 * 60_000, 3 * HOUR, 2 * 86_400_000];
/** When each couple was matched: those of WAITS a minute apart, then two two hours ago. */
const TIMES = [...WAITS.map((_, i) => NOW - (i + 1) * 60_000), NOW - 2 * HOUR, NOW - 2 * HOUR - 1];

async function open(engine: 'sqlite' | 'postgres'): Promise<Store> {
  const migrations = async (e: Store['engine']) => spinMigrations(e);
  if (engine === 'sqlite') {
    const store = await createStore({ sqliteFile: ':memory:', migrations });
    cleanups.push(() => store.close());
    return store;
  }
  const schema = uniqueSchema('spinstats');
  const store = await createStore({ databaseUrl: pgUrl(), schema, migrations });
  cleanups.push(async () => {
    await store.close();
    await dropSchema(pgUrl(), schema);
  });
  return store;
}

/** Couples matched at the given times, the man having waited `waitMs`; ids in seeding order. */
async function seed(store: Store): Promise<void> {
  const spin = new SpinStore(store, () => NOW);
  let n = 0;
  const couple = async (waitMs: number, at: number) => {
    n += 1;
    const person = async (gender: SpinUser['gender'], seeking: SpinUser['seeking']) =>
      (await spin.createUser({ displayName: `p${n}`, gender, seeking })).user;
    const man = await person('man', ['woman']);
    const woman = await person('woman', ['man', 'woman']);
    await spin.join(man, at - waitMs);
    await spin.join(woman, at - 1000);
    const waiter = (u: SpinUser, joinedAt: number) => ({ ...u, userId: u.id, joinedAt });
    const id = await spin.claim(waiter(man, at - waitMs), waiter(woman, at - 1000), at);
    await spin.vote(id!, man.id, 'like', at);
    await spin.vote(id!, woman.id, n % 2 === 0 ? 'like' : 'pass', at);
  };
  // The last two, two hours ago: in the 24 h window, not in the hour's.
  for (const [i, at] of TIMES.entries()) await couple(WAITS[i] ?? 5_000, at);
}

const engines = ['sqlite', 'postgres'] as const;
const results: Partial<Record<(typeof engines)[number], WindowAggregate[]>> = {};

describe.each(engines)('window aggregates on %s', (engine) => {
  it('buckets waits as JavaScript does, averages exactly, keeps to the window and samples over the cap', async () => {
    const store = await open(engine);
    await seed(store);
    const hour = await aggregateWindow(store, '1h', NOW, 1000);
    expect(hour).toMatchObject({
      window: '1h',
      fromMs: NOW - HOUR,
      toMs: NOW,
      matches: WAITS.length,
      sampleEvery: 1,
      sampled: WAITS.length,
    });
    const men = hour.cells.filter((cell) => cell.group === 'man:woman');
    const expected = new Map<number, number>();
    for (const wait of WAITS) expected.set(bucketOf(wait), (expected.get(bucketOf(wait)) ?? 0) + 1);
    expect(new Map(men.map((cell) => [cell.bucket, cell.count]))).toEqual(expected);
    const women = hour.cells.filter((cell) => cell.group === 'woman:woman+man');
    expect(women.map((cell) => [cell.bucket, cell.count])).toEqual([[bucketOf(1000), WAITS.length]]);
    const summary = byGender(hour.cells);
    expect(summary.man.avgWaitMs).toBe(Math.round(WAITS.reduce((a, b) => a + b, 0) / WAITS.length));
    // Couples 2, 4, 6, 8 both liked.
    expect(summary.man).toMatchObject({ matched: 9, settled: 9, success: 4 });

    const day = await aggregateWindow(store, '24h', NOW, 1000);
    expect(day.matches).toBe(WAITS.length + 2);
    // Over the cap: a quarter of the window's time (⌈11 / 3⌉ = 4), in 48 stretches of 7.5 minutes
    // ending now and every 30 minutes before: the 7 of the last 7.5 minutes and the 2 of two hours ago.
    const sampled = await aggregateWindow(store, '24h', NOW, 3);
    const ranges = sampleRanges('24h', NOW, 4);
    expect(ranges.slice(0, 2)).toEqual([
      [NOW - 7.5 * 60_000, NOW],
      [NOW - 37.5 * 60_000, NOW - 30 * 60_000],
    ]);
    const picked = TIMES.filter((at) => ranges.some(([from, to]) => at > from && at <= to)).length;
    expect(picked).toBe(9);
    expect(sampled).toMatchObject({ matches: WAITS.length + 2, sampleEvery: 4, sampled: picked });
    expect(sampled.cells.reduce((sum, cell) => sum + cell.count, 0)).toBe(2 * picked);
    results[engine] = [hour, day, sampled];
  });
});

describe('both engines', () => {
  it('answer the same aggregates', () => {
    const sort = (aggregates: WindowAggregate[] | undefined) =>
      aggregates?.map((a) => ({
        ...a,
        cells: [...a.cells].sort((x, y) => x.group.localeCompare(y.group) || x.bucket - y.bucket),
      }));
    expect(results.sqlite).toBeDefined();
    expect(sort(results.postgres)).toEqual(sort(results.sqlite));
  });
});
