// Benchmark upstream of bench/outbound.ts: answers every request with a short body on PORT
// (127.0.0.1), and tells its parent over IPC when it listens.
import http from 'node:http';

const server = http.createServer((_req, res) => res.end('ok'));
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env['PORT']), '127.0.0.1', () => process.send?.('ready'));
