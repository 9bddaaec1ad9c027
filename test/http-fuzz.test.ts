// Every documented route of the demo app, with the admin key and without, gets malformed paths,
// queries, bodies, content types and methods (about 3,000 requests), and a few requests Node's
// parser refuses are sent over raw sockets. Every answer must be below 500 and, when an error, in
// the coded shape `{ error: { code, message, requestId } }` with a code from the catalogue; the
// server must still answer afterwards.
import type { FastifyInstance, InjectOptions } from 'fastify';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app/build.js';
import { catalogue } from '../src/errors/index.js';
import { LogCapture } from './helpers/app.js';

const KEY = 'fuzz-admin-key-0123456789abcdef';
let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp({
    env: { BULWARK_ADMIN_KEY: KEY },
    store: { sqliteFile: ':memory:' },
    metricsHistory: false,
    defaultMetrics: false,
    logDestination: new LogCapture(),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app.close();
});

interface Operation {
  method: string;
  path: string;
  query: string[];
  body: Record<string, { type?: string }> | undefined;
}

async function operations(): Promise<Operation[]> {
  const doc = (await app.inject({ url: '/api-docs/json' })).json<{
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: { in: string; name: string }[];
          requestBody?: {
            content: Record<string, { schema: { properties?: Record<string, { type?: string }> } }>;
          };
        }
      >
    >;
  }>();
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
      body:
        op.requestBody?.content['application/json']?.schema.properties ?? (op.requestBody ? {} : undefined),
    })),
  );
}

const PARAMS = [
  '',
  'x'.repeat(600),
  '%ff',
  '%00',
  '..%2F..%2Fetc',
  '%F0%9F%98%80',
  '%C0%AE%C0%AE',
  '-1',
  '1e309',
  'null',
  '%20',
  '__proto__',
];
const HEADERS: Record<string, string>[] = [
  { 'x-request-id': 'x'.repeat(10_000) },
  { accept: '*/*;q=abc' },
  { 'x-forwarded-for': 'not-an-ip, ::ffff:999.1.1.1' },
  { cookie: `session=${'a'.repeat(8_000)}` },
  { 'content-type': 'application/json' },
  { 'accept-encoding': 'br;q=2, gzip;q=-1' },
];
const QUERIES = (names: string[]) => [
  '?x=%E0%A4%A',
  `?${'a=1&'.repeat(2_000)}`,
  '?__proto__[polluted]=1',
  ...names.flatMap((name) => [
    `?${name}=-1`,
    `?${name}=abc`,
    `?${name}=1e309`,
    `?${name}=${'9'.repeat(400)}`,
    `?${name}[]=1&${name}=2`,
  ]),
];
const WRONG: Record<string, unknown[]> = {
  string: [123, null, {}, 'x'.repeat(100_000)],
  number: ['x', null, '1e309', -1e308],
  integer: ['x', 1.5, -1, 2 ** 60, '-1e309'],
  boolean: ['true', 0, null],
  object: [[], 'x', 1],
  array: [{}, 'x'],
};
const BODIES = (props: Record<string, { type?: string }>) => [
  { payload: '{bad', type: 'application/json' },
  { payload: '[]', type: 'application/json' },
  { payload: 'null', type: 'application/json' },
  { payload: '"text"', type: 'application/json' },
  {
    payload: '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}',
    type: 'application/json',
  },
  { payload: `${'['.repeat(5_000)}${']'.repeat(5_000)}`, type: 'application/json' },
  { payload: '{}', type: 'text/plain' },
  { payload: '{}', type: 'application/json; charset=latin-9' },
  { payload: 'a=1', type: 'application/x-www-form-urlencoded' },
  { payload: 'x'.repeat(2 * 1024 * 1024), type: 'application/json' },
  ...Object.entries(props).flatMap(([name, schema]) =>
    (WRONG[schema.type ?? 'string'] ?? WRONG['string']!).map((value) => ({
      payload: JSON.stringify({ [name]: value }),
      type: 'application/json',
    })),
  ),
];

/** A request the event stream would admit and keep open: GET of /admin/api/events with the key. */
function isOpenStream(options: InjectOptions & { url: string }): boolean {
  const headers = (options.headers ?? {}) as Record<string, string>;
  return (
    (options.method ?? 'GET') === 'GET' &&
    options.url.split('?')[0] === '/admin/api/events' &&
    headers['authorization'] === `Bearer ${KEY}`
  );
}

/** Sends `options` over HTTP; resolves with the status and, for an error, its body; then closes. */
function streamHead(
  port: number,
  options: InjectOptions & { url: string },
): Promise<{ statusCode: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port, path: options.url, headers: options.headers as http.OutgoingHttpHeaders },
      (response) => {
        const statusCode = response.statusCode ?? 0;
        if (statusCode < 400) {
          request.destroy();
          return resolve({ statusCode, body: '' });
        }
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ statusCode, body }));
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/** Fills `{param}` segments of `path` with `value`. */
const fill = (path: string, value: string) => path.replace(/\{[^}]+\}/g, value);

function problems(request: string, status: number, body: string): string[] {
  if (status >= 500) return [`${request}: ${status} ${body.slice(0, 200)}`];
  if (status < 400) return [];
  try {
    const { error } = JSON.parse(body) as { error?: { code?: string; message?: string; requestId?: string } };
    if (error === undefined || typeof error.message !== 'string' || typeof error.requestId !== 'string')
      return [`${request}: ${status} not coded: ${body.slice(0, 200)}`];
    if (!(error.code !== undefined && error.code in catalogue))
      return [`${request}: ${status} unknown code ${error.code}`];
    return [];
  } catch {
    return [`${request}: ${status} not JSON: ${body.slice(0, 200)}`];
  }
}

describe('fuzzing every route of the demo app', () => {
  it(
    'malformed requests to every documented route: no 5xx, every error coded, the server still up',
    { timeout: 300_000 },
    async () => {
      const found: string[] = [];
      let sent = 0;
      const { port } = app.server.address() as net.AddressInfo;
      const send = async (options: InjectOptions & { url: string }) => {
        // An admitted event stream never ends, which app.inject() waits for: over real HTTP, its
        // status and head are what is judged, then the connection is closed.
        const res = isOpenStream(options) ? await streamHead(port, options) : await app.inject(options);
        sent += 1;
        found.push(
          ...problems(`${options.method ?? 'GET'} ${options.url.slice(0, 80)}`, res.statusCode, res.body),
        );
      };
      const ops = await operations();
      expect(ops.length).toBeGreaterThan(25);
      for (const op of ops) {
        for (const auth of [{}, { authorization: `Bearer ${KEY}` }, { authorization: 'Bearer wrong' }]) {
          const base = { method: op.method as InjectOptions['method'], headers: auth };
          const plain = fill(op.path, 'fuzz');
          for (const value of PARAMS) await send({ ...base, url: fill(op.path, value) });
          for (const query of QUERIES(op.query)) await send({ ...base, url: plain + query });
          if (op.body !== undefined)
            for (const body of BODIES(op.body))
              await send({
                ...base,
                url: plain,
                payload: body.payload,
                headers: { ...auth, 'content-type': body.type },
              });
          for (const headers of HEADERS)
            await send({ ...base, url: plain, headers: { ...auth, ...headers } });
          for (const method of ['PATCH', 'OPTIONS', 'TRACE'] as const)
            await send({ ...base, method, url: plain });
        }
      }
      expect(sent).toBeGreaterThan(3_000);
      expect(found).toEqual([]);
      expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
    },
  );

  it('a number too large to be finite is a validation error naming the field, in the query and the body', async () => {
    const auth = { authorization: `Bearer ${KEY}` };
    for (const url of ['/admin/api/audit?limit=1e309', `/admin/api/errors?limit=${'9'.repeat(400)}`]) {
      const res = await app.inject({ url, headers: auth });
      expect(res.statusCode, url).toBe(400);
      expect(res.json()).toMatchObject({
        error: {
          code: 'BWK_ERR_HTTP_VALIDATION',
          details: [{ field: 'querystring.limit', message: 'must be a finite number' }],
        },
      });
    }
    const body = await app.inject({
      method: 'POST',
      url: '/echo',
      payload: { message: 'x', delayMs: '1e309' },
    });
    expect(body.statusCode).toBe(400);
    expect(body.json()).toMatchObject({ error: { details: [{ field: 'body.delayMs' }] } });
  });

  it('requests Node’s parser refuses, over raw sockets: coded answers, the server still up', async () => {
    const { port } = app.server.address() as net.AddressInfo;
    const raw = (text: string) =>
      new Promise<string>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        let answer = '';
        socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
        socket.on('close', () => resolve(answer));
        socket.on('error', () => undefined);
        socket.end(text);
      });
    const found: string[] = [];
    for (const request of [
      'FOO / HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n',
      `GET /health HTTP/1.1\r\nHost: x\r\nX-Long: ${'a'.repeat(20_000)}\r\n\r\n`,
      'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
      'GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n',
      'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    ]) {
      const answer = await raw(request);
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (status === 0) found.push(`${JSON.stringify(request.slice(0, 40))}: no answer`);
      else found.push(...problems(JSON.stringify(request.slice(0, 40)), status, body));
    }
    expect(found).toEqual([]);
    expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
  });
});
