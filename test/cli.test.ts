import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnTs } from './helpers/process.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const run = spawnTs('src/cli/main.ts', args, env);
  const { code } = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

// Each test spawns the CLI (tsx, seconds per start on a loaded machine) up to 8 times in sequence.
describe('bulwark CLI', { timeout: 120_000 }, () => {
  it('--help lists the commands; each command has its own --help', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('migrate');
    expect(top.stdout).toContain('settings');
    const migrate = await cli(['migrate', '--help']);
    expect(migrate.code).toBe(0);
    expect(migrate.stdout).toContain('up | down | status');
  });

  it('migrate status, up, down and up again on a fresh SQLite data dir', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-cli-'));
    dirs.push(dataDir);
    const env = { BULWARK_DATA_DIR: dataDir };
    const before = await cli(['migrate', 'status'], env);
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(/0001_kv\s+pending/);
    const up = await cli(['migrate', 'up'], env);
    expect(up.stdout).toMatch(/applied\s+0001_kv/);
    expect(up.stdout).toMatch(/applied\s+0002_audit/);
    const down = await cli(['migrate', 'down'], env);
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/reverted 0010_jobs_take_idx/);
    const status = await cli(['migrate', 'status'], env);
    expect(status.stdout).toMatch(/0006_alerts\s+applied/);
    expect(status.stdout).toMatch(/0010_jobs_take_idx\s+pending/);
    expect((await cli(['migrate', 'up'], env)).stdout).toMatch(/applied\s+0010_jobs_take_idx/);
    expect((await cli(['migrate', 'up'], env)).stdout).toContain('up to date');
  });

  it('bad input exits non-zero with a message naming what is wrong', async () => {
    const action = await cli(['migrate', 'sideways']);
    expect(action.code).toBe(1);
    expect(action.stderr).toContain('<action> must be up, down or status');
    const steps = await cli(['migrate', 'down', '--steps', 'zero']);
    expect(steps.code).not.toBe(0);
    expect(steps.stderr).toContain('--steps');
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('frobnicate');
  });

  it('settings validates the environment, naming each bad variable, and masks secrets', async () => {
    const bad = await cli(['settings'], { PORT: 'abc', REDIS_URL: 'http://x' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('PORT');
    expect(bad.stderr).toContain('REDIS_URL');
    const good = await cli(['settings', '--json'], {
      DATABASE_URL: 'postgres://u:hunter2@db:5432/app',
      BULWARK_ADMIN_KEY: 'a-very-long-admin-key-123',
    });
    expect(good.code).toBe(0);
    const shown = JSON.parse(good.stdout) as Record<string, unknown>;
    expect(shown['databaseUrl']).toBe('postgres://u:***@db:5432/app');
    expect(good.stdout).not.toContain('hunter2');
    expect(good.stdout).not.toContain('a-very-long-admin-key-123');
  });

  it('settings masks passwords given as URL query parameters, and credentials in a bare userinfo', async () => {
    const run = await cli(['settings', '--json'], {
      DATABASE_URL: 'postgres://app@db:5432/app?sslmode=require&password=hunter3&sslPassword=pem-pass',
      REDIS_URL: 'rediss://tok3n-in-userinfo@cache:6380?db=2&auth_token=r3dis-tok',
    });
    expect(run.code).toBe(0);
    const shown = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(shown['databaseUrl']).toBe(
      'postgres://***@db:5432/app?sslmode=require&password=***&sslPassword=***',
    );
    expect(shown['redisUrl']).toBe('rediss://***@cache:6380?db=2&auth_token=***');
    for (const secret of ['hunter3', 'pem-pass', 'tok3n-in-userinfo', 'r3dis-tok'])
      expect(run.stdout).not.toContain(secret);
  });
});
