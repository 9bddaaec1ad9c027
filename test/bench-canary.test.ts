import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { startCanary } from '../bench/canary.js';

// bench/canary.ts: the host's speed beside a benchmark, as the CPU time of a fixed unit of work.
describe('the host canary', () => {
  it('times its unit of work every 50 ms and reports it by window', async () => {
    const canary = await startCanary();
    const from = performance.timeOrigin + performance.now();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const to = performance.timeOrigin + performance.now();
    await canary.stop();
    const micros = canary.median(from, to);
    expect(micros).toBeGreaterThan(20); // a unit allocates 20 000 objects: never free
    expect(micros).toBeLessThan(50_000);
    expect(canary.median(to + 1_000, to + 2_000)).toBeUndefined(); // stopped: nothing after
    expect(canary.median(from - 60_000, from - 30_000)).toBeUndefined();
  });
});
