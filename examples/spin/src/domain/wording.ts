/**
 * How figures read in estimate sentences: durations rounded for reading (seconds under 2 minutes,
 * minutes under 2 hours, hours after), ranges, rates, ratios and ordinals.
 */
import type { Gender } from './types.js';

const PLURAL: Readonly<Record<Gender, string>> = {
  woman: 'women',
  man: 'men',
  nonbinary: 'nonbinary people',
};

/** "women", "men", "nonbinary people". */
export function genderPlural(gender: Gender): string {
  return PLURAL[gender];
}

function roundTo(value: number, step: number): number {
  return Math.round(value / step) * step;
}

function unit(count: number, name: string): string {
  return `${count} ${name}${count === 1 ? '' : 's'}`;
}

/**
 * A duration for reading: "7 seconds", "45 seconds" (5 s steps from 10 s, 10 s steps from a minute),
 * "12 minutes" (5 min steps from 10 min), "2.5 hours" (half hours under 10 h). Never below 1 second.
 */
export function formatDuration(ms: number): string {
  const seconds = ms / 1000;
  const s = Math.max(1, roundTo(seconds, seconds < 10 ? 1 : seconds < 60 ? 5 : 10));
  if (s < 120) return unit(s, 'second');
  const minutes = ms / 60_000;
  const m = roundTo(minutes, minutes < 10 ? 1 : 5);
  if (m < 120) return unit(m, 'minute');
  const hours = ms / 3_600_000;
  return unit(roundTo(hours, hours < 10 ? 0.5 : 1), 'hour');
}

/** A range for reading: "3–9 minutes", "40 seconds to 3 minutes", "up to 2 minutes", "about 5 minutes". */
export function formatRange(lowMs: number, highMs: number): string {
  const high = formatDuration(highMs);
  if (lowMs < 1000) return `up to ${high}`;
  const low = formatDuration(lowMs);
  if (low === high) return `about ${high}`;
  const [lowCount, lowUnit] = low.split(' ');
  const [, highUnit] = high.split(' ');
  return lowUnit?.replace(/s$/, '') === highUnit?.replace(/s$/, '')
    ? `${lowCount}–${high}`
    : `${low} to ${high}`;
}

/** How often something happens at `perMs` events per ms: "about 3 times a minute", "about once every 2 minutes". */
export function formatFrequency(perMs: number): string {
  const intervalMs = 1 / perMs;
  if (intervalMs >= 40_000) return `about once every ${formatDuration(intervalMs).replace(/^1 /, '')}`;
  const perMinute = perMs * 60_000;
  const shown = perMinute < 3 ? roundTo(perMinute, 0.5) : Math.round(perMinute);
  return `about ${shown} times a minute`;
}

/** A ratio to one for reading: "3:1", "2.5:1", "12:1". */
export function formatRatio(ratio: number): string {
  return `${ratio < 10 ? roundTo(ratio, 0.5) : Math.round(ratio)}:1`;
}

/** "1st", "2nd", "3rd", "4th", "11th", "22nd". */
export function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}
