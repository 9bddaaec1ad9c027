// bench/overload.ts's subject: one app, three ways — MODE=none (plain Fastify), MODE=under-pressure
// (Fastify + @fastify/under-pressure as its README configures it) or MODE=bulwark (Fastify + Bulwark
// with load shedding, the routes marked with their class). Every route does the same work: waits
// IO_MS (a database call, say) then computes CPU_MS on the event loop (rendering, say).
import Fastify, { type FastifyInstance } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { bulwark, fastifyOptions } from '../../src/fastify.js';
import { createBulwark } from '../../src/index.js';

const mode = process.env['MODE'] ?? 'none';
const port = Number(process.env['PORT']);
const ioMs = Number(process.env['IO_MS'] ?? 5);
const cpuMs = Number(process.env['CPU_MS'] ?? 1);

function burn(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

let app: FastifyInstance;
if (mode === 'bulwark') {
  // PROTECTION: options as JSON, to try other settings than the defaults (which the figures use).
  const protection =
    process.env['PROTECTION'] === undefined ? true : (JSON.parse(process.env['PROTECTION']) as object);
  const instance = await createBulwark({ port, protection });
  app = Fastify(fastifyOptions(instance));
  await app.register(bulwark, { bulwark: instance, protection });
} else {
  app = Fastify();
  if (mode === 'under-pressure') {
    // The README's example less its two memory thresholds (100 MB of RSS or heap), which this
    // process passes at idle: with them every request would be refused.
    await app.register((await import('@fastify/under-pressure')).default, {
      maxEventLoopDelay: 1000,
      maxEventLoopUtilization: 0.98,
    });
  }
}
for (const priority of ['critical', 'default', 'sheddable'] as const) {
  app.get(`/${priority}`, { config: { priority } }, async () => {
    await sleep(ioMs);
    burn(cpuMs);
    return { ok: true };
  });
}
await app.listen({ port, host: '127.0.0.1' });
process.send?.('ready');
process.once('SIGTERM', () => process.exit(0));
