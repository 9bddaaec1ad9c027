import { describe, expect, it } from 'vitest';
import type { JobSummary } from '../src/queue/index.js';
import { AUDIT_REFUSED_TARGET } from '../src/store/index.js';
import { adminApp, adminAuth as auth } from './helpers/admin.js';
import { until } from './helpers/wait.js';

const zero = { waiting: 0, delayed: 0, retrying: 0, active: 0, dead: 0 };

function code(res: { json: <T>() => T }): string {
  return res.json<{ error: { code: string } }>().error.code;
}

describe('admin API: queues', () => {
  it('refuses every queue route without the admin key (401), audited, changing nothing', async () => {
    const { app, instance } = await adminApp({ queues: { pollMs: 20 } });
    await instance.queues.add('email', { n: 1 }, { id: 'j1', delay: 60_000 });
    for (const [method, url, payload] of [
      ['GET', '/admin/api/queues', undefined],
      ['GET', '/admin/api/queues/email/jobs?state=delayed', undefined],
      ['POST', '/admin/api/queues/email/redrive', {}],
      ['POST', '/admin/api/queues/email/jobs/j1/promote', undefined],
      ['DELETE', '/admin/api/queues/email/jobs/j1', undefined],
      ['PUT', '/admin/api/queues/email/paused', { paused: true }],
    ] as const) {
      const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
      expect(code(res)).toBe('BWK_ERR_ADMIN_UNAUTHORIZED');
    }
    expect(instance.queues.paused.has('email')).toBe(false);
    expect((await instance.queues.list('email', 'delayed')).map((j) => j.id)).toEqual(['j1']);
    // Refusals are tallied: summary rows with the count of refused requests.
    await instance.store.audit.flush();
    const refused = await instance.store.audit.list({ target: AUDIT_REFUSED_TARGET });
    expect(refused.reduce((n, r) => n + (r.detail as { count: number }).count, 0)).toBe(6);
    expect((await instance.store.audit.list()).find((r) => r.action === 'queue.pause')).toBeUndefined();
  });

  it('lists every queue with its counts, including paused queues without jobs', async () => {
    const { app, instance } = await adminApp({ queues: { pollMs: 20 } });
    await instance.queues.add('email', { to: 'a' }, { delay: 60_000 });
    await instance.queues.add('email', { to: 'b' }, { delay: 60_000 });
    await instance.queues.add('billing', { n: 1 });
    await instance.queues.pause('idle');
    const res = await app.inject({ method: 'GET', url: '/admin/api/queues', headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([
      { queue: 'billing', paused: false, counts: { ...zero, waiting: 1 } },
      { queue: 'email', paused: false, counts: { ...zero, delayed: 2 } },
      { queue: 'idle', paused: true, counts: zero },
    ]);
  });

  it('lists dead jobs with their last error, and redrives some or all of them', async () => {
    const { app, instance } = await adminApp({ queues: { pollMs: 20 } });
    instance.queues.process('failing', async () => {
      throw new Error('x');
    });
    await instance.queues.add('failing', { n: 1 }, { id: 'a', attempts: 1 });
    await instance.queues.add('failing', { n: 2 }, { id: 'b', attempts: 1 });
    await until(
      async () => (await instance.queues.counts('failing')).get('failing')?.dead === 2,
      10_000,
      'two dead jobs',
    );

    const dead = await app.inject({
      method: 'GET',
      url: '/admin/api/queues/failing/jobs?state=dead',
      headers: auth,
    });
    expect(dead.statusCode).toBe(200);
    expect(dead.json<JobSummary[]>()).toEqual([
      expect.objectContaining({
        queue: 'failing',
        id: 'a',
        state: 'dead',
        attempts: 1,
        lastError: 'Error: x',
        data: { n: 1 },
      }),
      expect.objectContaining({
        queue: 'failing',
        id: 'b',
        state: 'dead',
        attempts: 1,
        lastError: 'Error: x',
        data: { n: 2 },
      }),
    ]);
    const limited = await app.inject({
      method: 'GET',
      url: '/admin/api/queues/failing/jobs?state=dead&limit=1',
      headers: auth,
    });
    expect(limited.json<JobSummary[]>().map((j) => j.id)).toEqual(['a']);

    // Paused, so the redriven jobs stay waiting where the test can see them.
    await instance.queues.pause('failing');
    const one = await app.inject({
      method: 'POST',
      url: '/admin/api/queues/failing/redrive',
      headers: auth,
      payload: { ids: ['a', 'not-there'] },
    });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toEqual({ redriven: ['a'] });
    const rest = await app.inject({
      method: 'POST',
      url: '/admin/api/queues/failing/redrive',
      headers: auth,
    });
    expect(rest.statusCode).toBe(200);
    expect(rest.json()).toEqual({ redriven: ['b'] });
    expect((await instance.queues.counts('failing')).get('failing')).toEqual({ ...zero, waiting: 2 });
    const waiting = await app.inject({
      method: 'GET',
      url: '/admin/api/queues/failing/jobs?state=waiting',
      headers: auth,
    });
    expect(waiting.json<JobSummary[]>()).toEqual([
      expect.objectContaining({ id: 'a', attempts: 0 }),
      expect.objectContaining({ id: 'b', attempts: 0 }),
    ]);
  });

  it('promotes a delayed job and removes a job; both answer 404 when there is no such job', async () => {
    const { app, instance } = await adminApp({ queues: { pollMs: 20 } });
    await instance.queues.add('email', { to: 'a' }, { id: 'later', delay: 60_000 });
    const promote = await app.inject({
      method: 'POST',
      url: '/admin/api/queues/email/jobs/later/promote',
      headers: auth,
    });
    expect(promote.statusCode).toBe(204);
    expect(promote.body).toBe('');
    expect((await instance.queues.list('email', 'waiting')).map((j) => j.id)).toEqual(['later']);
    // No longer delayed: nothing to promote.
    const again = await app.inject({
      method: 'POST',
      url: '/admin/api/queues/email/jobs/later/promote',
      headers: auth,
    });
    expect(again.statusCode).toBe(404);
    expect(code(again)).toBe('BWK_ERR_QUEUE_JOB_NOT_FOUND');

    const remove = await app.inject({
      method: 'DELETE',
      url: '/admin/api/queues/email/jobs/later',
      headers: auth,
    });
    expect(remove.statusCode).toBe(204);
    expect((await instance.queues.counts('email')).get('email')).toEqual(zero);
    const gone = await app.inject({
      method: 'DELETE',
      url: '/admin/api/queues/email/jobs/later',
      headers: auth,
    });
    expect(gone.statusCode).toBe(404);
    expect(gone.json<{ error: { code: string; message: string; requestId: string } }>().error).toMatchObject({
      code: 'BWK_ERR_QUEUE_JOB_NOT_FOUND',
      message: expect.stringContaining('later') as unknown,
      requestId: expect.any(String) as unknown,
    });
    const audit = await instance.store.audit.list({ target: '/queues/email/jobs/later' });
    expect(audit.map((r) => [r.action, (r.detail as { status: number }).status])).toEqual([
      ['DELETE /admin/api/queues/:queue/jobs/:id', 404],
      ['DELETE /admin/api/queues/:queue/jobs/:id', 204],
    ]);
  });

  it('pauses and resumes a queue, audited with before/after', async () => {
    const { app, instance } = await adminApp({ queues: { pollMs: 20 } });
    const pause = await app.inject({
      method: 'PUT',
      url: '/admin/api/queues/email/paused',
      headers: auth,
      payload: { paused: true, reason: 'drill' },
    });
    expect(pause.statusCode).toBe(200);
    expect(pause.json()).toEqual({ queue: 'email', paused: true });
    expect(instance.queues.paused.has('email')).toBe(true);
    const list = await app.inject({ method: 'GET', url: '/admin/api/queues', headers: auth });
    expect(list.json()).toEqual([{ queue: 'email', paused: true, counts: zero }]);

    const resume = await app.inject({
      method: 'PUT',
      url: '/admin/api/queues/email/paused',
      headers: auth,
      payload: { paused: false },
    });
    expect(resume.json()).toEqual({ queue: 'email', paused: false });
    expect(instance.queues.paused.has('email')).toBe(false);

    const records = await instance.store.audit.list({ target: 'queue:email' });
    expect(records).toEqual([
      expect.objectContaining({
        actor: 'admin',
        action: 'queue.resume',
        detail: { before: true, after: false, reason: null },
      }),
      expect.objectContaining({
        actor: 'admin',
        action: 'queue.pause',
        detail: { before: false, after: true, reason: 'drill' },
      }),
    ]);
    const bad = await app.inject({
      method: 'PUT',
      url: '/admin/api/queues/email/paused',
      headers: auth,
      payload: { paused: 'yes' },
    });
    expect(bad.statusCode).toBe(400);
    expect(instance.queues.paused.has('email')).toBe(false);
  });

  it('answers a bad queue name with 400 BWK_ERR_QUEUE_OPTIONS and a bad query with 400', async () => {
    const { app, instance } = await adminApp({ queues: { pollMs: 20 } });
    for (const [method, url, payload] of [
      ['GET', '/admin/api/queues/bad%20name/jobs?state=waiting', undefined],
      ['POST', '/admin/api/queues/bad%20name/redrive', {}],
      ['POST', '/admin/api/queues/bad%20name/jobs/x/promote', undefined],
      ['DELETE', '/admin/api/queues/bad%20name/jobs/x', undefined],
      ['PUT', '/admin/api/queues/bad%20name/paused', { paused: true }],
    ] as const) {
      const res = await app.inject({
        method,
        url,
        headers: auth,
        ...(payload === undefined ? {} : { payload }),
      });
      expect(res.statusCode, `${method} ${url}`).toBe(400);
      expect(code(res), `${method} ${url}`).toBe('BWK_ERR_QUEUE_OPTIONS');
    }
    expect(instance.queues.paused.size).toBe(0);
    expect(await instance.store.audit.list({ target: 'queue:bad name' })).toEqual([]);

    for (const query of ['state=finished', '', 'state=dead&limit=0', 'state=dead&limit=1001']) {
      const res = await app.inject({
        method: 'GET',
        url: `/admin/api/queues/q/jobs?${query}`,
        headers: auth,
      });
      expect(res.statusCode, query).toBe(400);
      expect(code(res), query).toBe('BWK_ERR_HTTP_VALIDATION');
    }
    const state = await app.inject({
      method: 'GET',
      url: '/admin/api/queues/q/jobs?state=finished',
      headers: auth,
    });
    expect(state.json<{ error: { details: { field: string }[] } }>().error.details[0]?.field).toBe(
      'querystring.state',
    );
  });

  it('documents every queue route in OpenAPI with the admin tag and the admin key', async () => {
    const { app } = await adminApp({ queues: { pollMs: 20 } });
    const spec = (await app.inject({ method: 'GET', url: '/api-docs/json' })).json<{
      paths: Record<string, Record<string, { tags?: string[]; security?: unknown[] }>>;
    }>();
    const routes = [
      ['get', '/admin/api/queues'],
      ['get', '/admin/api/queues/{queue}/jobs'],
      ['post', '/admin/api/queues/{queue}/redrive'],
      ['post', '/admin/api/queues/{queue}/jobs/{id}/promote'],
      ['delete', '/admin/api/queues/{queue}/jobs/{id}'],
      ['put', '/admin/api/queues/{queue}/paused'],
    ] as const;
    for (const [method, url] of routes) {
      const operation = spec.paths[url]?.[method];
      expect(operation, `${method} ${url}`).toBeDefined();
      expect(operation?.tags).toEqual(['admin']);
      expect(operation?.security).toEqual([{ adminKey: [] }]);
    }
  });
});
