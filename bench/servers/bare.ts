// Peer for bench/http.ts: bare Fastify with logging off, the same route as the Bulwark server.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/hello', async () => ({ hello: 'world' }));
await app.listen({ port: Number(process.env['PORT']), host: '127.0.0.1' });
process.send?.('ready');
process.once('SIGTERM', () => process.exit(0)); // lets --cpu-prof write its profile
