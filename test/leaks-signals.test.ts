// The leak signals' descriptor count: taken off the event loop (an async listing of /proc/self/fd),
// a sample carries the last finished count; opened descriptors show in the count after them.
import { closeSync, existsSync, openSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { ProcessSignals } from '../src/leaks/signals.js';

const opened: number[] = [];
const signals = new ProcessSignals();
afterEach(() => {
  signals.stop();
  for (const fd of opened.splice(0)) closeSync(fd);
});

it.runIf(existsSync('/proc/self/fd'))(
  'counts open descriptors, each sample with the last count taken',
  async () => {
    signals.start();
    await signals.countDescriptors();
    const before = signals.read().fds ?? 0;
    expect(before).toBeGreaterThan(2);
    // That read asked for a new count: it finishes before the descriptors are opened.
    await signals.countDescriptors();
    for (let i = 0; i < 100; i += 1) opened.push(openSync('/dev/null', 'r'));
    // This sample carries the count taken before the 100 opened, and asks for one after them.
    expect(Math.abs((signals.read().fds ?? 0) - before)).toBeLessThan(10);
    await signals.countDescriptors();
    const after = signals.read().fds ?? 0;
    expect(after - before).toBeGreaterThanOrEqual(95);
    expect(after - before).toBeLessThan(110);
  },
);
