// An app's own admin routes behind Bulwark's admin access (`bulwarkAdminRoutes`): the same guard as
// the admin API — no key 401, no key configured 403, a viewer reads but cannot change, an operator
// can, a change made with the console's session cookie needs Origin and the CSRF token, every change
// audited with its actor, refusals tallied — and nothing of it reaches the app's other routes.
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Access } from '../src/access/types.js';
import { bulwarkAdminRoutes } from '../src/fastify.js';
import type { BulwarkOptions } from '../src/runtime/create.js';
import { AUDIT_REFUSED_TARGET } from '../src/store/index.js';
import { testApp } from './helpers/app.js';

const ADMIN_KEY = 'admin-key-for-tests-0123456789';
const HOST = 'console.test:3000';
const ORIGIN = `http://${HOST}`;

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** An app with admin routes of its own under /api/admin (a counter to read and to bump) and a public route. */
async function setup(options: BulwarkOptions = { adminKey: ADMIN_KEY }) {
  const state = { bumps: 0 };
  const { app, registered } = await testApp(
    (root) => {
      void root.register(bulwarkAdminRoutes, {
        prefix: '/api/admin',
        routes: (admin) => {
          admin.get('/counter', async () => ({ bumps: state.bumps }));
          admin.post('/counter', async () => ({ bumps: ++state.bumps }));
          admin.post('/ping', { config: { adminAccess: 'any-role' } }, async () => ({ pong: true }));
        },
      });
      root.post('/api/public', async () => ({ open: true }));
    },
    { defaultMetrics: false, ...options },
  );
  apps.push(app);
  return { app, state, registered, access: app.bulwark.parts.get('access') as Access };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const code = (res: { json: <T>() => T }) => res.json<{ error?: { code: string } }>().error?.code;

describe('bulwarkAdminRoutes', () => {
  it('refuses without a key (401) or with a wrong one, tallies the refusals, and leaves other routes open', async () => {
    const { app, state } = await setup();
    const none = await app.inject({ method: 'GET', url: '/api/admin/counter' });
    expect([none.statusCode, code(none)]).toEqual([401, 'BWK_ERR_ADMIN_UNAUTHORIZED']);
    const wrong = await app.inject({ method: 'POST', url: '/api/admin/counter', headers: bearer('nope') });
    expect([wrong.statusCode, code(wrong)]).toEqual([401, 'BWK_ERR_ADMIN_UNAUTHORIZED']);
    expect(state.bumps).toBe(0);
    await app.bulwark.store.audit.flush();
    const refused = await app.bulwark.store.audit.list({ target: AUDIT_REFUSED_TARGET });
    expect(refused.map((r) => (r.detail as { reason: string }).reason).sort()).toEqual([
      'missing-key',
      'wrong-key',
    ]);
    expect((await app.inject({ method: 'POST', url: '/api/public' })).statusCode).toBe(200);
    // Documented as needing the admin key.
    const docs = await app.inject({ method: 'GET', url: '/api-docs/json' });
    const paths = docs.json<{ paths: Record<string, Record<string, { security?: unknown }>> }>().paths;
    expect(paths['/api/admin/counter']?.['post']?.security).toEqual([{ adminKey: [] }]);
    expect(paths['/api/public']?.['post']?.security).toBeUndefined();
    // The session routes are the admin API's only.
    const session = await app.inject({ method: 'POST', url: '/api/admin/session', payload: { key: 'x' } });
    expect(session.statusCode).toBe(404);
  });

  it('with no key anywhere every request is 403 BWK_ERR_ADMIN_DISABLED', async () => {
    const { app } = await setup({});
    const res = await app.inject({ method: 'GET', url: '/api/admin/counter', headers: bearer(ADMIN_KEY) });
    expect([res.statusCode, code(res)]).toEqual([403, 'BWK_ERR_ADMIN_DISABLED']);
  });

  it('a viewer reads but cannot change (403); an operator and BULWARK_ADMIN_KEY can; changes audited', async () => {
    const { app, access, state } = await setup();
    const { key: viewer } = await access.createKey('watcher', 'viewer', 'test');
    const { key: operator } = await access.createKey('ops', 'operator', 'test');
    const read = await app.inject({ method: 'GET', url: '/api/admin/counter', headers: bearer(viewer) });
    expect([read.statusCode, read.json()]).toEqual([200, { bumps: 0 }]);
    const refused = await app.inject({ method: 'POST', url: '/api/admin/counter', headers: bearer(viewer) });
    expect([refused.statusCode, code(refused)]).toEqual([403, 'BWK_ERR_ADMIN_FORBIDDEN']);
    expect(state.bumps).toBe(0);
    // A route that lets any role change with it.
    const ping = await app.inject({ method: 'POST', url: '/api/admin/ping', headers: bearer(viewer) });
    expect(ping.statusCode).toBe(200);
    const bumped = await app.inject({ method: 'POST', url: '/api/admin/counter', headers: bearer(operator) });
    expect([bumped.statusCode, bumped.json()]).toEqual([200, { bumps: 1 }]);
    const bootstrap = await app.inject({
      method: 'POST',
      url: '/api/admin/counter',
      headers: bearer(ADMIN_KEY),
    });
    expect(bootstrap.json()).toEqual({ bumps: 2 });
    const audit = await app.bulwark.store.audit.list({ actionPrefix: 'POST /api/admin' });
    expect(audit.map((r) => [r.actor, r.action, r.target, (r.detail as { status: number }).status])).toEqual([
      ['admin', 'POST /api/admin/counter', '/api/admin/counter', 200],
      ['key:ops', 'POST /api/admin/counter', '/api/admin/counter', 200],
      ['key:watcher', 'POST /api/admin/ping', '/api/admin/ping', 200],
      ['key:watcher', 'POST /api/admin/counter', '/api/admin/counter', 403],
    ]);
    // Reads are not audited, as in the admin API.
    expect(await app.bulwark.store.audit.list({ actionPrefix: 'GET /api/admin' })).toEqual([]);
  });

  it('a change made with the console session cookie needs the site’s Origin and the CSRF token', async () => {
    const { app, access, state } = await setup();
    const { key } = await access.createKey('ops', 'operator', 'test');
    const login = await app.inject({
      method: 'POST',
      url: '/admin/api/session',
      payload: { key },
      headers: { host: HOST },
    });
    const cookie = login.cookies.find((c) => c.name === 'bulwark_session')?.value ?? '';
    const csrf = login.json<{ csrfToken: string }>().csrfToken;
    const bump = (headers: Record<string, string>) =>
      app.inject({
        method: 'POST',
        url: '/api/admin/counter',
        cookies: { bulwark_session: cookie },
        headers: { host: HOST, ...headers },
      });
    const attempts: Record<string, string>[] = [
      {},
      { origin: ORIGIN },
      { 'x-csrf-token': csrf },
      { origin: 'http://evil.test', 'x-csrf-token': csrf },
    ];
    for (const headers of attempts) {
      const res = await bump(headers);
      expect([res.statusCode, code(res)], JSON.stringify(headers)).toEqual([403, 'BWK_ERR_ADMIN_CSRF']);
    }
    expect(state.bumps).toBe(0);
    const read = await app.inject({
      method: 'GET',
      url: '/api/admin/counter',
      cookies: { bulwark_session: cookie },
      headers: { host: HOST },
    });
    expect(read.statusCode).toBe(200);
    const ok = await bump({ origin: ORIGIN, 'x-csrf-token': csrf });
    expect([ok.statusCode, ok.json()]).toEqual([200, { bumps: 1 }]);
    const [row] = await app.bulwark.store.audit.list({ actionPrefix: 'POST /api/admin' });
    expect(row).toMatchObject({ actor: 'key:ops', action: 'POST /api/admin/counter' });
  });
});
