// The failover engine's rules at their edges, as the services behind it see them: which events
// listeners get, exactly when the breaker trips and when a recovery counts, that probes neither
// pile up nor outlive the kill switch or close(), that a deadline aborts the operation and leaves
// no timer behind, and that start() never rejects. failover.test.ts covers the scenarios
// (outage, flapping, overload); this file pins the rules those scenarios are made of.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Failover } from '../src/failover/engine.js';
import type { FailoverOptions, ModeChange } from '../src/failover/types.js';
import { isBulwarkError } from '../src/errors/index.js';

/**
 * A dependency whose probe answers are scripted: `health` for every probe, or the queued
 * `answers` first ('hang' never settles until aborted, 'slow' succeeds after 50 ms). Counts probes
 * and those in flight.
 */
class Dependency {
  health: Answer = 'up';
  readonly answers: Answer[] = [];
  probes = 0;
  inFlight = 0;
  maxInFlight = 0;
  readonly aborted: boolean[] = [];
  probe = (signal: AbortSignal): Promise<string> => {
    this.probes += 1;
    const answer = this.answers.shift() ?? this.health;
    if (answer === 'down') return Promise.reject(new Error('ECONNREFUSED'));
    if (answer === 'up') return Promise.resolve('PONG');
    if (answer === 'slow') return new Promise((resolve) => setTimeout(() => resolve('PONG'), 50));
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((_, reject) =>
      signal.addEventListener('abort', () => {
        this.inFlight -= 1;
        this.aborted.push(true);
        reject(new Error('aborted'));
      }),
    );
  };
}

type Answer = 'up' | 'down' | 'hang' | 'slow';

/** Tracks a promise's value as it settles, so a test can see that it has not answered yet. */
function answered<T>(promise: Promise<T>): { value?: T } {
  const seen: { value?: T } = {};
  void promise.then((value) => {
    seen.value = value;
  });
  return seen;
}

/** Advances fake time, then lets the engine finish the I/O turn it takes at a deadline. */
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await new Promise((resolve) => setImmediate(resolve));
}

function engine(dep: Dependency, extra: Partial<FailoverOptions> = {}) {
  const f = new Failover({ name: 'db', probe: dep.probe, ...extra });
  const changes: ModeChange[] = [];
  f.onChange((c) => changes.push(c));
  const shown = () => changes.map((c) => `${c.from}->${c.to}:${c.reason}`);
  return { f, changes, shown };
}

const ok = () => Promise.resolve('primary');
const refused = () => Promise.reject(new Error('ECONNREFUSED'));
const viaFallback = () => 'fallback';

/** `n` failed operations, `gapMs` apart. */
async function fail(f: Failover, n: number, gapMs = 0): Promise<void> {
  for (let i = 0; i < n; i += 1) {
    await f.execute(refused, viaFallback);
    if (gapMs > 0) await vi.advanceTimersByTimeAsync(gapMs);
  }
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('options', () => {
  it('recoverSuccesses may equal recoverWindow (all of the last probes), not exceed it', () => {
    const dep = new Dependency();
    expect(
      () => new Failover({ name: 'db', probe: dep.probe, recoverSuccesses: 4, recoverWindow: 4 }),
    ).not.toThrow();
    let caught: unknown;
    try {
      new Failover({ name: 'db', probe: dep.probe, recoverSuccesses: 5, recoverWindow: 4 });
    } catch (error) {
      caught = error;
    }
    expect(isBulwarkError(caught, 'BWK_ERR_FAILOVER_OPTIONS')).toBe(true);
    expect((caught as Error).message).toContain('db');
    expect((caught as Error).message).toContain('recoverSuccesses must not exceed recoverWindow');
  });

  it('gives an operation whose deadline fired late (a starved loop) the time the loop took, up to a deadline', async () => {
    const dep = new Dependency();
    const { f } = engine(dep);
    await f.start();
    const slow = (ms: number) => () => new Promise<string>((r) => setTimeout(() => r('primary'), ms));
    // The loop held everything for 15 ms: the deadline timer fires at 25 ms of timers, 40 ms of clock.
    const held = answered(f.execute(slow(30), viaFallback));
    vi.setSystemTime(Date.now() + 15);
    await advance(25);
    expect(held.value).toBeUndefined();
    await advance(5);
    expect(held.value).toBe('primary');
    // An operation that has not answered once those 15 ms are over is answered by the fallback.
    const lost = answered(f.execute(slow(1000), viaFallback));
    vi.setSystemTime(Date.now() + 15);
    await advance(25);
    await advance(14);
    expect(lost.value).toBeUndefined();
    await advance(1);
    expect(lost.value).toBe('fallback');
  });

  it('defaults: 25 ms deadline, 3 failures over 50 ms, probes every 250 ms, 3 of 4 to recover', async () => {
    const dep = new Dependency();
    const { f, changes } = engine(dep);
    await f.start();
    // The deadline: an operation still out at 24 ms is waited for; at 25 ms the fallback answers.
    const slow = (ms: number) => () => new Promise<string>((r) => setTimeout(() => r('primary'), ms));
    const within = answered(f.execute(slow(24), viaFallback));
    await advance(23);
    expect(within.value).toBeUndefined();
    await advance(1);
    expect(within.value).toBe('primary');
    const late = answered(f.execute(slow(1000), viaFallback));
    await advance(24);
    expect(late.value).toBeUndefined();
    await advance(1);
    expect(late.value).toBe('fallback');
    // The breaker: three failures in a row, 50 ms after the last success (at 24 ms).
    await vi.advanceTimersByTimeAsync(49 - 25);
    await fail(f, 3);
    expect(f.mode).toBe('primary'); // 49 ms since the last success
    await vi.advanceTimersByTimeAsync(25); // 74 ms
    await fail(f, 1);
    expect(f.mode).toBe('fallback');
    // Recovery: probes every 250 ms, the third success fails back.
    const switchedAt = Date.now();
    await vi.advanceTimersByTimeAsync(749);
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(1);
    expect(f.mode).toBe('primary');
    expect(changes.at(-1)?.at).toBe(switchedAt + 750);
    f.close();
  });

  it('defaults: a probe hanging 200 ms is aborted and counts as failed', async () => {
    const dep = new Dependency();
    dep.health = 'hang';
    const { f } = engine(dep);
    const started = f.start();
    await vi.advanceTimersByTimeAsync(199);
    expect(dep.aborted).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await started;
    expect(dep.aborted).toEqual([true]);
    expect(f.mode).toBe('fallback');
    f.close();
  });
});

describe('start', () => {
  it('tells listeners the dependency booted unavailable, without counting a switch', async () => {
    const dep = new Dependency();
    dep.health = 'down';
    const { f, changes } = engine(dep);
    expect(f.reason).toBe('starting');
    await f.start();
    expect(changes).toEqual([
      {
        dependency: 'db',
        from: 'fallback',
        to: 'fallback',
        reason: 'unavailable',
        at: 0,
        requiredStreakMs: 0,
      },
    ]);
    expect(f.switches).toBe(0);
    expect(f.reason).toBe('unavailable');
    f.close();
  });

  it('never rejects, and a second start probes nothing', async () => {
    const dep = new Dependency();
    const { f, shown } = engine(dep);
    await expect(f.start()).resolves.toBeUndefined();
    await f.start();
    expect(dep.probes).toBe(1);
    expect(shown()).toEqual(['fallback->primary:healthy']);
    expect(f.switches).toBe(1);
    f.close();
  });

  it('with the kill switch on, start touches nothing; releasing it attaches', async () => {
    const dep = new Dependency();
    const { f, shown } = engine(dep, { probeIntervalMs: 10 });
    f.setForced(true);
    await f.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(dep.probes).toBe(0);
    expect(f.reason).toBe('forced');
    f.setForced(false);
    await vi.advanceTimersByTimeAsync(30);
    expect(f.mode).toBe('primary');
    expect(shown()).toEqual(['fallback->primary:healthy']);
    f.close();
  });

  it('nothing runs before start, even when the kill switch is released', async () => {
    const dep = new Dependency();
    const { f } = engine(dep);
    f.setForced(true);
    f.setForced(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(dep.probes).toBe(0);
    expect(f.mode).toBe('fallback');
  });
});

describe('operations', () => {
  it('on the fallback the primary is never called', async () => {
    const dep = new Dependency();
    dep.health = 'down';
    const { f } = engine(dep);
    await f.start();
    const primary = vi.fn(ok);
    expect(await f.execute(primary, viaFallback)).toBe('fallback');
    expect(primary).not.toHaveBeenCalled();
    f.close();
  });

  it("aborts the operation's signal at the deadline, and a per-call deadline replaces the default", async () => {
    const dep = new Dependency();
    const { f } = engine(dep, { deadlineMs: 25 });
    await f.start();
    const signals: AbortSignal[] = [];
    const hang = (signal: AbortSignal) => {
      signals.push(signal);
      return new Promise<string>(() => undefined);
    };
    const batch = f.execute(hang, viaFallback, { deadlineMs: 100 });
    await vi.advanceTimersByTimeAsync(99);
    expect(signals[0]?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await batch).toBe('fallback');
    expect(signals[0]?.aborted).toBe(true);
    f.close();
  });

  it('a completed operation leaves no timer behind (one per call would pile up under load)', async () => {
    const dep = new Dependency();
    const { f } = engine(dep);
    await f.start();
    const before = vi.getTimerCount();
    for (let i = 0; i < 10; i += 1) await f.execute(ok, viaFallback);
    await f.execute(refused, viaFallback);
    expect(vi.getTimerCount()).toBe(before); // each deadline timer cleared with its operation
    const late = f.execute(() => new Promise<string>(() => undefined), viaFallback);
    await vi.advanceTimersByTimeAsync(25);
    await late;
    expect(vi.getTimerCount()).toBe(before);
    f.close();
  });

  it('a reply that arrives in the same turn as its deadline is a success, not a failure', async () => {
    const dep = new Dependency();
    const { f } = engine(dep, { deadlineMs: 25, failureThreshold: 1, failureStreakMs: 0 });
    await f.start();
    // Both timers are due at 25 ms; the deadline's was set first and fires first.
    const result = f.execute(
      () => new Promise<string>((r) => setTimeout(() => r('primary'), 25)),
      viaFallback,
    );
    await vi.advanceTimersByTimeAsync(25);
    expect(await result).toBe('primary');
    expect(f.mode).toBe('primary'); // one failure would have tripped it
    f.close();
  });

  it('an error isFailure rejects reaches the caller and is not counted against the primary', async () => {
    const dep = new Dependency();
    const { f } = engine(dep, { failureThreshold: 1, failureStreakMs: 0, isFailure: () => false });
    await f.start();
    const fallback = vi.fn(viaFallback);
    await expect(f.execute(refused, fallback)).rejects.toThrow('ECONNREFUSED');
    expect(fallback).not.toHaveBeenCalled();
    expect(f.mode).toBe('primary');
    f.close();
  });
});

describe('the breaker', () => {
  it('trips on the failure that completes both the count and the streak, not before', async () => {
    const dep = new Dependency();
    const { f } = engine(dep, { failureThreshold: 3, failureStreakMs: 50 });
    await f.start(); // attaching counts as a success at 0
    await fail(f, 2, 50);
    expect(f.mode).toBe('primary'); // 2 failures, 100 ms
    await fail(f, 1);
    expect(f.mode).toBe('fallback');
    f.close();
  });

  it('a success resets the count: failures must be in a row', async () => {
    const dep = new Dependency();
    const { f } = engine(dep, { failureThreshold: 3, failureStreakMs: 0 });
    await f.start();
    await fail(f, 2);
    await f.execute(ok, viaFallback);
    await fail(f, 2);
    expect(f.mode).toBe('primary');
    await fail(f, 1);
    expect(f.mode).toBe('fallback');
    f.close();
  });

  it('after a failback a single failure does not trip it again', async () => {
    const dep = new Dependency();
    const { f } = engine(dep, {
      failureThreshold: 3,
      failureStreakMs: 0,
      probeIntervalMs: 10,
      flapWindowMs: 0,
    });
    await f.start();
    await fail(f, 5);
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(30);
    expect(f.mode).toBe('primary');
    await fail(f, 1);
    expect(f.mode).toBe('primary');
    f.close();
  });

  it('after a failback the streak starts at the failback: failures right after it do not trip', async () => {
    const dep = new Dependency();
    const { f } = engine(dep, {
      failureThreshold: 1,
      failureStreakMs: 50,
      probeIntervalMs: 10,
      flapWindowMs: 0,
    });
    await f.start();
    await vi.advanceTimersByTimeAsync(50);
    await fail(f, 1);
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(30); // failback at 80 ms
    expect(f.mode).toBe('primary');
    await vi.advanceTimersByTimeAsync(49);
    await fail(f, 1);
    expect(f.mode).toBe('primary');
    await vi.advanceTimersByTimeAsync(1);
    await fail(f, 1);
    expect(f.mode).toBe('fallback');
    f.close();
  });

  it('operations still in flight when it trips do not trip it again', async () => {
    const dep = new Dependency();
    const { f, shown } = engine(dep, { failureThreshold: 2, failureStreakMs: 0, probeIntervalMs: 100 });
    await f.start();
    const hang = () => new Promise<string>(() => undefined);
    const first = [f.execute(hang, viaFallback), f.execute(hang, viaFallback)];
    await vi.advanceTimersByTimeAsync(10);
    const later = Array.from({ length: 4 }, () => f.execute(hang, viaFallback));
    await vi.advanceTimersByTimeAsync(15);
    await Promise.all(first); // trips at 25 ms
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(10);
    await Promise.all(later); // late at 35 ms, on the fallback already
    expect(shown()).toEqual(['fallback->primary:healthy', 'primary->fallback:failures']);
    expect(f.reason).toBe('failures');
    // The first probe is due 100 ms after the switch, not pushed back by the later failures.
    await vi.advanceTimersByTimeAsync(90);
    expect(dep.probes).toBe(2);
    f.close();
  });
});

describe('recovery', () => {
  it('needs recoverSuccesses of the last recoverWindow probes, the last one successful', async () => {
    const dep = new Dependency();
    dep.health = 'down';
    const { f } = engine(dep, { probeIntervalMs: 10, recoverSuccesses: 3, recoverWindow: 4 });
    await f.start();
    dep.answers.push('up', 'up', 'down', 'down', 'up', 'up', 'down', 'up');
    for (let i = 0; i < 7; i += 1) {
      await vi.advanceTimersByTimeAsync(10);
      expect(f.mode, `after probe ${i + 1}`).toBe('fallback');
    }
    await vi.advanceTimersByTimeAsync(10); // window: up up down up
    expect(f.mode).toBe('primary');
    f.close();
  });

  it('a failed probe last in the window keeps the fallback even with enough successes', async () => {
    const dep = new Dependency();
    dep.health = 'down';
    const { f } = engine(dep, { probeIntervalMs: 10, recoverSuccesses: 2, recoverWindow: 3 });
    await f.start();
    dep.answers.push('up', 'up'); // 2 of 2: fails back on the second
    await vi.advanceTimersByTimeAsync(20);
    expect(f.mode).toBe('primary');
    await fail(f, 3, 50);
    expect(f.mode).toBe('fallback');
    dep.answers.push('up', 'down', 'up'); // up, then down last: stays; then up: 2 of the last 3
    await vi.advanceTimersByTimeAsync(20);
    expect(f.mode).toBe('fallback');
    f.close();
  });

  it('each outage needs fresh successful probes: those before the last failback do not count', async () => {
    const dep = new Dependency();
    dep.health = 'down';
    const { f } = engine(dep, { probeIntervalMs: 10, flapWindowMs: 0, failureStreakMs: 0 });
    await f.start();
    dep.health = 'up';
    await vi.advanceTimersByTimeAsync(30);
    expect(f.mode).toBe('primary');
    await fail(f, 3);
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(20);
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(10);
    expect(f.mode).toBe('primary');
    f.close();
  });

  it('after a flap the required streak is the probes needed × 4 per flap, capped, and emitted', async () => {
    const dep = new Dependency();
    const { f, changes } = engine(dep, {
      probeIntervalMs: 10,
      recoverSuccesses: 3,
      failureStreakMs: 0,
      maxStreakMs: 2000,
    });
    await f.start();
    const flap = async () => {
      await fail(f, 3);
      await vi.advanceTimersByTimeAsync(f.requiredStreakMs + 30);
      expect(f.mode).toBe('primary');
    };
    await fail(f, 3); // the first outage after attaching is not a flap
    expect(f.requiredStreakMs).toBe(0);
    await vi.advanceTimersByTimeAsync(30);
    await flap();
    expect(changes.at(-2)?.requiredStreakMs).toBe(120); // 10 ms × 3 probes × 4
    await flap();
    expect(changes.at(-2)?.requiredStreakMs).toBe(480);
    await flap();
    expect(changes.at(-2)?.requiredStreakMs).toBe(1920);
    await flap();
    expect(changes.at(-2)?.requiredStreakMs).toBe(2000);
    f.close();
  });

  it('a failed probe restarts the required streak', async () => {
    const dep = new Dependency();
    const { f } = engine(dep, { probeIntervalMs: 10, failureStreakMs: 0 });
    await f.start();
    await fail(f, 3);
    await vi.advanceTimersByTimeAsync(30);
    await fail(f, 3); // a flap: 120 ms of healthy probes needed
    expect(f.requiredStreakMs).toBe(120);
    await vi.advanceTimersByTimeAsync(100); // successes at 10 … 100 ms
    dep.answers.push('down');
    await vi.advanceTimersByTimeAsync(10);
    await vi.advanceTimersByTimeAsync(120); // a new streak from the next success
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(10);
    expect(f.mode).toBe('primary');
    f.close();
  });

  it('a flap is a failure within flapWindowMs of the failback; at the window it is forgiven', async () => {
    const dep = new Dependency();
    const { f, changes } = engine(dep, { probeIntervalMs: 10, failureStreakMs: 0, flapWindowMs: 1000 });
    await f.start();
    const failbackAt = async () => {
      await vi.advanceTimersByTimeAsync(f.requiredStreakMs + 30);
      expect(changes.at(-1)?.to).toBe('primary');
      return changes.at(-1)!.at;
    };
    const failAt = async (at: number) => {
      await vi.advanceTimersByTimeAsync(at - Date.now());
      await fail(f, 3);
    };
    await fail(f, 3);
    await failAt((await failbackAt()) + 999);
    expect(f.requiredStreakMs).toBe(120);
    await failAt((await failbackAt()) + 1000);
    expect(f.requiredStreakMs).toBe(0);
    f.close();
  });

  it('the default window is the last 4 probes', async () => {
    const dep = new Dependency();
    dep.health = 'down';
    const { f } = engine(dep);
    await f.start();
    dep.answers.push('up', 'up', 'down', 'down', 'up', 'up', 'up');
    await vi.advanceTimersByTimeAsync(6 * 250); // up up down down up up: 2 of the last 4
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(250); // down up up up
    expect(f.mode).toBe('primary');
    f.close();
  });
});

describe('the kill switch', () => {
  it('forcing and releasing is no flap, and repeating a setting does nothing', async () => {
    const dep = new Dependency();
    const { f, shown } = engine(dep, { probeIntervalMs: 10 });
    await f.start();
    for (let i = 0; i < 3; i += 1) {
      f.setForced(true);
      f.setForced(true);
      expect(f.forced).toBe(true);
      f.setForced(false);
      f.setForced(false);
      expect(f.forced).toBe(false);
      await vi.advanceTimersByTimeAsync(30);
      expect(f.mode).toBe('primary');
    }
    expect(f.requiredStreakMs).toBe(0);
    expect(shown()).toEqual([
      'fallback->primary:healthy',
      ...Array.from({ length: 3 }, () => ['primary->fallback:forced', 'fallback->primary:healthy']).flat(),
    ]);
    expect(f.switches).toBe(7);
    f.close();
  });

  it('forcing while already on the fallback only changes the reason; releasing resumes probing at once', async () => {
    const dep = new Dependency();
    dep.health = 'down';
    const { f, changes } = engine(dep, { probeIntervalMs: 1000 });
    await f.start();
    f.setForced(true);
    expect(f.reason).toBe('forced');
    expect(changes).toHaveLength(1); // only the start
    await vi.advanceTimersByTimeAsync(5000);
    expect(dep.probes).toBe(1);
    f.setForced(false);
    expect(f.reason).toBe('unavailable');
    await vi.advanceTimersByTimeAsync(0);
    expect(dep.probes).toBe(2);
    f.close();
  });

  it('re-applying "not forced" (a flag read again) does not restart a recovery in progress', async () => {
    const dep = new Dependency();
    const { f } = engine(dep, { probeIntervalMs: 10, failureStreakMs: 0 });
    await f.start();
    await fail(f, 3);
    for (let i = 0; i < 3; i += 1) {
      await vi.advanceTimersByTimeAsync(10);
      f.setForced(false);
    }
    expect(f.mode).toBe('primary');
    f.close();
  });

  it('releasing it starts the recovery count afresh: probes from before it do not count', async () => {
    const dep = new Dependency();
    const { f } = engine(dep, { probeIntervalMs: 10, failureStreakMs: 0 });
    await f.start();
    await fail(f, 3);
    await vi.advanceTimersByTimeAsync(20); // two successful probes
    f.setForced(true);
    f.setForced(false);
    await vi.advanceTimersByTimeAsync(0); // one at once after the release
    await vi.advanceTimersByTimeAsync(10);
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(10);
    expect(f.mode).toBe('primary');
    f.close();
  });

  it('engaged while a probe is out, the probe success does not fail back', async () => {
    const dep = new Dependency();
    dep.health = 'down';
    const { f } = engine(dep, { probeIntervalMs: 10, recoverSuccesses: 1, recoverWindow: 1 });
    await f.start();
    dep.answers.push('slow');
    await vi.advanceTimersByTimeAsync(10); // the probe is out
    f.setForced(true);
    dep.health = 'up';
    await vi.advanceTimersByTimeAsync(1000); // it succeeds 50 ms later; nothing else is probed
    expect(f.mode).toBe('fallback');
    expect(dep.probes).toBe(2);
    f.close();
  });

  it('released while a probe is out, no second probe runs beside it', async () => {
    const dep = new Dependency();
    dep.health = 'down';
    const { f } = engine(dep, { probeIntervalMs: 10, probeTimeoutMs: 500 });
    await f.start();
    dep.health = 'hang';
    await vi.advanceTimersByTimeAsync(10);
    f.setForced(true);
    f.setForced(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(dep.maxInFlight).toBe(1);
    f.close();
  });
});

describe('close', () => {
  it('stops probing, a probe out at the time included, and a release does not restart it', async () => {
    const dep = new Dependency();
    dep.health = 'down';
    const { f } = engine(dep, { probeIntervalMs: 10, recoverSuccesses: 1, recoverWindow: 1 });
    await f.start();
    dep.answers.push('slow');
    await vi.advanceTimersByTimeAsync(10);
    f.close();
    dep.health = 'up';
    await vi.advanceTimersByTimeAsync(1000);
    expect(f.mode).toBe('fallback');
    f.setForced(true);
    f.setForced(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(dep.probes).toBe(2);
    expect(f.mode).toBe('fallback');
  });

  it('operations keep working on the current side, and a trip after it starts no probing', async () => {
    const dep = new Dependency();
    const { f } = engine(dep, { failureStreakMs: 0 });
    await f.start();
    f.close();
    expect(await f.execute(ok, viaFallback)).toBe('primary');
    await fail(f, 3);
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(5000);
    expect(dep.probes).toBe(1);
  });
});
