import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { VersionedFlag } from '../src/admin/flags.js';
import type { EvaluationDetails, FlagDefinition } from '../src/flags/types.js';
import { AUDIT_REFUSED_TARGET } from '../src/store/index.js';
import type { AuditRecord } from '../src/store/types.js';
import { adminApp, adminAuth as auth } from './helpers/admin.js';
import { checkoutFlag } from './helpers/flags.js';

type Res = Awaited<ReturnType<FastifyInstance['inject']>>;

function error(res: Res): { code: string; message: string; details?: { field: string; message: string }[] } {
  return res.json<{
    error: { code: string; message: string; details?: { field: string; message: string }[] };
  }>().error;
}

/** Sends one admin request with the key. */
function call(
  app: FastifyInstance,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  payload?: object,
) {
  return app.inject({
    method,
    url: `/admin/api${url}`,
    headers: auth,
    ...(payload === undefined ? {} : { payload }),
  });
}

describe('admin API: flags', () => {
  it('refuses every flag route without the admin key (401), changing nothing', async () => {
    const { app, instance } = await adminApp();
    for (const [method, url, payload] of [
      ['GET', '/admin/api/flags', undefined],
      ['GET', '/admin/api/flags/bulwark.cache', undefined],
      ['PUT', '/admin/api/flags/new-checkout', { flag: checkoutFlag }],
      ['POST', '/admin/api/flags/bulwark.cache/kill', {}],
      ['POST', '/admin/api/flags/bulwark.cache/revive', {}],
      ['PUT', '/admin/api/flags/bulwark.cache/rollout', { percentage: 5 }],
      ['DELETE', '/admin/api/flags/bulwark.cache', undefined],
      ['GET', '/admin/api/flags/bulwark.cache/history', undefined],
      ['POST', '/admin/api/flags/bulwark.cache/evaluate', { context: {} }],
      ['GET', '/admin/api/flags/bulwark.cache/guarded-rollout', undefined],
      ['PUT', '/admin/api/flags/bulwark.cache/guarded-rollout', { plan: {} }],
      ['POST', '/admin/api/flags/bulwark.cache/guarded-rollout/abort', {}],
    ] as const) {
      const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
      expect(error(res).code).toBe('BWK_ERR_ADMIN_UNAUTHORIZED');
    }
    expect(instance.flags.get('new-checkout')).toBeUndefined();
    expect(instance.flags.get('bulwark.cache')?.enabled).toBe(true);
    // Refusals are tallied: summary rows with the count of refused requests.
    await instance.store.audit.flush();
    const refused = await instance.store.audit.list({ target: AUDIT_REFUSED_TARGET });
    expect(refused.reduce((n, r) => n + (r.detail as { count: number }).count, 0)).toBe(12);
    expect((await instance.store.audit.list()).filter((r) => r.action.startsWith('flag.'))).toEqual([]);
  });

  it('creates, reads and lists a flag; a stale ifVersion is 409 and changes nothing', async () => {
    const { app, instance } = await adminApp();
    const created = await call(app, 'PUT', '/flags/new-checkout', {
      flag: checkoutFlag,
      reason: 'staff preview',
    });
    expect(created.statusCode).toBe(200);
    expect(created.json()).toEqual({ flag: checkoutFlag, version: 1 });
    expect(instance.flags.get('new-checkout')).toEqual(checkoutFlag);

    const got = await call(app, 'GET', '/flags/new-checkout');
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual({ flag: checkoutFlag, version: 1 });

    const list = await call(app, 'GET', '/flags');
    expect(list.statusCode).toBe(200);
    const body = list.json<{
      provenance: { source: string; flags: number };
      flags: (FlagDefinition & { version: number })[];
    }>();
    expect(body.provenance).toMatchObject({ source: 'store', flags: 7 });
    expect(body.flags.map((f) => [f.key, f.version])).toEqual([
      ['bulwark.cache', 0],
      ['bulwark.errors', 0],
      ['bulwark.errors.sample', 0],
      ['bulwark.leaks', 0],
      ['bulwark.protection', 0],
      ['bulwark.ratelimit', 0],
      ['new-checkout', 1],
    ]);
    expect(body.flags[6]).toEqual({ ...checkoutFlag, version: 1, updatedAt: expect.any(Number) as number });
    // A tool flag never written has no stored state.
    expect(body.flags[0]).toMatchObject({ key: 'bulwark.cache', version: 0, updatedAt: null });

    const changed = { ...checkoutFlag, description: 'the new checkout' };
    const cas = await call(app, 'PUT', '/flags/new-checkout', { flag: changed, ifVersion: 1 });
    expect(cas.json()).toEqual({ flag: changed, version: 2 });
    const stale = await call(app, 'PUT', '/flags/new-checkout', { flag: checkoutFlag, ifVersion: 1 });
    expect(stale.statusCode).toBe(409);
    expect(error(stale).code).toBe('BWK_ERR_STORE_CONFLICT');
    expect(instance.flags.get('new-checkout')).toEqual(changed);
    // ifVersion 0: create only.
    const exists = await call(app, 'PUT', '/flags/new-checkout', { flag: checkoutFlag, ifVersion: 0 });
    expect(exists.statusCode).toBe(409);

    const missing = await call(app, 'GET', '/flags/nope');
    expect(missing.statusCode).toBe(404);
    expect(error(missing)).toMatchObject({ code: 'BWK_ERR_FLAG_NOT_FOUND', message: 'No flag nope' });
  });

  it('refuses an invalid definition or a key other than the path’s with 400 naming the field', async () => {
    const { app, instance } = await adminApp();
    const invalid = await call(app, 'PUT', '/flags/new-checkout', {
      flag: { ...checkoutFlag, variants: { on: true, off: 'no' } },
    });
    expect(invalid.statusCode).toBe(400);
    expect(error(invalid).code).toBe('BWK_ERR_FLAG_INVALID');
    expect(error(invalid).details?.map((d) => d.field)).toEqual(['variants.off']);
    expect(error(invalid).message).toContain('variants.off');

    const rule = await call(app, 'PUT', '/flags/new-checkout', {
      flag: {
        ...checkoutFlag,
        rules: [{ conditions: [{ attribute: 'plan', op: 'like', values: ['x'] }], variant: 'on' }],
      },
    });
    expect(rule.statusCode).toBe(400);
    expect(error(rule).details?.[0]?.field).toBe('rules[0].conditions[0].op');

    const mismatch = await call(app, 'PUT', '/flags/other-key', { flag: checkoutFlag });
    expect(mismatch.statusCode).toBe(400);
    expect(error(mismatch)).toMatchObject({
      code: 'BWK_ERR_FLAG_INVALID',
      details: [{ field: 'key', message: expect.stringContaining('"other-key"') as unknown }],
    });

    const notObject = await call(app, 'PUT', '/flags/new-checkout', { flag: 'on' });
    expect(notObject.statusCode).toBe(400);
    expect(error(notObject).code).toBe('BWK_ERR_HTTP_VALIDATION');

    for (const key of ['new-checkout', 'other-key']) {
      expect(instance.flags.get(key)).toBeUndefined();
      expect(await instance.flags.versionOf(key)).toBe(0);
      expect(await instance.flags.history(key)).toEqual([]);
    }
  });

  it('kill, revive and rollout change what evaluate answers; history lists them with reasons', async () => {
    const { app, instance } = await adminApp();
    await call(app, 'PUT', '/flags/new-checkout', { flag: checkoutFlag, reason: 'staff preview' });
    const evaluate = async (context: object) => {
      const res = await call(app, 'POST', '/flags/new-checkout/evaluate', { context, default: false });
      expect(res.statusCode).toBe(200);
      return res.json<EvaluationDetails>();
    };
    expect(await evaluate({ email: 'ada@acme.test' })).toEqual({
      key: 'new-checkout',
      value: true,
      variant: 'on',
      reason: 'TARGETING_MATCH',
      rule: 'staff',
    });

    const kill = await call(app, 'POST', '/flags/new-checkout/kill', { reason: 'incident 42' });
    expect(kill.statusCode).toBe(200);
    expect(kill.json<{ flag: FlagDefinition }>().flag.enabled).toBe(false);
    expect(await evaluate({ email: 'ada@acme.test' })).toMatchObject({
      value: false,
      variant: 'off',
      reason: 'DISABLED',
    });

    // Without a body: no reason.
    const revive = await app.inject({
      method: 'POST',
      url: '/admin/api/flags/new-checkout/revive',
      headers: auth,
    });
    expect(revive.statusCode).toBe(200);
    expect(revive.json<{ flag: FlagDefinition }>().flag.enabled).toBe(true);
    expect((await evaluate({ email: 'ada@acme.test' })).reason).toBe('TARGETING_MATCH');

    const rollout = await call(app, 'PUT', '/flags/new-checkout/rollout', {
      percentage: 25,
      reason: 'first quarter',
    });
    expect(rollout.statusCode).toBe(200);
    expect(rollout.json<{ flag: FlagDefinition }>().flag.rollout).toEqual({
      variant: 'on',
      otherwise: 'off',
      percentage: 25,
    });
    const split = await Promise.all(
      Array.from({ length: 40 }, (_, i) => evaluate({ targetingKey: `user-${i}` })),
    );
    for (const details of split) expect(details.reason).toBe('SPLIT');
    const on = split.filter((d) => d.value === true).length;
    expect(on).toBeGreaterThan(0);
    expect(on).toBeLessThan(40);
    expect(await evaluate({})).toMatchObject({
      reason: 'ERROR',
      errorCode: 'TARGETING_KEY_MISSING',
      value: false,
    });

    for (const percentage of [101, -1]) {
      const bad = await call(app, 'PUT', '/flags/new-checkout/rollout', { percentage });
      expect(bad.statusCode).toBe(400);
      expect(error(bad).code).toBe('BWK_ERR_HTTP_VALIDATION');
    }
    expect(instance.flags.get('new-checkout')?.rollout?.percentage).toBe(25);

    const history = await call(app, 'GET', '/flags/new-checkout/history');
    expect(history.statusCode).toBe(200);
    const records = history.json<AuditRecord[]>();
    expect(records.map((r) => [r.actor, r.action, (r.detail as { reason: string | null }).reason])).toEqual([
      ['admin', 'flag.rollout', 'first quarter'],
      ['admin', 'flag.revive', null],
      ['admin', 'flag.kill', 'incident 42'],
      ['admin', 'flag.set', 'staff preview'],
    ]);
    expect(records[2]?.detail).toMatchObject({ before: { enabled: true }, after: { enabled: false } });
    const limited = await call(app, 'GET', '/flags/new-checkout/history?limit=1');
    expect(limited.json<AuditRecord[]>().map((r) => r.action)).toEqual(['flag.rollout']);

    const unknown = await call(app, 'POST', '/flags/nope/kill', {});
    expect(unknown.statusCode).toBe(404);
    expect(error(unknown).code).toBe('BWK_ERR_FLAG_NOT_FOUND');
    const unknownEval = await call(app, 'POST', '/flags/nope/evaluate', { context: {} });
    expect(unknownEval.statusCode).toBe(404);
    expect(error(unknownEval).code).toBe('BWK_ERR_FLAG_NOT_FOUND');
  });

  it('deletes a flag (204, audited with the reason); afterwards it is 404', async () => {
    const { app, instance } = await adminApp();
    await call(app, 'PUT', '/flags/new-checkout', { flag: checkoutFlag });
    const del = await call(app, 'DELETE', '/flags/new-checkout?reason=done');
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe('');
    expect(instance.flags.get('new-checkout')).toBeUndefined();
    expect((await call(app, 'GET', '/flags/new-checkout')).statusCode).toBe(404);
    const again = await call(app, 'DELETE', '/flags/new-checkout');
    expect(again.statusCode).toBe(404);
    expect(error(again).code).toBe('BWK_ERR_FLAG_NOT_FOUND');
    expect(instance.flags.evaluate('new-checkout', {}, 'fallback')).toMatchObject({
      value: 'fallback',
      errorCode: 'FLAG_NOT_FOUND',
    });
    // The reason may come in a JSON body instead.
    await call(app, 'PUT', '/flags/new-checkout', { flag: checkoutFlag });
    expect((await call(app, 'DELETE', '/flags/new-checkout', { reason: 'in the body' })).statusCode).toBe(
      204,
    );
    const history = await call(app, 'GET', '/flags/new-checkout/history');
    expect(
      history.json<AuditRecord[]>().map((r) => [r.actor, r.action, (r.detail as { reason: unknown }).reason]),
    ).toEqual([
      ['admin', 'flag.delete', 'in the body'],
      ['admin', 'flag.set', null],
      ['admin', 'flag.delete', 'done'],
      ['admin', 'flag.set', null],
    ]);
    expect(history.json<AuditRecord[]>()[0]?.detail).toMatchObject({ before: checkoutFlag, after: null });
  });

  it('lists the tool flag bulwark.cache and its kill switch turns the cache off live', async () => {
    const { app, instance } = await adminApp();
    const list = await call(app, 'GET', '/flags');
    expect(list.json<{ flags: FlagDefinition[] }>().flags).toContainEqual(
      expect.objectContaining({ key: 'bulwark.cache', type: 'boolean', enabled: true, version: 0 }),
    );
    await instance.cache.set('greeting', 'hello');
    expect(await instance.cache.get('greeting')).toBe('hello');

    const kill = await call(app, 'POST', '/flags/bulwark.cache/kill', { reason: 'cache drill' });
    expect(kill.statusCode).toBe(200);
    expect(await instance.cache.get('greeting')).toBeUndefined();
    await instance.cache.set('greeting', 'again');
    expect(await instance.cache.get('greeting')).toBeUndefined();
    const get = await call(app, 'GET', '/flags/bulwark.cache');
    expect(get.json()).toMatchObject({ flag: { enabled: false }, version: 1 });

    expect((await call(app, 'POST', '/flags/bulwark.cache/revive', {})).statusCode).toBe(200);
    await instance.cache.set('greeting', 'back');
    expect(await instance.cache.get('greeting')).toBe('back');
    expect(
      (await instance.flags.history('bulwark.cache')).map((r) => [
        r.action,
        (r.detail as { reason: unknown }).reason,
      ]),
    ).toEqual([
      ['flag.revive', null],
      ['flag.kill', 'cache drill'],
    ]);
  });

  it('starts a guarded rollout, shows its arms and verdict, aborts it; a bad plan is 400 naming the field', async () => {
    const { app, instance } = await adminApp();
    await call(app, 'PUT', '/flags/new-checkout', { flag: checkoutFlag });
    const none = await call(app, 'GET', '/flags/new-checkout/guarded-rollout');
    expect(none.statusCode).toBe(200);
    expect(none.json()).toEqual({ rollout: null });

    const plan = {
      steps: [10, 50, 100],
      stepMs: 60_000,
      minSamples: 5,
      maxErrorRateIncrease: 0.01,
      maxLatencyRatio: 1.5,
    };
    const bad = await call(app, 'PUT', '/flags/new-checkout/guarded-rollout', {
      plan: { ...plan, steps: [50, 10] },
    });
    expect(bad.statusCode).toBe(400);
    expect(error(bad)).toMatchObject({ code: 'BWK_ERR_FLAG_INVALID' });
    expect(error(bad).message).toContain('plan.steps[1]');
    const outOfRange = await call(app, 'PUT', '/flags/new-checkout/guarded-rollout', {
      plan: { ...plan, maxLatencyRatio: 0.5 },
    });
    expect(outOfRange.statusCode).toBe(400);
    expect(error(outOfRange).message).toContain('maxLatencyRatio');
    expect(instance.flags.get('new-checkout')?.rollout).toBeUndefined(); // refused: nothing changed

    const started = await call(app, 'PUT', '/flags/new-checkout/guarded-rollout', { plan, reason: 'launch' });
    expect(started.statusCode).toBe(200);
    expect(started.json()).toMatchObject({
      rollout: { state: { status: 'running', step: 0, plan }, verdict: { action: 'hold' } },
    });
    expect(instance.flags.get('new-checkout')?.rollout?.percentage).toBe(10);
    // Outcomes reported where the flag is used reach the arms at the next tick.
    for (let i = 0; i < 6; i += 1) {
      instance.rollouts.observe('new-checkout', 'on', { error: false, latencyMs: 12 });
      instance.rollouts.observe('new-checkout', 'off', { error: i === 0, latencyMs: 10 });
    }
    await instance.rollouts.tick();
    const progress = (await call(app, 'GET', '/flags/new-checkout/guarded-rollout')).json<{
      rollout: { treatment: object; control: object; verdict: { action: string; why: string } };
    }>().rollout;
    expect(progress.treatment).toEqual({ samples: 6, errors: 0, latencyMsSum: 72 });
    expect(progress.control).toEqual({ samples: 6, errors: 1, latencyMsSum: 60 });
    expect(progress.verdict).toMatchObject({
      action: 'hold',
      why: expect.stringContaining('s left at this step') as unknown,
    });

    const aborted = await call(app, 'POST', '/flags/new-checkout/guarded-rollout/abort', { reason: 'moved' });
    expect(aborted.statusCode).toBe(200);
    expect(aborted.json()).toMatchObject({ rollout: { state: { status: 'aborted' }, verdict: null } });
    const again = await call(app, 'POST', '/flags/new-checkout/guarded-rollout/abort');
    expect(again.statusCode).toBe(409);
    expect(error(again).code).toBe('BWK_ERR_FLAG_NO_GUARDED_ROLLOUT');
    const history = (await call(app, 'GET', '/flags/new-checkout/history')).json<AuditRecord[]>();
    expect(history.slice(0, 3).map((h) => h.action)).toEqual([
      'flag.guard.abort',
      'flag.guard.start',
      'flag.rollout',
    ]);
    expect((await call(app, 'GET', '/flags/missing/guarded-rollout')).statusCode).toBe(404);
  });

  it('documents every flag route in OpenAPI with the admin tag and the admin key', async () => {
    const { app } = await adminApp();
    const spec = (await app.inject({ method: 'GET', url: '/api-docs/json' })).json<{
      paths: Record<string, Record<string, { tags?: string[]; security?: unknown[] }>>;
    }>();
    const routes = [
      ['get', '/admin/api/flags'],
      ['get', '/admin/api/flags/{key}'],
      ['put', '/admin/api/flags/{key}'],
      ['delete', '/admin/api/flags/{key}'],
      ['post', '/admin/api/flags/{key}/kill'],
      ['post', '/admin/api/flags/{key}/revive'],
      ['put', '/admin/api/flags/{key}/rollout'],
      ['get', '/admin/api/flags/{key}/history'],
      ['post', '/admin/api/flags/{key}/evaluate'],
      ['get', '/admin/api/flags/{key}/guarded-rollout'],
      ['put', '/admin/api/flags/{key}/guarded-rollout'],
      ['post', '/admin/api/flags/{key}/guarded-rollout/abort'],
    ] as const;
    for (const [method, url] of routes) {
      const operation = spec.paths[url]?.[method];
      expect(operation, `${method} ${url}`).toBeDefined();
      expect(operation?.tags).toEqual(['admin']);
      expect(operation?.security).toEqual([{ adminKey: [] }]);
    }
  });

  it('pages the list (at most 200 a page, a cursor), searches keys and descriptions, filters by state, in one store query a page', async () => {
    const { app, instance } = await adminApp();
    const selects = async () =>
      Number(
        /bulwark_store_query_duration_seconds_count\{engine="sqlite",operation="select",outcome="ok"\} (\d+)/.exec(
          await instance.metrics.render(),
        )?.[1],
      );
    const flags = instance.flags;
    for (let i = 0; i < 260; i++) {
      await flags.set(
        {
          key: `f${String(i).padStart(3, '0')}`,
          type: 'boolean',
          description: i % 10 === 0 ? 'payments path' : undefined,
          variants: { on: true, off: false },
          defaultVariant: 'on',
          enabled: i % 2 === 0,
        },
        { actor: 'test' },
      );
    }
    const page = async (query: string) =>
      (await call(app, 'GET', `/flags${query}`)).json<{
        flags: VersionedFlag[];
        total: number;
        next: string | null;
      }>();
    const first = await page('');
    expect([first.flags.length, first.total, first.next]).toEqual([50, 266, first.flags.at(-1)!.key]);
    const seen = first.flags.map((f) => f.key);
    for (let next = first.next; next !== null;) {
      const more = await page(`?limit=200&after=${encodeURIComponent(next)}`);
      expect(more.flags.length).toBeLessThanOrEqual(200);
      seen.push(...more.flags.map((f) => f.key));
      next = more.next;
    }
    expect(seen).toEqual([...new Set(seen)].sort());
    expect(seen).toHaveLength(266);
    expect((await call(app, 'GET', '/flags?limit=201')).statusCode).toBe(400);
    const payments = await page('?q=PAYMENTS');
    expect([payments.total, payments.next]).toEqual([26, null]);
    const killed = await page('?state=killed&limit=200');
    expect(killed.total).toBe(130);
    expect(killed.flags.every((f) => !f.enabled)).toBe(true);
    expect((await page('?q=f25&state=on')).flags.map((f) => f.key)).toEqual([
      'f250',
      'f252',
      'f254',
      'f256',
      'f258',
    ]);
    // Versions and last writes of a page come from one query, not one per flag.
    // (A page of 200 costs the store as many queries as a page of 1.)
    const cost = async (query: string) => {
      const before = await selects();
      await page(query);
      return (await selects()) - before;
    };
    expect(await cost('?limit=1')).toBeGreaterThan(0);
    expect(await cost('?limit=200')).toBe(await cost('?limit=1'));
  });
});
