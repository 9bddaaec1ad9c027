// Spin as a server process (`npm start` runs it under `bulwark supervise`): on the embedded defaults
// (SQLite under BULWARK_DATA_DIR, no Redis needed), every setting from the environment.
import { serveApp } from 'bulwark/fastify';
import { buildSpin } from './app.js';

await serveApp(() => buildSpin(), {
  name: 'spin',
  links: { app: '/', 'queue status': '/status', dashboard: '/dashboard' },
});
