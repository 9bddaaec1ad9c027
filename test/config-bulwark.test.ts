import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBulwark } from '../src/runtime/create.js';
import { serviceSchema } from './fixtures/config-schema.js';
import { LogCapture } from './helpers/app.js';
import { until } from './helpers/wait.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('bulwark.config', () => {
  it('loads the service config, hot-reloads edits, keeps the last good one on a bad edit and says so in /health', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-config-app-'));
    dirs.push(dir);
    const file = path.join(dir, 'service.env');
    writeFileSync(file, 'PORT=8080\nDB_POOL_SIZE=10\n');
    const bulwark = await createBulwark({
      env: {},
      store: { sqliteFile: ':memory:' },
      dataDir: dir,
      logDestination: new LogCapture(),
      defaultMetrics: false,
      config: { schema: serviceSchema, file, env: {} },
    });
    try {
      const config = bulwark.config!;
      expect(config.get().db.poolSize).toBe(10);
      const check = () => bulwark.health.report().checks?.['config:revision']?.[0];
      await bulwark.health.runNow('config:revision');
      expect(check()).toMatchObject({ status: 'pass' });
      const changes: number[] = [];
      config.onChange(({ config: next }) => changes.push(next.db.poolSize));
      writeFileSync(file, 'PORT=8080\nDB_POOL_SIZE=12\n');
      await until(() => changes.includes(12), 5000, 'the edit applied');
      writeFileSync(file, 'PORT=8080\nDB_POOL_SIZE 13\n'); // a hand-broken line
      await until(
        async () => {
          await bulwark.health.runNow('config:revision');
          return check()?.status === 'warn';
        },
        5000,
        'the bad edit reported',
      );
      expect(check()?.output).toContain('line 2');
      expect(config.get().db.poolSize).toBe(12); // the last good config stays active
    } finally {
      await bulwark.close();
    }
  });
});
