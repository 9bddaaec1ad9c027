// createBulwark() either starts every part or leaves nothing open: each part is made to fail in turn
// (with Redis configured, so the Redis users open real connections), and a service config file
// broken by hand stops the start with its own error.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTs } from './helpers/process.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

let redis: RedisServer;
const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-unwind-'));
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('start-up unwind', () => {
  it(
    'a part that fails to start: everything started before it is closed, its error thrown, the process ends by itself',
    { timeout: 180_000 },
    async () => {
      const run = spawnTs('test/fixtures/start-unwind.ts', [], {
        BULWARK_DATA_DIR: dir,
        REDIS_URL: redis.url,
        LOG_LEVEL: 'silent',
      });
      // Ending by itself is the proof that no handle is left: one would keep it alive.
      const ended = await Promise.race([
        run.exited,
        new Promise((resolve) => setTimeout(() => resolve('still running'), 150_000)),
      ]);
      if (ended === 'still running') run.child.kill('SIGKILL');
      const cases = run
        .stdout()
        .split('\n')
        .filter((line) => line.startsWith('{"case"'))
        .map((line) => JSON.parse(line) as { case: string; error: string; left: string[] });
      expect(ended, run.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
      // (What it leaves are the modules' own once-per-process handles: signal handlers, a DNS channel.)
      expect(cases.shift()).toMatchObject({ case: 'a full start and close', error: 'none: it started' });
      expect(cases.map((c) => c.case)).toEqual([
        'store',
        'history',
        'leaks',
        'redis',
        'cache',
        'rateLimiter',
        'queues',
        'errors',
        'rollouts',
        'config',
        'supervisor',
        'instances',
        'alerts',
        'access',
        'protection',
        'degradation',
        'outbound',
        'flags',
        'broken config file',
      ]);
      for (const c of cases.slice(0, -1))
        expect(c).toEqual({ case: c.case, error: `injected: ${c.case} failed to start`, left: [] });
      expect(cases.at(-1)).toEqual({ case: 'broken config file', error: 'BWK_ERR_CONFIG_PARSE', left: [] });
    },
  );
});
