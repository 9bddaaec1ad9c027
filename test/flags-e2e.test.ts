import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBulwark, type Bulwark } from '../src/runtime/create.js';
import { LogCapture } from './helpers/app.js';
import { spawnTs } from './helpers/process.js';
import { until } from './helpers/wait.js';

const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-flags-e2e-'));
const running: Bulwark[] = [];
afterAll(async () => {
  for (const b of running) await b.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('as an operator would', () => {
  // No Redis here, so no pub/sub: the CLI's write reaches the instances only through their polling of
  // the store's flag revision. How fast that is (target p99 < 2 s) is measured by `npm run bench:flags`.
  it(
    'a kill switch flipped with the CLI turns the cache off on two running instances, by their polling of the store',
    { timeout: 60_000 },
    async () => {
      for (let i = 0; i < 2; i += 1)
        running.push(
          await createBulwark({
            env: { BULWARK_DATA_DIR: dir },
            logDestination: new LogCapture(),
            defaultMetrics: false,
          }),
        );
      for (const b of running) await b.cache.set('greeting', 'hello');
      const cli = spawnTs('src/cli/main.ts', ['flags', 'kill', 'bulwark.cache', '--reason', 'drill'], {
        BULWARK_DATA_DIR: dir,
      });
      const { code } = await cli.exited;
      expect(code, cli.stderr()).toBe(0);
      await until(
        async () =>
          (await Promise.all(running.map((b) => b.cache.get('greeting')))).every((v) => v === undefined),
        20_000,
        'both instances stop caching',
      );
      expect(running.map((b) => b.flags.get('bulwark.cache')?.enabled)).toEqual([false, false]);
      expect((await running[0]!.flags.history('bulwark.cache'))[0]).toMatchObject({
        action: 'flag.kill',
        detail: { reason: 'drill' },
      });
    },
  );
});
