// The claim that makes a double match impossible, with real concurrency: two store handles (two
// connection pools on one PostgreSQL database, as two instances have) race to pair overlapping
// couples out of three waiting users. Exactly one pair wins, every time; the third user stays in the
// queue; one match is written. On SQLite, writers are serialised by the file lock across processes
// (two handles in one process would only block each other's thread): the four-process test
// (cluster.test.ts) is the SQLite proof. Then the group commits, on both engines, and the event
// feed when PostgreSQL commits ids out of order.
import { createStore, type Store, type StoreOptions } from 'bulwark';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresForFile } from '../../../test/helpers/store.js';
import { uniqueSchema, dropSchema } from '../../../test/helpers/postgres.js';
import type { Waiter } from '../src/domain/types.js';
import { spinMigrations } from '../src/schema.js';
import { SpinStore, type SpinUser } from '../src/store.js';
import { EventFeed } from '../src/feed.js';
import type { SpinTables } from '../src/schema.js';
import { until } from '../../../test/helpers/wait.js';
import pino from 'pino';

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

// Group commits: the joins of a moment and a matcher round's pairs, each written in one transaction.
describe.each(['sqlite', 'postgres'] as const)('group commits on %s', (engine) => {
  async function spinStore(): Promise<SpinStore> {
    const migrations: StoreOptions['migrations'] = async (e) => spinMigrations(e);
    if (engine === 'sqlite') {
      const store = await createStore({ sqliteFile: ':memory:', migrations });
      cleanups.unshift(() => store.close());
      return new SpinStore(store);
    }
    const schema = uniqueSchema('spin');
    const store = await createStore({ databaseUrl: pgUrl(), schema, migrations });
    cleanups.unshift(async () => {
      await store.close();
      await dropSchema(pgUrl(), schema);
    });
    return new SpinStore(store);
  }
  const person = (store: SpinStore, name: string) =>
    store.createUser({ displayName: name, gender: 'nonbinary', seeking: ['nonbinary'] }).then((c) => c.user);

  it('joins a batch once each: a key repeated in the batch or stored before is a replay of the first answer', async () => {
    const store = await spinStore();
    const [ann, bob, cy] = [
      await person(store, 'ann'),
      await person(store, 'bob'),
      await person(store, 'cy'),
    ];
    let answers = 0;
    const answer = (user: SpinUser, joinedAt: number | undefined, joined: boolean) => ({
      status: 200,
      body: { user: user.displayName, joinedAt, joined, n: (answers += 1) },
    });
    const results = await store.joinMany(
      [
        { user: ann, key: 'k1', fingerprint: 'f1' },
        { user: bob, key: 'k2', fingerprint: 'f2' },
        { user: ann, key: 'k1', fingerprint: 'f1' }, // a retry arriving in the same moment
        { user: cy },
        { user: ann, key: 'k3', fingerprint: 'f3' }, // another request of a user already waiting
      ],
      answer,
      1000,
    );
    expect(results).toEqual([
      {
        replayed: false,
        joinedAt: 1000,
        joined: true,
        status: 200,
        body: { user: 'ann', joinedAt: 1000, joined: true, n: 1 },
      },
      {
        replayed: false,
        joinedAt: 1000,
        joined: true,
        status: 200,
        body: { user: 'bob', joinedAt: 1000, joined: true, n: 2 },
      },
      {
        replayed: true,
        fingerprint: 'f1',
        status: 200,
        body: { user: 'ann', joinedAt: 1000, joined: true, n: 1 },
      },
      {
        replayed: false,
        joinedAt: 1000,
        joined: true,
        status: 200,
        body: { user: 'cy', joinedAt: 1000, joined: true, n: 3 },
      },
      {
        replayed: false,
        joinedAt: 1000,
        joined: false,
        status: 200,
        body: { user: 'ann', joinedAt: 1000, joined: false, n: 4 },
      },
    ]);
    expect((await store.events(0, 100)).filter((e) => e.type === 'joined')).toHaveLength(3);

    // Later: stored answers come back with the fingerprint they were given for; the caller compares.
    const later = await store.joinMany(
      [
        { user: ann, key: 'k1', fingerprint: 'f1' },
        { user: bob, key: 'k2', fingerprint: 'another request' },
      ],
      answer,
      2000,
    );
    expect(later.map((r) => [r.replayed, r.replayed ? r.fingerprint : undefined])).toEqual([
      [true, 'f1'],
      [true, 'f2'],
    ]);
    expect(await store.remembered(ann.id, 'k3')).toMatchObject({ fingerprint: 'f3', body: { n: 4 } });
    expect(answers).toBe(4);
  });

  it('claims a round of pairs in one transaction: a pair one of whose two left is not made, the other one waits on as before', async () => {
    const store = await spinStore();
    const users = await Promise.all(['w', 'x', 'y', 'z'].map((n) => person(store, n)));
    const waiters: Waiter[] = [];
    for (const [i, user] of users.entries()) {
      const { joinedAt } = await store.join(user, 1000 + i);
      waiters.push({ userId: user.id, gender: user.gender, seeking: user.seeking, joinedAt });
    }
    const [w, x, y, z] = waiters as [Waiter, Waiter, Waiter, Waiter];
    await store.leave(users[1]!, 5000); // x
    const ids = await store.claimMany(
      [
        { first: x, second: y }, // x left: not made, y waits on
        { first: w, second: z },
        { first: y, second: w }, // w is taken by the pair before it
        { first: y, second: y },
      ],
      6000,
    );
    expect(ids.map((id) => id !== undefined)).toEqual([false, true, false, false]);
    expect(await store.waiting()).toEqual([{ ...y, seeking: ['nonbinary'] }]);
    expect((await store.history(w.userId, 10)).map((m) => m.partner.id)).toEqual([z.userId]);
    const events = (await store.events(0, 100)).filter((e) => e.type === 'match' || e.type === 'matched');
    expect(events.map((e) => [e.type, e.userId ?? e.data['userId']])).toEqual([
      ['match', w.userId],
      ['matched', w.userId],
      ['match', z.userId],
      ['matched', z.userId],
    ]);
  });
});

describe('the event feed on PostgreSQL', () => {
  it('delivers every event once and in order when ids commit out of order (a gap is waited for)', async () => {
    const [a, b] = await twoHandles();
    const reader = new SpinStore(a);
    const feed = new EventFeed({
      store: reader,
      logger: pino({ level: 'silent' }),
      pollMs: 5,
      gapGraceMs: 2000,
    });
    const seen: number[] = [];
    feed.subscribe((events) => seen.push(...events.map((e) => e.id)));
    await feed.start();
    try {
      const db = b.db.withTables<SpinTables>();
      const event = (n: number) => ({ user_id: null, type: 'test', data: JSON.stringify({ n }), at: n });
      // Each round: a slow transaction takes an id, then a fast one takes the next and commits first;
      // the reader sees the later id while the earlier is not committed yet.
      for (let round = 0; round < 5; round += 1) {
        let slowHasId: () => void = () => undefined;
        const idTaken = new Promise<void>((resolve) => (slowHasId = resolve));
        const slow = db.transaction().execute(async (trx) => {
          await trx
            .insertInto('spin_events')
            .values(event(round * 2))
            .execute();
          slowHasId();
          await new Promise((resolve) => setTimeout(resolve, 300));
        });
        await idTaken;
        await db
          .insertInto('spin_events')
          .values(event(round * 2 + 1))
          .execute();
        await slow;
      }
      const written = (await reader.events(0, 100)).map((e) => e.id);
      expect(written).toHaveLength(10);
      await until(() => seen.length >= 10, 10_000, 'every event read').catch(() => undefined);
      expect(seen).toEqual(written);
    } finally {
      feed.close();
    }
  });
});
