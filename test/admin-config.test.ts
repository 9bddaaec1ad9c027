// The config routes of the admin API over a real config file (a temp dir) and the in-memory store:
// the active config and revisions with secrets redacted, pages of revisions, diffs, validation that
// writes nothing, and rollbacks audited with the real actor, refused when stale or unknown.
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { afterEach, describe, expect, it } from 'vitest';
import type { Access } from '../src/access/types.js';
import type { Bulwark } from '../src/runtime/create.js';
import { serviceSchema } from './fixtures/config-schema.js';
import { adminApp, adminAuth } from './helpers/admin.js';
import { tempDir } from './helpers/store.js';

const SECRET = 's3cret-db-password-never-shown';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** An admin app whose service config is `config.json` in a temp dir, with revisions 1..`revisions`. */
async function setup(revisions: number): Promise<{ app: FastifyInstance; bulwark: Bulwark; file: string }> {
  const dir = await tempDir();
  dirs.push(dir);
  const file = path.join(dir, 'config.json');
  await writeFile(file, JSON.stringify({ name: 'rev-1', db: { password: SECRET } }));
  const { app, instance } = await adminApp({
    dataDir: dir,
    config: { schema: serviceSchema, file, env: {}, watch: false },
  });
  const config = instance.config!;
  for (let n = 2; n <= revisions; n++) await config.set('name', `rev-${n}`, { reason: `step ${n}` });
  return { app, bulwark: instance, file };
}

async function call(app: FastifyInstance, method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await app.inject({
    method,
    url: `/admin/api${url}`,
    headers: adminAuth,
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  return { status: res.statusCode, body: res.json<Record<string, unknown>>(), text: res.body };
}

describe('admin API: config', () => {
  it('shows the active config and its revisions with secrets redacted; pages of revisions, newest first', async () => {
    const { app } = await setup(5);
    const active = await call(app, 'GET', '/config');
    expect(active.status).toBe(200);
    expect(active.body).toMatchObject({
      revision: 5,
      config: { name: 'rev-5', db: { password: '[redacted]' } },
    });
    expect(active.body['file']).toMatch(/config\.json$/);

    const first = await call(app, 'GET', '/config/revisions?limit=2');
    const revs = first.body['revisions'] as {
      revision: number;
      author: string;
      reason: string;
      diff: unknown[];
    }[];
    expect(revs.map((r) => r.revision)).toEqual([5, 4]);
    expect(revs[0]).toMatchObject({
      reason: 'step 5',
      diff: [{ path: 'name', before: 'rev-4', after: 'rev-5' }],
    });
    expect(first.body['next']).toBe(4);
    const second = await call(app, 'GET', '/config/revisions?limit=2&before=4');
    expect((second.body['revisions'] as { revision: number }[]).map((r) => r.revision)).toEqual([3, 2]);
    const last = await call(app, 'GET', '/config/revisions?limit=2&before=2');
    expect((last.body['revisions'] as { revision: number }[]).map((r) => r.revision)).toEqual([1]);
    expect(last.body['next']).toBeNull();
    expect((await call(app, 'GET', '/config/revisions?limit=201')).status).toBe(400);

    const one = await call(app, 'GET', '/config/revisions/1');
    expect(one.body).toMatchObject({ revision: 1, reason: 'first load', author: 'file' });
    expect(one.body['diff']).toContainEqual({
      path: 'db.password',
      before: '[redacted]',
      after: '[redacted]',
    });

    const diff = await call(app, 'GET', '/config/diff?from=1&to=5');
    expect(diff.body).toEqual({ from: 1, to: 5, diff: [{ path: 'name', before: 'rev-1', after: 'rev-5' }] });
    const missing = await call(app, 'GET', '/config/diff?from=1&to=9');
    expect([missing.status, (missing.body['error'] as { code: string }).code]).toEqual([
      404,
      'BWK_ERR_CONFIG_REVISION_NOT_FOUND',
    ]);
    const missingOne = await call(app, 'GET', '/config/revisions/9');
    expect([missingOne.status, (missingOne.body['error'] as { code: string }).code]).toEqual([
      404,
      'BWK_ERR_CONFIG_REVISION_NOT_FOUND',
    ]);
    for (const text of [active.text, first.text, one.text, diff.text]) expect(text).not.toContain(SECRET);
  });

  it('a list carries the first 20 entries of each diff; the revision itself has them all', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const schema = Type.Object({ limits: Type.Optional(Type.Record(Type.String(), Type.Integer())) });
    const { app, instance } = await adminApp({
      dataDir: dir,
      config: { schema, file: path.join(dir, 'config.json'), env: {}, watch: false },
    });
    const limits = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`route${i}`, i]));
    await instance.config!.replace({ limits }, { reason: 'limits' });
    const listed = await call(app, 'GET', '/config/revisions?limit=1');
    const [rev] = listed.body['revisions'] as { revision: number; diff: unknown[]; diffTotal: number }[];
    expect(rev?.diff).toHaveLength(20);
    expect(rev?.diffTotal).toBe(30);
    const whole = await call(app, 'GET', `/config/revisions/${rev?.revision}`);
    expect(whole.body['diff']).toHaveLength(30);
    expect(whole.body['diffTotal']).toBe(30);
  });

  it('validates a whole config without writing it: the changes it would make, or every bad field', async () => {
    const { app, bulwark, file } = await setup(2);
    const before = await readFile(file, 'utf8');
    const ok = await call(app, 'POST', '/config/validate', {
      name: 'next',
      port: 8080,
      db: { password: 'x' },
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ valid: true, revision: 2 });
    expect(ok.body['diff']).toEqual([
      { path: 'db.password', before: '[redacted]', after: '[redacted]' },
      { path: 'name', before: 'rev-2', after: 'next' },
      { path: 'port', before: 3000, after: 8080 },
    ]);

    const bad = await call(app, 'POST', '/config/validate', { name: '', port: 70000, db: { poolSize: 0 } });
    expect(bad.status).toBe(400);
    const error = bad.body['error'] as { code: string; details: { field: string }[] };
    expect(error.code).toBe('BWK_ERR_CONFIG_INVALID');
    expect(error.details.map((d) => d.field).sort()).toEqual(['db.poolSize', 'name', 'port']);
    expect((await call(app, 'POST', '/config/validate', ['not', 'an', 'object'])).status).toBe(400);

    expect(await readFile(file, 'utf8')).toBe(before);
    expect(bulwark.config!.revision).toBe(2);
    expect(ok.text + bad.text).not.toContain(SECRET);
  });

  it('rolls back to a revision as a new one, authored and audited by the real actor', async () => {
    const { app, bulwark } = await setup(3);
    const res = await call(app, 'POST', '/config/rollback', {
      revision: 1,
      reason: 'bad name',
      ifRevision: 3,
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ revision: 4, restored: 1, previous: 3 });
    expect(bulwark.config!.get('name')).toBe('rev-1');
    const [head] = await bulwark.config!.history(1);
    expect(head).toMatchObject({ revision: 4, author: 'admin', reason: 'rollback to revision 1: bad name' });
    const audit = await bulwark.store.audit.list({ target: 'config:config.json' });
    expect(audit).toEqual([
      expect.objectContaining({
        actor: 'admin',
        action: 'config.rollback',
        detail: { before: 3, after: 4, restored: 1, reason: 'bad name' },
      }),
    ]);
  });

  it('refuses a stale or an unknown rollback with a coded 4xx and writes nothing', async () => {
    const { app, bulwark } = await setup(3);
    const stale = await call(app, 'POST', '/config/rollback', { revision: 1, ifRevision: 2 });
    expect([stale.status, (stale.body['error'] as { code: string }).code]).toEqual([
      409,
      'BWK_ERR_CONFIG_CONFLICT',
    ]);
    const unknown = await call(app, 'POST', '/config/rollback', { revision: 42 });
    expect([unknown.status, (unknown.body['error'] as { code: string }).code]).toEqual([
      404,
      'BWK_ERR_CONFIG_REVISION_NOT_FOUND',
    ]);
    expect((await call(app, 'POST', '/config/rollback', { revision: 0 })).status).toBe(400);
    expect(bulwark.config!.revision).toBe(3);
    expect(bulwark.config!.get('name')).toBe('rev-3');
    expect(await bulwark.store.audit.list({ target: 'config:config.json' })).toEqual([]);
  });

  it('a viewer reads and validates but may not roll back (403)', async () => {
    const { app, bulwark } = await setup(2);
    const access = bulwark.parts.get('access') as Access;
    const { key } = await access.createKey('watcher', 'viewer', 'test');
    const as = (method: 'GET' | 'POST', url: string, payload?: object) =>
      app.inject({
        method,
        url: `/admin/api${url}`,
        headers: { authorization: `Bearer ${key}` },
        ...(payload === undefined ? {} : { payload }),
      });
    expect((await as('GET', '/config')).statusCode).toBe(200);
    expect((await as('GET', '/config/revisions')).statusCode).toBe(200);
    expect((await as('POST', '/config/validate', { name: 'x' })).statusCode).toBe(200);
    const refused = await as('POST', '/config/rollback', { revision: 1 });
    expect([refused.statusCode, refused.json<{ error: { code: string } }>().error.code]).toEqual([
      403,
      'BWK_ERR_ADMIN_FORBIDDEN',
    ]);
    expect(bulwark.config!.revision).toBe(2);
  });

  it('has no config routes when the service has no config', async () => {
    const { app } = await adminApp();
    expect((await call(app, 'GET', '/config')).status).toBe(404);
  });
});
