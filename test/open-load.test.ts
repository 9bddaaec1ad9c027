import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { openLoad } from '../bench/open-load.js';

let server: http.Server | undefined;

async function serve(handler: http.RequestListener): Promise<number> {
  server = http.createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

describe('the open-model load generator of the benchmarks (bench/open-load.ts)', () => {
  it('sends rate × seconds requests, times every one and counts non-2xx answers as failed', async () => {
    let n = 0;
    const port = await serve((_req, res) => {
      n += 1;
      const body = '{"hello":"world"}';
      res.writeHead(n % 4 === 0 ? 503 : 200, {
        'content-type': 'application/json',
        'content-length': body.length,
      });
      res.end(body);
    });
    const { times, failed } = await openLoad({
      port,
      path: '/hello',
      rate: 400,
      seconds: 0.5,
      connections: 4,
    });
    expect(times.length).toBe(200);
    expect(n).toBe(200);
    expect(failed).toBe(50);
    expect(times.every((t) => Number.isFinite(t) && t >= 0)).toBe(true);
  });

  it('counts the time a request waited for a connection: latency runs from its scheduled time', async () => {
    // One connection, each answer after 20 ms, 100 requests due within 0.1 s: the last one is due at
    // ~0.1 s but answered after ~2 s, and its latency must say so (no coordinated omission).
    const port = await serve((_req, res) => setTimeout(() => res.end('ok'), 20));
    const { times, failed } = await openLoad({ port, path: '/', rate: 1000, seconds: 0.1, connections: 1 });
    expect(failed).toBe(0);
    expect(times[times.length - 1]).toBeGreaterThan(1000);
  });

  it('ends and counts the requests lost when the server closes every connection', async () => {
    let seen = 0;
    const port = await serve((req) => {
      seen += 1;
      req.socket.destroy();
    });
    const { times, failed } = await openLoad({ port, path: '/', rate: 200, seconds: 0.25, connections: 2 });
    expect(seen).toBeGreaterThan(0);
    expect(failed).toBe(times.length);
  });
});
