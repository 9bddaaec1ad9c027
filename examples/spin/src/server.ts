// Spin as a server process (`npm start` runs it under `bulwark supervise`): on the embedded defaults
// (SQLite under BULWARK_DATA_DIR, no Redis needed), every setting from the environment. No top-level
// await: it runs as a CommonJS bundle (dist/spin/server.cjs) with V8's code cache.
import { serveApp } from 'bulwark/fastify';
import { buildSpin } from './app.js';
import { warmUp, warmUpJoins } from './warmup.js';

// Read before the app is built: a bad SPIN_WARMUP_JOINS is a configuration error (exit 78).
let joins = 0;

void serveApp(
  async () => {
    joins = warmUpJoins(process.env);
    return buildSpin();
  },
  {
    name: 'spin',
    links: { app: '/', 'queue status': '/status', dashboard: '/dashboard' },
    warmUp: async () => {
      if (joins === 0) return { joins };
      const done = await warmUp(joins);
      if (done.answered < done.joins)
        throw new Error(`the scratch Spin answered ${done.answered} of ${done.joins} joins with 200`);
      return done;
    },
  },
);
