/**
 * A seeded arrival simulator: Poisson arrivals per wait group at configurable rates, in phases (so a
 * rate can change midway), with optional impatience. Same seed, same arrivals. Used by the tests, the
 * load scenario and the test endpoint that simulates arrivals.
 */
import type { Group, Waiter } from './types.js';

/** A deterministic uniform generator on [0, 1) (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Arrivals of one group: a Poisson process of `perMinute` arrivals a minute on average. */
export interface ArrivalStream {
  readonly group: Group;
  readonly perMinute: number;
}

/** A stretch of simulated time with fixed rates. */
export interface SimulationPhase {
  readonly durationMs: number;
  readonly streams: readonly ArrivalStream[];
}

/** How long arrivals are willing to wait: a share never gives up, the rest after an exponential time. */
export interface Patience {
  /** Share of arrivals (0 … 1) who wait until matched however long it takes. */
  readonly stayShare: number;
  /** Mean patience (ms) of the others. */
  readonly meanMs: number;
}

export interface SimulationOptions {
  readonly seed: number;
  readonly phases: readonly SimulationPhase[];
  /** Time of the first phase's start (default 0). */
  readonly startAt?: number;
  /** Default: everyone stays until matched. */
  readonly patience?: Patience;
  /** Prefix of the generated user ids (default `sim-`); ids sort in arrival order. */
  readonly idPrefix?: string;
}

/** One simulated arrival: who joins when, and when they would leave if still unmatched. */
export interface SimulatedArrival {
  readonly waiter: Waiter;
  /** How long they wait before leaving unmatched (ms); Infinity if they never leave. */
  readonly patienceMs: number;
}

function exponential(random: () => number, mean: number): number {
  return -Math.log(1 - random()) * mean;
}

/** The arrivals of every phase, in `joinedAt` order. */
export function simulateArrivals(options: SimulationOptions): SimulatedArrival[] {
  const random = seededRandom(options.seed);
  const joins: { group: Group; joinedAt: number; patienceMs: number }[] = [];
  let phaseStart = options.startAt ?? 0;
  for (const phase of options.phases) {
    const phaseEnd = phaseStart + phase.durationMs;
    for (const stream of phase.streams) {
      if (stream.perMinute <= 0) continue;
      // A Poisson process restarted at the phase boundary is still one: gaps are memoryless.
      for (let at = phaseStart + exponential(random, 60_000 / stream.perMinute); at < phaseEnd;) {
        const patience = options.patience;
        const stays = patience === undefined || random() < patience.stayShare;
        const patienceMs = stays ? Infinity : exponential(random, patience.meanMs);
        joins.push({ group: stream.group, joinedAt: Math.round(at), patienceMs });
        at += exponential(random, 60_000 / stream.perMinute);
      }
    }
    phaseStart = phaseEnd;
  }
  joins.sort((a, b) => a.joinedAt - b.joinedAt);
  const width = String(joins.length).length;
  const prefix = options.idPrefix ?? 'sim-';
  return joins.map((join, i) => ({
    waiter: {
      userId: `${prefix}${String(i + 1).padStart(width, '0')}`,
      gender: join.group.gender,
      seeking: join.group.seeking,
      joinedAt: join.joinedAt,
    },
    patienceMs: join.patienceMs,
  }));
}

/** One group's share of a mix. */
export interface MixShare {
  readonly group: Group;
  readonly share: number;
}

/** Streams for `perMinute` arrivals a minute in total, split by the mix's shares (which need not sum to 1). */
export function mixStreams(mix: readonly MixShare[], perMinute: number): ArrivalStream[] {
  const total = mix.reduce((sum, part) => sum + part.share, 0);
  return mix.map((part) => ({ group: part.group, perMinute: (perMinute * part.share) / total }));
}

/** A population with as many women as men: mostly straight, some gay, bisexual and nonbinary users. */
export const BALANCED_MIX: readonly MixShare[] = [
  { group: { gender: 'man', seeking: ['woman'] }, share: 36 },
  { group: { gender: 'woman', seeking: ['man'] }, share: 36 },
  { group: { gender: 'man', seeking: ['man'] }, share: 6 },
  { group: { gender: 'woman', seeking: ['woman'] }, share: 5 },
  { group: { gender: 'man', seeking: ['woman', 'man'] }, share: 5 },
  { group: { gender: 'woman', seeking: ['woman', 'man'] }, share: 7 },
  { group: { gender: 'nonbinary', seeking: ['woman', 'man', 'nonbinary'] }, share: 3 },
  { group: { gender: 'woman', seeking: ['woman', 'man', 'nonbinary'] }, share: 2 },
];

/** The seeds' problem: men arrive three times as often as women (the same shapes otherwise). */
export const IMBALANCED_MIX: readonly MixShare[] = BALANCED_MIX.map((part) => ({
  group: part.group,
  share: part.group.gender === 'man' ? part.share * 3 : part.share,
}));
