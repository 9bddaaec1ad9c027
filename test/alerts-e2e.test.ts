import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { AlertsConfig } from '../src/alerts/config.js';
import { isBulwarkError } from '../src/errors/index.js';
import { createBulwark } from '../src/runtime/create.js';
import { adminApp, adminAuth } from './helpers/admin.js';
import { spawnTs } from './helpers/process.js';
import { until } from './helpers/wait.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A webhook receiver recording each delivery. */
async function webhook() {
  const bodies: { key: string; status: string; rule: string }[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const parsed = JSON.parse(body) as { status: string; rule: string };
      bodies.push({
        key: String(request.headers['idempotency-key']),
        status: parsed.status,
        rule: parsed.rule,
      });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => void server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies };
}

/** A real SMTP server (smtp-server) keeping each message's subject. */
async function smtp() {
  const subjects: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, _session, done) {
      let text = '';
      stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
      stream.on('end', () => {
        subjects.push(/^Subject: (.*)$/m.exec(text)?.[1] ?? '');
        done();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.server.address() as AddressInfo).port, subjects };
}

function failing(app: FastifyInstance): void {
  app.get('/pay', async (request) => {
    if ((request.query as { ok?: string }).ok === undefined) throw new Error('payment provider down');
    return { paid: true };
  });
}

describe('alerting end to end', () => {
  it('a rule fires from real traffic: webhook and email each get the firing and the resolve once; an action runs', async () => {
    const hook = await webhook();
    const mail = await smtp();
    const alerts: AlertsConfig = {
      defaultRules: false,
      reports: { receivers: ['ops-webhook'] },
      receivers: [
        { name: 'ops-webhook', type: 'webhook', url: hook.url },
        {
          name: 'ops-mail',
          type: 'email',
          smtp: { host: '127.0.0.1', port: mail.port },
          from: 'bulwark@shop.example',
          to: ['ops@shop.example'],
        },
      ],
      rules: [
        {
          id: 'payments-failing',
          kind: 'threshold',
          series: 'http.error_ratio{route="*"}',
          fireAbove: 0.5,
          clearAbove: 0.1,
          severity: 'critical',
          summary: 'Payments are failing',
          action: { type: 'flag.kill', flag: 'bulwark.cache' },
        },
        {
          id: 'payments-failing-shed',
          kind: 'threshold',
          series: 'http.error_ratio{route="*"}',
          fireAbove: 0.5,
          clearAbove: 0.1,
          severity: 'warning',
          summary: 'Shed background work while payments fail',
          action: { type: 'queue.pause', queue: 'newsletters' },
        },
      ],
      routes: { 'payments-failing-shed': [] },
    };
    const { app, instance } = await adminApp(
      { alerts, metricsHistory: { intervalMs: 1000, tiers: [{ resolutionS: 1, retentionMs: 3_600_000 }] } },
      failing,
    );
    const history = instance.metrics.history;
    const engine = instance.alerts;
    if (history === undefined || engine === undefined) throw new Error('history and alerts expected');
    const tick = async () => {
      await history.sampleNow();
      await engine.evaluateOnce();
      await engine.sendOnce();
    };
    await tick();
    for (let i = 0; i < 10; i++) await app.inject({ url: '/pay' });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await tick();
    await tick(); // a second evaluation of the same state sends nothing more
    expect(hook.bodies.map((b) => [b.status, b.key])).toEqual([['firing', 'payments-failing:1:ops-webhook']]);
    expect(mail.subjects).toEqual([expect.stringMatching(/^\[FIRING critical\] Payments are failing/)]);
    const list = await app.inject({ url: '/admin/api/alerts', headers: adminAuth });
    expect(list.json()).toMatchObject({
      rules: [
        { id: 'payments-failing', state: 'firing', transitions: 1 },
        { id: 'payments-failing-shed', state: 'firing' },
      ],
    });
    // The rule's action: the cache kill switch, recorded in the audit log.
    expect(instance.flags.isEnabled('bulwark.cache', {}, true)).toBe(false);
    const audit = await instance.store.audit.list({ target: 'alert:payments-failing' });
    expect(audit[0]).toMatchObject({ actor: 'alerts', action: 'alerts.action' });
    // A recovery step: a queue paused on every instance (background work shed).
    expect((await instance.queues.pausedQueues()).has('newsletters')).toBe(true);

    for (let i = 0; i < 20; i++) await app.inject({ url: '/pay?ok=1' });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await tick();
    await tick();
    expect(hook.bodies.map((b) => b.status)).toEqual(['firing', 'resolved']);
    expect(mail.subjects).toHaveLength(2);
    expect(mail.subjects[1]).toMatch(/^\[RESOLVED\]/);

    const test = await app.inject({
      method: 'POST',
      url: '/admin/api/alerts/test',
      headers: adminAuth,
      payload: { receiver: 'ops-webhook' },
    });
    expect(test.json()).toEqual({ delivered: true });
    const unknown = await app.inject({
      method: 'POST',
      url: '/admin/api/alerts/test',
      headers: adminAuth,
      payload: { receiver: 'nobody' },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: { code: 'BWK_ERR_ALERTS_RECEIVER_NOT_FOUND' } });

    // Silences and acknowledgements over the admin API.
    const silence = await app.inject({
      method: 'POST',
      url: '/admin/api/alerts/silences',
      headers: adminAuth,
      payload: {
        matchers: { alertname: 'payments-failing' },
        durationMs: 3_600_000,
        comment: 'provider incident',
      },
    });
    expect(silence.statusCode).toBe(201);
    const { id } = silence.json<{ id: string }>();
    const silences = await app.inject({ url: '/admin/api/alerts/silences', headers: adminAuth });
    expect(silences.json()).toMatchObject({
      silences: [{ id, createdBy: 'admin', comment: 'provider incident' }],
    });
    const ended = await app.inject({
      method: 'DELETE',
      url: `/admin/api/alerts/silences/${id}`,
      headers: adminAuth,
    });
    expect(ended.json()).toEqual({ expired: true });
    const notFiring = await app.inject({
      method: 'POST',
      url: '/admin/api/alerts/payments-failing/ack',
      headers: adminAuth,
      payload: { comment: 'x' },
    });
    expect(notFiring.statusCode).toBe(409);
    expect(notFiring.json()).toMatchObject({ error: { code: 'BWK_ERR_ALERTS_NOT_FIRING' } });

    // Reports are scheduled jobs; one run now sends the daily report through the outbox once.
    await instance.queues.add('bulwark.reports', { period: 'daily' });
    await until(
      async () => {
        await engine.sendOnce();
        return hook.bodies.some((b) => b.rule === 'bulwark.report.daily');
      },
      10_000,
      'the daily report delivered',
    );
    expect(hook.bodies.filter((b) => b.rule === 'bulwark.report.daily')).toHaveLength(1);
  });

  it('a bad alerting configuration stops the start, naming each field', async () => {
    const error = await createBulwark({
      env: {},
      store: { sqliteFile: ':memory:' },
      alerts: {
        receivers: [{ name: 'x', type: 'webhook', url: 'not a url' }],
        rules: [{ id: 'r', kind: 'threshold', series: 's', severity: 'loud', summary: 'x' } as never],
        routes: { r: ['nobody'] },
        reports: { receivers: ['x', 'ghost'] },
        group: { by: 'component' } as never,
        outboxRetentionMs: 86_400_000,
      },
    }).catch((e: unknown) => e);
    expect(isBulwarkError(error, 'BWK_ERR_ALERTS_CONFIG')).toBe(true);
    const fields = (isBulwarkError(error) ? (error.details ?? []) : []).map((p) => p.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        'alerts.receivers[0].url',
        'alerts.rules[0].severity',
        'alerts.rules[0]',
        'alerts.routes.r',
        'alerts.outboxRetentionMs',
      ]),
    );
  });

  it(
    'the server refuses a broken BULWARK_ALERTS_FILE with exit 78; the CLI lists rules and sends a test',
    { timeout: 60_000 },
    async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'bwk-alerts-cli-'));
      closers.push(() => rmSync(dir, { recursive: true, force: true }));
      const file = path.join(dir, 'alerts.json');
      writeFileSync(file, JSON.stringify({ receivers: [{ name: 'ops', type: 'slack' }] }));
      const server = spawnTs('src/app/server.ts', [], {
        BULWARK_DATA_DIR: dir,
        BULWARK_ALERTS_FILE: file,
        PORT: '0',
      });
      expect((await server.exited).code).toBe(78);
      expect(server.stderr()).toContain('receivers[0].url');

      const hook = await webhook();
      writeFileSync(file, JSON.stringify({ receivers: [{ name: 'ops', type: 'webhook', url: hook.url }] }));
      const env = { BULWARK_DATA_DIR: dir, BULWARK_ALERTS_FILE: file };
      const list = spawnTs('src/cli/main.ts', ['alerts', 'list'], env);
      expect((await list.exited).code).toBe(0);
      expect(list.stdout()).toMatch(/bulwark\.error-ratio\s+critical\s+inactive/);
      const test = spawnTs('src/cli/main.ts', ['alerts', 'test', 'ops'], env);
      expect((await test.exited).code).toBe(0);
      expect(hook.bodies.map((b) => b.rule)).toEqual(['bulwark.test']);
      const missing = spawnTs('src/cli/main.ts', ['alerts', 'test', 'nobody'], env);
      expect((await missing.exited).code).toBe(1);
      expect(missing.stderr()).toContain('BWK_ERR_ALERTS_RECEIVER_NOT_FOUND');
      const silence = spawnTs(
        'src/cli/main.ts',
        ['alerts', 'silence', '--match', 'alertname=bulwark.memory', '--for', '2h', '--comment', 'load test'],
        env,
      );
      expect((await silence.exited).code).toBe(0);
      const id = /silence (\S+) until/.exec(silence.stdout())?.[1] ?? '';
      const listed = spawnTs('src/cli/main.ts', ['alerts', 'silences'], env);
      await listed.exited;
      expect(listed.stdout()).toContain(id);
      expect(listed.stdout()).toContain('alertname=bulwark.memory');
      const badFor = spawnTs(
        'src/cli/main.ts',
        ['alerts', 'silence', '--match', 'a=b', '--for', 'soon', '--comment', 'x'],
        env,
      );
      expect((await badFor.exited).code).not.toBe(0);
      expect(badFor.stderr()).toContain('--for');
      const ack = spawnTs('src/cli/main.ts', ['alerts', 'ack', 'bulwark.memory', '--comment', 'x'], env);
      expect((await ack.exited).code).toBe(1);
      expect(ack.stderr()).toContain('BWK_ERR_ALERTS_NOT_FIRING');
    },
  );
});
