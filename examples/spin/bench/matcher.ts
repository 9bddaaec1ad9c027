// The matcher on a queue of 10,000 waiters (a realistic mix, and everyone seeking the same scarce
// partners), against the rule written the obvious O(n²) way in the same run. Prints the machine,
// the median time of each and the ratio. Run: npx tsx examples/spin/bench/matcher.ts
import { cpus } from 'node:os';
import { pickMatches } from '../src/domain/matcher.js';
import { BALANCED_MIX, mixStreams, simulateArrivals } from '../src/domain/simulate.js';
import type { Waiter } from '../src/domain/types.js';
import { referenceMatches } from '../test/reference-matcher.js';

const WAITERS = Number(process.env['WAITERS'] ?? 10_000);

function queue(seed: number): Waiter[] {
  const arrivals = simulateArrivals({
    seed,
    phases: [{ durationMs: 3_600_000, streams: mixStreams(BALANCED_MIX, (WAITERS / 60) * 1.2) }],
  });
  return arrivals.slice(0, WAITERS).map((arrival) => arrival.waiter);
}

function medianMs(run: () => unknown, times: number): number {
  const samples: number[] = [];
  for (let i = 0; i < times; i += 1) {
    const start = process.hrtime.bigint();
    run();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] ?? 0;
}

// eslint's no-console covers examples/: a benchmark's report goes straight to stdout.
const print = (line: string): boolean => process.stdout.write(`${line}\n`);

const cpu = cpus();
print(`machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}; node ${process.version}`);
const mixed = queue(1);
// Everyone a straight man but one woman in the middle: nearly nobody can be paired.
const scarce = mixed.map((w, i) =>
  i === WAITERS / 2
    ? { ...w, gender: 'woman' as const, seeking: ['man'] as const }
    : { ...w, gender: 'man' as const, seeking: ['woman'] as const },
);
for (const [name, waiting] of [
  ['realistic mix', mixed],
  ['one woman, all other men', scarce],
] as const) {
  const fast = medianMs(() => pickMatches(waiting), 21);
  const naive = medianMs(() => referenceMatches(waiting), 3);
  print(
    `${name}, ${waiting.length} waiters: pickMatches ${fast.toFixed(2)} ms, obvious O(n²) rule ${naive.toFixed(1)} ms (${(naive / fast).toFixed(0)}× slower)`,
  );
}
