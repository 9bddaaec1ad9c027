// The degradation controller: its rules on a driven clock (one level per persisting pressure, one
// level back per longer calm, only the flags it turned off turned back on, measurements before and
// after), then in a real Bulwark whose load shedder sheds: the level's flag is killed in the flag
// service (audited, with the reason), /health warns, the admin API shows the step, and everything is
// back on once the shedding is over.
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DegradationController, type Measurement } from '../src/degradation/controller.js';
import { isBulwarkError } from '../src/errors/index.js';
import { createBulwark } from '../src/runtime/create.js';
import { adminApp, adminAuth } from './helpers/admin.js';
import { LogCapture } from './helpers/app.js';
import { until } from './helpers/wait.js';

const silent = pino({ level: 'silent' });

function driven(opts: { already?: string[] } = {}) {
  const clock = { now: 0 };
  const off = new Set<string>(opts.already ?? []);
  const changes: string[] = [];
  let pressure: string | undefined;
  let measured = 0;
  const controller = new DegradationController({
    options: {
      levels: [
        { name: 'no-recommendations', flags: ['app.recommendations'] },
        { name: 'no-background', flags: ['app.reports', 'app.exports'], holdJobs: true },
      ],
      enterAfterMs: 10_000,
      leaveAfterMs: 60_000,
      measureAfterMs: 5,
    },
    sources: [() => pressure],
    flags: {
      isEnabled: (key) => !off.has(key),
      kill: async (key, reason) => {
        off.add(key);
        changes.push(`kill ${key}: ${reason}`);
      },
      revive: async (key, reason) => {
        off.delete(key);
        changes.push(`revive ${key}: ${reason}`);
      },
      holdJobs: (held) => changes.push(`hold jobs ${held}`),
    },
    measure: (): Measurement => ({
      at: clock.now,
      shedPerSecond: ++measured,
      limit: 10,
      rssBytes: 1,
      heapUsedBytes: 1,
    }),
    logger: silent,
    now: () => clock.now,
  });
  onTestFinished(() => controller.close());
  const at = async (ms: number) => {
    clock.now = ms;
    await controller.check();
  };
  return { controller, off, changes, at, press: (reason: string | undefined) => (pressure = reason) };
}

describe('DegradationController', () => {
  it('enters one level per 10 s of pressure and leaves one per 60 s of calm', async () => {
    const d = driven();
    d.press('load is being shed');
    await d.at(0);
    await d.at(9_999);
    expect(d.controller.level).toBe(0);
    await d.at(10_000);
    expect(d.controller.level).toBe(1);
    expect([...d.off]).toEqual(['app.recommendations']);
    await d.at(19_999);
    expect(d.controller.level).toBe(1);
    await d.at(20_000);
    expect(d.controller.level).toBe(2);
    await d.at(40_000); // no level 3: it stays
    expect(d.controller.level).toBe(2);
    d.press(undefined);
    await d.at(41_000);
    await d.at(100_999);
    expect(d.controller.level).toBe(2);
    await d.at(101_000);
    expect(d.controller.level).toBe(1);
    expect([...d.off]).toEqual(['app.recommendations']);
    // Pressure again resets the calm: no leaving while it presses.
    d.press('load is being shed');
    await d.at(120_000);
    d.press(undefined);
    await d.at(121_000);
    await d.at(181_000);
    expect(d.controller.level).toBe(0);
    expect(d.off.size).toBe(0);
    expect(d.changes[0]).toBe(
      'kill app.recommendations: degradation level 1 (no-recommendations): load is being shed for 10 s',
    );
    // Level 2 holds the background jobs while in force, level 1 does not.
    expect(d.changes.filter((c) => c.startsWith('hold jobs'))).toEqual([
      'hold jobs false',
      'hold jobs true',
      'hold jobs false',
      'hold jobs false',
    ]);
    expect(d.changes.filter((c) => c.startsWith('revive')).at(-1)).toBe(
      'revive app.recommendations: leaving degradation level 1 (no-recommendations): no pressure for 60 s',
    );
  });

  it('turns back on only the flags it turned off', async () => {
    const d = driven({ already: ['app.recommendations'] });
    d.press('x');
    await d.at(0);
    await d.at(10_000);
    expect(d.controller.steps[0]?.flags).toEqual([]);
    d.press(undefined);
    await d.at(10_001);
    await d.at(70_001);
    expect(d.controller.level).toBe(0);
    expect([...d.off]).toEqual(['app.recommendations']); // an operator's kill stays
  });

  it('records each step with the measurement before it and after it', async () => {
    const d = driven();
    d.press('load is being shed');
    await d.at(0);
    await d.at(10_000);
    const step = d.controller.steps[0];
    expect(step).toMatchObject({
      direction: 'enter',
      level: 1,
      name: 'no-recommendations',
      before: { shedPerSecond: 1 },
    });
    await until(() => step?.after !== undefined, 2000, 'the after measurement');
    expect(step?.after?.shedPerSecond).toBe(2);
  });

  it('refuses bad levels at start, naming the field', async () => {
    const bad = async (degradation: unknown) => {
      try {
        await createBulwark({
          env: {},
          store: { sqliteFile: ':memory:' },
          logDestination: new LogCapture(),
          degradation: degradation as never,
        });
      } catch (error) {
        return isBulwarkError(error) ? `${error.code} ${error.message}` : String(error);
      }
      return 'started';
    };
    expect(await bad({ levels: [] })).toMatch(/BWK_ERR_DEGRADATION_OPTIONS.*degradation\.levels/);
    expect(await bad({ levels: [{ name: 'A B', flags: [] }] })).toMatch(/degradation\.levels\[0\]\.name/);
    expect(
      await bad({
        levels: [
          { name: 'a', flags: ['x'] },
          { name: 'a', flags: [] },
        ],
      }),
    ).toMatch(/used twice/);
    expect(await bad({ levels: [{ name: 'a', flags: ['x'] }], leaveAfterMs: -1 })).toMatch(
      /degradation\.leaveAfterMs/,
    );
  });
});

describe('degradation in a running Bulwark', () => {
  it('turns a feature off through its flag while load is shed, audited, and back on once it is over', async () => {
    const { app, instance: bulwark } = await adminApp({
      protection: true,
      degradation: {
        levels: [
          {
            name: 'no-recommendations',
            description: 'recommendations hidden',
            flags: ['app.recommendations'],
          },
        ],
        enterAfterMs: 300,
        leaveAfterMs: 1_000,
        checkMs: 100,
        measureAfterMs: 200,
      },
    });
    expect(bulwark.flags.isEnabled('app.recommendations', {}, false)).toBe(true); // a tool flag: on by default
    bulwark.protection.engage();
    bulwark.protection.shedder.refusal[2] = 1; // the curve refuses sheddable requests: shedding
    await until(() => !bulwark.flags.isEnabled('app.recommendations', {}, true), 10_000, 'the flag killed');
    const history = await bulwark.flags.history('app.recommendations');
    expect(history[0]).toMatchObject({ actor: 'bulwark.degradation' });
    expect(JSON.stringify(history[0])).toContain(
      'degradation level 1 (no-recommendations): load is being shed',
    );
    // Health checks run every 5 s: the check's next run says so.
    await until(() => bulwark.health.report().checks?.['degradation:level']?.[0]?.status === 'warn', 10_000);
    const api = (await app.inject({ url: '/admin/api/degradation', headers: adminAuth })).json<{
      level: number;
      levels: unknown[];
      steps: { direction: string; flags: string[]; before: { limit: number } }[];
    }>();
    expect(api.level).toBe(1);
    expect(api.levels).toEqual([
      { name: 'no-recommendations', description: 'recommendations hidden', flags: ['app.recommendations'] },
    ]);
    expect(api.steps[0]).toMatchObject({ direction: 'enter', flags: ['app.recommendations'] });
    expect(api.steps[0]?.before.limit).toBeGreaterThan(0);
    const audit = await bulwark.store.audit.list({ target: 'degradation' });
    expect(audit[0]).toMatchObject({ actor: 'bulwark.degradation', action: 'degradation.enter' });
    // The curve falls by 0.02 a tick once clear: shedding ends within about 5 s, then 1 s of calm.
    await until(() => bulwark.flags.isEnabled('app.recommendations', {}, false), 20_000, 'the flag revived');
    expect(bulwark.degradation?.level).toBe(0);
    expect(bulwark.degradation?.steps[0]).toMatchObject({ direction: 'leave', level: 0 });
  }, 30_000);
});

it('the admin API says when no degradation is configured', async () => {
  const { app } = await adminApp();
  const api = (await app.inject({ url: '/admin/api/degradation', headers: adminAuth })).json<unknown>();
  expect(api).toEqual({ configured: false, level: 0, pressing: [], levels: [], steps: [] });
  expect((await app.inject({ url: '/admin/api/degradation' })).statusCode).toBe(401);
});
