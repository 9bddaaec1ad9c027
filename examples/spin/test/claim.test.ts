// The claim that makes a double match impossible, with real concurrency: two store handles (two
// connection pools on one PostgreSQL database, as two instances have) race to pair overlapping
// couples out of three waiting users. Exactly one pair wins, every time; the third user stays in the
// queue; one match is written. On SQLite, writers are serialised by the file lock across processes
// (two handles in one process would only block each other's thread): the four-process test
// (cluster.test.ts) is the SQLite proof.
import { createStore, type Store, type StoreOptions } from 'bulwark';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresForFile } from '../../../test/helpers/store.js';
import { uniqueSchema, dropSchema } from '../../../test/helpers/postgres.js';
import type { Waiter } from '../src/domain/types.js';
import { spinMigrations } from '../src/schema.js';
import { SpinStore } from '../src/store.js';

const pgUrl = postgresForFile();
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function twoHandles(): Promise<[Store, Store]> {
  const schema = uniqueSchema('spin');
  cleanups.push(() => dropSchema(pgUrl(), schema));
  const options: StoreOptions = {
    databaseUrl: pgUrl(),
    schema,
    migrations: async (engine) => spinMigrations(engine),
  };
  const first = await createStore(options);
  const second = await createStore(options);
  cleanups.unshift(async () => {
    await first.close();
    await second.close();
  });
  return [first, second];
}

describe('the claim on PostgreSQL', () => {
  it('of three mutually compatible waiters racing in three overlapping pairs, exactly one pair wins', async () => {
    const [a, b] = await twoHandles();
    const left = new SpinStore(a);
    const right = new SpinStore(b);
    for (let round = 0; round < 20; round += 1) {
      const users = await Promise.all(
        ['x', 'y', 'z'].map((name) =>
          left.createUser({ displayName: `${name}${round}`, gender: 'nonbinary', seeking: ['nonbinary'] }),
        ),
      );
      const waiters: Waiter[] = [];
      for (const { user } of users) {
        const { joinedAt } = await left.join(user);
        waiters.push({ userId: user.id, gender: user.gender, seeking: user.seeking, joinedAt });
      }
      const [x, y, z] = waiters as [Waiter, Waiter, Waiter];
      const outcomes = await Promise.all([
        left.claim(x, y),
        right.claim(x, z),
        right.claim(y, z),
        left.claim(z, x),
      ]);
      expect(
        outcomes.filter((id) => id !== undefined),
        `round ${round}`,
      ).toHaveLength(1);
      const stillWaiting = (await left.waiting()).map((w) => w.userId);
      expect(stillWaiting).toHaveLength(1);
      const matched = new Set(waiters.map((w) => w.userId).filter((id) => !stillWaiting.includes(id)));
      expect(matched.size).toBe(2);
      for (const id of matched) expect(await left.history(id, 10)).toHaveLength(1);
      await left.leave(users.find((u) => u.user.id === stillWaiting[0])!.user);
    }
  });
});
