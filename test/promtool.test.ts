import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { requireBinary } from './helpers/binaries.js';
import { testApp } from './helpers/app.js';

describe('/metrics exposition', () => {
  it('passes `promtool check metrics` with no findings', async () => {
    const promtool = requireBinary('promtool', 'prometheus');
    const { app } = await testApp((a) => {
      a.get('/users/:id', async () => ({ ok: true }));
    });
    for (const url of ['/users/1', '/users/2', '/missing', '/health'])
      await app.inject({ method: 'GET', url });
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    await app.close();
    const result = spawnSync(promtool, ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
