import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { adminApp, adminAuth } from './helpers/admin.js';
import { createStore } from '../src/runtime/store.js';
import { ErrorStore } from '../src/tracker/index.js';
import { freePort, spawnTs } from './helpers/process.js';
import { until } from './helpers/wait.js';

/** A coded 400's body, as far as these tests read it. */
interface Refusal {
  error: { code: string; details: { field: string }[] };
}

/** Routes that fail, one with an authenticated user on the request. */
function failingRoutes(app: FastifyInstance): void {
  app.get('/orders/:id', async (request) => {
    (request as { user?: unknown }).user = { id: 'u-7', username: 'alice', token: 'secret-token' };
    throw new TypeError(`Order ${(request.params as { id: string }).id} has no lines`);
  });
}

interface Envelope {
  path: string;
  items: Record<string, unknown>[];
}

/** A local server that speaks Sentry's envelope endpoint (or fails, or hangs, when told to). */
async function sentryServer(mode: { status?: number; hang?: boolean } = {}) {
  const envelopes: Envelope[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const lines = body.split('\n').filter((l) => l.trim() !== '');
      envelopes.push({
        path: request.url ?? '',
        items: lines.map((l) => JSON.parse(l) as Record<string, unknown>),
      });
      if (mode.hang === true) return;
      response.writeHead(mode.status ?? 200, { 'content-type': 'application/json' });
      response.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  servers.push(server);
  return { envelopes, dsn: `http://publickey@127.0.0.1:${port}/42` };
}

const servers: http.Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

describe('error tracking over HTTP', () => {
  it('a request error becomes a group with its request and user context; the admin API lists, shows and resolves it', async () => {
    const { app, instance } = await adminApp({}, failingRoutes);
    for (const id of [1, 2, 3]) expect((await app.inject({ url: `/orders/${id}` })).statusCode).toBe(500);
    const list = await app.inject({ url: '/admin/api/errors', headers: adminAuth });
    expect(list.statusCode).toBe(200);
    const { groups } = list.json<{
      groups: { fingerprint: string; count: number; message: string; culprit: string }[];
    }>();
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ count: 3, message: 'Order <n> has no lines', type: 'TypeError' });
    expect(groups[0]?.culprit).toContain('test/error-tracking-http.test.ts');
    const fingerprint = groups[0]?.fingerprint ?? '';
    const one = await app.inject({ url: `/admin/api/errors/${fingerprint}?samples=2`, headers: adminAuth });
    const { samples } = one.json<{ samples: Record<string, unknown>[] }>();
    expect(samples).toHaveLength(2);
    expect(samples[0]).toMatchObject({
      message: 'Order 3 has no lines',
      request: { method: 'GET', route: '/orders/:id', status: 500 },
      user: { id: 'u-7', username: 'alice' },
    });
    expect(JSON.stringify(samples)).not.toContain('secret-token');
    const resolved = await app.inject({
      method: 'PUT',
      url: `/admin/api/errors/${fingerprint}/state`,
      headers: adminAuth,
      payload: { state: 'resolved', reason: 'fixed' },
    });
    expect(resolved.json()).toMatchObject({ group: { state: 'resolved' } });
    await app.inject({ url: '/orders/4' });
    await instance.errors.flush();
    expect((await instance.errors.group(fingerprint)).group).toMatchObject({ state: 'open', regressions: 1 });
    const missing = await app.inject({ url: '/admin/api/errors/00ff', headers: adminAuth });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'BWK_ERR_ERRORS_GROUP_NOT_FOUND' } });
    expect((await app.inject({ url: '/admin/api/errors' })).statusCode).toBe(401);
  });

  it('browser reports: accepted (202) when valid, refused with a code when not, rate limited per client', async () => {
    const { app, instance } = await adminApp();
    const report = { message: 'x is undefined', type: 'TypeError', url: 'https://shop.example/cart?c=1' };
    const ok = await app.inject({ method: 'POST', url: '/errors/browser', payload: report });
    expect(ok.statusCode).toBe(202);
    const { fingerprint } = ok.json<{ fingerprint: string }>();
    await instance.errors.flush();
    expect((await instance.errors.group(fingerprint)).group).toMatchObject({ source: 'browser', count: 1 });

    // An unknown field is refused, naming it; nothing of that report is stored.
    const unknown = await app.inject({
      method: 'POST',
      url: '/errors/browser',
      payload: { ...report, cookie: 'session=abc' },
    });
    expect([unknown.statusCode, unknown.json<Refusal>().error.details[0]?.field]).toEqual([
      400,
      'body.cookie',
    ]);
    await instance.errors.flush();
    expect((await instance.errors.group(fingerprint)).group).toMatchObject({ count: 1 });
    expect(JSON.stringify(await instance.errors.group(fingerprint))).not.toContain('session=abc');
    const long = await app.inject({
      method: 'POST',
      url: '/errors/browser',
      payload: { message: 'm'.repeat(3000) },
    });
    expect(long.statusCode).toBe(400);
    expect(long.json()).toMatchObject({ error: { code: 'BWK_ERR_HTTP_VALIDATION' } });
    const empty = await app.inject({ method: 'POST', url: '/errors/browser', payload: { type: 'Error' } });
    expect(empty.statusCode).toBe(400);
    const huge = await app.inject({
      method: 'POST',
      url: '/errors/browser',
      payload: { message: 'm', stack: 's'.repeat(40_000) },
    });
    expect(huge.statusCode).toBe(413);

    let refused: { statusCode: number; json(): unknown; headers: Record<string, unknown> } | undefined;
    for (let i = 0; i < 40 && refused === undefined; i++) {
      const answer = await app.inject({
        method: 'POST',
        url: '/errors/browser',
        payload: report,
        remoteAddress: '10.0.0.9',
      });
      if (answer.statusCode === 429) refused = answer;
    }
    expect(refused?.json()).toMatchObject({ error: { code: 'BWK_ERR_RATELIMIT_EXCEEDED' } });
    expect(refused?.headers['retry-after']).toBeDefined();
    // Another client is not affected.
    const other = await app.inject({
      method: 'POST',
      url: '/errors/browser',
      payload: report,
      remoteAddress: '10.0.0.10',
    });
    expect(other.statusCode).toBe(202);
  });

  it('browser reports from many IPv4 and IPv6 clients with distinct fingerprints: storage stays bounded, server errors still recorded', async () => {
    const { app, instance } = await adminApp({}, failingRoutes);
    // 300 clients (150 IPv4 addresses, 150 IPv6 /64s), two maximum-size reports each: under the
    // per-client rate limit, so only the budget of new browser groups and the caps bound storage.
    const clients = Array.from({ length: 300 }, (_, i) =>
      i % 2 === 0 ? `203.0.${i >> 8}.${i & 255}` : `2001:db8:${i.toString(16)}::1`,
    );
    let accepted = 0;
    const started = Date.now();
    for (const [i, remoteAddress] of clients.entries()) {
      for (let k = 0; k < 2; k++) {
        const n = i * 2 + k;
        const res = await app.inject({
          method: 'POST',
          url: '/errors/browser',
          remoteAddress,
          payload: {
            type: `Flood${n}`,
            message: `${'"'.repeat(1_990)} ${n}`,
            stack: `Flood${n}: x\n${'    at f (https://evil.example/x.js:1:1)\n'.repeat(380)}`,
            url: `https://evil.example/${'p'.repeat(1_900)}`,
          },
        });
        expect(res.statusCode).toBe(202);
        if (res.json<{ accepted: boolean }>().accepted) accepted++;
      }
    }
    const failing = await app.inject({ method: 'GET', url: '/orders/9' });
    expect(failing.statusCode).toBe(500);
    await instance.errors.flush();

    // New browser groups are admitted at 60 a minute whatever the number of clients (the flood
    // takes seconds; on a machine slow enough to cross into another minute, 60 more).
    const minutes = Math.floor((Date.now() - started) / 60_000) + 1;
    expect(accepted).toBeGreaterThanOrEqual(60);
    expect(accepted).toBeLessThanOrEqual(60 * minutes);
    const browser = await instance.errors.groups({ source: 'browser', limit: 1_000 });
    expect(browser).toHaveLength(accepted);
    expect(await instance.errors.groups({ source: 'server' })).toEqual([
      expect.objectContaining({ type: 'TypeError', count: 1 }),
    ]);
    const rows = await instance.store.db.selectFrom('bulwark_error_events').select('data').execute();
    const bytes = rows.reduce((sum, row) => sum + Buffer.byteLength(row.data, 'utf8'), 0);
    // At most 3 samples of at most 6 KiB per browser group, and the server error's sample.
    expect(rows.length).toBeLessThanOrEqual(accepted * 3 + 1);
    expect(bytes).toBeLessThanOrEqual(accepted * 3 * 6 * 1024 + 20 * 1024);
  });

  it('forwards to Sentry (envelopes to a local server speaking the protocol) with fingerprint, context and release', async () => {
    const sentry = await sentryServer();
    const { app, instance } = await adminApp(
      { sentryDsn: sentry.dsn, serviceVersion: '9.9.9' },
      failingRoutes,
    );
    await app.inject({ url: '/orders/5' });
    await until(() => sentry.envelopes.length > 0, 10_000, 'an envelope');
    const envelope = sentry.envelopes[0];
    expect(envelope?.path).toMatch(/^\/api\/42\/envelope\//);
    const event = envelope?.items[2] as {
      exception: { values: { type: string; value: string }[] };
      fingerprint: string[];
      release: string;
      user: { id: string };
      contexts: { request: { route: string } };
    };
    expect(event.exception.values.at(-1)).toMatchObject({ type: 'TypeError', value: 'Order 5 has no lines' });
    expect(event.release).toBe('9.9.9');
    expect(event.user).toMatchObject({ id: 'u-7' });
    expect(event.contexts.request.route).toBe('/orders/:id');
    await instance.errors.flush();
    const [group] = await instance.errors.groups();
    expect(event.fingerprint).toEqual([group?.fingerprint]);

    // The kill switch stops forwarding; local tracking goes on.
    await instance.flags.kill('bulwark.errors.sentry', { actor: 'test', reason: 'drill' });
    await app.inject({ url: '/orders/6' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sentry.envelopes).toHaveLength(1);
    await instance.errors.flush();
    expect((await instance.errors.groups())[0]?.count).toBe(2);
  });

  it('an unreachable, failing or hanging Sentry never fails a request nor blocks shutdown', async () => {
    const failing = await sentryServer({ status: 500 });
    const hanging = await sentryServer({ hang: true });
    const closedPort = await freePort();
    for (const dsn of [`http://k@127.0.0.1:${closedPort}/1`, failing.dsn, hanging.dsn]) {
      const { app, instance } = await adminApp({ sentryDsn: dsn }, failingRoutes);
      for (let i = 0; i < 20; i++) expect((await app.inject({ url: `/orders/${i}` })).statusCode).toBe(500);
      expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
      await instance.errors.flush();
      expect((await instance.errors.groups())[0]?.count).toBe(20);
      const closing = app.close();
      await expect(
        Promise.race([closing.then(() => 'closed'), new Promise((r) => setTimeout(() => r('stuck'), 8_000))]),
      ).resolves.toBe('closed');
    }
    expect(failing.envelopes.length).toBeGreaterThan(0);
    expect(hanging.envelopes.length).toBeGreaterThan(0);
  });
});

describe('process-level errors', () => {
  it.each([
    ['exception', 'TypeError', 'Cart <n> is corrupt'],
    ['rejection', 'RangeError', 'Payment <n> declined'],
  ])('an unhandled %s is captured and written, then the process exits 1', async (crash, type, message) => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bwk-crash-'));
    const app = spawnTs('test/fixtures/crash-app.ts', [], { BULWARK_DATA_DIR: dataDir, CRASH: crash });
    const exit = await app.exited;
    expect(exit.code).toBe(1);
    expect(app.stdout()).toContain('exiting (the supervisor restarts the app)');
    const store = await createStore({ dataDir });
    try {
      const errors = new ErrorStore(store.db);
      const [group] = await errors.list({ limit: 10 });
      expect(group).toMatchObject({ type, message, count: 1, firstRelease: '3.0.0' });
      const [sample] = await errors.samples(group?.fingerprint ?? '', 1);
      expect(sample).toMatchObject({ level: 'fatal', handled: false });
    } finally {
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
