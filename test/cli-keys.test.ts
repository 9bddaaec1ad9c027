// `bulwark keys` spawned as a user runs it, on a data dir the admin API then opens: the key printed
// once, listed without it, revoked (and refused by the API at once), every change audited as cli:$USER.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyInfo } from '../src/access/types.js';
import { bulwark as plugin, fastifyOptions } from '../src/http/plugin.js';
import { createBulwark } from '../src/runtime/create.js';
import { LogCapture } from './helpers/app.js';
import { spawnTs } from './helpers/process.js';

let dataDir: string;

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const run = spawnTs('src/cli/main.ts', args, { BULWARK_DATA_DIR: dataDir, ...env });
  const { code } = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** The admin API on the CLI's data dir: the status of GET /admin/api/flags with each key. */
async function apiStatuses(keys: string[]): Promise<number[]> {
  const bulwark = await createBulwark({
    env: {},
    dataDir,
    logDestination: new LogCapture(),
    defaultMetrics: false,
    metricsHistory: false,
  });
  const app = Fastify(fastifyOptions(bulwark));
  app.addHook('onClose', async () => bulwark.close());
  try {
    await app.register(plugin, { bulwark });
    const statuses: number[] = [];
    for (const key of keys)
      statuses.push(
        (
          await app.inject({
            method: 'GET',
            url: '/admin/api/flags',
            headers: { authorization: `Bearer ${key}` },
          })
        ).statusCode,
      );
    return statuses;
  } finally {
    await app.close();
  }
}

beforeAll(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-cli-keys-'));
});

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

// Each test spawns the CLI (tsx, seconds per start on a loaded machine) several times.
describe('bulwark keys', { timeout: 120_000 }, () => {
  it('--help lists the subcommands with examples; each has its own --help', async () => {
    const [top, create, revoke] = await Promise.all(
      [['keys'], ['keys', 'create'], ['keys', 'revoke']].map((args) => cli([...args, '--help'])),
    );
    for (const run of [top, create, revoke]) expect(run?.code).toBe(0);
    for (const sub of ['create', 'list', 'revoke']) expect(top?.stdout).toContain(sub);
    expect(top?.stdout).toContain('bulwark keys create --name ada --role operator');
    expect(create?.stdout).toContain('--name <name>');
    expect(create?.stdout).toContain('--role <role>');
    expect(create?.stdout).toContain('--json');
    expect(revoke?.stdout).toContain('<name>');
  });

  it('create prints the key once (alone on stdout), list never shows it, revoke refuses it at once', async () => {
    const created = await cli(['keys', 'create', '--name', 'ada', '--role', 'operator'], { USER: 'grace' });
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^bwk_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('It is not shown again');
    const json = await cli(['keys', 'create', '--name', 'grafana', '--role', 'viewer', '--json'], {
      USER: 'grace',
    });
    expect(json.code).toBe(0);
    const viewer = JSON.parse(json.stdout) as KeyInfo & { key: string };
    expect(viewer).toMatchObject({ name: 'grafana', role: 'viewer', lastUsedAt: null, revokedAt: null });
    expect(viewer.key).toMatch(/^bwk_/);

    expect(await apiStatuses([key, viewer.key, `${key}x`])).toEqual([200, 200, 401]);

    const [table, list] = await Promise.all([cli(['keys', 'list']), cli(['keys', 'list', '--json'])]);
    expect(
      table.stdout
        .split('\n')[0]
        ?.trim()
        .split(/\s{2,}/),
    ).toEqual(['name', 'role', 'created', 'last used', 'revoked']);
    const ada = table.stdout.split('\n').find((line) => line.startsWith('ada '));
    expect(ada?.trim().split(/\s+/)).toEqual([
      'ada',
      'operator',
      expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
      expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
      '-',
    ]);
    const keys = JSON.parse(list.stdout) as KeyInfo[];
    expect(keys.map((k) => [k.name, k.role, k.revokedAt])).toEqual([
      ['ada', 'operator', null],
      ['grafana', 'viewer', null],
    ]);
    expect(keys[0]?.lastUsedAt).toBeGreaterThan(0);
    for (const secret of [key, viewer.key].flatMap((k) => [
      k,
      k.slice(4),
      createHash('sha256').update(k).digest('hex'),
    ]))
      expect(table.stdout + list.stdout).not.toContain(secret);

    const revoked = await cli(['keys', 'revoke', 'grafana'], { USER: 'grace' });
    expect(revoked).toMatchObject({ code: 0, stdout: 'revoked grafana (0 sessions ended)\n' });
    expect(await apiStatuses([key, viewer.key])).toEqual([200, 401]);
    const after = JSON.parse((await cli(['keys', 'list', '--json'])).stdout) as KeyInfo[];
    expect(after.find((k) => k.name === 'grafana')?.revokedAt).toBeGreaterThan(0);

    const bulwark = await createBulwark({
      env: {},
      dataDir,
      logLevel: 'silent',
      defaultMetrics: false,
      metricsHistory: false,
    });
    const audit = await bulwark.store.audit.list({ limit: 50 }).finally(() => bulwark.close());
    const changes = audit.filter((r) => r.target.startsWith('key:'));
    expect(changes.map((r) => [r.actor, r.action, r.target])).toEqual([
      ['cli:grace', 'key.revoke', 'key:grafana'],
      ['cli:grace', 'key.create', 'key:grafana'],
      ['cli:grace', 'key.create', 'key:ada'],
    ]);
  });

  it('refuses a taken name, a bad name or role, and revoking an unknown key: exit 1, a clear error', async () => {
    const [taken, badName, badRole, unknown] = await Promise.all([
      cli(['keys', 'create', '--name', 'ada', '--role', 'viewer']),
      cli(['keys', 'create', '--name', 'Ada Lovelace', '--role', 'viewer']),
      cli(['keys', 'create', '--name', 'bob', '--role', 'admin']),
      cli(['keys', 'revoke', 'nobody']),
    ]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('BWK_ERR_ACCESS_KEY_EXISTS');
    expect(badName.code).toBe(1);
    expect(badName.stderr).toContain('BWK_ERR_ACCESS_KEY_INVALID');
    expect(badRole.code).toBe(1);
    expect(badRole.stderr).toContain('must be viewer or operator');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('bulwark: BWK_ERR_ACCESS_KEY_NOT_FOUND: No admin key named "nobody"');
    for (const run of [taken, badName, badRole, unknown]) expect(run.stdout).toBe('');
  });
});
