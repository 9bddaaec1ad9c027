// Spin as a server process (`npm start` runs it under `bulwark supervise`): on the embedded defaults
// (SQLite under BULWARK_DATA_DIR, no Redis needed), every setting from the environment. No top-level
// await: it runs as a CommonJS bundle (dist/spin/server.cjs) with V8's code cache.
import { serveApp } from 'bulwark/fastify';
import { buildSpin } from './app.js';

void serveApp(() => buildSpin(), {
  name: 'spin',
  links: { app: '/', 'queue status': '/status', dashboard: '/dashboard' },
});
