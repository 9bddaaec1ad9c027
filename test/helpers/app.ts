import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { bulwark as plugin, fastifyOptions } from '../../src/http/plugin.js';
import { createBulwark, type BulwarkOptions } from '../../src/runtime/create.js';

/** A log destination that keeps every parsed line. */
export class LogCapture extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n'))
      if (line.trim() !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  }
  /** The request lines (msg "request"). */
  requests(): Record<string, unknown>[] {
    return this.lines.filter((l) => l['msg'] === 'request');
  }
}

/** A route as registered, seen by an onRoute hook. */
export interface RegisteredRoute {
  method: string;
  url: string;
  hidden: boolean;
}

/**
 * A Fastify app with Bulwark on an in-memory SQLite store and a captured log, not listening.
 * `routes` adds the test's own routes before `ready()`.
 */
export async function testApp(
  routes: (app: FastifyInstance) => void = () => undefined,
  options: BulwarkOptions = {},
): Promise<{ app: FastifyInstance; logs: LogCapture; registered: RegisteredRoute[] }> {
  const logs = new LogCapture();
  const bulwark = await createBulwark({
    env: {},
    store: { sqliteFile: ':memory:' },
    logDestination: logs,
    defaultMetrics: true,
    ...options,
  });
  const app = Fastify(fastifyOptions(bulwark)).withTypeProvider<TypeBoxTypeProvider>();
  const registered: RegisteredRoute[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const hidden = route.schema?.hide === true;
    for (const method of methods) registered.push({ method, url: route.url, hidden });
  });
  await app.register(plugin, { bulwark });
  app.addHook('onClose', async () => bulwark.close());
  routes(app);
  await app.ready();
  return { app: app as unknown as FastifyInstance, logs, registered };
}
