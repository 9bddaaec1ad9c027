import http from 'node:http';
import type net from 'node:net';
import autocannon from 'autocannon';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterProxy, type ProxyOptions } from '../src/supervisor/proxy.js';
import { freePort, spawnOnFreePort, type Spawned } from './helpers/process.js';
import { until } from './helpers/wait.js';

const FIXTURE = 'test/fixtures/proxy-upstream.ts';

interface App {
  id: string;
  port: number;
  proc: Spawned;
}

const procs: Spawned[] = [];
const proxies: ClusterProxy[] = [];

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(
    procs.splice(0).map(async (p) => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }),
  );
});

/** The fixture binds the PORT it is given: on a port taken meanwhile it is started again elsewhere. */
async function app(id: string): Promise<App> {
  const { proc, port } = await spawnOnFreePort(FIXTURE, [], { ID: id }, (p) => `listening ${p}`);
  procs.push(proc);
  return { id, port, proc };
}

/**
 * Keep-alive load by autocannon until `stop()` (or `amount` requests); `onResponse` sees the count
 * of answers so far, for placing a fault after load has flowed instead of after a fixed time.
 */
function cannon(
  opts: autocannon.Options,
  onResponse: (answered: number) => void = () => undefined,
): { result: Promise<autocannon.Result>; stop(): void } {
  let answered = 0;
  let instance: autocannon.Instance | undefined;
  const result = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(opts, (error: unknown, done) =>
      error ? reject(error instanceof Error ? error : new Error('autocannon failed')) : resolve(done),
    );
    instance.on('response', () => onResponse(++answered));
  });
  return { result, stop: () => instance?.stop() };
}

async function startProxy(
  apps: App[],
  opts: Partial<ProxyOptions> = {},
): Promise<{ proxy: ClusterProxy; port: number }> {
  const proxy = new ClusterProxy({ port: 0, host: '127.0.0.1', ...opts });
  proxies.push(proxy);
  const port = await proxy.listen();
  for (const a of apps) proxy.add({ id: a.id, port: a.port });
  return { proxy, port };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection; `body` is sent with a Content-Length unless `chunks` is given. */
function call(
  port: number,
  path: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string; chunks?: string[] } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.chunks !== undefined) {
      for (const chunk of opts.chunks) req.write(chunk);
      req.end();
    } else req.end(opts.body);
  });
}

async function countsOf(a: App): Promise<Record<string, number>> {
  return JSON.parse((await call(a.port, '/counts')).body) as Record<string, number>;
}

describe('cluster proxy: balancing and headers', () => {
  it('balances over two upstreams: round-robin on ties, least in-flight first', async () => {
    const [a, b] = await Promise.all([app('a'), app('b')]);
    const { proxy, port } = await startProxy([a, b]);
    const seen: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 20; i++) {
      const { status, body } = await call(port, '/id');
      expect(status).toBe(200);
      seen[body] = (seen[body] ?? 0) + 1;
    }
    expect(seen['a']).toBeGreaterThanOrEqual(8);
    expect(seen['b']).toBeGreaterThanOrEqual(8);

    // One slow request holds one upstream: every quick request goes to the other one.
    const slow = call(port, '/id?delay=1500');
    await until(() => proxy.inFlight() === 1, 5_000, 'slow request in flight');
    const busy = proxy.stats().upstreams.find((u) => u.inFlight === 1)?.id;
    const quick: string[] = [];
    for (let i = 0; i < 6; i++) quick.push((await call(port, '/id')).body);
    expect(quick).toEqual(Array(6).fill(busy === 'a' ? 'b' : 'a'));
    expect((await slow).body).toBe(busy);
  });

  it('sets x-forwarded-* and strips hop-by-hop headers', async () => {
    const a = await app('a');
    const { port } = await startProxy([a]);
    const { body } = await call(port, '/headers', {
      headers: {
        'x-forwarded-for': '10.0.0.1',
        'x-forwarded-proto': 'https',
        'keep-alive': 'timeout=5',
        'proxy-authorization': 'Basic eDp5',
        connection: 'keep-alive, x-hop',
        'x-hop': '1',
        'x-kept': 'yes',
      },
    });
    const seen = JSON.parse(body) as Record<string, string>;
    expect(seen['x-forwarded-for']).toBe('127.0.0.1'); // replaced: no proxy is trusted by default
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe(`127.0.0.1:${port}`);
    expect(seen['host']).toBe(`127.0.0.1:${port}`);
    expect(seen['x-kept']).toBe('yes');
    for (const name of ['keep-alive', 'proxy-authorization', 'x-hop']) expect(seen[name]).toBeUndefined();
  });
});

describe('cluster proxy: forwarding headers', () => {
  const SPOOFED = {
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'bank.example',
    forwarded: 'for=10.9.9.9;proto=https',
    'x-real-ip': '10.8.8.8',
  };

  it('replaces an untrusted client’s forwarding headers: rotating X-Forwarded-For names no new client', async () => {
    const a = await app('a');
    const { port } = await startProxy([a]);
    for (const spoofed of ['10.0.0.1', '10.0.0.2', '203.0.113.9, 10.0.0.3', '']) {
      const { body } = await call(port, '/headers', {
        headers: { ...SPOOFED, ...(spoofed === '' ? {} : { 'x-forwarded-for': spoofed }) },
      });
      const seen = JSON.parse(body) as Record<string, string | undefined>;
      expect(seen).toMatchObject({
        'x-forwarded-for': '127.0.0.1',
        'x-forwarded-proto': 'http',
        'x-forwarded-host': `127.0.0.1:${port}`,
      });
      expect([seen['forwarded'], seen['x-real-ip']]).toEqual([undefined, undefined]);
    }
  });

  it('believes a trusted proxy in front: the client is the nearest address of its chain that is not a proxy', async () => {
    const a = await app('a');
    // The test's connections come from 127.0.0.1: it plays the load balancer in front.
    const { port } = await startProxy([a], { trustedProxies: ['127.0.0.0/8', '10.0.0.0/8'] });
    const seen = async (headers: http.OutgoingHttpHeaders) =>
      JSON.parse((await call(port, '/headers', { headers })).body) as Record<string, string | undefined>;
    expect(await seen({ ...SPOOFED, 'x-forwarded-for': '198.51.100.7, 10.1.2.3' })).toMatchObject({
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'bank.example',
      forwarded: 'for=10.9.9.9;proto=https',
      'x-real-ip': '10.8.8.8',
    });
    // What the client itself put left of the load balancer's entry is not believed.
    expect(await seen({ 'x-forwarded-for': '192.0.2.66, 198.51.100.7, 10.1.2.3' })).toMatchObject({
      'x-forwarded-for': '198.51.100.7',
    });
    expect(await seen({})).toMatchObject({ 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http' });
  });

  it('refuses a trusted proxy entry that is not an address or a range', () => {
    expect(() => new ClusterProxy({ port: 0, host: '127.0.0.1', trustedProxies: ['10.0.0.0/33'] })).toThrow(
      /trusted proxy "10\.0\.0\.0\/33"/,
    );
  });
});

describe('cluster proxy: failures and retries', () => {
  it('kill -9 of one upstream under keep-alive load: 0 failed requests, retries counted', async () => {
    const [a, b] = await Promise.all([app('a'), app('b')]);
    const { proxy, port } = await startProxy([a, b]);
    // failed() is never called: the proxy must hide the death on its own (the supervisor may be late).
    // A fixed number of requests, the kill after a quarter of them: load before and after it.
    const total = 2_000;
    const load = cannon(
      { url: `http://127.0.0.1:${port}/id`, connections: 50, amount: total },
      (answered) => {
        if (answered === total / 4) a.proc.child.kill('SIGKILL');
      },
    );
    const result = await load.result;
    const stats = proxy.stats();
    console.log(
      `kill -9 under load: ${result.requests.total} requests, ${result['2xx']} 2xx, ` +
        `${result.non2xx} non-2xx, ${result.errors} errors; proxy retried ${stats.retried}, failed ${stats.failed}`,
    );
    expect(await a.proc.exited).toMatchObject({ signal: 'SIGKILL' });
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result['2xx']).toBe(total);
    expect(stats.retried).toBeGreaterThan(0);
    expect(stats.failed).toBe(0);
  });

  it('a POST already delivered to an upstream that dies gets 502 and is not retried', async () => {
    const [a, b] = await Promise.all([app('a'), app('b')]);
    const { proxy, port } = await startProxy([a]);
    const pending = call(port, '/echo?delay=10000&log=1', { method: 'POST', body: 'pay once' });
    await a.proc.waitFor('got POST /echo', 5_000);
    proxy.add({ id: b.id, port: b.port });
    a.proc.child.kill('SIGKILL');
    const { status, body, headers } = await pending;
    expect(status).toBe(502);
    const error = (JSON.parse(body) as { error: { code: string; message: string; requestId: string } }).error;
    expect(error.code).toBe('BWK_ERR_SUPERVISOR_UPSTREAM');
    expect(error.requestId).toBe(headers['x-request-id']);
    expect((await countsOf(b))['POST']).toBeUndefined();
    expect(proxy.stats()).toMatchObject({ retried: 0, failed: 1 });
  });

  it('hung(): a request that reached an instance killed for hanging is not retried (502 BWK_ERR_SUPERVISOR_HUNG)', async () => {
    const [a, b] = await Promise.all([app('a'), app('b')]);
    const { proxy, port } = await startProxy([a, b]);
    proxy.remove('b');
    const pending = call(port, '/id?delay=10000&slowOn=a&log=1');
    await a.proc.waitFor('got GET /id', 5_000);
    proxy.add({ id: b.id, port: b.port });
    // What the supervisor does with a hung instance: out of rotation, killed, then failed().
    proxy.hung('a');
    a.proc.child.kill('SIGKILL');
    await a.proc.exited;
    proxy.failed('a');
    const { status, body } = await pending;
    expect(status).toBe(502);
    expect((JSON.parse(body) as { error: { code: string } }).error.code).toBe('BWK_ERR_SUPERVISOR_HUNG');
    expect((await countsOf(b))['GET']).toBeUndefined();
    expect(proxy.stats()).toMatchObject({ retried: 0, failed: 1 });
    expect(await call(port, '/id')).toMatchObject({ status: 200, body: 'b' });
  });

  it('a POST to a refused port is retried on another upstream', async () => {
    const b = await app('b');
    const ghost = await freePort(); // nothing listens there
    const { proxy, port } = await startProxy([]);
    proxy.add({ id: 'ghost', port: ghost }); // first in rotation: the first POST goes there
    proxy.add({ id: b.id, port: b.port });
    for (let i = 0; i < 4; i++) {
      const { status, body } = await call(port, '/echo', { method: 'POST', body: `order ${i}` });
      expect(status).toBe(200);
      expect(body).toBe(`b:order ${i}`);
    }
    expect(proxy.stats().retried).toBeGreaterThanOrEqual(1);
    expect((await countsOf(b))['POST']).toBe(4);
  });

  it('failed(): requests in flight on the dead instance are retried on another one', async () => {
    const [a, b] = await Promise.all([app('a'), app('b')]);
    const { proxy, port } = await startProxy([a]);
    const pending = call(port, '/id?delay=10000&slowOn=a&log=1');
    await a.proc.waitFor('got GET /id', 5_000);
    proxy.add({ id: b.id, port: b.port });
    proxy.failed('a');
    expect(await pending).toMatchObject({ status: 200, body: 'b' });
    expect(proxy.stats().retried).toBe(1);
    expect(proxy.stats().upstreams.map((u) => u.id)).toEqual(['b']);
  });

  it('one instance killed: a GET in flight is held, then answered by its replacement', async () => {
    const a = await app('a');
    // A long cooldown stands for a supervisor slow to call failed(): the dead instance stays in rotation.
    const { proxy, port } = await startProxy([a], { cooldownMs: 10_000 });
    const inFlight = call(port, '/id?delay=10000&slowOn=a&log=1');
    await a.proc.waitFor('got GET /id', 5_000);
    a.proc.child.kill('SIGKILL');
    const replacement = await app('a2');
    await until(() => proxy.stats().held === 1, 5_000, 'the retry held');
    proxy.add({ id: 'a2', port: replacement.port });
    expect(await inFlight).toMatchObject({ status: 200, body: 'a2' });
    proxy.failed('a');
    expect(await call(port, '/id')).toMatchObject({ status: 200, body: 'a2' });
    expect(proxy.stats()).toMatchObject({ failed: 0, held: 0 });
  });

  it('bodies over retryBodyLimitBytes stream through, with or without a Content-Length', async () => {
    const a = await app('a');
    const { port } = await startProxy([a], { retryBodyLimitBytes: 1024 });
    const big = 'x'.repeat(200_000);
    expect((await call(port, '/echo', { method: 'POST', body: big })).body).toBe(`a:${big}`);
    const chunks = Array.from({ length: 50 }, (_, i) => `${i}`.padEnd(4_000, '.'));
    expect((await call(port, '/echo', { method: 'POST', chunks })).body).toBe(`a:${chunks.join('')}`);
    expect((await call(port, '/echo', { method: 'POST', chunks: ['small'] })).body).toBe('a:small');
  });

  it('a client that goes away aborts the upstream request', async () => {
    const a = await app('a');
    const { proxy, port } = await startProxy([a]);
    const req = http.get({ host: '127.0.0.1', port, path: '/id?delay=10000&log=1', agent: false });
    req.on('error', () => {});
    await a.proc.waitFor('got GET /id', 5_000);
    expect(proxy.inFlight('a')).toBe(1);
    req.destroy();
    await a.proc.waitFor('closed early /id', 5_000);
    await until(() => proxy.inFlight('a') === 0, 5_000, 'in-flight back to 0');
  });
});

describe('cluster proxy: hold and drain', () => {
  it('holds requests while no upstream is in rotation, sends them when one is added', async () => {
    const a = await app('a');
    const { proxy, port } = await startProxy([a]);
    proxy.remove('a');
    expect(proxy.stats().upstreams).toEqual([{ id: 'a', port: a.port, inRotation: false, inFlight: 0 }]);
    const pending = call(port, '/id');
    await until(() => proxy.stats().held === 1, 5_000, 'request held');
    proxy.add({ id: 'a', port: a.port });
    expect(await pending).toMatchObject({ status: 200, body: 'a' });
    expect(proxy.stats().held).toBe(0);
  });

  it('answers 503 BWK_ERR_SUPERVISOR_UNAVAILABLE when the hold expires', async () => {
    const { proxy, port } = await startProxy([], { holdMs: 300 });
    const started = Date.now();
    const { status, body, headers } = await call(port, '/id', { headers: { 'x-request-id': 'req-42' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(status).toBe(503);
    expect(headers['retry-after']).toBe('1');
    // The proxy chooses the id, as the app does: the client's own is not echoed.
    expect(JSON.parse(body)).toEqual({
      error: {
        code: 'BWK_ERR_SUPERVISOR_UNAVAILABLE',
        message: 'No app instance became ready within 300 ms',
        requestId: headers['x-request-id'],
      },
    });
    expect(headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(proxy.stats()).toMatchObject({ failed: 1, held: 0 });
  });

  it('drain: out of rotation at once, the in-flight request finishes, then drain resolves', async () => {
    const [a, b] = await Promise.all([app('a'), app('b')]);
    const { proxy, port } = await startProxy([a]);
    const slow = call(port, '/id?delay=1000&log=1');
    await a.proc.waitFor('got GET /id', 5_000);
    proxy.add({ id: b.id, port: b.port });
    let drained = false;
    const deadlineMs = 20_000;
    const draining = proxy.drain('a', deadlineMs).then(() => (drained = true));
    expect(proxy.stats().upstreams.find((u) => u.id === 'a')).toMatchObject({
      inRotation: false,
      inFlight: 1,
    });
    for (let i = 0; i < 3; i++) expect((await call(port, '/id')).body).toBe('b');
    expect(drained).toBe(false);
    // Answered by a itself: not cut off and retried elsewhere when drain destroyed a's sockets.
    expect(await slow).toMatchObject({ status: 200, body: 'a' });
    // Resolved by its last request ending, not by the deadline: well within half of it from there.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<string>(
      (resolve) => (timer = setTimeout(resolve, deadlineMs / 2, 'deadline')),
    );
    expect(await Promise.race([draining.then(() => 'drained'), deadline])).toBe('drained');
    clearTimeout(timer);
    expect(proxy.stats().upstreams.map((u) => u.id)).toEqual(['b']);
  });

  it('rolling reload under keep-alive load (add new, drain old, stop it): 0 failed, 0 retried', async () => {
    const [a, b, c] = await Promise.all([app('a'), app('b'), app('c')]);
    const { proxy, port } = await startProxy([a, b]);
    let reloaded: Promise<void> | undefined;
    let latest = 0;
    let answeredAtReload = 0;
    // Every request takes 20 ms, so the drain always has requests in flight on a to wait for. The
    // reload starts after 100 answers; the load stops 100 answers after it ended.
    const load = cannon(
      { url: `http://127.0.0.1:${port}/id?delay=20`, connections: 50, duration: 600 },
      (answered) => {
        latest = answered;
        if (answered === 100)
          reloaded = (async () => {
            proxy.add({ id: c.id, port: c.port });
            await proxy.drain('a', 5_000);
            a.proc.child.kill('SIGTERM');
            answeredAtReload = latest;
          })();
        if (answeredAtReload > 0 && answered >= answeredAtReload + 100) load.stop();
      },
    );
    const result = await load.result;
    await reloaded;
    const stats = proxy.stats();
    console.log(
      `rolling reload under load: ${result.requests.total} requests, ${result.non2xx} non-2xx, ` +
        `${result.errors} errors; proxy retried ${stats.retried}, failed ${stats.failed}`,
    );
    expect(result.errors + result.timeouts + result.non2xx).toBe(0);
    expect(result['2xx']).toBeGreaterThan(200); // traffic before, during and after the reload
    // A drain that did not wait would cut requests off, and they would be retried.
    expect(stats).toMatchObject({ retried: 0, failed: 0 });
    expect(stats.upstreams.map((u) => u.id).sort()).toEqual(['b', 'c']);
    expect((await countsOf(c))['GET']).toBeGreaterThan(0);
  });
});

describe('cluster proxy: streams and upgrades', () => {
  it('streams SSE event by event, and cuts the client off when the upstream dies mid-stream', async () => {
    const a = await app('a');
    const { proxy, port } = await startProxy([a]);

    const events: { text: string; at: number }[] = [];
    const endedAt = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/sse?n=3&interval=300', agent: false }, (res) => {
          expect(res.headers['content-type']).toBe('text/event-stream');
          res.setEncoding('utf8');
          res.on('data', (text: string) => events.push({ text, at: Date.now() }));
          res.on('end', () => resolve(Date.now()));
        })
        .on('error', reject);
    });
    expect(events.map((e) => e.text).join('')).toBe('data: 1\n\ndata: 2\n\ndata: 3\n\n');
    // A buffering proxy would deliver everything at the end.
    expect(events[0]?.text).toBe('data: 1\n\n');
    expect(endedAt - (events[0]?.at ?? endedAt)).toBeGreaterThanOrEqual(400);

    const outcome = await new Promise<string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/sse?interval=100', agent: false }, (res) => {
        res.once('data', () => a.proc.child.kill('SIGKILL'));
        res.on('error', () => {});
        res.on('end', () => resolve('clean end'));
        res.on('close', () => resolve(res.complete ? 'complete' : 'cut off'));
      });
      req.on('error', () => resolve('cut off'));
    });
    expect(outcome).toBe('cut off');
    expect(proxy.stats().failed).toBe(1);
  });

  it('pipes an upgrade both ways (retried past a refused port), counted in flight until closed', async () => {
    const a = await app('a');
    const { proxy, port } = await startProxy([]);
    proxy.add({ id: 'ghost', port: await freePort() }); // first in rotation, nothing listens there
    proxy.add({ id: a.id, port: a.port });
    const { socket, upstream } = await new Promise<{ socket: net.Socket; upstream: string }>(
      (resolve, reject) => {
        const req = http.request({
          host: '127.0.0.1',
          port,
          path: '/ws',
          headers: { connection: 'Upgrade', upgrade: 'echo' },
          agent: false,
        });
        req.on('upgrade', (res, socket) => {
          expect(res.statusCode).toBe(101);
          resolve({ socket, upstream: String(res.headers['x-upstream']) });
        });
        req.on('error', reject);
        req.end();
      },
    );
    expect(upstream).toBe('a');
    expect(proxy.inFlight('a')).toBe(1);
    expect(proxy.stats().retried).toBe(1);
    const echoed = new Promise<string>((resolve) =>
      socket.once('data', (d: Buffer) => resolve(d.toString())),
    );
    socket.write('ping');
    expect(await echoed).toBe('ping');
    socket.destroy();
    await until(() => proxy.inFlight('a') === 0, 5_000, 'tunnel closed');
  });

  it('listen() rejects when the port is taken', async () => {
    const { port } = await startProxy([]);
    const second = new ClusterProxy({ port, host: '127.0.0.1' });
    await expect(second.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await second.close();
  });
});
