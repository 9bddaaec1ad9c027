import http from 'node:http';
import net from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app/build.js';
import type { BulwarkOptions } from '../src/runtime/create.js';
import { bulwark as plugin } from '../src/http/plugin.js';
import { LogCapture, testApp } from './helpers/app.js';
import { until } from './helpers/wait.js';

const apps: FastifyInstance[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** The demo app (its own Fastify options, as `npm start` builds it) listening on a free port. */
async function listening(options: BulwarkOptions): Promise<{ app: FastifyInstance; port: number }> {
  const app = await buildApp({
    env: {},
    store: { sqliteFile: ':memory:' },
    logDestination: new LogCapture(),
    defaultMetrics: false,
    metricsHistory: false,
    ...options,
  });
  apps.push(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  return { app, port: typeof address === 'object' && address !== null ? address.port : 0 };
}

/** A raw client connection that records what the server sent and whether it closed. */
interface Peer {
  socket: net.Socket;
  received(): string;
  closed: boolean;
}

async function connect(port: number): Promise<Peer> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  let received = '';
  const peer: Peer = { socket, received: () => received, closed: false };
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
  socket.on('error', () => undefined); // a refused connection resets; `close` follows
  socket.on('close', () => (peer.closed = true));
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', () => resolve());
  });
  return peer;
}

/** Writes `bytes` one at a time, one every 20 ms, until they are all sent or the server closes. */
function drip(peer: Peer, bytes: string): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    const timer = setInterval(() => {
      if (peer.closed || sent === bytes.length) {
        clearInterval(timer);
        resolve(sent);
        return;
      }
      peer.socket.write(bytes[sent] ?? '');
      sent += 1;
    }, 20);
  });
}

/** A GET on a fresh connection: the status, or the socket error's code when it was refused. */
function probe(port: number, path: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

function parseResponse(raw: string): {
  status: number;
  body: { error: { code: string; requestId: string } };
} {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  return {
    status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]),
    body: JSON.parse(body) as { error: { code: string; requestId: string } },
  };
}

async function metric(port: number, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = new RegExp(`^bulwark_http_connections_closed_total\\{reason="${reason}"\\} (\\d+)$`, 'm');
  return Number(line.exec(text)?.[1] ?? 0);
}

describe('HTTP server limits against a listening server', () => {
  it('cuts a body sent one byte at a time with a coded 408 while a normal client is served', async () => {
    const { port } = await listening({ headersTimeoutMs: 500, requestTimeoutMs: 500 });
    for (const path of ['/echo', '/errors/browser']) {
      const slow = await connect(port);
      const body = JSON.stringify({ message: 'x'.repeat(200) });
      slow.socket.write(
        `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${body.length}\r\n\r\n`,
      );
      const dripped = drip(slow, body);
      // A normal client on its own connection is answered while the slow one drips.
      const normal = await fetch(`http://127.0.0.1:${port}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message: 'hi' }),
      });
      expect(normal.status).toBe(200);
      // The body never completes: the server ends it (the idle timeout, 120 s, cannot be the cause).
      await until(() => slow.closed, 20_000, `the slow body to ${path} cut`);
      expect(await dripped).toBeLessThan(body.length);
      const answer = parseResponse(slow.received());
      expect(answer.status).toBe(408);
      expect(answer.body.error.code).toBe('BWK_ERR_HTTP_REQUEST_TIMEOUT');
      expect(answer.body.error.requestId).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(await metric(port, 'request_timeout')).toBe(2);
  });

  it('cuts headers sent one byte at a time (slowloris) the same way', async () => {
    const { port } = await listening({ headersTimeoutMs: 500, requestTimeoutMs: 1000 });
    const slow = await connect(port);
    const head = `GET /health/live HTTP/1.1\r\nHost: localhost\r\nX-Pad: ${'p'.repeat(500)}\r\n\r\n`;
    const sent = await drip(slow, head);
    expect(sent).toBeLessThan(head.length); // a byte count: the headers never completed
    expect(parseResponse(slow.received()).status).toBe(408);
  });

  it('refuses connections beyond BULWARK_MAX_CONNECTIONS; once the flood times out, /health/live answers', async () => {
    const { port } = await listening({ maxConnections: 50, headersTimeoutMs: 3000, requestTimeoutMs: 3000 });
    const flood: Peer[] = [];
    for (let i = 0; i < 80; i += 1) flood.push(await connect(port));
    // The 30 beyond the cap are closed at once, without a byte.
    await until(() => flood.filter((p) => p.closed).length >= 30, 20_000, '30 connections refused');
    const refused = flood.filter((p) => p.closed);
    expect(refused).toHaveLength(30);
    for (const peer of refused) expect(peer.received()).toBe('');
    // While the 50 silent connections are open, a probe is refused too...
    const during = await probe(port, '/health/live');
    expect(flood.filter((p) => p.received() !== '')).toHaveLength(0); // (none was cut yet)
    expect(typeof during).toBe('string');
    // ...until the headers timeout closes them, each with a 408.
    await until(() => flood.every((p) => p.closed), 20_000, 'the flood closed');
    const cut = flood.filter((p) => p.received() !== '');
    expect(cut).toHaveLength(50);
    for (const peer of cut) expect(parseResponse(peer.received()).status).toBe(408);
    expect(await probe(port, '/health/live')).toBe(200);
    expect(await metric(port, 'max_connections')).toBeGreaterThanOrEqual(31);
    expect(await metric(port, 'request_timeout')).toBe(50);
  });
});

describe('requests the server refuses before any route', () => {
  it('answers oversized headers 431, garbage 400 and a body over BULWARK_BODY_LIMIT_BYTES 413, all coded', async () => {
    const { app, port } = await listening({ bodyLimitBytes: 100 });
    const send = async (raw: string) => {
      const peer = await connect(port);
      peer.socket.write(raw);
      await until(() => peer.closed || peer.received().includes('}'), 20_000, 'an answer');
      return parseResponse(peer.received());
    };
    const big = await send(`GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    expect([big.status, big.body.error.code]).toEqual([431, 'BWK_ERR_HTTP_HEADERS_TOO_LARGE']);
    const garbage = await send('NOT HTTP AT ALL\r\n\r\n');
    expect([garbage.status, garbage.body.error.code]).toEqual([400, 'BWK_ERR_HTTP_BAD_REQUEST']);
    const large = await app.inject({ method: 'POST', url: '/echo', payload: { message: 'x'.repeat(200) } });
    expect([large.statusCode, large.json<{ error: { code: string } }>().error.code]).toEqual([
      413,
      'BWK_ERR_HTTP_BODY_TOO_LARGE',
    ]);
  });
});

describe('long-lived responses', () => {
  it('a silent response is cut at the idle timeout; a route that lifts it for itself streams on', async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const { app } = await testApp(
      (routes) => {
        routes.get('/silent', async (_request, reply) => {
          reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
          reply.raw.write(': open\n\n');
          await new Promise(() => undefined); // never says another word
        });
        routes.get('/events', async (request, reply) => {
          request.raw.setTimeout(0);
          reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
          reply.raw.write(': open\n\n');
          await released;
          reply.raw.end('data: done\n\n');
          return reply;
        });
      },
      { idleTimeoutMs: 1000, defaultMetrics: false, metricsHistory: false },
    );
    apps.push(app);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const stream = (path: string) =>
      new Promise<string>((resolve) => {
        let body = '';
        http
          .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve(`ended: ${body}`));
            res.on('error', () => resolve(`cut: ${body}`));
          })
          .on('error', () => resolve(`cut: ${body}`));
      });
    const events = stream('/events');
    // The silent one ends first, cut by the idle timeout; the lifted one is still open after it.
    expect(await stream('/silent')).toBe('cut: : open\n\n');
    release();
    expect(await events).toBe('ended: : open\n\ndata: done\n\n');
  });
});

describe('HTTP server limits without fastifyOptions()', () => {
  it('the plugin applies the settings to the server it is registered on', async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(plugin, {
      env: { BULWARK_MAX_CONNECTIONS: '123', BULWARK_REQUEST_TIMEOUT_MS: '4000' },
      store: { sqliteFile: ':memory:' },
      logLevel: 'silent',
      apiDocs: false,
      metricsHistory: false,
    });
    await app.ready();
    expect(app.server).toMatchObject({
      maxConnections: 123,
      requestTimeout: 4000,
      headersTimeout: 4000, // the 10 s default shrinks to the request timeout
      keepAliveTimeout: 72_000,
      timeout: 120_000,
      maxRequestsPerSocket: 0,
      connectionsCheckingInterval: 400,
    });
  });
});
