// Spin's test endpoints over real HTTP (apps listening on loopback, SQLite in temporary directories):
// who is refused and how (no key, a wrong key, an address off the allow-list, production without
// keys, the flag off, a bad configuration at start), the rate limit per key, what each endpoint does
// (seed an imbalanced queue, reset, simulate arrivals that get matched or leave), and the audit log:
// a row per request admitted, summaries of refusals, never a key, in the log lines neither.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpin } from '../src/app.js';
import { groupsCompatible } from '../src/domain/groups.js';
import { groupFromKey } from '../src/service.js';
import { roomInWindow } from '../../../test/helpers/wait.js';

const dirs: string[] = [];
const apps: Awaited<ReturnType<typeof buildSpin>>[] = [];
const keys = { ci: randomBytes(24).toString('base64url'), load: randomBytes(24).toString('base64url') };
const KEYS = `ci:${keys.ci}, load:${keys.load}`;
/** Every line the main app logged. */
const logged: string[] = [];

/** A Spin app listening on loopback with `env`; resolves with it and its base URL. */
async function start(env: Record<string, string>, capture = false) {
  const dir = mkdtempSync(path.join(tmpdir(), 'spin-test-endpoints-'));
  dirs.push(dir);
  const app = await buildSpin({
    env: { BULWARK_DATA_DIR: dir, LOG_LEVEL: capture ? 'debug' : 'warn', NODE_ENV: 'development', ...env },
    spin: { matchIntervalMs: 100, pollMs: 20 },
    ...(capture
      ? {
          logDestination: new Writable({
            write(chunk: Buffer, _encoding, done) {
              logged.push(chunk.toString());
              done();
            },
          }),
        }
      : {}),
  });
  apps.push(app);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base };
}

let main: Awaited<ReturnType<typeof start>>;
beforeAll(async () => {
  main = await start({ SPIN_TEST_API_KEYS: KEYS, SPIN_TEST_ALLOW_IPS: '127.0.0.0/8, ::1' }, true);
  // The tests of what the endpoints do poll them more than 30 times a minute: the main app does not
  // count (the limit has its own test, on an app of its own).
  await main.app.bulwark.flags.kill('bulwark.ratelimit', { actor: 'test', reason: 'polling' });
});
afterAll(async () => {
  for (const app of apps) await app.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A user created by a seed with its token. */
interface Seeded {
  id: string;
  group: string;
  token: string;
}

/** What the tests read of an answer (each route answers a part of it). */
interface Body {
  error?: { code: string; message: string; details: { field: string }[] };
  // seed
  created: number;
  joined: number;
  groups: Record<string, number>;
  /** Seed: the users with tokens; reset: how many were deleted. */
  users: unknown;
  // reset
  waiting: number;
  matches: number;
  // simulate
  state: string;
  perMinute: number;
  arrived: number;
  matched: number;
  left: number;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Body;
}

async function call(
  method: string,
  url: string,
  opts: { key?: string; header?: 'bearer' | 'x-test-key'; body?: unknown; base?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.key !== undefined) {
    if (opts.header === 'x-test-key') headers['x-test-key'] = opts.key;
    else headers['authorization'] = `Bearer ${opts.key}`;
  }
  const res = await fetch(`${opts.base ?? main.base}${url}`, {
    method,
    headers,
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text === '' ? {} : JSON.parse(text)) as Body };
}

const coded = (answer: Answer) => [answer.status, answer.body.error?.code];

/** Polls `read` until `done` holds (at most `ms`). */
async function eventually<T>(
  read: () => Promise<T> | T,
  done: (value: T) => boolean,
  ms = 10_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > until)
      throw new Error(
        `not within ${ms} ms: ${JSON.stringify(value instanceof Map ? Object.fromEntries(value) : value)}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** How many wait in this instance's copy of the queue. */
const waitingNow = () => [...main.app.spin.waitingCounts].reduce((a, b) => a + b, 0);

/** Every test route, each with a valid body. */
const ROUTES: [string, string, unknown?][] = [
  ['POST', '/api/test/seed', { users: 2 }],
  ['POST', '/api/test/reset', {}],
  ['POST', '/api/test/simulate', { perMinute: 60, durationMs: 1000 }],
  ['GET', '/api/test/simulate'],
  ['DELETE', '/api/test/simulate'],
];

describe('Spin test endpoints: access', () => {
  it('refuse a request without a key, or with a wrong one, with 401; take the key as Bearer or X-Test-Key', async () => {
    for (const [method, url, body] of ROUTES)
      expect(coded(await call(method, url, { body }))).toEqual([401, 'SPIN_TEST_UNAUTHORIZED']);
    // Wrong: another key, the right one with a character more or less, or changed at its end.
    for (const wrong of [keys.ci.slice(0, -1), `${keys.ci}x`, `${keys.ci.slice(0, -1)}!`, 'k'.repeat(32)])
      expect(coded(await call('GET', '/api/test/simulate', { key: wrong }))).toEqual([
        401,
        'SPIN_TEST_UNAUTHORIZED',
      ]);
    const bearer = await call('GET', '/api/test/simulate', { key: keys.ci });
    expect([bearer.status, bearer.body]).toEqual([200, { state: 'idle' }]);
    expect((await call('GET', '/api/test/simulate', { key: keys.load, header: 'x-test-key' })).status).toBe(
      200,
    );
  });

  it('refuse an address off SPIN_TEST_ALLOW_IPS with 403, before looking at the key', async () => {
    const { base } = await start({
      SPIN_TEST_API_KEYS: KEYS,
      SPIN_TEST_ALLOW_IPS: '192.0.2.0/24,2001:db8::/32',
    });
    for (const key of [keys.ci, 'wrong'.repeat(6), undefined])
      expect(
        coded(await call('GET', '/api/test/simulate', { base, ...(key === undefined ? {} : { key }) })),
      ).toEqual([403, 'SPIN_TEST_ADDRESS_FORBIDDEN']);
  });

  it('with no key configured: 403 SPIN_TEST_DISABLED on every route in production, 401 elsewhere', async () => {
    const production = await start({ NODE_ENV: 'production' });
    const development = await start({});
    for (const [method, url, body] of ROUTES) {
      expect(coded(await call(method, url, { base: production.base, key: keys.ci, body }))).toEqual([
        403,
        'SPIN_TEST_DISABLED',
      ]);
      const dev = await call(method, url, { base: development.base, key: keys.ci, body });
      expect(coded(dev)).toEqual([401, 'SPIN_TEST_UNAUTHORIZED']);
      expect(dev.body.error?.message).toMatch(/SPIN_TEST_API_KEYS/);
    }
  });

  it('a key shorter than 24 characters, or a bad address, stops the start naming the variable (not the key)', async () => {
    const refused = async (env: Record<string, string>) => {
      const error = (await start(env).then(
        () => undefined,
        (e: unknown) => e,
      )) as { code: string; message: string; details: { field: string; message: string }[] };
      expect(error.code).toBe('BWK_ERR_SETTINGS_INVALID');
      return error;
    };
    const short = await refused({ SPIN_TEST_API_KEYS: `ci:${keys.ci}, demo:tooShortSecret` });
    expect(short.details).toEqual([
      {
        field: 'SPIN_TEST_API_KEYS',
        message: expect.stringMatching(/"demo" has 14 characters: at least 24/) as string,
      },
    ]);
    expect(JSON.stringify(short)).not.toContain('tooShortSecret');
    expect(`${short.message}`).not.toContain('tooShortSecret');
    const bad = await refused({
      SPIN_TEST_API_KEYS: `${keys.ci}`,
      SPIN_TEST_ALLOW_IPS: '10.0.0.0/33, localhost',
    });
    expect(bad.details.map((d) => d.field)).toEqual([
      'SPIN_TEST_API_KEYS',
      'SPIN_TEST_ALLOW_IPS',
      'SPIN_TEST_ALLOW_IPS',
    ]);
    expect(JSON.stringify(bad)).not.toContain(keys.ci);
  });

  it('the flag spin.test-endpoints (on by default) turns them off: 403 SPIN_TEST_DISABLED, then on again', async () => {
    const { flags } = main.app.bulwark;
    expect(flags.get('spin.test-endpoints')).toMatchObject({ enabled: true });
    const who = { actor: 'test', reason: 'drill' };
    await flags.kill('spin.test-endpoints', who);
    try {
      for (const [method, url, body] of ROUTES) {
        const off = await call(method, url, { key: keys.ci, body });
        expect(coded(off)).toEqual([403, 'SPIN_TEST_DISABLED']);
        expect(off.body.error?.message).toMatch(/spin\.test-endpoints/);
      }
    } finally {
      await flags.revive('spin.test-endpoints', who);
    }
    expect((await call('GET', '/api/test/simulate', { key: keys.ci })).status).toBe(200);
  });

  it(
    'limit each key to 30 requests a minute (then 429 with Retry-After); other keys, and addresses without one, count apart',
    { timeout: 60_000 },
    async () => {
      const { base } = await start({ SPIN_TEST_API_KEYS: KEYS });
      await roomInWindow(60_000, 20_000); // 63 requests counted in one minute window (CI crossed one here)
      for (let i = 0; i < 30; i += 1) {
        const ok = await call('GET', '/api/test/simulate', { base, key: keys.ci });
        expect(ok.status).toBe(200);
        expect(ok.headers.get('ratelimit-policy')).toBe('"spin-test";q=30;w=60');
      }
      const limited = await call('GET', '/api/test/simulate', { base, key: keys.ci });
      expect(coded(limited)).toEqual([429, 'BWK_ERR_RATELIMIT_EXCEEDED']);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await call('GET', '/api/test/simulate', { base, key: keys.load })).status).toBe(200);
      // Guessing keys: counted against the address, 30 a minute too.
      for (let i = 0; i < 30; i += 1)
        expect(
          (await call('GET', '/api/test/simulate', { base, key: `guess-${i}-${'x'.repeat(24)}` })).status,
        ).toBe(401);
      expect((await call('GET', '/api/test/simulate', { base, key: 'guess-31' })).status).toBe(429);
    },
  );
});

describe('Spin test endpoints: what they do', () => {
  it('seed 1,000 users of the imbalanced mix: counts by group, no tokens, and the queue shows the imbalance', async () => {
    const seeded = await call('POST', '/api/test/seed', {
      key: keys.ci,
      body: { users: 1000, mix: 'imbalanced', seed: 1 },
    });
    expect(seeded.status).toBe(201);
    expect(seeded.body).toMatchObject({ created: 1000, joined: 1000 });
    expect(seeded.body.users).toBeUndefined();
    const { groups } = seeded.body;
    expect(Object.values(groups).reduce((a, b) => a + b, 0)).toBe(1000);
    const men = Object.entries(groups)
      .filter(([k]) => k.startsWith('man:'))
      .reduce((a, [, n]) => a + n, 0);
    const women = Object.entries(groups)
      .filter(([k]) => k.startsWith('woman:'))
      .reduce((a, [, n]) => a + n, 0);
    expect(men / women).toBeGreaterThan(2.5);
    // The matcher pairs them until no two who wait are compatible: the men left over wait.
    const store = main.app.spin.store;
    const settled = await eventually(
      () => store.waitingByGroup(),
      (byGroup) => {
        const waiting = [...byGroup]
          .filter(([, n]) => n > 0)
          .map(([key, n]) => ({ group: groupFromKey(key)!, n }));
        return waiting.every((a, i) =>
          waiting.every((b, j) => (i === j && a.n < 2) || !groupsCompatible(a.group, b.group)),
        );
      },
    );
    const left = (prefix: string) =>
      [...settled].filter(([key]) => key.startsWith(prefix)).reduce((a, [, n]) => a + n, 0);
    expect(left('man:')).toBeGreaterThan(250);
    expect(left('woman:')).toBeLessThanOrEqual(3);
    // This instance's copy of the queue (what estimates and statistics read) shows them too.
    await eventually(waitingNow, (n) => n === [...settled.values()].reduce((a, b) => a + b, 0));
  });

  it('seed with tokens: at most 1,000 (a 400 naming body.users beyond), each token signs in', async () => {
    const tooMany = await call('POST', '/api/test/seed', {
      key: keys.ci,
      body: { users: 1001, tokens: true },
    });
    expect(coded(tooMany)).toEqual([400, 'BWK_ERR_HTTP_VALIDATION']);
    expect(tooMany.body.error?.details).toEqual([expect.objectContaining({ field: 'body.users' })]);
    const beyond = await call('POST', '/api/test/seed', { key: keys.ci, body: { users: 10_001 } });
    expect(beyond.status).toBe(400);
    const some = await call('POST', '/api/test/seed', {
      key: keys.ci,
      body: {
        users: 3,
        join: false,
        tokens: true,
        mix: [{ gender: 'nonbinary', seeking: ['woman'], share: 1 }],
      },
    });
    expect(some.body).toMatchObject({ created: 3, joined: 0, groups: { 'nonbinary:woman': 3 } });
    for (const user of some.body.users as Seeded[]) {
      const me = await fetch(`${main.base}/api/me`, { headers: { authorization: `Bearer ${user.token}` } });
      expect(((await me.json()) as { id: string }).id).toBe(user.id);
    }
  });

  it('reset empties the queue (on every instance copy) and, with users: true, signs the users out', async () => {
    await call('POST', '/api/test/reset', { key: keys.ci });
    // Twenty who cannot be paired with each other.
    const seeded = await call('POST', '/api/test/seed', {
      key: keys.ci,
      body: { users: 20, tokens: true, mix: [{ gender: 'woman', seeking: ['nonbinary'], share: 1 }] },
    });
    const token = (seeded.body.users as Seeded[])[0]!.token;
    const me = () => fetch(`${main.base}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    expect((await me()).status).toBe(200); // now in the cache
    await eventually(waitingNow, (n) => n === 20);
    const reset = await call('POST', '/api/test/reset', { key: keys.ci });
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ waiting: 20, users: 0, matches: 0 });
    expect(await main.app.spin.store.waitingByGroup()).toEqual(new Map());
    await eventually(waitingNow, (n) => n === 0);
    expect((await me()).status).toBe(200);
    const all = await call('POST', '/api/test/reset', { key: keys.ci, body: { users: true } });
    expect(all.body.users as number).toBeGreaterThanOrEqual(20);
    expect((await me()).status).toBe(401);
  });

  it('simulate: one at a time, bounded; arrivals get matched; GET follows it, DELETE stops it', async () => {
    for (const body of [
      { perMinute: 10_001, durationMs: 1000 },
      { perMinute: 60, durationMs: 3_600_001 },
      { perMinute: 0, durationMs: 1000 },
    ])
      expect((await call('POST', '/api/test/simulate', { key: keys.ci, body })).status).toBe(400);
    const started = await call('POST', '/api/test/simulate', {
      key: keys.ci,
      body: { perMinute: 3000, durationMs: 1500, mix: 'balanced', seed: 7 },
    });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ state: 'running', perMinute: 3000, durationMs: 1500, seed: 7 });
    const again = await call('POST', '/api/test/simulate', {
      key: keys.ci,
      body: { perMinute: 1, durationMs: 1000 },
    });
    expect(coded(again)).toEqual([409, 'SPIN_TEST_SIMULATION_RUNNING']);
    const done = await eventually(
      async () => (await call('GET', '/api/test/simulate', { key: keys.load })).body,
      (p) => p.state !== 'running' && p.matched > 0,
    );
    expect(done.state).toBe('completed');
    expect(done.arrived).toBeGreaterThan(30);
    expect(done.matched + done.waiting).toBe(done.arrived);

    const long = await call('POST', '/api/test/simulate', {
      key: keys.ci,
      body: { perMinute: 60, durationMs: 600_000 },
    });
    expect(long.body.state).toBe('running');
    const stopped = await call('DELETE', '/api/test/simulate', { key: keys.ci });
    expect(stopped.body.state).toBe('stopped');
    expect((await call('GET', '/api/test/simulate', { key: keys.ci })).body.state).toBe('stopped');
  });

  it('simulate with impatience: those not matched leave after their patience', async () => {
    const started = await call('POST', '/api/test/simulate', {
      key: keys.ci,
      body: {
        perMinute: 1200,
        durationMs: 3000,
        mix: [{ gender: 'woman', seeking: ['nonbinary'], share: 1 }], // nobody for them
        patience: { stayShare: 0, meanMs: 1000 },
        seed: 3,
      },
    });
    expect(started.status).toBe(202);
    const done = await eventually(
      async () => (await call('GET', '/api/test/simulate', { key: keys.ci })).body,
      (p) => p.state !== 'running',
    );
    expect(done).toMatchObject({ state: 'completed', matched: 0 });
    expect(done.left).toBeGreaterThan(10);
    expect(done.left + done.waiting).toBe(done.arrived);
  });
});

describe('Spin test endpoints: audit', () => {
  it('every request admitted is an audit row of its key; refusals are summaries; no key anywhere, logs included', async () => {
    const audit = main.app.bulwark.store.audit;
    await call('POST', '/api/test/seed', { key: keys.ci, body: { users: 2, join: false } });
    await call('POST', '/api/test/reset', { key: keys.ci });
    await call('GET', '/api/test/simulate', { key: keys.load, header: 'x-test-key' });
    const rows = await audit.list({ target: 'spin:test', limit: 500 });
    const actions = new Set(rows.map((r) => r.action));
    expect(actions).toEqual(new Set(['spin.test.seed', 'spin.test.reset', 'spin.test.simulate']));
    expect(new Set(rows.map((r) => r.actor))).toEqual(new Set(['test-key:ci', 'test-key:load']));
    expect(rows.find((r) => r.action === 'spin.test.seed')?.detail).toMatchObject({
      route: 'POST /api/test/seed',
      ip: '127.0.0.1',
    });
    await audit.flush();
    const before = await audit.list({ target: 'auth:refused', limit: 100 });
    for (let i = 0; i < 5; i += 1) await call('POST', '/api/test/reset', { key: `not-a-key-${i}` });
    await audit.flush();
    const refused = await audit.list({ target: 'auth:refused', limit: 100 });
    // One summary of the five, not a row per request.
    expect(refused.length - before.length).toBe(1);
    expect(refused[0]).toMatchObject({ actor: 'anonymous', action: 'spin.test.refused' });
    expect(refused[0]!.detail).toMatchObject({
      client: '127.0.0.1',
      reason: 'wrong-key',
      status: 401,
      count: 5,
      samples: ['POST /api/test/reset'],
    });
    const everything = JSON.stringify([rows, refused, logged]);
    for (const key of Object.values(keys)) expect(everything).not.toContain(key);
    expect(everything).not.toContain('not-a-key');
    // The log lines were captured: the requests are in them (the keys are not, checked above).
    expect(logged.join('')).toContain('/api/test/reset');
  });
});
