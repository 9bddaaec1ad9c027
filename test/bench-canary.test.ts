import { spawnSync } from 'node:child_process';
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

  it('ends quietly when its parent is gone without stopping it', () => {
    // A parent that starts the canary and exits at once, as a benchmark killed mid-run would. The
    // canary inherits the parent's stderr, so this returns once the canary has exited too, with
    // whatever it wrote there (an unhandled IPC error, before it learned to stop on 'disconnect').
    const script =
      "const c = require('node:child_process').fork('bench/fixtures/canary.js', [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });" +
      "c.once('message', () => process.exit(0));";
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
    expect(run.error).toBeUndefined(); // not the timeout: the canary did exit
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
  });
});
