// Load shedding through real HTTP on a listening server: a fixed limit of 2 (so the test, not the
// latency, decides when slots are taken), routes held open by the test. What a client sees — who
// runs, who waits, who gets the coded 503 with Retry-After — and what the handler never sees (a
// request whose client left or whose deadline passed is dropped before it runs).
import Fastify, { type FastifyInstance } from 'fastify';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { attention } from '../src/admin/attention.js';
import { isBulwarkError } from '../src/errors/index.js';
import { bulwark as plugin, fastifyOptions } from '../src/http/plugin.js';
import type { ProtectionOptions } from '../src/protection/index.js';
import { createBulwark } from '../src/runtime/create.js';
import { LogCapture } from './helpers/app.js';
import { until } from './helpers/wait.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A gate the held routes wait on; `open()` lets every held request through. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/**
 * A listening app with load shedding at a fixed limit of 2, half of it reserved for critical
 * requests (so one default request fills the rest), and waits as long as a deadline allows.
 */
async function server(options: ProtectionOptions = {}, plugged: ProtectionOptions | false = {}) {
  const logs = new LogCapture();
  const protection: ProtectionOptions = {
    limit: { initial: 2, min: 2, max: 2 },
    criticalReserve: 0.5,
    queueIntervalMs: 60_000,
    ...options,
  };
  const instance = await createBulwark({
    env: {},
    store: { sqliteFile: ':memory:' },
    logDestination: logs,
    protection,
  });
  const app: FastifyInstance = Fastify(fastifyOptions(instance));
  await app.register(plugin, {
    bulwark: instance,
    protection: plugged === false ? false : { ...protection, ...plugged },
  });
  app.addHook('onClose', async () => instance.close());
  let held = gate();
  const ran: string[] = [];
  app.get('/slow', async (request) => {
    ran.push(String((request.query as { n?: string }).n));
    await held.opened;
    return { ok: true };
  });
  app.get('/critical', { config: { priority: 'critical' } }, async () => ({ ok: true }));
  app.get('/sheddable', { config: { priority: 'sheddable' } }, async () => ({ ok: true }));
  app.get('/stream', { config: { stream: true } }, async () => {
    await held.opened;
    return { ok: true };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  onTestFinished(async () => {
    held.open();
    await app.close();
  });
  const port = (app.server.address() as AddressInfo).port;
  const agent = new http.Agent({ keepAlive: false });
  const get = (path: string, headers: Record<string, string> = {}) => {
    let request!: http.ClientRequest;
    const answer = new Promise<Answer>((resolve, reject) => {
      request = http.get({ agent, host: '127.0.0.1', port, path, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      request.on('error', reject);
    });
    return { answer, request };
  };
  return {
    app,
    instance,
    logs,
    ran,
    get,
    release: () => {
      held.open();
      held = gate();
    },
    shed: () => instance.protection.shedder.counts.shed,
  };
}

describe('load shedding over HTTP', () => {
  it('queues a request over its class share and runs it when a slot frees; critical requests take the reserved share', async () => {
    const s = await server();
    const first = s.get('/slow?n=1');
    await until(() => s.ran.length === 1);
    const second = s.get('/slow?n=2');
    await until(() => s.instance.protection.shedder.queued === 1, 5000, 'the second request queued');
    // The default share (1 of 2) is taken; a critical request still runs at once.
    expect((await s.get('/critical').answer).status).toBe(200);
    // Probes are never shed nor counted.
    expect((await s.get('/health/live').answer).status).toBe(200);
    expect(s.ran).toEqual(['1']);
    s.release();
    expect((await first.answer).status).toBe(200);
    await until(() => s.ran.length === 2);
    s.release();
    expect((await second.answer).status).toBe(200);
    expect(s.ran).toEqual(['1', '2']);
    expect(s.instance.protection.shedder.inFlight).toBe(0);
  });

  it('drops a waiting request whose client hung up, before its handler runs', async () => {
    const s = await server();
    const first = s.get('/slow?n=1');
    await until(() => s.ran.length === 1);
    const gone = s.get('/slow?n=gone');
    gone.answer.catch(() => undefined);
    await until(() => s.instance.protection.shedder.queued === 1);
    gone.request.destroy();
    await until(() => s.shed()[1]?.['client-gone'] === 1, 5000, 'the waiter dropped as client-gone');
    s.release();
    expect((await first.answer).status).toBe(200);
    expect(s.ran).toEqual(['1']);
    expect(s.instance.protection.shedder.inFlight).toBe(0);
  });

  it('answers a coded 503 with Retry-After when a waiting request runs out of its X-Request-Timeout-Ms, and logs no line for it', async () => {
    const s = await server();
    const first = s.get('/slow?n=1');
    await until(() => s.ran.length === 1);
    const started = Date.now();
    const late = await s.get('/slow?n=late', { 'x-request-timeout-ms': '50', 'x-request-id': 'client-7' })
      .answer;
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(late.status).toBe(503);
    expect(Number(late.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(late.headers['cache-control']).toBe('no-store');
    expect(late.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(late.body) as { error: { code: string; message: string; requestId: string } };
    expect(body.error.code).toBe('BWK_ERR_PROTECTION_OVERLOADED');
    expect(body.error.message).toMatch(/shed this default request \(deadline\): retry in \d+ s/);
    expect(body.error.requestId).toBe(late.headers['x-request-id']);
    expect(s.ran).toEqual(['1']);
    s.release();
    await first.answer;
    // Thousands of these a second under overload: no request line at info or error for them.
    const lines = s.logs.requests().filter((l) => l['statusCode'] === 503);
    expect(lines).toEqual([]);
    const metrics = (await s.app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain('bulwark_protection_shed_total{class="default",reason="deadline"} 1');
  });

  it('refuses at once by the shedding curve: sheddable first, critical never; the console overview and the history see it', async () => {
    // The curve falls by 0.02 a tick while the service is clear, so by the time the request comes
    // sheddable requests are refused with a probability a little under 1: draw 0, always refused.
    const s = await server({ random: () => 0 });
    s.instance.protection.shedder.refusal[2] = 1;
    await until(async () => (await attention(s.instance)).some((item) => item.verdict === 'shedding'));
    // Its series are sampled into the metrics history (registered once: a second time throws).
    expect(() => s.instance.metrics.history?.register('protection.limit', () => 1)).toThrow(
      /already registered/,
    );
    const refused = await s.get('/sheddable').answer;
    expect(refused.status).toBe(503);
    const body = JSON.parse(refused.body) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('BWK_ERR_PROTECTION_OVERLOADED');
    expect(body.error.message).toMatch(/sheddable request \(overload\)/);
    expect((await s.get('/critical').answer).status).toBe(200);
  });

  it('admits everything when the flag bulwark.protection is off', async () => {
    const s = await server();
    await s.instance.flags.kill('bulwark.protection', { actor: 'test' });
    await until(() => !s.instance.protection.enabled);
    const answers = [1, 2, 3].map((n) => s.get(`/slow?n=${n}`).answer);
    await until(() => s.ran.length === 3, 5000, 'three requests running at once with a limit of 2');
    s.release();
    for (const answer of answers) expect((await answer).status).toBe(200);
  });

  it('lets streams through without holding a slot', async () => {
    const s = await server();
    const streams = [1, 2, 3].map(() => s.get('/stream').answer);
    await until(() => (s.instance.protection.shedder.counts.admitted[1] ?? 0) === 3);
    expect(s.instance.protection.shedder.inFlight).toBe(0);
    const slow = s.get('/slow?n=1');
    await until(() => s.ran.length === 1);
    s.release();
    expect((await slow.answer).status).toBe(200);
    for (const stream of streams) expect((await stream).status).toBe(200);
  });

  it('refuses to start with a route whose priority is not a class, naming the route', async () => {
    const instance = await createBulwark({
      env: {},
      store: { sqliteFile: ':memory:' },
      logDestination: new LogCapture(),
    });
    onTestFinished(() => instance.close());
    const app = Fastify(fastifyOptions(instance));
    onTestFinished(() => app.close());
    await app.register(plugin, { bulwark: instance, protection: true });
    let caught: unknown;
    try {
      app.get('/x', { config: { priority: 'urgent' as 'critical' } }, async () => ({}));
      await app.ready();
    } catch (error) {
      caught = error;
    }
    expect(isBulwarkError(caught) && caught.code).toBe('BWK_ERR_PROTECTION_OPTIONS');
    expect(String((caught as Error).message)).toContain('GET /x');
  });

  it('answers 429 to a client over its share while overloaded, and admits it again once it holds less', async () => {
    const s = await server(
      { clientShare: 0.5, criticalReserve: 0 },
      { clientKey: (r) => String(r.headers['x-tenant'] ?? 'anonymous') },
    );
    // Overloaded: the curve refuses sheddable requests (and falls by 0.02 a tick: seconds to clear).
    s.instance.protection.shedder.refusal[2] = 1;
    const first = s.get('/slow?n=1', { 'x-tenant': 'greedy' });
    const second = s.get('/slow?n=2', { 'x-tenant': 'greedy' });
    await until(() => s.ran.length === 2); // greedy holds 2 of the limit of 2: its share
    const third = await s.get('/critical', { 'x-tenant': 'greedy' }).answer;
    expect(third.status).toBe(429);
    expect(JSON.parse(third.body)).toMatchObject({ error: { code: 'BWK_ERR_PROTECTION_CLIENT_SHARE' } });
    expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    s.release();
    expect((await first.answer).status).toBe(200);
    expect((await second.answer).status).toBe(200);
    expect((await s.get('/critical', { 'x-tenant': 'greedy' }).answer).status).toBe(200);
  });

  it('takes the class from a trusted header or the app’s function when given', async () => {
    const s = await server(
      { random: () => 0 },
      { priorityHeader: 'x-priority', classify: (r) => (r.url.includes('vip') ? 'critical' : undefined) },
    );
    s.instance.protection.shedder.refusal[2] = 1;
    expect((await s.get('/critical', { 'x-priority': 'sheddable' }).answer).status).toBe(503);
    expect((await s.get('/critical?vip=1', { 'x-priority': 'sheddable' }).answer).status).toBe(200);
  });
});
