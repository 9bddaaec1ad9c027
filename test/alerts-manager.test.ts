import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertEngine, type AlertEngineOptions } from '../src/alerts/engine.js';
import { inhibited, matches, windowOpen, type MaintenanceWindow } from '../src/alerts/manager.js';
import type { Notification, Receiver } from '../src/alerts/notifiers.js';
import type { AlertRule } from '../src/alerts/rules.js';
import { isBulwarkError } from '../src/errors/index.js';
import { createStore } from '../src/runtime/store.js';
import type { Store } from '../src/store/index.js';

const silent = pino({ level: 'silent' });

describe('alert manager: matchers, windows, inhibition', () => {
  it('matchers are label equalities', () => {
    expect(matches({ alertname: 'a', component: 'db' }, { alertname: 'a', component: 'db', x: '1' })).toBe(
      true,
    );
    expect(matches({ component: 'db' }, { component: 'api' })).toBe(false);
  });

  it('maintenance windows recur weekly in UTC, also past midnight', () => {
    const sundayNight: MaintenanceWindow = {
      name: 'db',
      matchers: {},
      days: [0],
      from: '23:00',
      to: '02:00',
    };
    const at = (iso: string) => Date.parse(iso);
    expect(windowOpen(sundayNight, at('2026-11-22T23:30:00Z'))).toBe(true); // Sunday 23:30
    expect(windowOpen(sundayNight, at('2026-11-23T01:59:00Z'))).toBe(true); // Monday 01:59
    expect(windowOpen(sundayNight, at('2026-11-23T02:00:00Z'))).toBe(false);
    expect(windowOpen(sundayNight, at('2026-11-22T22:59:00Z'))).toBe(false);
    expect(windowOpen(sundayNight, at('2026-11-24T00:30:00Z'))).toBe(false); // Tuesday morning
    const office: MaintenanceWindow = {
      name: 'o',
      matchers: {},
      days: [1, 2, 3, 4, 5],
      from: '09:00',
      to: '17:00',
    };
    expect(windowOpen(office, at('2026-11-23T12:00:00Z'))).toBe(true);
    expect(windowOpen(office, at('2026-11-22T12:00:00Z'))).toBe(false);
  });

  it('a critical alert mutes the warnings with the same equal labels, only those', () => {
    const rules = [{ source: 'critical' as const, target: 'warning' as const, equal: ['component'] }];
    const dbDown = { severity: 'critical' as const, labels: { component: 'db' } };
    expect(inhibited({ severity: 'warning', labels: { component: 'db' } }, [dbDown], rules)).toBe(true);
    expect(inhibited({ severity: 'warning', labels: { component: 'api' } }, [dbDown], rules)).toBe(false);
    expect(
      inhibited({ severity: 'warning', labels: {} }, [{ severity: 'critical', labels: {} }], rules),
    ).toBe(false);
    expect(inhibited({ severity: 'critical', labels: { component: 'db' } }, [dbDown], rules)).toBe(false);
  });
});

const stores: Store[] = [];
const engines: AlertEngine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close();
  for (const store of stores.splice(0)) await store.close();
});

/** An engine on an in-memory store with a hand-driven clock and recorded deliveries. */
async function setup(rules: AlertRule[], extra: Partial<AlertEngineOptions> = {}) {
  const store = await createStore({ sqliteFile: ':memory:' });
  stores.push(store);
  const clock = { now: Date.UTC(2026, 10, 18, 12) }; // a Wednesday noon
  const values = new Map<string, number | undefined>();
  const delivered: { receiver: string; n: Notification }[] = [];
  const receivers: Receiver[] = [
    { name: 'team', type: 'webhook', url: 'http://unused.invalid' },
    { name: 'oncall', type: 'webhook', url: 'http://unused.invalid' },
  ];
  const engine = new AlertEngine({
    store,
    logger: silent,
    serviceId: 'shop',
    instanceId: 'i1',
    rules,
    receivers,
    routes: () => ['team'],
    read: (series) => Promise.resolve(values.get(series)),
    deliver: (receiver, n) => {
      delivered.push({ receiver: receiver.name, n });
      return Promise.resolve();
    },
    now: () => clock.now,
    ...extra,
  });
  engines.push(engine);
  const tick = async (advanceMs = 0) => {
    clock.now += advanceMs;
    await engine.evaluateOnce();
    await engine.sendOnce();
  };
  return { engine, clock, values, delivered, tick, store };
}

const rule = (id: string, extra: Partial<AlertRule> = {}): AlertRule => ({
  id,
  kind: 'threshold',
  series: id,
  fireAbove: 1,
  severity: 'warning',
  summary: `${id} is high`,
  ...extra,
});

describe('alert manager: silences, acks, repeats, escalation, inhibition', () => {
  it('a silence keeps matching alerts (firing and resolve) from every receiver; others go out', async () => {
    const { engine, values, delivered, tick, clock } = await setup([rule('disk'), rule('cpu')]);
    await engine.silences.add({
      matchers: { alertname: 'disk' },
      startsAt: clock.now,
      endsAt: clock.now + 3_600_000,
      createdBy: 'alice',
      comment: 'resizing the volume',
    });
    values.set('disk', 5);
    values.set('cpu', 5);
    await tick();
    values.set('disk', 0);
    await tick(1000);
    expect(delivered.map((d) => d.n.key)).toEqual(['cpu:1:team']);
    const outbox = await engine.outbox.list();
    expect(outbox.filter((e) => e.key.startsWith('disk')).map((e) => [e.key, e.state])).toEqual([
      ['disk:2:team', 'silenced'],
      ['disk:1:team', 'silenced'],
    ]);
    expect(outbox.find((e) => e.key === 'disk:1:team')?.lastError).toContain('resizing the volume');
  });

  it('a silence holds however many ended ones are stored; each evaluation deletes the ended ones', async () => {
    const { engine, values, delivered, tick, clock, store } = await setup([rule('disk')]);
    // 1 000 ended silences whose ids sort before any random one (a store read a page of 1 000
    // and missed every silence after it).
    await store.kv.putMany(
      'bulwark.alerts.silences',
      Array.from({ length: 1_000 }, (_, i) => ({
        key: `!ended-${String(i).padStart(4, '0')}`,
        value: {
          id: `!ended-${i}`,
          matchers: { alertname: 'disk' },
          startsAt: clock.now - 7_200_000,
          endsAt: clock.now - 3_600_000,
          createdBy: 'a',
          comment: 'old',
        },
      })),
    );
    const active = await engine.silences.add({
      matchers: { alertname: 'disk' },
      startsAt: clock.now,
      endsAt: clock.now + 3_600_000,
      createdBy: 'a',
      comment: 'resizing',
    });
    expect((await engine.silences.list(clock.now)).map((s) => s.id)).toEqual([active.id]);
    values.set('disk', 5);
    await tick();
    expect(delivered).toEqual([]);
    expect((await engine.outbox.list()).map((e) => e.state)).toEqual(['silenced']);
    expect((await store.kv.list('bulwark.alerts.silences')).map((e) => e.key)).toEqual([active.id]);
  });

  it('a resolve goes out when its firing did, even if a silence started in between', async () => {
    const { engine, values, delivered, tick, clock } = await setup([rule('disk')]);
    values.set('disk', 5);
    await tick();
    await engine.silences.add({
      matchers: { alertname: 'disk' },
      startsAt: clock.now,
      endsAt: clock.now + 3_600_000,
      createdBy: 'a',
      comment: 'x',
    });
    values.set('disk', 0);
    await tick(1000);
    expect(delivered.map((d) => d.n.status)).toEqual(['firing', 'resolved']);
  });

  it('a firing alert repeats every repeat interval until acknowledged; the ack ends with the firing', async () => {
    const { engine, values, delivered, tick, store } = await setup([rule('queue')], {
      repeatIntervalMs: 60_000,
    });
    values.set('queue', 5);
    await tick();
    await tick(30_000);
    await tick(31_000); // 61 s after firing: repeat 1
    await tick(10_000);
    expect(delivered.map((d) => d.n.key)).toEqual(['queue:1:team', 'queue:1:repeat1:team']);
    await engine.ack('queue', 'bob', 'draining it');
    await tick(120_000); // would be repeat 3
    expect(delivered).toHaveLength(2);
    expect((await store.audit.list({ target: 'alert:queue' }))[0]).toMatchObject({
      actor: 'bob',
      action: 'alerts.ack',
    });
    values.set('queue', 0);
    await tick(1000);
    values.set('queue', 5);
    await tick(1000);
    await tick(61_000); // a new firing: the old ack does not apply
    expect(delivered.map((d) => d.n.key).slice(2)).toEqual([
      'queue:2:team',
      'queue:3:team',
      'queue:3:repeat1:team',
    ]);
    await expect(engine.ack('nope', 'bob', 'x')).rejects.toSatisfy((e) =>
      isBulwarkError(e, 'BWK_ERR_ALERTS_NOT_FIRING'),
    );
  });

  it('escalates an unacknowledged alert to the next receiver after its delay, once', async () => {
    const { values, delivered, tick } = await setup([rule('api', { severity: 'critical' })], {
      escalation: () => [{ afterMs: 300_000, receivers: ['oncall'] }],
    });
    values.set('api', 5);
    await tick();
    await tick(200_000);
    expect(delivered.map((d) => d.receiver)).toEqual(['team']);
    await tick(100_000);
    await tick(60_000);
    expect(delivered.map((d) => [d.receiver, d.n.key])).toEqual([
      ['team', 'api:1:team'],
      ['oncall', 'api:1:escalation1:oncall'],
    ]);
  });

  it('an acknowledged alert is not escalated', async () => {
    const { engine, values, delivered, tick } = await setup([rule('api', { severity: 'critical' })], {
      escalation: () => [{ afterMs: 300_000, receivers: ['oncall'] }],
    });
    values.set('api', 5);
    await tick();
    await engine.ack('api', 'carol', 'on it');
    await tick(400_000);
    expect(delivered.map((d) => d.receiver)).toEqual(['team']);
  });

  it('a firing critical alert inhibits the warnings of its component', async () => {
    const { values, delivered, tick, engine } = await setup([
      rule('db-down', { severity: 'critical', labels: { component: 'db' } }),
      rule('db-slow', { labels: { component: 'db' } }),
      rule('api-slow', { labels: { component: 'api' } }),
    ]);
    values.set('db-down', 5);
    await tick();
    values.set('db-slow', 5);
    values.set('api-slow', 5);
    await tick(1000);
    expect(delivered.map((d) => d.n.rule)).toEqual(['db-down', 'api-slow']);
    expect((await engine.outbox.list({ state: 'inhibited' })).map((e) => e.key)).toEqual(['db-slow:1:team']);
  });

  it('a maintenance window silences matching alerts while open', async () => {
    const { values, delivered, tick } = await setup([rule('backup')], {
      windows: [
        { name: 'nightly', matchers: { alertname: 'backup' }, days: [3], from: '11:00', to: '13:00' },
      ],
    });
    values.set('backup', 5);
    await tick();
    expect(delivered).toEqual([]);
  });
});

describe('alert manager: grouping', () => {
  it('alerts of one group fire together into one digest after the group wait; later ones wait the group interval', async () => {
    const { values, delivered, tick } = await setup(
      [
        rule('db-cpu', { labels: { component: 'db' } }),
        rule('db-disk', { labels: { component: 'db' } }),
        rule('db-conn', { labels: { component: 'db' } }),
        rule('api-5xx', { labels: { component: 'api' } }),
      ],
      { group: { by: ['component'], waitMs: 30_000, intervalMs: 300_000 } },
    );
    values.set('db-cpu', 5);
    await tick();
    values.set('db-disk', 5);
    values.set('api-5xx', 5);
    await tick(10_000);
    expect(delivered).toEqual([]); // group wait
    await tick(20_000);
    // db: cpu (30 s old) and disk (20 s old) together; api waits its own group's 30 s.
    expect(delivered.map((d) => d.n.rule)).toEqual(['group:component=db']);
    expect(delivered[0]?.n.summary).toBe('2 alerts (2 firing): db-cpu (firing), db-disk (firing)');
    expect(delivered[0]?.n.labels).toMatchObject({ component: 'db', severity: 'warning' });
    expect(delivered[0]?.n.details?.split('\n')).toHaveLength(2);
    await tick(10_000);
    expect(delivered.map((d) => d.n.rule)).toEqual(['group:component=db', 'api-5xx']); // a group of one: as is
    values.set('db-conn', 5);
    await tick(60_000);
    expect(delivered).toHaveLength(2); // within the group interval
    await tick(240_000);
    expect(delivered.map((d) => d.n.rule).at(-1)).toBe('db-conn');
  });

  it('PagerDuty receivers are not grouped: each alert goes at once', async () => {
    const { values, delivered, tick } = await setup([rule('a'), rule('b')], {
      group: { by: [], waitMs: 30_000, intervalMs: 300_000 },
      receivers: [{ name: 'team', type: 'pagerduty', routingKey: 'k' }],
    });
    values.set('a', 5);
    values.set('b', 5);
    await tick();
    expect(delivered.map((d) => d.n.rule)).toEqual(['a', 'b']);
  });
});
