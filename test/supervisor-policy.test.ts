// The supervisor's restart policy at its edges: what an operator relies on is that a one-off crash
// costs nothing, a crash loop backs off within [half, full] of its doubling delay and never past the
// cap, that "stable" and "in the window" mean exactly what docs/supervisor.md says, and that a
// parked app comes back with a clean slate after a reset.
import { describe, expect, it } from 'vitest';
import { RestartPolicy, type RestartPolicyOptions } from '../src/supervisor/policy.js';

const OPTIONS: RestartPolicyOptions = {
  initialMs: 100,
  maxMs: 1000,
  stableMs: 10_000,
  maxRestarts: 3,
  windowMs: 60_000,
};

const policy = (extra: Partial<RestartPolicyOptions> = {}) => new RestartPolicy({ ...OPTIONS, ...extra });

/** `n` crashes one second apart of instances that were up only briefly; their decisions. */
function crashLoop(p: RestartPolicy, n: number, from = 0) {
  return Array.from({ length: n }, (_, i) => p.next(from + i * 1000, 5));
}

describe('restart delays', () => {
  it('equal jitter: between half and the whole doubling delay, three quarters at the midpoint', () => {
    const at = (random: number) => policy({ random: () => random });
    expect([2, 3, 4].map((s) => at(0).delayFor(s))).toEqual([50, 100, 200]);
    expect([2, 3, 4].map((s) => at(0.5).delayFor(s))).toEqual([75, 150, 300]);
    expect([2, 3, 4].map((s) => at(0.99).delayFor(s))).toEqual([100, 199, 398]);
  });

  it('the first restart of a streak is immediate whatever the jitter', () => {
    const p = policy({ random: () => 0.99 });
    expect(p.delayFor(1)).toBe(0);
    expect(p.next(0, 5)).toEqual({ action: 'restart', delayMs: 0, streak: 1 });
  });

  it('never waits longer than maxMs, however long the streak', () => {
    const p = policy({ random: () => 0.999_999, maxRestarts: 100, windowMs: 1 });
    const delays = crashLoop(p, 40).map((d) => (d.action === 'restart' ? d.delayMs : NaN));
    expect(delays.slice(0, 6)).toEqual([0, 100, 200, 400, 800, 1000]);
    expect(Math.max(...delays)).toBe(1000);
    expect(delays.every(Number.isFinite)).toBe(true);
  });

  it('uses Math.random by default: a fleet spreads its restarts within the jitter range', () => {
    const p = policy();
    const delays = Array.from({ length: 200 }, () => p.delayFor(4));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(200);
    expect(Math.max(...delays)).toBeLessThanOrEqual(400);
    expect(new Set(delays).size).toBeGreaterThan(10);
  });
});

describe('streaks', () => {
  it('an instance up exactly stableMs ended the streak; one up a millisecond less did not', () => {
    const p = policy({ random: () => 0 });
    p.next(0, 5);
    expect(p.next(1000, 9_999)).toEqual({ action: 'restart', delayMs: 50, streak: 2 });
    expect(p.next(2000, 10_000)).toEqual({ action: 'restart', delayMs: 0, streak: 1 });
  });

  it('the streak keeps growing across crashes in a row, one step per restart', () => {
    const p = policy({ random: () => 0, maxRestarts: 10 });
    expect(crashLoop(p, 5).map((d) => (d.action === 'restart' ? d.streak : 0))).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('the restart budget', () => {
  it('parks on the crash past maxRestarts in the window, and a parked crash is no restart', () => {
    const p = policy();
    expect(crashLoop(p, 3).map((d) => d.action)).toEqual(['restart', 'restart', 'restart']);
    expect(p.next(3000, 5)).toEqual({ action: 'park', restartsInWindow: 3 });
    expect(p.next(4000, 5)).toEqual({ action: 'park', restartsInWindow: 3 });
    expect(p.restartsInWindow(4000)).toBe(3);
  });

  it('a restart exactly windowMs ago has left the window', () => {
    const p = policy();
    crashLoop(p, 3); // at 0, 1000, 2000
    expect(p.restartsInWindow(59_999)).toBe(3);
    expect(p.restartsInWindow(60_000)).toBe(2);
    expect(p.restartsInWindow(62_000)).toBe(0);
    expect(p.next(59_999, 5).action).toBe('park');
    expect(p.next(60_000, 5)).toMatchObject({ action: 'restart' });
  });

  it('counting the window does not forget restarts a later crash still needs', () => {
    const p = policy();
    crashLoop(p, 3);
    // Asking about a later moment (a status page) must not drop restarts from the budget.
    expect(p.restartsInWindow(100_000)).toBe(0);
    expect(p.next(3000, 5)).toEqual({ action: 'park', restartsInWindow: 3 });
  });

  it('reset gives back the whole budget and an immediate first restart', () => {
    const p = policy({ random: () => 0 });
    crashLoop(p, 3);
    expect(p.next(3000, 5).action).toBe('park');
    p.reset();
    expect(p.restartsInWindow(3000)).toBe(0);
    const after = crashLoop(p, 4, 4000);
    expect(after).toEqual([
      { action: 'restart', delayMs: 0, streak: 1 },
      { action: 'restart', delayMs: 50, streak: 2 },
      { action: 'restart', delayMs: 100, streak: 3 },
      { action: 'park', restartsInWindow: 3 },
    ]);
  });
});
