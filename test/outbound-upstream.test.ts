// bulwark.http against a REAL upstream in a child process (test/fixtures/outbound-upstream.ts),
// through the Fastify app: kill -9 it and the breaker opens (calls fail fast, coded), start it
// again and one trial call closes it; SIGSTOP it and calls end at their deadline; retries only for
// idempotent calls and within the budget (counted at the upstream); the adaptive throttle rejects
// locally while it answers 503; the kill-switch flag; the health check, metrics and admin API.
import http from 'node:http';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bulwark } from '../src/runtime/create.js';
import type { UpstreamOptions } from '../src/outbound/index.js';
import { adminApp, adminAuth } from './helpers/admin.js';
import { spawnOnFreePort, spawnTs, type Spawned } from './helpers/process.js';
import { until } from './helpers/wait.js';

const FIXTURE = 'test/fixtures/outbound-upstream.ts';
const procs: Spawned[] = [];

afterEach(async () => {
  await Promise.all(
    procs.splice(0).map(async (p) => {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGCONT');
        p.child.kill('SIGKILL');
      }
      await p.exited;
    }),
  );
});

async function upstream(): Promise<{ proc: Spawned; port: number }> {
  const started = await spawnOnFreePort(FIXTURE, [], {}, (port) => `listening ${port}`);
  procs.push(started.proc);
  return started;
}

/** The fixture again on `port` (the one it had before it was killed). */
async function restart(port: number): Promise<Spawned> {
  const proc = spawnTs(FIXTURE, [], { PORT: String(port) });
  procs.push(proc);
  await proc.waitFor(`listening ${port}`);
  return proc;
}

/** A request straight to the fixture (not through Bulwark): its control routes. */
function control(port: number, path: string, method = 'GET'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

const counts = async (port: number) =>
  JSON.parse(await control(port, '/control/counts')) as Record<string, number>;

/** An app whose `/call?method=` forwards to upstream `api` at `port`'s `/work`, with `options`. */
async function appFor(
  port: number,
  options: UpstreamOptions,
): Promise<{ app: FastifyInstance; instance: Bulwark }> {
  return adminApp(
    { outbound: { upstreams: { api: { origin: `http://127.0.0.1:${port}`, ...options } } } },
    (app) => {
      app.get<{ Querystring: { method?: string } }>('/call', async (request) => {
        const answer = await request.server.bulwark.http.request('api', {
          method: request.query.method ?? 'GET',
          path: '/work',
          ...(request.query.method === 'POST' ? { body: 'x' } : {}),
        });
        return answer.text();
      });
    },
  );
}

async function call(
  app: FastifyInstance,
  method = 'GET',
): Promise<{ status: number; code: string | undefined }> {
  const res = await app.inject({ url: `/call?method=${method}` });
  if (res.statusCode < 400) return { status: res.statusCode, code: undefined };
  return { status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code };
}

async function healthOf(
  app: FastifyInstance,
): Promise<{ status: string; observedValue?: string } | undefined> {
  const res = await app.inject({ url: '/health' });
  const report = res.json<{ checks: Record<string, { status: string; observedValue?: string }[]> }>();
  return report.checks['outbound:api']?.[0];
}

describe('bulwark.http against a real upstream', () => {
  it('kill -9: the breaker opens and calls fail fast (503, coded); restarted: one trial call after halfOpenAfterMs closes it (the only call it sees)', async () => {
    const { proc, port } = await upstream();
    const { app, instance } = await appFor(port, {
      breaker: { consecutiveFailures: 3, halfOpenAfterMs: 3_000 },
      retry: { maxRetries: 0 },
      throttle: false,
    });
    expect(await call(app)).toEqual({ status: 200, code: undefined });
    proc.child.kill('SIGKILL');
    await proc.exited;
    // Refused connections: three failures (502), then the breaker is open.
    for (let i = 0; i < 3; i++)
      expect(await call(app)).toEqual({ status: 502, code: 'BWK_ERR_OUTBOUND_FAILED' });
    const openedAt = Date.now();
    expect(await call(app)).toEqual({ status: 503, code: 'BWK_ERR_OUTBOUND_OPEN' });
    expect(instance.http.upstreams()[0]?.breaker).toBe('open');
    await until(async () => (await healthOf(app))?.status === 'warn', 10_000, 'outbound:api warn');
    expect((await healthOf(app))?.observedValue).toBe('open');
    // An open breaker never fails readiness.
    expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200);
    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/bulwark_outbound_breaker_state\{upstream="api"\} 2/);
    expect(metrics).toMatch(/bulwark_outbound_requests_total\{upstream="api",outcome="open"\} 1/);

    await restart(port);
    // Still open until halfOpenAfterMs has passed: calls fail fast without reaching the upstream.
    const early = await call(app);
    if (Date.now() - openedAt < 2_800) {
      expect(early).toEqual({ status: 503, code: 'BWK_ERR_OUTBOUND_OPEN' });
      expect(await counts(port)).toEqual({});
    }
    await until(async () => (await call(app)).status === 200, 10_000, 'a trial call succeeds');
    expect(instance.http.upstreams()[0]?.breaker).toBe('closed');
    // The upstream saw the one trial call, nothing while the breaker was open.
    expect(await counts(port)).toEqual({ GET: 1 });
    expect(await call(app)).toEqual({ status: 200, code: undefined });
    await until(async () => (await healthOf(app))?.status === 'pass', 10_000, 'outbound:api pass');

    const admin = await app.inject({ url: '/admin/api/outbound', headers: adminAuth });
    expect(admin.statusCode).toBe(200);
    expect(admin.json()).toEqual([
      expect.objectContaining({
        name: 'api',
        origin: `http://127.0.0.1:${port}`,
        breaker: 'closed',
        killed: false,
        calls: expect.objectContaining({ success: 3, failure: 3 }) as unknown,
        lastFailure: expect.objectContaining({ code: 'BWK_ERR_OUTBOUND_FAILED' }) as unknown,
      }),
    ]);
  });

  it('SIGSTOP: calls end with BWK_ERR_OUTBOUND_DEADLINE (504) at their deadline', async () => {
    const { proc, port } = await upstream();
    const { app } = await appFor(port, { deadlineMs: 1_000, throttle: false });
    expect((await call(app)).status).toBe(200);
    proc.child.kill('SIGSTOP');
    const started = Date.now();
    expect(await call(app)).toEqual({ status: 504, code: 'BWK_ERR_OUTBOUND_DEADLINE' });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(990);
    // Generous slack for a loaded machine: the point is that it ends near the deadline, not at undici's 300 s.
    expect(took).toBeLessThan(6_000);
    proc.child.kill('SIGCONT');
  });

  it('retries idempotent calls only, and within the budget (counted at the upstream)', async () => {
    const { port } = await upstream();
    const { app, instance } = await appFor(port, {
      retry: { maxRetries: 2, ratio: 0.1, minRetries: 0, baseDelayMs: 1, maxDelayMs: 5 },
      breaker: { consecutiveFailures: 1_000_000, minimumRps: 1_000_000 },
      throttle: false,
    });
    await control(port, '/control/status?code=503', 'POST');
    for (let i = 0; i < 20; i++)
      expect(await call(app, 'POST')).toEqual({ status: 502, code: 'BWK_ERR_OUTBOUND_FAILED' });
    expect(await counts(port)).toEqual({ POST: 20 });
    for (let i = 0; i < 50; i++) expect((await call(app, 'GET')).status).toBe(502);
    const gets = (await counts(port))['GET'] ?? 0;
    // 70 calls in the budget's window: at most 7 retries, and some were made.
    expect(gets).toBeGreaterThan(50);
    expect(gets).toBeLessThanOrEqual(57);
    expect(instance.http.upstreams()[0]?.retries).toBe(gets - 50);
  });

  it('throttles locally while the upstream answers 503, sending it only what is admitted', async () => {
    const { port } = await upstream();
    const { app, instance } = await appFor(port, {
      retry: { maxRetries: 0 },
      breaker: { consecutiveFailures: 1_000_000, minimumRps: 1_000_000 },
    });
    await control(port, '/control/status?code=503', 'POST');
    const codes: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const { code = 'none' } = await call(app);
      codes[code] = (codes[code] ?? 0) + 1;
    }
    const reached = (await counts(port))['GET'] ?? 0;
    expect(codes['BWK_ERR_OUTBOUND_THROTTLED']).toBeGreaterThan(100);
    expect(reached).toBe(codes['BWK_ERR_OUTBOUND_FAILED']);
    expect(reached).toBeLessThan(100);
    expect(instance.http.upstreams()[0]?.throttle?.rejectProbability).toBeGreaterThan(0.5);
    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain(
      `bulwark_outbound_throttled_total{upstream="api"} ${codes['BWK_ERR_OUTBOUND_THROTTLED']}`,
    );
  });

  it('the flag bulwark.outbound.api is its kill switch', async () => {
    const { port } = await upstream();
    const { app, instance } = await appFor(port, {});
    expect((await call(app)).status).toBe(200);
    await instance.flags.kill('bulwark.outbound.api', { actor: 'test' });
    await until(async () => (await call(app)).code === 'BWK_ERR_OUTBOUND_KILLED', 10_000, 'kill switch on');
    expect((await call(app)).status).toBe(503);
    expect(await counts(port)).toEqual({ GET: 1 });
    await until(async () => (await healthOf(app))?.status === 'warn', 10_000, 'outbound:api warn');
    await instance.flags.revive('bulwark.outbound.api', { actor: 'test' });
    await until(async () => (await call(app)).status === 200, 10_000, 'kill switch off');
  });
});
