// bench/http.ts's subject: Fastify + Bulwark with everything on (request ids, one log line per
// request at info level, metrics, coded errors, health checks, API docs), the same route as the peer.
import Fastify from 'fastify';
import { bulwark, fastifyOptions } from '../../src/fastify.js';
import { createBulwark } from '../../src/index.js';

const instance = await createBulwark({ port: Number(process.env['PORT']), logLevel: 'info' });
const app = Fastify(fastifyOptions(instance));
await app.register(bulwark, { bulwark: instance });
app.get('/hello', async () => ({ hello: 'world' }));
await app.listen({ port: instance.settings.port, host: '127.0.0.1' });
process.send?.('ready');
process.once('SIGTERM', () => process.exit(0)); // lets --cpu-prof write its profile
