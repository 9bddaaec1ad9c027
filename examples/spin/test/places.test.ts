// Places in the queue as an instance tells them (SpinService keeps its copy of the queue in queue
// order and numbers places in one pass): the same as the domain's groupPositions, which sorts,
// when arrivals come out of order (another instance's clock, a batch's time), after leaves and
// matches, and after a reset.
import { createStore, type Store } from 'bulwark';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { groupPositions } from '../src/domain/matcher.js';
import type { Gender } from '../src/domain/types.js';
import { spinMigrations } from '../src/schema.js';
import { SpinService } from '../src/service.js';
import type { SpinUser } from '../src/store.js';

let store: Store | undefined;
let spin: SpinService | undefined;
afterEach(async () => {
  await spin?.close();
  await store?.close();
});

/** Waits until the instance's copy holds exactly `count` waiters (the feed is read every 10 ms). */
async function settled(service: SpinService, count: number): Promise<void> {
  for (let i = 0; i < 200 && [...service.waiters()].length !== count; i += 1)
    await new Promise((resolve) => setTimeout(resolve, 10));
  expect([...service.waiters()]).toHaveLength(count);
}

describe('places in the queue', () => {
  it('match the sorted reference for out-of-order arrivals, after leaves and after a reset', async () => {
    store = await createStore({ sqliteFile: ':memory:', migrations: async (e) => spinMigrations(e) });
    // No matcher rounds in this test: an hour apart.
    spin = new SpinService({
      store,
      logger: pino({ level: 'silent' }),
      instanceId: 'i',
      pollMs: 10,
      matchIntervalMs: 3_600_000,
    });
    await spin.start();
    const genders: Gender[] = ['man', 'woman', 'nonbinary'];
    const users: SpinUser[] = [];
    for (let i = 0; i < 60; i += 1) {
      const { user } = await spin.store.createUser({
        displayName: `u${i}`,
        gender: genders[i % 3]!,
        seeking: [genders[(i + 1) % 3]!],
      });
      users.push(user);
    }
    // Joined at times that go back and forth (ties too), in batches the feed brings together.
    const times = users.map((_, i) => 1_000_000 + ((i * 37) % 23) * 1000);
    for (const [i, user] of users.entries()) await spin.store.join(user, times[i]);
    await settled(spin, 60);
    const check = async () => {
      const expected = groupPositions([...spin!.waiters()]);
      for (const user of users) {
        const status = await spin!.status(user);
        if (expected.has(user.id))
          expect(status, user.displayName).toMatchObject({ position: expected.get(user.id) });
        else expect(status).toEqual({ waiting: false });
      }
    };
    await check();
    for (const user of users.filter((_, i) => i % 4 === 1)) await spin.store.leave(user);
    await settled(spin, 45);
    await check();
    // A late arrival that belongs at the front of its group.
    await spin.store.join(users[1]!, 999_000);
    await settled(spin, 46);
    expect(await spin.status(users[1]!)).toMatchObject({ position: 1 });
    await check();
    await spin.store.reset();
    await settled(spin, 0);
    await spin.store.join(users[0]!, 5);
    await settled(spin, 1);
    expect(await spin.status(users[0]!)).toMatchObject({ position: 1 });
  });
});
