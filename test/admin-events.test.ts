import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { merge } from '../src/admin/event-hub.js';
import { checkoutFlag } from './helpers/flags.js';
import { LIVE_KEY, liveApp, named, sse, type SseClient } from './helpers/live.js';
import { until } from './helpers/wait.js';

const who = { actor: 'test' };
const flag = (n: number) => ({ ...checkoutFlag, key: `flag-${n}` });

/** Resolves once the client has its `ready` event (the stream is registered with the hub). */
async function ready(client: SseClient): Promise<void> {
  await until(() => named(client, 'ready').length === 1, 5_000, 'the ready event');
}

describe('admin API: live event stream (Server-Sent Events over real HTTP)', () => {
  it('sends a flags event within ~1.5 s of a flag change, with the key only', async () => {
    const { bulwark, port } = await liveApp();
    const client = sse(port);
    expect(await client.status).toBe(200);
    await ready(client);
    expect(client.text.startsWith('retry: 3000\n\n')).toBe(true);
    const changed = Date.now();
    await bulwark.flags.set(flag(1), who);
    await until(() => named(client, 'flags').length === 1, 1_500, 'a flags event');
    const [event] = named(client, 'flags');
    expect(event?.data).toEqual({ keys: ['flag-1'] });
    expect((event?.at ?? Infinity) - changed).toBeLessThan(1_500);
    client.close();
  });

  it('coalesces: 10 flag changes within 200 ms reach a client as at most 2 flags events', async () => {
    const { bulwark, port } = await liveApp();
    const client = sse(port);
    await ready(client);
    const started = Date.now();
    for (let n = 0; n < 10; n++) {
      await bulwark.flags.set(flag(n), who);
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    expect(Date.now() - started).toBeLessThan(400);
    // Long enough for a second, coalesced event (one second after the first).
    await until(
      () => named(client, 'flags').flatMap((e) => (e.data as { keys: string[] }).keys).length === 10,
      3_000,
      'every key',
    );
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const events = named(client, 'flags');
    expect(events.length).toBeLessThanOrEqual(2);
    expect(new Set(events.flatMap((e) => (e.data as { keys: string[] }).keys)).size).toBe(10);
    client.close();
  });

  it('refuses the 101st stream with 503 BWK_ERR_ADMIN_STREAMS_FULL, and a request without the key never opens one', async () => {
    const { app, hub, port } = await liveApp();
    const clients = Array.from({ length: 100 }, () => sse(port));
    expect(new Set(await Promise.all(clients.map((c) => c.status)))).toEqual(new Set([200]));
    await until(() => hub.stats.open === 100, 5_000, '100 open streams');
    const refused = await app.inject({ url: '/admin/api/events', headers: { authorization: 'Bearer x' } });
    expect(refused.statusCode).toBe(401);
    const extra = sse(port);
    expect(await extra.status).toBe(503);
    await extra.ended;
    expect(JSON.parse(extra.text)).toMatchObject({ error: { code: 'BWK_ERR_ADMIN_STREAMS_FULL' } });
    expect(hub.stats).toMatchObject({ open: 100, refused: 1 });
    clients[0]?.close();
    await until(() => hub.stats.open === 99, 5_000, 'a stream closed by its client leaves the hub');
    const again = sse(port);
    expect(await again.status).toBe(200);
    for (const client of [...clients, again]) client.close();
  });

  it('drops a client that never reads, without buffering for it', async () => {
    const { hub, port } = await liveApp({ stream: { minIntervalMs: 0, stallMs: 500 } });
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`GET /admin/api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${LIVE_KEY}\r\n\r\n`);
    await until(() => hub.stats.open === 1, 5_000, 'the stream open');
    socket.pause(); // reads nothing from now on
    const keys = Array.from({ length: 100 }, (_, i) => `${'k'.repeat(200)}-${i}`);
    let offered = 0;
    // ~20 KiB per event, far more than the socket buffers hold, until the hub gives up on it.
    while (hub.stats.open === 1 && offered < 200 * 1024 * 1024) {
      hub.publish('flags', { keys: keys.map((k) => `${k}-${offered}`) });
      offered += 20_000;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => hub.stats.open === 0, 5_000, 'the slow client dropped');
    expect(hub.stats.dropped).toBe(1);
    // What waited in the response's buffer (its writableLength, read at every write) was never more
    // than the limit (256 KiB) plus one event, whatever was offered. (The process's RSS is no measure
    // of this: it moves with the garbage the loop itself makes and when the collector runs.)
    expect(hub.stats.maxBufferedBytes).toBeLessThan(256 * 1024 + 64 * 1024);
    expect(offered).toBeGreaterThan(1024 * 1024);
    socket.destroy();
  });

  it('app.close() with open streams ends them and finishes promptly', async () => {
    const { app, port } = await liveApp();
    const clients = Array.from({ length: 5 }, () => sse(port));
    await Promise.all(clients.map(ready));
    const started = Date.now();
    await app.close();
    const took = Date.now() - started;
    await Promise.all(clients.map((c) => c.ended));
    // The core's drain gives idle connections up to 1 s; streams end as soon as readiness turns to stopping.
    expect(took).toBeLessThan(800);
  });

  it('app.close() finishes promptly with a client that stopped reading (its writes waiting to drain)', async () => {
    const { app, hub, port } = await liveApp({
      stream: { minIntervalMs: 0, stallMs: 60_000, maxBufferedBytes: 64 * 1024 * 1024 },
    });
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`GET /admin/api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${LIVE_KEY}\r\n\r\n`);
    await until(() => hub.stats.open === 1, 5_000, 'the stream open');
    socket.pause();
    const keys = Array.from({ length: 100 }, (_, i) => `${'k'.repeat(200)}-${i}`);
    for (let n = 0; hub.stats.blocked === 0 && n < 10_000; n++) {
      hub.publish('flags', { keys: keys.map((k) => `${k}-${n}`) });
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(hub.stats.blocked).toBe(1);
    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    socket.destroy();
  });

  it('honours Last-Event-ID while the changes are still held, else sends resync', async () => {
    const { bulwark, port } = await liveApp();
    const keeper = sse(port); // keeps the hub polling, so the missed change is known
    await ready(keeper);
    const first = sse(port);
    await ready(first);
    const lastId = named(first, 'ready')[0]?.id ?? '';
    first.close();
    await bulwark.flags.set(flag(7), who);
    await until(() => named(keeper, 'flags').length === 1, 2_000, 'the keeper saw it');
    const resumed = sse(port, {
      ...{ authorization: 'Bearer live-key-for-tests-0123456789' },
      'last-event-id': lastId,
    });
    await until(() => named(resumed, 'flags').length === 1, 2_000, 'the missed change replayed');
    expect(named(resumed, 'flags')[0]?.data).toEqual({ keys: ['flag-7'] });
    expect(named(resumed, 'ready')).toEqual([]);
    const stranger = sse(port, {
      authorization: 'Bearer live-key-for-tests-0123456789',
      'last-event-id': 'ffff-3',
    });
    await until(() => named(stranger, 'resync').length === 1, 2_000, 'resync');
    for (const client of [keeper, resumed, stranger]) client.close();
  });

  it('polled topics: a dead job shows as a queues event with the counts', async () => {
    const { bulwark, port } = await liveApp({ bulwark: { queues: { pollMs: 20 } } });
    const client = sse(port);
    await ready(client);
    bulwark.queues.process('mail', async () => {
      throw new Error('smtp down');
    });
    await bulwark.queues.add('mail', { to: 'a' }, { attempts: 1 });
    await until(
      () =>
        named(client, 'queues').some(
          (e) => (e.data as { queues: Record<string, { dead: number }> }).queues['mail']?.dead === 1,
        ),
      5_000,
      'a queues event with the dead job',
    );
    client.close();
  });
});

describe('coalescing (merge)', () => {
  it('joins arrays without duplicates, merges objects, replaces the rest, and bounds each to 100 items', () => {
    expect(merge({ keys: ['a', 'b'], n: 1 }, { keys: ['b', 'c'], n: 2 })).toEqual({
      keys: ['a', 'b', 'c'],
      n: 2,
    });
    expect(merge({ queues: { a: 1 } }, { queues: { b: 2 } })).toEqual({ queues: { a: 1, b: 2 } });
    const many = merge(
      { keys: Array.from({ length: 80 }, (_, i) => i) },
      { keys: Array.from({ length: 80 }, (_, i) => i + 80) },
    );
    expect(many['keys']).toHaveLength(100);
    expect((many['keys'] as number[]).at(-1)).toBe(159);
    expect(many['more']).toBe(true);
  });
});
