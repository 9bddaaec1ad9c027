import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Failover } from '../src/failover/engine.js';
import type { FailoverOptions, ModeChange } from '../src/failover/types.js';
import { isBulwarkError } from '../src/errors/index.js';

/** A fake dependency whose health the test flips; operations and probes obey it. */
class FakeServer {
  up = true;
  hang = false;
  calls = 0;
  op = (signal: AbortSignal): Promise<string> => {
    this.calls += 1;
    return this.#answer(signal, 'primary');
  };
  probe = (signal: AbortSignal): Promise<string> => this.#answer(signal, 'pong');
  #answer(signal: AbortSignal, value: string): Promise<string> {
    if (this.hang || !this.up) {
      // A down server refuses at once unless it is blackholed (hang).
      if (!this.hang) return Promise.reject(new Error('ECONNREFUSED'));
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    }
    return Promise.resolve(value);
  }
}

function failover(
  server: FakeServer,
  extra: Partial<FailoverOptions> = {},
): { f: Failover; changes: ModeChange[] } {
  // Unit tests trip on failures at one instant unless they test the streak itself.
  const f = new Failover({ name: 'redis', probe: server.probe, failureStreakMs: 0, ...extra });
  const changes: ModeChange[] = [];
  f.onChange((c) => changes.push(c));
  return { f, changes };
}

const viaFallback = () => 'fallback';

// Time is driven by the tests; setImmediate stays real so the engine's I/O turn can run.
beforeEach(() => {
  vi.useFakeTimers({
    now: 0,
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
  });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('failover engine', () => {
  it('starts on the primary when the probe answers', async () => {
    const server = new FakeServer();
    const { f, changes } = failover(server);
    await f.start();
    expect(f.mode).toBe('primary');
    expect(await f.execute(server.op, viaFallback)).toBe('primary');
    expect(changes.map((c) => `${c.from}->${c.to}:${c.reason}`)).toEqual(['fallback->primary:healthy']);
    f.close();
  });

  it('reads its registered backlogs, an unreadable one as null with the error code, until removed', async () => {
    const { f } = failover(new FakeServer());
    const remove = f.addBacklog({ name: 'journal', pending: () => Promise.resolve(7) });
    f.addBacklog({
      name: 'spool',
      pending: () =>
        Promise.reject(Object.assign(new Error('store down'), { code: 'BWK_ERR_STORE_UNAVAILABLE' })),
    });
    expect(await f.backlog()).toEqual([
      { name: 'journal', pending: 7 },
      { name: 'spool', pending: null, error: 'BWK_ERR_STORE_UNAVAILABLE' },
    ]);
    remove();
    expect((await f.backlog()).map((b) => b.name)).toEqual(['spool']);
  });

  it('boots with the dependency down on the fallback and attaches when it appears', async () => {
    const server = new FakeServer();
    server.up = false;
    const { f } = failover(server);
    const started = f.start();
    await vi.advanceTimersByTimeAsync(0);
    await started;
    expect(f.mode).toBe('fallback');
    expect(f.reason).toBe('unavailable');
    expect(await f.execute(server.op, viaFallback)).toBe('fallback');
    expect(server.calls).toBe(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(f.mode).toBe('fallback');
    server.up = true;
    // 3 of the last 4 probes must succeed: 3 probes at 250 ms.
    await vi.advanceTimersByTimeAsync(3 * 250);
    expect(f.mode).toBe('primary');
    expect(await f.execute(server.op, viaFallback)).toBe('primary');
    f.close();
  });

  it('answers from the fallback at the deadline when the primary is blackholed, then switches', async () => {
    const server = new FakeServer();
    const { f, changes } = failover(server, { deadlineMs: 25, failureThreshold: 3 });
    await f.start();
    server.hang = true;
    for (let i = 0; i < 3; i += 1) {
      const result = f.execute(server.op, viaFallback);
      await vi.advanceTimersByTimeAsync(25);
      expect(await result).toBe('fallback');
    }
    expect(f.mode).toBe('fallback');
    expect(changes.at(-1)).toMatchObject({ from: 'primary', to: 'fallback', reason: 'failures' });
    const before = server.calls;
    expect(await f.execute(server.op, viaFallback)).toBe('fallback'); // no deadline paid any more
    expect(server.calls).toBe(before);
    f.close();
  });

  it('late replies in bursts among successes do not switch; nothing succeeding for the streak does', async () => {
    const server = new FakeServer();
    const { f } = failover(server, { failureThreshold: 3, failureStreakMs: 50 });
    await f.start();
    for (let i = 0; i < 200; i += 1) {
      // Bursts of 4 late replies in a row (a saturated machine), but replies keep arriving between them.
      if (i % 10 >= 6) await f.execute(() => Promise.reject(new Error('late')), viaFallback);
      else await f.execute(server.op, viaFallback);
      await vi.advanceTimersByTimeAsync(5);
    }
    expect(f.mode).toBe('primary');
    server.up = false;
    const downAt = Date.now();
    while (f.mode === 'primary' && Date.now() - downAt < 1000) {
      await f.execute(server.op, viaFallback);
      await vi.advanceTimersByTimeAsync(5);
    }
    expect(f.mode).toBe('fallback');
    expect(Date.now() - downAt).toBeLessThanOrEqual(60);
  });

  it('every reply late but arriving (an overloaded machine) does not switch; no reply at all does', async () => {
    const server = new FakeServer();
    const { f } = failover(server, { failureThreshold: 3, failureStreakMs: 50 });
    await f.start();
    // Each reply arrives 40 ms after its request: past the 25 ms deadline, answered by the fallback.
    const slow = () => new Promise<string>((resolve) => setTimeout(() => resolve('primary'), 40));
    for (let i = 0; i < 100; i += 1) {
      void f.execute(slow, viaFallback);
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(f.mode).toBe('primary');
    server.hang = true; // blackholed: nothing ever arrives
    const hungAt = Date.now();
    while (f.mode === 'primary' && Date.now() - hungAt < 1000) {
      void f.execute(server.op, viaFallback);
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(f.mode).toBe('fallback');
    expect(Date.now() - hungAt).toBeLessThanOrEqual(150); // the 40 ms replies still in flight count too
    f.close();
  });

  it('counts errors as failures unless isFailure says otherwise', async () => {
    const server = new FakeServer();
    const { f } = failover(server, {
      failureThreshold: 2,
      isFailure: (error) => !(error instanceof TypeError),
    });
    await f.start();
    await expect(f.execute(() => Promise.reject(new TypeError('bad input')), viaFallback)).rejects.toThrow(
      TypeError,
    );
    expect(f.mode).toBe('primary');
    expect(await f.execute(() => Promise.reject(new Error('reset')), viaFallback)).toBe('fallback');
    expect(f.mode).toBe('primary');
    expect(await f.execute(server.op, viaFallback)).toBe('primary'); // a success resets the count
    await f.execute(() => Promise.reject(new Error('reset')), viaFallback);
    await f.execute(() => Promise.reject(new Error('reset')), viaFallback);
    expect(f.mode).toBe('fallback');
    f.close();
  });

  it('is back on the primary within 2 s of a recovery after one outage', async () => {
    const server = new FakeServer();
    const { f } = failover(server);
    await f.start();
    server.up = false;
    for (let i = 0; i < 3; i += 1) await f.execute(server.op, viaFallback);
    expect(f.mode).toBe('fallback');
    await vi.advanceTimersByTimeAsync(10_000);
    server.up = true;
    const recoveredAt = Date.now();
    while (f.mode !== 'primary' && Date.now() - recoveredAt < 5000) await vi.advanceTimersByTimeAsync(50);
    expect(Date.now() - recoveredAt).toBeLessThanOrEqual(2000);
    f.close();
  });

  it('switches at most once per 30 s on average while the server flaps 2 s up / 2 s down', async () => {
    const server = new FakeServer();
    const { f, changes } = failover(server);
    await f.start();
    const startedAt = Date.now();
    for (let t = 0; t < 120_000; t += 50) {
      server.up = Math.floor(t / 2000) % 2 === 0;
      await f.execute(server.op, viaFallback);
      await vi.advanceTimersByTimeAsync(50);
    }
    const switches = changes.filter((c) => c.at >= startedAt);
    expect(switches.length).toBeLessThanOrEqual(4);
    expect(switches.filter((c) => c.at - startedAt > 10_000)).toEqual([]);
    expect(f.mode).toBe('fallback');

    // Once the server is stable again, the primary comes back after the required streak.
    server.up = true;
    const required = f.requiredStreakMs;
    expect(required).toBeGreaterThan(2000);
    await vi.advanceTimersByTimeAsync(required + 1000);
    expect(f.mode).toBe('primary');
    f.close();
  });

  it('forgives flaps after a quiet flap window on the primary', async () => {
    const server = new FakeServer();
    const { f } = failover(server, { flapWindowMs: 30_000 });
    await f.start();
    const outage = async () => {
      server.up = false;
      for (let i = 0; i < 3; i += 1) await f.execute(server.op, viaFallback);
      await vi.advanceTimersByTimeAsync(500);
      server.up = true;
    };
    await outage();
    await vi.advanceTimersByTimeAsync(1000);
    expect(f.mode).toBe('primary');
    await outage(); // within the flap window: a flap
    expect(f.requiredStreakMs).toBeGreaterThan(0);
    await vi.advanceTimersByTimeAsync(f.requiredStreakMs + 1000);
    expect(f.mode).toBe('primary');
    await vi.advanceTimersByTimeAsync(31_000); // a quiet window on the primary
    await outage();
    expect(f.requiredStreakMs).toBe(0);
    f.close();
  });

  it('the kill switch forces the fallback and never touches the primary; release fails back', async () => {
    const server = new FakeServer();
    const { f, changes } = failover(server);
    await f.start();
    f.setForced(true);
    expect(f.mode).toBe('fallback');
    expect(changes.at(-1)).toMatchObject({ to: 'fallback', reason: 'forced' });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await f.execute(server.op, viaFallback)).toBe('fallback');
    expect(server.calls).toBe(0);
    expect(f.mode).toBe('fallback');
    f.setForced(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(f.mode).toBe('primary');
    f.close();
  });

  it('stops probing after close', async () => {
    const server = new FakeServer();
    server.up = false;
    let probes = 0;
    const f = new Failover({
      name: 'redis',
      probe: (s) => {
        probes += 1;
        return server.probe(s);
      },
    });
    await f.start();
    await vi.advanceTimersByTimeAsync(1000);
    const seen = probes;
    expect(seen).toBeGreaterThan(1);
    f.close();
    await vi.advanceTimersByTimeAsync(5000);
    expect(probes).toBe(seen);
  });

  it('rejects contradictory options with a coded error', () => {
    try {
      new Failover({ name: 'redis', probe: async () => 'x', recoverSuccesses: 5, recoverWindow: 3 });
      expect.unreachable();
    } catch (error) {
      expect(isBulwarkError(error, 'BWK_ERR_FAILOVER_OPTIONS')).toBe(true);
    }
  });
});

describe('failover observability', () => {
  it('exposes the mode as a gauge, a warn health check and one log line per switch', async () => {
    const { Metrics } = await import('../src/metrics/index.js');
    const { HealthRegistry } = await import('../src/health/index.js');
    const { createLogger } = await import('../src/logging/index.js');
    const { observeFailover } = await import('../src/failover/index.js');
    const { LogCapture } = await import('./helpers/app.js');
    const metrics = new Metrics({ defaultMetrics: false });
    const health = new HealthRegistry();
    const logs = new LogCapture();
    const logger = createLogger({ level: 'info', destination: logs });
    const server = new FakeServer();
    const f = new Failover({ name: 'redis', probe: server.probe, failureStreakMs: 0 });
    observeFailover(f, { metrics, health, logger });
    await f.start();
    await health.start();
    health.markReady();
    expect(await metrics.render()).toContain('bulwark_dependency_mode{dependency="redis"} 1');
    expect(health.report().checks?.['redis:mode']?.[0]?.status).toBe('pass');

    server.up = false;
    for (let i = 0; i < 3; i += 1) await f.execute(server.op, viaFallback);
    await vi.advanceTimersByTimeAsync(0);
    const text = await metrics.render();
    expect(text).toContain('bulwark_dependency_mode{dependency="redis"} 0');
    expect(text).toContain(
      'bulwark_dependency_switches_total{dependency="redis",to="fallback",reason="failures"} 1',
    );
    const report = health.report();
    expect(report.status).toBe('warn');
    expect(report.checks?.['redis:mode']?.[0]).toMatchObject({ status: 'warn', observedValue: 'fallback' });
    expect(health.readiness().status).toBe('pass'); // degraded, not unready

    server.up = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(f.mode).toBe('primary');
    expect(health.report().checks?.['redis:mode']?.[0]?.status).toBe('pass');
    const switches = logs.lines.filter((l) => l['dependency'] === 'redis').map((l) => [l['level'], l['to']]);
    expect(switches).toEqual([
      ['info', 'primary'],
      ['warn', 'fallback'],
      ['info', 'primary'],
    ]);
    f.close();
    health.close();
  });
});
