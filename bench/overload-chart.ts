// The overload benchmark's chart (docs/images/overload.svg): goodput and critical p99 by load, one
// line per server (medians over rounds).
import { median } from './lib.js';

interface Phase {
  load: number;
  goodput: number;
  p99: { critical: number };
  success: { critical: number };
}
interface Run {
  mode: string;
  phases: Phase[];
}

const COLOURS: Record<string, string> = { none: '#b91c1c', 'under-pressure': '#d97706', bulwark: '#047857' };
const W = 360;
const H = 220;
const PAD = { left: 52, right: 14, top: 30, bottom: 38 };

function panel(
  x0: number,
  title: string,
  loads: number[],
  series: { mode: string; values: number[] }[],
  y: { min: number; max: number; log: boolean; label: (v: number) => string; ticks: number[] },
): string {
  const px = (i: number) => x0 + PAD.left + (i / (loads.length - 1)) * (W - PAD.left - PAD.right);
  const scale = (v: number) => (y.log ? Math.log10(Math.max(v, y.min)) : v);
  const py = (v: number) =>
    PAD.top + (1 - (scale(v) - scale(y.min)) / (scale(y.max) - scale(y.min))) * (H - PAD.top - PAD.bottom);
  const parts = [`<text x="${x0 + W / 2}" y="18" text-anchor="middle" font-weight="600">${title}</text>`];
  for (const tick of y.ticks) {
    parts.push(
      `<line x1="${x0 + PAD.left}" x2="${x0 + W - PAD.right}" y1="${py(tick)}" y2="${py(tick)}" stroke="#e5e7eb"/>`,
      `<text x="${x0 + PAD.left - 6}" y="${py(tick) + 4}" text-anchor="end">${y.label(tick)}</text>`,
    );
  }
  loads.forEach((load, i) =>
    parts.push(`<text x="${px(i)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${load}×</text>`),
  );
  parts.push(`<text x="${x0 + W / 2}" y="${H - 6}" text-anchor="middle">load (multiple of capacity)</text>`);
  for (const { mode, values } of series) {
    const points = values.map((v, i) => `${px(i).toFixed(1)},${py(Math.min(v, y.max)).toFixed(1)}`).join(' ');
    parts.push(
      `<polyline fill="none" stroke="${COLOURS[mode] ?? '#000'}" stroke-width="2.5" points="${points}"/>`,
    );
    values.forEach((v, i) =>
      parts.push(
        `<circle cx="${px(i)}" cy="${py(Math.min(v, y.max))}" r="3.5" fill="${COLOURS[mode] ?? '#000'}"/>`,
      ),
    );
  }
  return parts.join('\n');
}

/** The SVG text of the chart for `runs`, over the phases at `loads`. */
export function overloadChart(capacity: number, runs: Run[], loads: number[]): string {
  const modes = [...new Set(runs.map((r) => r.mode))];
  const pick = (mode: string, load: number, f: (p: Phase) => number) =>
    median(runs.filter((r) => r.mode === mode).map((r) => f(r.phases.find((p) => p.load === load) as Phase)));
  const goodput = modes.map((mode) => ({
    mode,
    values: loads.map((load) => (100 * pick(mode, load, (p) => p.goodput)) / capacity),
  }));
  // A class with almost no success has no meaningful p99: drawn at the top (5 s, the clients' patience).
  const p99 = modes.map((mode) => ({
    mode,
    values: loads.map((load) =>
      pick(mode, load, (p) => p.success.critical) < 0.5 ? 5000 : pick(mode, load, (p) => p.p99.critical),
    ),
  }));
  const legend = modes
    .map(
      (mode, i) =>
        `<rect x="${60 + i * 210}" y="${H + 6}" width="14" height="4" fill="${COLOURS[mode] ?? '#000'}"/>` +
        `<text x="${80 + i * 210}" y="${H + 12}">${mode === 'none' ? 'no protection' : mode === 'bulwark' ? 'Bulwark' : '@fastify/under-pressure'}</text>`,
    )
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 24}" font-family="system-ui, sans-serif" font-size="11" fill="#111827">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    panel(0, 'Goodput (% of capacity)', loads, goodput, {
      min: 0,
      max: 150,
      log: false,
      label: (v) => `${v}%`,
      ticks: [0, 25, 50, 75, 100, 125, 150],
    }),
    panel(W, 'Critical requests: p99 latency (ms, log)', loads, p99, {
      min: 5,
      max: 5000,
      log: true,
      label: (v) => String(v),
      ticks: [5, 10, 50, 100, 500, 1000, 5000],
    }),
    legend,
    '</svg>',
    '',
  ].join('\n');
}
