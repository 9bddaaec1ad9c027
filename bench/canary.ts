import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median } from './lib.js';

// The host's speed beside a benchmark. On these shared two-core hosts the same code runs up to
// ~2.5× slower for seconds at a time (docs/benchmarks.md#failover-under-load), which one window's
// figures cannot tell from the code's own cost. The canary (bench/fixtures/canary.js) times a fixed
// unit of work every 50 ms, about 1 % of one core, so a benchmark can show what the host did in
// each window it compares.

/** A running canary; times are epoch ms (`performance.timeOrigin + performance.now()`), comparable across processes. */
export interface Canary {
  /** The median CPU µs of the canary's unit of work over units begun in [from, to); undefined with none. */
  median(from: number, to: number): number | undefined;
  /** Stops the child and waits for its last samples. */
  stop(): Promise<void>;
}

/** Starts the canary process; resolves once it times its first units. */
export function startCanary(): Promise<Canary> {
  const samples: [at: number, cpuMicros: number][] = [];
  const child = fork(fileURLToPath(new URL('fixtures/canary.js', import.meta.url)), [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  child.on('message', (message: { samples?: [number, number][] }) =>
    samples.push(...(message.samples ?? [])),
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const canary: Canary = {
    median(from, to) {
      const inside = samples.filter(([at]) => at >= from && at < to).map(([, cpu]) => cpu);
      return inside.length === 0 ? undefined : median(inside);
    },
    async stop() {
      if (child.connected) child.send('stop');
      await exited;
    },
  };
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(canary));
    child.once('exit', (code) =>
      reject(new Error(`the host canary exited with ${code} before it was ready`)),
    );
  });
}
