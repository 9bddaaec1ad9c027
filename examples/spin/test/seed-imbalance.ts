// An imbalanced queue for the tests of the statistics and their pages: 10 couples matched now, the
// men after 14 minutes and the women after 1 (6 both liked, 4 not), then 30 men seeking women and 2
// nonbinary people seeking women waiting (joined through the API). Resolves with every user made.
import { expect } from 'vitest';
import type { buildSpin } from '../src/app.js';
import type { SpinUser } from '../src/store.js';

export const MIN = 60_000;
type Spin = Awaited<ReturnType<typeof buildSpin>>;

/**
 * 10 couples matched now, the men after 14 minutes and the women after 1 (6 both liked, 4 not);
 * then 30 men seeking women and 2 nonbinary people seeking women join through the API.
 */
export async function seedImbalance(app: Spin, base: string): Promise<SpinUser[]> {
  const people: SpinUser[] = [];
  const user = async (name: string, gender: SpinUser['gender'], seeking: SpinUser['seeking']) => {
    const made = await app.spin.store.createUser({ displayName: name, gender, seeking });
    people.push(made.user);
    return made;
  };
  const store = app.spin.store;
  // Recent arrivals are counted in whole minutes, the current one and the 14 before: the men who
  // joined 14 minutes ago leave that window when the minute turns (men per woman 4 becomes 3; it
  // did in CI). Seed early enough in a minute for the tests to read it before it turns.
  const left = MIN - (Date.now() % MIN);
  if (left < 12_000) await new Promise((resolve) => setTimeout(resolve, left + 50));
  const now = Date.now();
  for (let i = 0; i < 10; i += 1) {
    const man = (await user(`Man ${i}`, 'man', ['woman'])).user;
    const woman = (await user(`Woman ${i}`, 'woman', ['man'])).user;
    await store.join(man, now - 14 * MIN);
    await store.join(woman, now - MIN);
    const waiter = (u: SpinUser, joinedAt: number) => ({ ...u, userId: u.id, joinedAt });
    const id = await store.claim(waiter(man, now - 14 * MIN), waiter(woman, now - MIN), now);
    expect(id).toBeDefined();
    await store.vote(id!, man.id, 'like');
    await store.vote(id!, woman.id, i < 6 ? 'like' : 'pass');
  }
  const waiting = [
    ...(await Promise.all(Array.from({ length: 30 }, (_, i) => user(`Waiting man ${i}`, 'man', ['woman'])))),
    await user('Sam', 'nonbinary', ['woman']),
    await user('Alex', 'nonbinary', ['woman']),
  ];
  for (const { token } of waiting) {
    const res = await fetch(`${base}/api/queue/join`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
  }
  // Every instance learns of the joins from the feed: wait until this one has.
  const until = Date.now() + 5000;
  while (app.spin.waitingCounts.reduce((sum, n) => sum + n, 0) < 32) {
    if (Date.now() > until) throw new Error('the feed did not bring the joins within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return people;
}
