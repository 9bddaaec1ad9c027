// Spin's daily queue-health and weekly match-rate reports reach the alert receivers (a real webhook
// on loopback) through the outbox: with the day's figures, once per day however often the job runs.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test/helpers/wait.js';
import { buildSpin } from '../src/app.js';
import { REPORTS_QUEUE, type ReportJob } from '../src/reports.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'spin-reports-'));
const received: { summary: string; details: string; key: string }[] = [];
let hook: http.Server;
let app: Awaited<ReturnType<typeof buildSpin>>;

beforeAll(async () => {
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body) as { summary: string; details: string; key: string });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  app = await buildSpin({
    env: { BULWARK_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    spin: { matchIntervalMs: 100, pollMs: 20 },
    queues: { pollMs: 50 },
    alerts: { receivers: [{ name: 'ops', type: 'webhook', url }] },
  });
});

afterAll(async () => {
  await app?.close();
  await new Promise((resolve) => hook.close(resolve));
  rmSync(dataDir, { recursive: true, force: true });
});

describe('Spin reports', () => {
  it('the daily report goes to the receivers with the day’s figures, once however often it runs', async () => {
    // Four couples and two men left waiting.
    const people = [
      ...Array.from({ length: 6 }, (_, i) => ({
        displayName: `m${i}`,
        gender: 'man' as const,
        seeking: ['woman'] as const,
      })),
      ...Array.from({ length: 4 }, (_, i) => ({
        displayName: `w${i}`,
        gender: 'woman' as const,
        seeking: ['man'] as const,
      })),
    ];
    await app.spin.store.createUsers(people, { join: true });
    await until(async () => (await app.spin.store.waiting()).length === 2, 10_000, 'four matches');
    const to = Date.now();
    await app.bulwark.queues.add<ReportJob>(REPORTS_QUEUE, { period: 'daily', to });
    await app.bulwark.queues.add<ReportJob>(REPORTS_QUEUE, { period: 'daily', to }); // run twice
    await until(() => received.length >= 1, 20_000, 'the report at the webhook');
    const day = new Date(to).toISOString().slice(0, 10);
    expect(received[0]?.summary).toBe(`Spin queue health, ${day}`);
    expect(received[0]?.details).toContain('Waiting now: 2 (women 0, men 2, nonbinary people 0)');
    expect(received[0]?.details).toContain('Matches in the last 24 hours: 4');
    await new Promise((resolve) => setTimeout(resolve, 2000)); // a second delivery would arrive by now
    expect(received.filter((r) => r.summary.startsWith('Spin queue health'))).toHaveLength(1);
  });
});
