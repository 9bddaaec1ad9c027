import type { ErrorSample, ErrorSource } from './types.js';

/**
 * How much error tracking may store. Browser reports come from anyone who can reach the server, so
 * their share is bounded on its own and can never push server errors out.
 */
export interface ErrorLimits {
  /** Server-origin groups kept; beyond, the least recently seen are deleted (default 2 000). */
  maxServerGroups: number;
  /** Browser-origin groups kept; beyond, the least seen, then oldest, are deleted (default 500). */
  maxBrowserGroups: number;
  /** Samples kept per server group, newest first (default 20). */
  serverSamplesPerGroup: number;
  /** Samples kept per browser group, newest first (default 3). */
  browserSamplesPerGroup: number;
  /** Server samples kept in all, newest first (default 2 000). */
  maxServerSamples: number;
  /** Serialised size of one server sample at most, bytes of UTF-8 JSON (default 20 KiB). */
  serverSampleBytes: number;
  /** Serialised size of one browser sample at most, bytes (default 6 KiB). */
  browserSampleBytes: number;
  /** Browser groups not seen before accepted per minute, across all clients (default 60). */
  newBrowserGroupsPerMinute: number;
}

/** The defaults of {@link ErrorLimits}. */
export const DEFAULT_ERROR_LIMITS: ErrorLimits = {
  maxServerGroups: 2_000,
  maxBrowserGroups: 500,
  serverSamplesPerGroup: 20,
  browserSamplesPerGroup: 3,
  maxServerSamples: 2_000,
  serverSampleBytes: 20 * 1024,
  browserSampleBytes: 6 * 1024,
  newBrowserGroupsPerMinute: 60,
};

/** Characters kept of a group's type, message template, culprit and release (its row stays small). */
export const GROUP_FIELD_LIMITS = { type: 200, message: 1_000, culprit: 300, release: 200 } as const;

/** Characters kept of a browser sample's message, stack and page URL before the byte limit applies. */
export const BROWSER_TEXT_LIMITS = { message: 1_000, stack: 4_000, url: 500 } as const;

/** A sample as it is stored (without its id). */
type Sample = Omit<ErrorSample, 'id'>;

/**
 * `sample` cut down until its JSON is at most `maxBytes` bytes of UTF-8: the oldest breadcrumbs
 * first (halving them), then the stack, then the message; if still too large, tags go and the user
 * context is reduced to `id` and `username`; last, only the essentials stay (type, a 100-character
 * message, level, release, time). Escaping and multi-byte characters make bytes differ from
 * characters, so the size is measured each time.
 */
export function fitSample(sample: Sample, maxBytes: number): Sample {
  let fitted = sample;
  while (fitted.breadcrumbs !== undefined && sizeOf(fitted) > maxBytes) {
    const { breadcrumbs, ...rest } = fitted;
    const kept = breadcrumbs.slice(Math.ceil(breadcrumbs.length / 2));
    fitted = kept.length === 0 ? rest : { ...rest, breadcrumbs: kept };
  }
  for (const field of ['stack', 'message'] as const) {
    for (let pass = 0; pass < 6; pass += 1) {
      const bytes = sizeOf(fitted);
      const text = fitted[field];
      if (bytes <= maxBytes) return fitted;
      if (text === undefined || text === '') break;
      // Proportional to the excess, rounded down: a few passes converge whatever the escaping.
      const keep = Math.floor(text.length * Math.max(0, 1 - (bytes - maxBytes) / bytes) * 0.95);
      fitted = { ...fitted, [field]: text.slice(0, keep) };
    }
  }
  if (sizeOf(fitted) <= maxBytes) return fitted;
  const { tags: _tags, user, ...rest } = fitted;
  const small = user === undefined ? undefined : pick(user);
  fitted = { ...rest, ...(small === undefined ? {} : { user: small }) };
  if (sizeOf(fitted) <= maxBytes) return fitted;
  return {
    at: sample.at,
    release: sample.release.slice(0, 200),
    type: sample.type.slice(0, 200),
    message: sample.message.slice(0, 100),
    stack: undefined,
    level: sample.level,
    handled: sample.handled,
    source: sample.source,
  };
}

function sizeOf(sample: Sample): number {
  return Buffer.byteLength(JSON.stringify(sample), 'utf8');
}

function pick(user: NonNullable<Sample['user']>): Sample['user'] {
  const small: NonNullable<Sample['user']> = {};
  if (typeof user.id === 'string') small.id = user.id.slice(0, 200);
  if (typeof user.username === 'string') small.username = user.username.slice(0, 200);
  return Object.keys(small).length === 0 ? undefined : small;
}

/**
 * A budget of new browser groups per minute (a fixed window on the injected clock), and the browser
 * fingerprints already let in, so repeats of a known group never count against it. The memory of
 * known fingerprints is bounded: when full it starts over (a forgotten group counts as new once).
 */
export class NewGroupBudget {
  readonly #perMinute: number;
  readonly #maxKnown: number;
  readonly #known = new Set<string>();
  #windowStart = Number.NEGATIVE_INFINITY;
  #used = 0;

  constructor(perMinute: number, maxKnown: number) {
    this.#perMinute = perMinute;
    this.#maxKnown = maxKnown;
  }

  /** Whether an occurrence of `fingerprint` may be recorded at `now` (ms); counts a new one. */
  admit(fingerprint: string, now: number): boolean {
    if (this.#known.has(fingerprint)) return true;
    if (now - this.#windowStart >= 60_000) {
      this.#windowStart = now;
      this.#used = 0;
    }
    if (this.#used >= this.#perMinute) return false;
    this.#used += 1;
    if (this.#known.size >= this.#maxKnown) this.#known.clear();
    this.#known.add(fingerprint);
    return true;
  }
}

/** The byte limit of one sample from `source`. */
export function sampleBytes(limits: ErrorLimits, source: ErrorSource): number {
  return source === 'browser' ? limits.browserSampleBytes : limits.serverSampleBytes;
}
