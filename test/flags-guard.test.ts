import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  decide,
  GuardedRollouts,
  type ArmStats,
  type RolloutPlan,
  type RolloutState,
} from '../src/flags/guard.js';
import { FlagService } from '../src/flags/service.js';
import { createStore } from '../src/store/index.js';
import type { Store } from '../src/store/types.js';
import { checkoutFlag } from './helpers/flags.js';
import { rejection } from './helpers/store.js';

const plan: RolloutPlan = {
  steps: [10, 50, 100],
  stepMs: 60_000,
  minSamples: 50,
  maxErrorRateIncrease: 0.01,
  maxLatencyRatio: 1.2,
};
const who = { actor: 'ada', reason: 'ship it' };
const arm = (samples: number, errors: number, latencyMs: number): ArmStats => ({
  samples,
  errors,
  latencyMsSum: samples * latencyMs,
});

describe('the guard (pure)', () => {
  const state: RolloutState = {
    flag: 'f',
    plan,
    step: 0,
    stepStartedAt: 0,
    status: 'running',
    why: '',
    updatedAt: 0,
  };

  it('no data means hold, never advance, however long it has been', () => {
    expect(decide(state, arm(10, 0, 5), arm(500, 0, 5), 10 * 60_000)).toMatchObject({ action: 'hold' });
    expect(decide(state, arm(500, 0, 5), arm(0, 0, 0), 10 * 60_000).action).toBe('hold');
  });

  it('a regression rolls back, even before the step time has passed', () => {
    const errors = decide(state, arm(100, 5, 5), arm(100, 1, 5), 1000);
    expect(errors.action).toBe('rollback');
    expect(errors.why).toContain('error rate 5.00% against 1.00%');
    const slow = decide(state, arm(100, 0, 13), arm(100, 0, 10), 1000);
    expect(slow).toMatchObject({ action: 'rollback' });
    expect(slow.why).toContain('mean latency 13.0 ms against 10.0 ms');
  });

  it('healthy: holds until the step time has passed, then advances; completes at the last step', () => {
    const healthy = [arm(100, 1, 10), arm(100, 1, 10)] as const;
    expect(decide(state, ...healthy, 30_000).action).toBe('hold');
    expect(decide(state, ...healthy, 60_000)).toMatchObject({ action: 'advance', to: 1 });
    expect(decide({ ...state, step: 2 }, ...healthy, 60_000).action).toBe('complete');
    // Within the allowed margins is healthy.
    expect(decide(state, arm(100, 2, 11.9), arm(100, 1, 10), 60_000).action).toBe('advance');
  });
});

describe('guarded rollouts on the store (the clock driven by the test)', () => {
  const dirs: string[] = [];
  const stores: Store[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function setup(instances = 1) {
    const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-guard-'));
    dirs.push(dir);
    const store = await createStore({ dataDir: dir });
    stores.push(store);
    let now = 1_000_000;
    const flags = new FlagService({ store, pollMs: 60_000 });
    await flags.start();
    await flags.set({ ...checkoutFlag, rules: [] }, who);
    const guards = Array.from(
      { length: instances },
      (_, i) => new GuardedRollouts({ flags, store, instanceId: `i${i}`, now: () => now }),
    );
    /** Serves `n` requests per arm through `guard` with the given error rate and latency per arm. */
    const traffic = (
      guard: GuardedRollouts,
      n: number,
      treatment: [number, number],
      control: [number, number],
    ) => {
      let served = { on: 0, off: 0 };
      for (let i = 0; (served.on < n || served.off < n) && i < n * 1000; i += 1) {
        const details = flags.evaluate('new-checkout', { targetingKey: `user-${now}-${i}` }, false);
        const variant = details.variant === 'on' ? 'on' : 'off';
        if (served[variant] >= n) continue;
        const [errorRate, latencyMs] = variant === 'on' ? treatment : control;
        guard.observe('new-checkout', details.variant, { error: served[variant] < n * errorRate, latencyMs });
        served = { ...served, [variant]: served[variant] + 1 };
      }
    };
    return { flags, guards, traffic, advance: (ms: number) => (now += ms) };
  }

  it('advances 10 → 50 → 100 % while healthy, one step per step time, audited with the reason', async () => {
    const { flags, guards, traffic, advance } = await setup();
    const guard = guards[0]!;
    await guard.start('new-checkout', plan, who);
    expect(flags.get('new-checkout')?.rollout?.percentage).toBe(10);
    for (const expected of [50, 100]) {
      await guard.tick(); // learns the step
      traffic(guard, 60, [0.01, 10], [0.01, 10]);
      await guard.tick();
      expect(flags.get('new-checkout')?.rollout?.percentage).toBe(expected === 50 ? 10 : 50); // not before stepMs
      advance(60_000);
      await guard.tick();
      expect(flags.get('new-checkout')?.rollout?.percentage).toBe(expected);
    }
    // 100 % leaves no control group: reaching the last step completes the rollout.
    expect(await guard.status('new-checkout')).toMatchObject({ status: 'completed', step: 2 });
    const history = await flags.history('new-checkout');
    expect(history.filter((h) => h.actor === 'guarded-rollout')).toHaveLength(2);
    expect(history[0]).toMatchObject({ detail: { reason: expect.stringContaining('healthy') as unknown } });
  });

  it('rolls back to 0 % on a regression and records why', async () => {
    const { flags, guards, traffic } = await setup();
    const guard = guards[0]!;
    await guard.start('new-checkout', plan, who);
    await guard.tick();
    traffic(guard, 100, [0.2, 10], [0.01, 10]);
    await guard.tick();
    expect(flags.get('new-checkout')?.rollout?.percentage).toBe(0);
    const state = await guard.status('new-checkout');
    expect(state).toMatchObject({ status: 'rolled-back' });
    expect(state?.why).toContain('error rate 20.00% against 1.00%');
    expect((await flags.history('new-checkout'))[0]).toMatchObject({
      actor: 'guarded-rollout',
      action: 'flag.rollout',
    });
  });

  it('holds without enough data, however long it waits', async () => {
    const { flags, guards, traffic, advance } = await setup();
    const guard = guards[0]!;
    await guard.start('new-checkout', plan, who);
    await guard.tick();
    traffic(guard, 20, [0, 10], [0, 10]);
    advance(24 * 3_600_000);
    await guard.tick();
    expect(flags.get('new-checkout')?.rollout?.percentage).toBe(10);
    expect(await guard.status('new-checkout')).toMatchObject({ status: 'running', step: 0 });
  });

  it('sums the outcomes of every instance, and exactly one instance applies a transition', async () => {
    const { flags, guards, traffic, advance } = await setup(2);
    const [a, b] = [guards[0]!, guards[1]!];
    await a.start('new-checkout', plan, who);
    await a.tick();
    await b.tick();
    traffic(a, 30, [0, 10], [0, 10]); // 30 + 30 per arm: enough only together
    traffic(b, 30, [0, 10], [0, 10]);
    advance(60_000);
    await a.tick(); // flushes a's 30; b's are not in the store yet: hold
    expect(flags.get('new-checkout')?.rollout?.percentage).toBe(10);
    await b.tick(); // flushes b's; 60 in each arm: advance
    await a.tick();
    expect(flags.get('new-checkout')?.rollout?.percentage).toBe(50);
    const transitions = (await flags.history('new-checkout')).filter((h) => h.actor === 'guarded-rollout');
    expect(transitions).toHaveLength(1);
  });

  it('a percentage set by hand stops the guard instead of fighting the operator', async () => {
    const { flags, guards, traffic, advance } = await setup();
    const guard = guards[0]!;
    await guard.start('new-checkout', plan, who);
    await guard.tick();
    await flags.rollout('new-checkout', 30, { actor: 'oncall', reason: 'hold at 30' });
    traffic(guard, 60, [0, 10], [0, 10]);
    advance(60_000);
    await guard.tick();
    expect(flags.get('new-checkout')?.rollout?.percentage).toBe(30);
    const state = await guard.status('new-checkout');
    expect(state).toMatchObject({ status: 'aborted' });
    expect(state?.why).toContain('changed by hand to 30%');
  });

  it('progress shows each arm’s outcomes at the step and the verdict; abort stops it once, audited', async () => {
    const { flags, guards, traffic } = await setup();
    const guard = guards[0]!;
    expect(await guard.progress('new-checkout')).toBeUndefined();
    await guard.start('new-checkout', plan, who);
    await guard.tick();
    traffic(guard, 20, [0.1, 30], [0, 10]);
    await guard.tick();
    const progress = await guard.progress('new-checkout');
    expect(progress).toMatchObject({
      state: { status: 'running', step: 0 },
      treatment: { samples: 20, errors: 2, latencyMsSum: 600 },
      control: { samples: 20, errors: 0, latencyMsSum: 200 },
      verdict: { action: 'hold' },
    });
    expect(progress?.verdict?.why).toContain('20 treatment and 20 control outcomes, 50 needed');

    const stopped = await guard.abort('new-checkout', { actor: 'oncall', reason: 'launch moved' });
    expect(stopped).toMatchObject({ status: 'aborted', why: 'aborted by oncall: launch moved' });
    expect((await guard.progress('new-checkout'))?.verdict).toBeNull();
    const [last] = await flags.history('new-checkout', 1);
    expect(last).toMatchObject({
      actor: 'oncall',
      action: 'flag.guard.abort',
      detail: { step: 0, percentage: 10, reason: 'launch moved' },
    });
    expect(flags.get('new-checkout')?.rollout?.percentage).toBe(10); // the percentage stays
    await rejection(guard.abort('new-checkout', who), 'BWK_ERR_FLAG_NO_GUARDED_ROLLOUT');
    await rejection(guard.abort('never-guarded', who), 'BWK_ERR_FLAG_NO_GUARDED_ROLLOUT');
  });

  it('refuses a bad plan naming the field', async () => {
    const { guards } = await setup();
    const params = await rejection(
      guards[0]!.start('new-checkout', { ...plan, steps: [50, 10] }, who),
      'BWK_ERR_FLAG_INVALID',
    );
    expect(String(params['detail'])).toContain('plan.steps[1]');
  });
});
