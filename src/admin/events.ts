import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Bulwark } from '../runtime/create.js';
import { EventHub, type EventHubOptions } from './event-hub.js';
import { watchBulwark } from './event-sources.js';

/** Options of {@link registerEventStream}: the hub's limits and timings (see {@link EventHubOptions}). */
export type EventStreamOptions = Omit<EventHubOptions, 'logger' | 'isStopping'>;

/**
 * `GET /events`: the live event stream (Server-Sent Events) of the console, one per tab. Small change
 * events (`flags`, `dependencies`, `alerts`, `queues`, `audit`, `instances`, `config`, `errors`), at
 * most one per topic per second per stream, a heartbeat comment every 15 s, a `retry:` hint, and
 * `Last-Event-ID` honoured while this process still has the changes (else a `resync` event). At most
 * 100 streams per process (then 503 `BWK_ERR_ADMIN_STREAMS_FULL` with `Retry-After`); a client that
 * stops reading is dropped. Streams end when the app closes (as soon as readiness turns to stopping,
 * so they do not hold the connection drain).
 *
 * Register inside the authenticated, audited admin scope: it checks no key itself, and a request its
 * hooks refuse never reaches it. Returns the hub (its `stats`, for tests and metrics).
 */
export function registerEventStream(
  admin: FastifyInstance,
  bulwark: Bulwark,
  options: EventStreamOptions = {},
): EventHub {
  const hub = new EventHub({
    ...options,
    logger: bulwark.logger,
    isStopping: () => bulwark.health.lifecycle === 'stopping',
  });
  watchBulwark(hub, bulwark);
  // Without the core plugin's readiness (a bare Fastify), the close still ends the streams.
  admin.addHook('preClose', async () => hub.close());

  admin.get(
    '/events',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Live changes as Server-Sent Events (text/event-stream), coalesced to one per topic per second',
        security: [{ adminKey: [] }],
      },
    },
    async (request, reply) => {
      const header = request.headers['last-event-id'];
      const lastEventId = Array.isArray(header) ? header[0] : header;
      const stream = new PassThrough();
      try {
        hub.open(stream, lastEventId);
      } catch (error) {
        reply.header('retry-after', '5');
        throw error;
      }
      // The heartbeat keeps it busy; a silent client is found by its writes not draining. (An
      // injected request, app.inject(), has a socket of its own without timeouts.)
      if (typeof request.raw.socket?.setTimeout === 'function') request.raw.socket.setTimeout(0);
      reply.raw.once('close', () => stream.destroy());
      return reply
        .header('content-type', 'text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache, no-transform')
        .header('x-accel-buffering', 'no')
        .send(stream);
    },
  );
  return hub;
}
