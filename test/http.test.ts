import { STATUS_CODES } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { bulwarkError } from '../src/errors/index.js';
import { adminApp, adminAuth } from './helpers/admin.js';
import { testApp, type LogCapture, type RegisteredRoute } from './helpers/app.js';
import { until } from './helpers/wait.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function routes(app: FastifyInstance): void {
  app.get(
    '/items/:id',
    {
      schema: {
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: { 200: Type.Object({ id: Type.Integer() }) },
      },
    },
    async (request) => {
      const { id } = request.params as { id: number };
      request.log.info({ user: { name: 'ann', password: 'hunter2' }, token: 'tok-123' }, 'looked up');
      return { id };
    },
  );
  app.post(
    '/items',
    {
      schema: {
        body: Type.Object(
          { name: Type.String({ minLength: 1 }), count: Type.Integer({ minimum: 0 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => request.body,
  );
  app.get('/boom', { schema: { hide: false } }, async () => {
    throw new Error('secret internals: db password is hunter2');
  });
  app.get('/refused/:status', async (request) => {
    const { status } = request.params as { status: string };
    // A library or the app throws a 4xx whose message was never meant for the client.
    throw Object.assign(new Error('Bad request: internal path /etc/app/secret.pem'), {
      statusCode: Number(status),
      code: 'APP_PARSE',
    });
  });
  app.get('/conflict', async () => {
    throw bulwarkError('BWK_ERR_STORE_CONFLICT', { namespace: 'n', key: 'k', actual: 2, expected: 1 });
  });
}

describe('HTTP layer', () => {
  let app: FastifyInstance;
  let logs: LogCapture;
  let registered: RegisteredRoute[];

  beforeAll(async () => {
    ({ app, logs, registered } = await testApp(routes));
  });
  afterAll(async () => {
    await app.close();
  });

  it("generates every request id; the client's own x-request-id is kept apart, bounded and sanitised", async () => {
    const generated = await app.inject({ method: 'GET', url: '/items/1' });
    expect(generated.statusCode).toBe(200);
    expect(generated.headers['x-request-id']).toMatch(UUID);
    // Two requests that bring the same id still get distinct ids, so their log and audit rows never merge.
    const given = await Promise.all(
      [1, 2].map(() =>
        app.inject({ method: 'GET', url: '/items/1', headers: { 'x-request-id': 'abc-123' } }),
      ),
    );
    const ids = given.map((res) => String(res.headers['x-request-id']));
    for (const id of ids) expect(id).toMatch(UUID);
    expect(new Set(ids).size).toBe(2);
    const hostile = await app.inject({
      method: 'GET',
      url: '/items/1',
      headers: { 'x-request-id': `a b\u0001<script>"${'x'.repeat(500)}` },
    });
    expect(hostile.headers['x-request-id']).toMatch(UUID);
    const lines = new Map(logs.requests().map((line) => [line['reqId'], line]));
    for (const id of ids) expect(lines.get(id)?.['clientRequestId']).toBe('abc-123');
    const cut = lines.get(hostile.headers['x-request-id'])?.['clientRequestId'];
    expect(cut).toBe(`a_b__script__${'x'.repeat(115)}`);
    expect(lines.get(generated.headers['x-request-id'])).not.toHaveProperty('clientRequestId');
  });

  it('writes exactly one log line per request with method, route template, status, duration and id', async () => {
    const before = logs.requests().length;
    const res = await app.inject({ method: 'GET', url: '/items/42?x=1' });
    expect(res.statusCode).toBe(200);
    const lines = logs.requests().slice(before);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'info',
      method: 'GET',
      route: '/items/:id',
      statusCode: 200,
      reqId: res.headers['x-request-id'],
    });
    expect(typeof lines[0]?.['durationMs']).toBe('number');
    expect(JSON.stringify(logs.lines)).not.toContain('incoming request');
  });

  it('redacts passwords, tokens, authorization headers and cookies in logs', async () => {
    await app.inject({
      method: 'GET',
      url: '/items/7',
      headers: { authorization: 'Bearer sk_live_abc', cookie: 'session=s3cr3t' },
    });
    app.log.info(
      {
        req: { headers: { authorization: 'Bearer sk_live_abc', cookie: 'session=s3cr3t' } },
        apiKey: 'k-999',
      },
      'headers',
    );
    const text = JSON.stringify(logs.lines);
    for (const secret of ['hunter2', 'tok-123', 'sk_live_abc', 's3cr3t', 'k-999'])
      expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it('answers unknown routes with a coded 404', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope?token=abc' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: {
        code: 'BWK_ERR_HTTP_NOT_FOUND',
        message: 'Route GET /nope not found',
        requestId: res.headers['x-request-id'],
      },
    });
  });

  it('answers validation errors with 400 naming the failing field', async () => {
    const missing = await app.inject({ method: 'POST', url: '/items', payload: { name: 'a' } });
    expect(missing.statusCode).toBe(400);
    const body = missing.json<{ error: { code: string; details: { field: string }[]; message: string } }>();
    expect(body.error.code).toBe('BWK_ERR_HTTP_VALIDATION');
    expect(body.error.details.map((d) => d.field)).toContain('body.count');
    const wrongType = await app.inject({ method: 'POST', url: '/items', payload: { name: 'a', count: -1 } });
    expect(wrongType.json<{ error: { details: { field: string }[] } }>().error.details[0]?.field).toBe(
      'body.count',
    );
    const badParam = await app.inject({ method: 'GET', url: '/items/zero' });
    expect(badParam.statusCode).toBe(400);
    expect(badParam.json<{ error: { details: { field: string }[] } }>().error.details[0]?.field).toBe(
      'params.id',
    );
  });

  it('answers unparseable, oversized and unsupported bodies with coded 4xx', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/items',
      payload: '{"name":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: { code: string } }>().error.code).toBe('BWK_ERR_HTTP_BAD_BODY');
    const media = await app.inject({
      method: 'POST',
      url: '/items',
      payload: 'x',
      headers: { 'content-type': 'application/x-weird' },
    });
    expect(media.statusCode).toBe(415);
    expect(media.json<{ error: { code: string } }>().error.code).toBe('BWK_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE');
    const large = await app.inject({
      method: 'POST',
      url: '/items',
      payload: JSON.stringify({ name: 'x'.repeat(1_100_000), count: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(large.statusCode).toBe(413);
    expect(large.json<{ error: { code: string } }>().error.code).toBe('BWK_ERR_HTTP_BODY_TOO_LARGE');
  });

  it('hides internals of unexpected errors and logs them with the request id', async () => {
    const res = await app.inject({ method: 'GET', url: '/boom' });
    const requestId = res.headers['x-request-id'];
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({
      error: { code: 'BWK_ERR_HTTP_INTERNAL', message: 'Internal server error', requestId },
    });
    expect(res.body).not.toContain('stack');
    // One line for the request, at error level, carrying the error.
    const logged = logs.lines.filter((l) => l['reqId'] === requestId);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 'error', msg: 'request', statusCode: 500, route: '/boom' });
    expect((logged[0]?.['err'] as { message: string }).message).toContain('secret internals');
  });

  it("answers a foreign 4xx with its status and a generic message, logging the error's own", async () => {
    for (const status of [400, 403, 422]) {
      const res = await app.inject({ method: 'GET', url: `/refused/${status}` });
      expect(res.statusCode).toBe(status);
      const body = res.json<{ error: { code: string; message: string; requestId: string } }>();
      expect(body.error).toMatchObject({
        code: 'BWK_ERR_HTTP_BAD_REQUEST',
        requestId: res.headers['x-request-id'],
      });
      expect(body.error.message).toBe(`Bad request: ${status} ${STATUS_CODES[status]}`);
      expect(res.body).not.toContain('secret.pem');
      const line = logs.requests().find((l) => l['reqId'] === res.headers['x-request-id']);
      expect((line?.['err'] as { message?: string } | undefined)?.message).toContain('/etc/app/secret.pem');
    }
    // Fastify's own client errors keep their message: it describes the request, not the server.
    const badUrl = await app.inject({ method: 'GET', url: '/items/%zz' });
    expect(badUrl.statusCode).toBe(400);
    expect(badUrl.json()).toEqual({
      error: {
        code: 'BWK_ERR_HTTP_BAD_REQUEST',
        message: "Bad request: '/items/%zz' is not a valid url component",
        requestId: badUrl.headers['x-request-id'],
      },
    });
  });

  it('maps catalogue errors thrown by handlers to their status and code', async () => {
    const res = await app.inject({ method: 'GET', url: '/conflict' });
    expect(res.statusCode).toBe(409);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('BWK_ERR_STORE_CONFLICT');
  });

  it('labels HTTP metrics by route template, never by raw URL', async () => {
    await app.inject({ method: 'GET', url: '/items/123456' });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toMatch(
      /http_request_duration_seconds_bucket\{le="0\.005",route="\/items\/:id",method="GET",status_class="2xx"\}/,
    );
    expect(res.body).toMatch(/http_requests_total\{route="unmatched",method="GET",status_class="4xx"\} \d+/);
    expect(res.body).not.toContain('123456');
    expect(res.body).toMatch(
      /bulwark_store_query_duration_seconds_count\{engine="sqlite",operation="select",outcome="ok"\} \d+/,
    );
    expect(res.body).toContain('process_resident_memory_bytes');
  });

  it('serves health in application/health+json', async () => {
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/health+json');
    const body = res.json<{
      status: string;
      checks: Record<string, { status: string; time: string; observedValue: unknown }[]>;
    }>();
    expect(body.status).toBe('pass');
    expect(body.checks['store:responseTime']?.[0]).toMatchObject({ status: 'pass', observedUnit: 'ms' });
    // Without REDIS_URL the cache runs embedded, and health says so.
    expect(body.checks['cache:tier']?.[0]).toMatchObject({ status: 'pass', observedValue: 'embedded' });
    expect(body.checks['redis:mode']).toBeUndefined();
    expect(Number.isNaN(Date.parse(body.checks['store:responseTime']?.[0]?.time ?? ''))).toBe(false);
    expect((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/health/live' })).json<{ status: string }>().status).toBe(
      'pass',
    );
  });

  it('documents every registered route in OpenAPI', async () => {
    const spec = (await app.inject({ method: 'GET', url: '/api-docs/json' })).json<{
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    }>();
    expect(spec.openapi).toMatch(/^3\./);
    const documented = new Set(
      Object.entries(spec.paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
      ),
    );
    const visible = registered.filter((r) => !r.hidden && r.method !== 'HEAD');
    expect(visible.length).toBeGreaterThanOrEqual(8);
    for (const route of visible) expect(documented).toContain(`${route.method} ${route.url}`);
    // Only the documentation's own pages and the console's page and assets are hidden.
    for (const route of registered.filter((r) => r.hidden))
      expect(route.url, route.url).toMatch(/^\/(api-docs|admin$|admin\/\*$|admin\/assets\/)/);
    const ui = await app.inject({ method: 'GET', url: '/api-docs/' });
    expect([200, 302]).toContain(ui.statusCode);
  });
});

describe('request ids on audit rows', () => {
  it('two admin requests that bring the same x-request-id are audited under distinct ids', async () => {
    const { app, instance } = await adminApp();
    const headers = { ...adminAuth, 'x-request-id': 'chosen-by-client' };
    // Changes are audited (reads are not): asking twice to force a dependency that is not configured.
    const change = {
      method: 'PUT' as const,
      url: '/admin/api/dependencies/redis/forced',
      headers,
      payload: { forced: true },
    };
    const answered = await Promise.all([app.inject(change), app.inject(change)]);
    const ids = answered.map((res) => res.headers['x-request-id']);
    // The audit row is written in onResponse, after the reply went out.
    let rows: { detail: unknown }[] = [];
    await until(async () => {
      rows = await instance.store.audit.list({ target: '/dependencies/redis/forced' });
      return rows.length === 2;
    });
    expect(rows.map((row) => (row.detail as { requestId: string }).requestId).sort()).toEqual(ids.sort());
    expect(new Set(ids).size).toBe(2);
  });
});

describe('HTTP layer in development', () => {
  it('adds the stack to 5xx bodies, and withheld 4xx messages, only when NODE_ENV=development', async () => {
    const { app } = await testApp(routes, { nodeEnv: 'development' });
    const res = await app.inject({ method: 'GET', url: '/boom' });
    const body = res.json<{ error: { stack?: string; message: string } }>();
    expect(res.statusCode).toBe(500);
    expect(body.error.stack).toContain('Error: secret internals');
    // A withheld 4xx message is shown in development, without a stack.
    const refused = (await app.inject({ method: 'GET', url: '/refused/403' })).json<{
      error: { stack?: string; message: string };
    }>();
    expect(refused.error.message).toBe(
      'Bad request: 403 Forbidden: Bad request: internal path /etc/app/secret.pem',
    );
    expect(refused.error.stack).toBeUndefined();
    await app.close();
  });
});

describe('readiness with a hung dependency', () => {
  it('ready fails by the check timeout while live passes, and /health never waits', async () => {
    const { app } = await testApp();
    let hang = false;
    let hung = 0;
    app.bulwark.health.register({
      name: 'slowdb:responseTime',
      intervalMs: 50,
      timeoutMs: 150,
      check: () => {
        if (!hang) return { status: 'pass' };
        hung += 1;
        return new Promise(() => undefined); // never answers
      },
    });
    await app.bulwark.health.runAll();
    expect((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
    hang = true;
    let status = 200;
    await until(
      async () => {
        // Every probe answers although each hung check it could wait on never will.
        status = (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode;
        return status !== 200;
      },
      10_000,
      'ready fails',
    );
    expect(hung).toBeGreaterThan(0);
    expect(status).toBe(503);
    const ready = (await app.inject({ method: 'GET', url: '/health/ready' })).json<{
      checks: Record<string, { output?: string }[]>;
    }>();
    expect(ready.checks['slowdb:responseTime']?.[0]?.output).toMatch(/did not answer within 150 ms/);
    const live = await app.inject({ method: 'GET', url: '/health/live' });
    expect(live.statusCode).toBe(200);
    await app.close();
  });
});

describe('plugin without fastifyOptions()', () => {
  it('still echoes request ids, counts metrics and answers coded errors, through hooks', async () => {
    const { default: Fastify } = await import('fastify');
    const { bulwark: plugin } = await import('../src/http/plugin.js');
    const app = Fastify();
    await app.register(plugin, {
      env: {},
      store: { sqliteFile: ':memory:' },
      logLevel: 'silent',
      apiDocs: false,
    });
    app.get('/x', async () => ({ ok: true }));
    const res = await app.inject({ method: 'GET', url: '/x', headers: { 'x-request-id': 'hook-1' } });
    expect(res.headers['x-request-id']).toBe('req-1'); // Fastify's own ids without fastifyOptions()
    expect(
      (await app.inject({ method: 'GET', url: '/nope' })).json<{ error: { code: string } }>().error.code,
    ).toBe('BWK_ERR_HTTP_NOT_FOUND');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/http_requests_total\{route="\/x",method="GET",status_class="2xx"\} 1/);
    await app.close();
  });
});
