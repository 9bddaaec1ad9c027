import { afterEach, describe, expect, it, vi } from 'vitest';
import { HealthRegistry } from '../src/health/index.js';
import { isBulwarkError } from '../src/errors/index.js';

describe('health registry', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is fail while starting, pass when ready, fail again while stopping', async () => {
    const health = new HealthRegistry();
    health.register({
      name: 'db:responseTime',
      check: () => ({ status: 'pass', observedValue: 1, observedUnit: 'ms' }),
    });
    await health.start();
    expect(health.readiness().status).toBe('fail');
    expect(health.readiness().checks?.['service:lifecycle']?.[0]?.observedValue).toBe('starting');
    health.markReady();
    expect(health.readiness().status).toBe('pass');
    expect(health.report().checks?.['db:responseTime']?.[0]).toMatchObject({
      status: 'pass',
      observedValue: 1,
    });
    health.markStopping();
    expect(health.readiness().status).toBe('fail');
    expect(health.liveness().status).toBe('pass');
    health.close();
  });

  it('a failing non-critical check warns; a failing critical check fails readiness', async () => {
    const health = new HealthRegistry();
    health.register({
      name: 'search:responseTime',
      critical: false,
      check: () => ({ status: 'fail', output: 'down' }),
    });
    await health.start();
    health.markReady();
    expect(health.readiness().status).toBe('pass');
    expect(health.report().status).toBe('warn');
    health.register({
      name: 'db:responseTime',
      check: () => {
        throw new Error('connection refused');
      },
    });
    await health.runAll();
    expect(health.readiness().status).toBe('fail');
    expect(health.report().checks?.['db:responseTime']?.[0]?.output).toBe('connection refused');
    health.close();
  });

  it('a hung check fails readiness at its timeout while liveness passes; no runs pile up', async () => {
    vi.useFakeTimers();
    const health = new HealthRegistry();
    let hang = false;
    let calls = 0;
    let aborted = 0;
    health.register({
      name: 'db:responseTime',
      intervalMs: 1000,
      timeoutMs: 200,
      check: (signal) => {
        calls += 1;
        if (!hang) return { status: 'pass' };
        signal.addEventListener('abort', () => (aborted += 1));
        return new Promise(() => undefined); // never settles, like a blackholed socket
      },
    });
    await health.start();
    health.markReady();
    expect(health.readiness().status).toBe('pass');

    hang = true;
    await vi.advanceTimersByTimeAsync(1000); // the next run starts and hangs
    expect(health.readiness().status).toBe('pass'); // not yet timed out: last known result
    await vi.advanceTimersByTimeAsync(200);
    const ready = health.readiness();
    expect(ready.status).toBe('fail');
    expect(ready.checks?.['db:responseTime']?.[0]?.output).toMatch(/did not answer within 200 ms/);
    expect(health.liveness().status).toBe('pass');
    expect(aborted).toBe(1);

    const before = calls;
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toBe(before); // the hung run is still pending: no new run stacked on it
    expect(health.readiness().status).toBe('fail');
    health.close();
  });

  it('recovers when a check passes again', async () => {
    vi.useFakeTimers();
    const health = new HealthRegistry();
    let ok = false;
    health.register({
      name: 'db:responseTime',
      intervalMs: 100,
      check: () => ({ status: ok ? 'pass' : 'fail' }),
    });
    await health.start();
    health.markReady();
    expect(health.readiness().status).toBe('fail');
    ok = true;
    await vi.advanceTimersByTimeAsync(100);
    expect(health.readiness().status).toBe('pass');
    health.close();
  });

  it('refuses duplicate names with a coded error', () => {
    const health = new HealthRegistry();
    health.register({ name: 'a:b', check: () => ({ status: 'pass' }) });
    try {
      health.register({ name: 'a:b', check: () => ({ status: 'pass' }) });
      expect.unreachable();
    } catch (error) {
      expect(isBulwarkError(error, 'BWK_ERR_HEALTH_CHECK_DUPLICATE')).toBe(true);
    }
    health.close();
  });
});
