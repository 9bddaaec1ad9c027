import Fastify, { type FastifyInstance } from 'fastify';
import http from 'node:http';
import { afterEach } from 'vitest';
import type { AttentionOptions } from '../../src/admin/attention.js';
import type { EventHub } from '../../src/admin/event-hub.js';
import { registerEventStream, type EventStreamOptions } from '../../src/admin/events.js';
import { registerInstanceRoutes } from '../../src/admin/instances.js';
import { registerOverviewRoutes } from '../../src/admin/overview.js';
import { bulwarkError } from '../../src/errors/index.js';
import { bulwarkCore } from '../../src/http/core.js';
import { fastifyOptions } from '../../src/http/plugin.js';
import { lazySchemas } from '../../src/http/lazy-schemas.js';
import { createBulwark, type Bulwark, type BulwarkOptions } from '../../src/runtime/create.js';
import { LogCapture } from './app.js';

export const LIVE_KEY = 'live-key-for-tests-0123456789';
export const liveAuth = { authorization: `Bearer ${LIVE_KEY}` };

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** Options of {@link liveApp}. */
export interface LiveAppOptions {
  bulwark?: BulwarkOptions;
  stream?: EventStreamOptions;
  overview?: AttentionOptions;
  /** Listen on a free port of 127.0.0.1 (default true). */
  listen?: boolean;
}

/**
 * An app with Bulwark's core plugin and an admin scope (`/admin/api`, a Bearer key check standing in
 * for the admin API's own hook) holding the instances, event stream and overview routes; closed after
 * each test. In-memory store unless `bulwark.store` says otherwise.
 */
export async function liveApp(opts: LiveAppOptions = {}): Promise<{
  app: FastifyInstance;
  bulwark: Bulwark;
  hub: EventHub;
  port: number;
  logs: LogCapture;
}> {
  const logs = new LogCapture();
  const bulwark = await createBulwark({
    env: {},
    store: { sqliteFile: ':memory:' },
    logDestination: logs,
    defaultMetrics: false,
    metricsHistory: false,
    ...opts.bulwark,
  });
  const app = Fastify(fastifyOptions(bulwark));
  app.addHook('onClose', async () => bulwark.close());
  apps.push(app);
  await app.register(bulwarkCore, { bulwark, apiDocs: false });
  let hub: EventHub | undefined;
  await app.register(
    async (admin) => {
      lazySchemas(admin);
      admin.addHook('onRequest', async (request) => {
        if (request.headers.authorization !== liveAuth.authorization)
          throw bulwarkError('BWK_ERR_ADMIN_UNAUTHORIZED');
      });
      registerInstanceRoutes(admin, bulwark);
      hub = registerEventStream(admin, bulwark, opts.stream);
      registerOverviewRoutes(admin, bulwark, opts.overview);
    },
    { prefix: '/admin/api' },
  );
  await app.ready();
  let port = 0;
  if (opts.listen !== false) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    port = typeof address === 'object' && address !== null ? address.port : 0;
  }
  if (hub === undefined) throw new Error('the event stream was not registered');
  return { app, bulwark, hub, port, logs };
}

/** One Server-Sent Event as received. */
export interface ReceivedEvent {
  id: string | undefined;
  event: string;
  data: unknown;
  at: number;
}

/** A Server-Sent Events client over node:http: every event it received, and its status. */
export interface SseClient {
  readonly status: Promise<number>;
  readonly events: ReceivedEvent[];
  /** Everything received, comments included. */
  text: string;
  readonly ended: Promise<void>;
  close(): void;
}

/** Opens `GET /admin/api/events` on `port` (with the test key unless `headers` replace it). */
export function sse(port: number, headers: Record<string, string> = liveAuth): SseClient {
  let resolveStatus: (status: number) => void = () => undefined;
  let resolveEnded: () => void = () => undefined;
  const client: SseClient = {
    status: new Promise((resolve) => (resolveStatus = resolve)),
    ended: new Promise((resolve) => (resolveEnded = resolve)),
    events: [],
    text: '',
    close: () => request.destroy(),
  };
  let buffer = '';
  const request = http.get(
    { host: '127.0.0.1', port, path: '/admin/api/events', headers, agent: false },
    (res) => {
      resolveStatus(res.statusCode ?? 0);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        client.text += chunk;
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = new Map<string, string>();
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
          }
          const event = fields.get('event');
          if (event !== undefined)
            client.events.push({
              id: fields.get('id'),
              event,
              data: JSON.parse(fields.get('data') ?? 'null') as unknown,
              at: Date.now(),
            });
        }
      });
      res.on('end', resolveEnded);
      res.on('close', resolveEnded);
    },
  );
  request.on('error', () => {
    resolveStatus(0);
    resolveEnded();
  });
  return client;
}

/** The events of one name a client received. */
export function named(client: SseClient, event: string): ReceivedEvent[] {
  return client.events.filter((e) => e.event === event);
}
