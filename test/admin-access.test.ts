// The admin API's access control over HTTP: stored keys with roles, console sessions (cookie flags,
// expiry, logout), the CSRF defence of cookie changes, the viewer's 403 on every mutating route (the
// routes as registered, so a new one cannot escape), the actor in the audit, the login limiter.
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { accessPart } from '../src/access/part.js';
import type { Access } from '../src/access/types.js';
import { SESSION_IDLE_MS } from '../src/access/sql.js';
import type { BulwarkOptions } from '../src/runtime/create.js';
import { AUDIT_REFUSED_TARGET } from '../src/store/index.js';
import { testApp, type LogCapture, type RegisteredRoute } from './helpers/app.js';

type Res = Awaited<ReturnType<FastifyInstance['inject']>>;
const ADMIN_KEY = 'admin-key-for-tests-0123456789';
const HOST = 'console.test:3000';
const ORIGIN = `http://${HOST}`;
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

let clock = 1_700_000_000_000;
const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

interface Setup {
  app: FastifyInstance;
  access: Access;
  logs: LogCapture;
  registered: RegisteredRoute[];
}

/** An app with the admin API on an in-memory store, the access part on the test's clock. */
async function setup(options: BulwarkOptions = {}): Promise<Setup> {
  const { app, logs, registered } = await testApp(() => undefined, {
    defaultMetrics: false,
    parts: (parts) =>
      parts.map((part) =>
        part.name === 'access' ? accessPart({ now: () => clock, purgeEveryMs: false }) : part,
      ),
    ...options,
  });
  apps.push(app);
  const access = app.bulwark.parts.get('access') as Access;
  return { app, access, logs, registered };
}

/** The error code of an answer (undefined for one that is not an error). */
function code(res: Res): string | undefined {
  return res.json<{ error?: { code: string } }>().error?.code;
}

interface Login {
  cookie: string;
  csrf: string;
  res: Res;
}

async function login(
  app: FastifyInstance,
  body: object,
  headers: Record<string, string> = {},
): Promise<Login> {
  const res = await app.inject({
    method: 'POST',
    url: '/admin/api/session',
    payload: body,
    headers: { host: HOST, ...headers },
  });
  const cookie = res.cookies.find((c) => c.name === 'bulwark_session')?.value ?? '';
  const csrf = res.statusCode === 200 ? res.json<{ csrfToken: string }>().csrfToken : '';
  return { cookie, csrf, res };
}

/** A request with the session cookie, the site's Origin and the session's CSRF token (each overridable). */
function withSession(
  app: FastifyInstance,
  session: Login,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  options: { payload?: object; headers?: Record<string, string | undefined> } = {},
) {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries({
    host: HOST,
    origin: ORIGIN,
    'x-csrf-token': session.csrf,
    ...options.headers,
  }))
    if (value !== undefined) headers[name] = value;
  return app.inject({
    method,
    url: `/admin/api${url}`,
    cookies: { bulwark_session: session.cookie },
    headers,
    ...(options.payload === undefined ? {} : { payload: options.payload }),
  });
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('admin API access', () => {
  it('login with a key sets a strict, HttpOnly session cookie for /admin; GET session; logout ends it', async () => {
    const { app, access } = await setup();
    const { key } = await access.createKey('ada', 'operator', 'test');
    const { res, cookie, csrf } = await login(app, { key });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      role: 'operator',
      actor: 'key:ada',
      csrfToken: csrf,
      expiresAt: clock + 12 * 3_600_000,
    });
    const set = res.cookies.find((c) => c.name === 'bulwark_session');
    expect(set).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin' });
    expect(set?.secure).toBeUndefined();
    expect(new Date(set?.expires ?? 0).getTime()).toBe(Math.floor((clock + 12 * 3_600_000) / 1000) * 1000);
    expect(cookie).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const session = { cookie, csrf, res };
    const got = await withSession(app, session, 'GET', '/session');
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual(res.json());
    // A Bearer key has no session.
    const bearerGet = await app.inject({ method: 'GET', url: '/admin/api/session', headers: bearer(key) });
    expect(bearerGet.statusCode).toBe(401);

    const out = await withSession(app, session, 'DELETE', '/session');
    expect(out.statusCode).toBe(204);
    const cleared = out.cookies.find((c) => c.name === 'bulwark_session');
    expect(cleared).toMatchObject({ value: '', path: '/admin' });
    expect(new Date(cleared?.expires ?? Date.now()).getTime()).toBeLessThan(Date.now());
    const after = await withSession(app, session, 'GET', '/session');
    expect(after.statusCode).toBe(401);
    expect(code(after)).toBe('BWK_ERR_ADMIN_UNAUTHORIZED');
  });

  it('marks the cookie Secure when the request came over TLS', async () => {
    const before = process.env['BULWARK_BEHIND_PROXY'];
    process.env['BULWARK_BEHIND_PROXY'] = '1';
    try {
      const { app } = await setup({ adminKey: ADMIN_KEY });
      const { res } = await login(app, { key: ADMIN_KEY }, { 'x-forwarded-proto': 'https' });
      expect(res.json()).toMatchObject({ role: 'operator', actor: 'admin' });
      expect(res.cookies.find((c) => c.name === 'bulwark_session')).toMatchObject({
        secure: true,
        httpOnly: true,
      });
    } finally {
      if (before === undefined) delete process.env['BULWARK_BEHIND_PROXY'];
      else process.env['BULWARK_BEHIND_PROXY'] = before;
    }
  });

  it('a session ends after an hour without a request; a wrong login or cookie is 401', async () => {
    const { app, access } = await setup();
    const { key } = await access.createKey('ada', 'viewer', 'test');
    expect((await login(app, { key: `${key.slice(0, -2)}xx` })).res.statusCode).toBe(401);
    expect((await login(app, { token: 'x'.repeat(43) })).res.statusCode).toBe(401);
    expect((await login(app, {})).res.statusCode).toBe(400);
    expect((await login(app, { key, token: 'x' })).res.statusCode).toBe(400);
    // Unreadable logins are tallied like failed ones, not written one by one.
    await app.bulwark.store.audit.flush();
    const refused = await app.bulwark.store.audit.list({ target: AUDIT_REFUSED_TARGET });
    const reasons = Object.fromEntries(
      refused.map((r) => [(r.detail as { reason: string }).reason, r.detail]),
    );
    expect(reasons).toMatchObject({
      'wrong-key': { count: 1, status: 401 },
      'wrong-token': { count: 1, status: 401 },
      'not-admitted': { count: 2, status: 400 },
    });
    expect(await app.bulwark.store.audit.list({ excludeTarget: AUDIT_REFUSED_TARGET })).toMatchObject([
      { action: 'key.create' },
    ]);
    const session = await login(app, { key });
    expect((await withSession(app, { ...session, cookie: 'forged' }, 'GET', '/flags')).statusCode).toBe(401);
    clock += SESSION_IDLE_MS - 60_000;
    expect((await withSession(app, session, 'GET', '/flags')).statusCode).toBe(200);
    clock += SESSION_IDLE_MS;
    const idle = await withSession(app, session, 'GET', '/flags');
    expect(idle.statusCode).toBe(401);
    expect(code(idle)).toBe('BWK_ERR_ADMIN_UNAUTHORIZED');
    expect(idle.cookies.find((c) => c.name === 'bulwark_session')?.value).toBe('');
  });

  it('a viewer gets 403 BWK_ERR_ADMIN_FORBIDDEN from every mutating admin route, by key and by session; reads work', async () => {
    const { app, access, registered } = await setup({
      adminKey: ADMIN_KEY,
      alerts: {
        defaultRules: false,
        receivers: [{ name: 'ops', type: 'webhook', url: 'http://127.0.0.1:9/hook' }],
        evaluateEveryMs: 3_600_000,
      },
    });
    const { key } = await access.createKey('watcher', 'viewer', 'test');
    const session = await login(app, { key });
    const mutating = registered.filter((r) => r.url.startsWith('/admin/api/') && !SAFE.has(r.method));
    // The routes a viewer may use: logging in and out, and evaluating a flag (a POST only to carry
    // the context). Any other change is an operator's.
    const open = [
      'POST /admin/api/session',
      'DELETE /admin/api/session',
      'POST /admin/api/flags/:key/evaluate',
    ];
    expect(mutating.map((r) => `${r.method} ${r.url}`)).toEqual(expect.arrayContaining(open));
    const guarded = mutating.filter((r) => !open.includes(`${r.method} ${r.url}`));
    // The admin API's changes, at least those of today: flags, queues, errors, alerts, dependencies.
    expect(guarded.length).toBeGreaterThanOrEqual(15);
    const auditBefore = (await app.bulwark.store.audit.list({ limit: 500 })).length;
    for (const route of guarded) {
      const url = route.url.replace(/:[^/]+/g, 'x').replace(/\*$/, 'x');
      const byKey = await app.inject({
        method: route.method as 'POST',
        url,
        headers: bearer(key),
        payload: {},
      });
      expect([byKey.statusCode, code(byKey)], `${route.method} ${route.url} by key`).toEqual([
        403,
        'BWK_ERR_ADMIN_FORBIDDEN',
      ]);
      const bySession = await withSession(
        app,
        session,
        route.method as 'POST',
        url.replace('/admin/api', ''),
        {
          payload: {},
        },
      );
      expect([bySession.statusCode, code(bySession)], `${route.method} ${route.url} by session`).toEqual([
        403,
        'BWK_ERR_ADMIN_FORBIDDEN',
      ]);
    }
    // Nothing changed, and every refused change was audited with its actor.
    expect(app.bulwark.flags.list().every((flag) => flag.enabled)).toBe(true);
    const audit = await app.bulwark.store.audit.list({ limit: 500 });
    const forbidden = audit.slice(0, audit.length - auditBefore);
    expect(forbidden.length).toBe(guarded.length * 2);
    expect(
      forbidden.every((r) => r.actor === 'key:watcher' && (r.detail as { status: number }).status === 403),
    ).toBe(true);

    for (const url of ['/flags', '/dependencies', '/audit', '/queues', '/alerts', '/session'])
      expect((await withSession(app, session, 'GET', url)).statusCode, url).toBe(200);
    expect(
      (await app.inject({ method: 'GET', url: '/admin/api/flags', headers: bearer(key) })).statusCode,
    ).toBe(200);
    // Logging out is the viewer's own business.
    expect((await withSession(app, session, 'DELETE', '/session')).statusCode).toBe(204);
  });

  it('a change with the session cookie needs the site’s Origin and the CSRF token; a Bearer change needs neither', async () => {
    const { app, access } = await setup();
    const { key } = await access.createKey('ops', 'operator', 'test');
    const session = await login(app, { key });
    const pause = (headers: Record<string, string | undefined>) =>
      withSession(app, session, 'PUT', '/queues/mail/paused', { payload: { paused: true }, headers });
    for (const [label, headers] of [
      ['no Origin', { origin: undefined }],
      ['another Origin', { origin: 'http://evil.test' }],
      ['another port', { origin: 'http://console.test:3001' }],
      ['https for http', { origin: 'https://console.test:3000' }],
      ['no token', { 'x-csrf-token': undefined }],
      ['a wrong token', { 'x-csrf-token': 'x'.repeat(43) }],
      ['an empty token', { 'x-csrf-token': '' }],
    ] as const) {
      const res = await pause(headers);
      expect([res.statusCode, code(res)], label).toEqual([403, 'BWK_ERR_ADMIN_CSRF']);
    }
    expect(app.bulwark.queues.paused.has('mail')).toBe(false);
    // Reads need neither.
    expect(
      (
        await withSession(app, session, 'GET', '/queues', {
          headers: { origin: undefined, 'x-csrf-token': undefined },
        })
      ).statusCode,
    ).toBe(200);
    expect((await pause({})).statusCode).toBe(200);
    expect(app.bulwark.queues.paused.has('mail')).toBe(true);
    const byKey = await app.inject({
      method: 'PUT',
      url: '/admin/api/queues/mail/paused',
      headers: bearer(key),
      payload: { paused: false },
    });
    expect(byKey.statusCode).toBe(200);
    // Logout is a change too.
    expect(
      (await withSession(app, session, 'DELETE', '/session', { headers: { origin: undefined } })).statusCode,
    ).toBe(403);

    await app.bulwark.store.audit.flush();
    const rows = await app.bulwark.store.audit.list({ target: AUDIT_REFUSED_TARGET });
    expect(rows).toMatchObject([
      { action: 'admin.refused', detail: { reason: 'csrf', status: 403, count: 8 } },
    ]);
  });

  it('audits every change with the real actor: key:<name> for a stored key, admin for BULWARK_ADMIN_KEY', async () => {
    const { app, access } = await setup({ adminKey: ADMIN_KEY });
    const { key } = await access.createKey('ops', 'operator', 'test');
    const session = await login(app, { key });
    expect(
      (await withSession(app, session, 'POST', '/flags/bulwark.cache/kill', { payload: { reason: 'drill' } }))
        .statusCode,
    ).toBe(200);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/admin/api/flags/bulwark.cache/revive',
          headers: bearer(ADMIN_KEY),
          payload: {},
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (
        await app.inject({
          method: 'PUT',
          url: '/admin/api/queues/mail/paused',
          headers: bearer(key),
          payload: { paused: true },
        })
      ).statusCode,
    ).toBe(200);

    const history = await app.bulwark.flags.history('bulwark.cache', 10);
    expect(history.map((r) => [r.actor, r.action])).toEqual([
      ['admin', 'flag.revive'],
      ['key:ops', 'flag.kill'],
    ]);
    const queue = await app.bulwark.store.audit.list({ target: 'queue:mail' });
    expect(queue.map((r) => [r.actor, r.action])).toEqual([['key:ops', 'queue.pause']]);
    const requests = (await app.bulwark.store.audit.list({ limit: 100 })).filter((r) =>
      r.action.includes(' /admin/api/'),
    );
    expect(requests.map((r) => [r.actor, r.action])).toEqual([
      ['key:ops', 'PUT /admin/api/queues/:queue/paused'],
      ['admin', 'POST /admin/api/flags/:key/revive'],
      ['key:ops', 'POST /admin/api/flags/:key/kill'],
      ['key:ops', 'POST /admin/api/session'],
    ]);
  });

  it('a revoked key and its sessions are refused at once (401)', async () => {
    const { app, access } = await setup();
    const { key } = await access.createKey('ops', 'operator', 'test');
    const session = await login(app, { key });
    expect(
      (await app.inject({ method: 'GET', url: '/admin/api/flags', headers: bearer(key) })).statusCode,
    ).toBe(200);
    await access.revokeKey('ops', 'test');
    const byKey = await app.inject({ method: 'GET', url: '/admin/api/flags', headers: bearer(key) });
    expect([byKey.statusCode, code(byKey)]).toEqual([401, 'BWK_ERR_ADMIN_UNAUTHORIZED']);
    expect((await withSession(app, session, 'GET', '/flags')).statusCode).toBe(401);
    expect((await login(app, { key })).res.statusCode).toBe(401);
  });

  it('with no key stored and none set, every request and login is refused as disabled (403)', async () => {
    const { app, access } = await setup();
    const get = await app.inject({ method: 'GET', url: '/admin/api/flags', headers: bearer(ADMIN_KEY) });
    expect([get.statusCode, code(get)]).toEqual([403, 'BWK_ERR_ADMIN_DISABLED']);
    const { res } = await login(app, { key: ADMIN_KEY });
    expect([res.statusCode, code(res)]).toEqual([403, 'BWK_ERR_ADMIN_DISABLED']);
    // A key created meanwhile (by the CLI, another process) opens it within a second.
    const { key } = await access.createKey('ada', 'operator', 'test');
    clock += 1_000;
    expect(
      (await app.inject({ method: 'GET', url: '/admin/api/flags', headers: bearer(key) })).statusCode,
    ).toBe(200);
  });

  it('the 11th login attempt of a network within a minute gets 429 with Retry-After, a right key too', async () => {
    const { app, access } = await setup();
    const { key } = await access.createKey('ada', 'operator', 'test');
    for (let i = 0; i < 10; i += 1)
      expect((await login(app, { key: `bwk_${'x'.repeat(43)}` })).res.statusCode).toBe(401);
    clock += 15_000;
    const limited = (await login(app, { key })).res;
    expect([limited.statusCode, code(limited)]).toEqual([429, 'BWK_ERR_ADMIN_LOGIN_LIMITED']);
    expect(limited.headers['retry-after']).toBe('45');
    // Another network is not limited; this one is again once its minute is over.
    const other = await app.inject({
      method: 'POST',
      url: '/admin/api/session',
      payload: { key },
      remoteAddress: '192.0.2.7',
    });
    expect(other.statusCode).toBe(200);
    clock += 45_000;
    expect((await login(app, { key })).res.statusCode).toBe(200);

    await app.bulwark.store.audit.flush();
    const refused = await app.bulwark.store.audit.list({ target: AUDIT_REFUSED_TARGET });
    const byReason = Object.fromEntries(
      refused.map((r) => [(r.detail as { reason: string }).reason, r.detail]),
    );
    expect(byReason['wrong-key']).toMatchObject({
      client: '127.0.0.1',
      status: 401,
      count: 10,
      samples: ['POST /admin/api/session'],
    });
    expect(byReason['login-limited']).toMatchObject({ status: 429, count: 1 });
  });

  it('never logs a key, a session id or a CSRF token', async () => {
    const { app, access, logs } = await setup({ adminKey: ADMIN_KEY, logLevel: 'debug' });
    const { key } = await access.createKey('ada', 'operator', 'test');
    const session = await login(app, { key });
    await withSession(app, session, 'PUT', '/queues/mail/paused', { payload: { paused: true } });
    await withSession(app, session, 'PUT', '/queues/mail/paused', {
      payload: { paused: false },
      headers: { origin: undefined },
    });
    await app.inject({ method: 'GET', url: '/admin/api/flags', headers: bearer(`${key}x`) });
    await login(app, { key: ADMIN_KEY });
    await withSession(app, session, 'DELETE', '/session');
    const text = JSON.stringify(logs.lines);
    expect(logs.requests().length).toBeGreaterThanOrEqual(6);
    for (const secret of [key, key.slice(4), session.cookie, session.csrf, ADMIN_KEY])
      expect(text).not.toContain(secret);
    const audit = JSON.stringify(await app.bulwark.store.audit.list({ limit: 500 }));
    for (const secret of [key.slice(4), session.cookie, session.csrf, ADMIN_KEY])
      expect(audit).not.toContain(secret);
  });
});
