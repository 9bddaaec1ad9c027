// The overload benchmark's tables (the markdown its result holds and docs/benchmarks.md shows),
// medians over rounds, computed from the runs alone so a stored result can always be re-rendered.
import { median } from './lib.js';

type Class = 'critical' | 'default' | 'sheddable';

/** One phase of one run, as bench/overload.ts measures it. */
export interface OverloadPhase {
  load: number;
  sent: number;
  goodput: number;
  success: Record<Class, number>;
  p99: Record<Class, number>;
  shed: number;
  shedWithRetryAfter: number;
  failed: number;
  reversals?: number;
}

/** One run of one server. */
export interface OverloadRun {
  mode: string;
  phases: OverloadPhase[];
  recoveryMs: number;
  up: boolean;
}

const LABELS: Record<string, string> = {
  none: 'no protection',
  'under-pressure': '@fastify/under-pressure',
  bulwark: 'Bulwark',
};

/** The two tables: every phase of every server, then recovery and limit reversals. */
export function overloadMarkdown(capacity: number, phaseMs: number, runs: OverloadRun[]): string {
  const modes = [...new Set(runs.map((r) => r.mode))];
  const loads = [...new Set(runs.flatMap((r) => r.phases.map((p) => p.load)))].sort((a, b) => a - b);
  const med = (mode: string, load: number, pick: (p: OverloadPhase) => number) =>
    median(
      runs
        .filter((r) => r.mode === mode)
        .flatMap((r) => r.phases.filter((p) => p.load === load))
        .map(pick),
    );
  const pct = (value: number) => `${(value * 100).toFixed(1)}%`;
  const label = (mode: string) => LABELS[mode] ?? mode;
  const lines = [
    `Capacity ${Math.round(capacity)} req/s; phases of ${phaseMs / 1000} s; ` +
      `${runs.length / Math.max(1, modes.length)} round(s), medians.`,
    '',
    '| load | server | goodput (share of capacity) | critical ok | critical p99 | default ok | sheddable ok | 503 (with Retry-After) | no answer within 5 s |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const load of loads) {
    for (const mode of modes) {
      const goodput = med(mode, load, (p) => p.goodput);
      lines.push(
        `| ${load}× | ${label(mode)} | ${Math.round(goodput)} (${pct(goodput / capacity)}) | ` +
          `${pct(med(mode, load, (p) => p.success.critical))} | ${med(mode, load, (p) => p.p99.critical).toFixed(1)} ms | ` +
          `${pct(med(mode, load, (p) => p.success.default))} | ${pct(med(mode, load, (p) => p.success.sheddable))} | ` +
          `${Math.round(med(mode, load, (p) => p.shed))} (${Math.round(med(mode, load, (p) => p.shedWithRetryAfter))}) | ` +
          `${Math.round(med(mode, load, (p) => p.failed))} |`,
      );
    }
  }
  lines.push(
    '',
    '| server | up after 5× | recovery after the load stops | limit reversals at 3× |',
    '|---|---|---|---|',
  );
  for (const mode of modes) {
    const mine = runs.filter((r) => r.mode === mode);
    const rev = mine
      .map((r) => r.phases.find((p) => p.load === 3)?.reversals)
      .filter((v): v is number => v !== undefined);
    lines.push(
      `| ${label(mode)} | ${mine.every((r) => r.up) ? 'yes' : 'no'} | ${median(mine.map((r) => r.recoveryMs))} ms | ` +
        `${rev.length === 0 ? '—' : `${median(rev)} in ${phaseMs / 1000} s`} |`,
    );
  }
  return lines.join('\n');
}
