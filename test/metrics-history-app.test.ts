import { describe, expect, it } from 'vitest';
import { adminApp, adminAuth } from './helpers/admin.js';

describe('metrics history in a Bulwark app', () => {
  it('is on by default: samples the app, and the admin API lists and queries its series', async () => {
    const { app, instance } = await adminApp({}, (a) => a.get('/hello', async () => ({ hi: true })));
    const history = instance.metrics.history;
    expect(history).toBeDefined();
    await history?.sampleNow(); // the baseline for rates
    for (let i = 0; i < 30; i++) await app.inject({ url: '/hello' });
    await history?.sampleNow();
    const series = await app.inject({ url: '/admin/api/metrics/series?prefix=http.', headers: adminAuth });
    expect(series.statusCode).toBe(200);
    expect(series.json<{ series: string[] }>().series).toContain('http.requests_per_s{route="GET /hello"}');
    const query = await app.inject({
      url: `/admin/api/metrics/history?series=${encodeURIComponent('http.requests_per_s{route="GET /hello"}')}`,
      headers: adminAuth,
    });
    expect(query.statusCode).toBe(200);
    const { points } = query.json<{ points: { avg: number }[] }>();
    expect(points.length).toBeGreaterThan(0);
    expect(points.at(-1)?.avg).toBeGreaterThan(0);
    const bad = await app.inject({ url: '/admin/api/metrics/history?series=x&from=abc', headers: adminAuth });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'BWK_ERR_METRICS_QUERY_INVALID' } });
  });

  it('can be turned off', async () => {
    const { app, instance } = await adminApp({ metricsHistory: false });
    expect(instance.metrics.history).toBeUndefined();
    expect((await app.inject({ url: '/admin/api/metrics/series', headers: adminAuth })).statusCode).toBe(404);
  });
});
