/**
 * Spin's domain vocabulary: who waits, whom they seek, what a match and a wait estimate are.
 * Pure data: no I/O, no clock (every time is a number of milliseconds passed in by the caller).
 */

/** The genders a user can give, in the canonical order used for group keys. */
export const GENDERS = ['woman', 'man', 'nonbinary'] as const;

/** A user's gender. */
export type Gender = (typeof GENDERS)[number];

/** The genders a user wants to be paired with: never empty, no gender twice. */
export type Seeking = readonly [Gender, ...Gender[]];

/**
 * A wait group: everyone with the same gender and the same set of sought genders. Groups are few
 * (3 genders × 7 non-empty sets = 21), which is what keeps matching and estimating cheap.
 */
export interface Group {
  readonly gender: Gender;
  readonly seeking: Seeking;
}

/**
 * A group's stable name, e.g. `man:woman` or `woman:woman+nonbinary` (sought genders in
 * {@link GENDERS} order, whatever order they were given in). Safe in URLs, metric labels and keys.
 */
export type GroupKey = `${Gender}:${string}`;

/** Someone in the queue. */
export interface Waiter extends Group {
  readonly userId: string;
  /** When they joined the queue (ms since the epoch, or any clock the caller uses consistently). */
  readonly joinedAt: number;
}

/** A pair chosen by the matcher. `first` is the one whose turn it was: it joined before `second`. */
export interface Match {
  readonly first: Waiter;
  readonly second: Waiter;
}

/** Why an estimate says what it says. The string values are part of the HTTP API: never renamed. */
export const EstimateReason = {
  /** A compatible partner is already waiting: matched at the matcher's next round. */
  PARTNER_WAITING: 'PARTNER_WAITING',
  /** Nobody seeking the same match is ahead; the wait is for the next partner. */
  NEXT_IN_LINE: 'NEXT_IN_LINE',
  /** Some people seeking the same match are ahead; the wait is for them and then you. */
  PARTNERS_AHEAD: 'PARTNERS_AHEAD',
  /** Recent arrivals of the user's side outnumber those of the partners' side (at least 1.5:1). */
  IMBALANCE: 'IMBALANCE',
  /** Unknown: the group was matched too few times recently for a range worth showing. */
  NOT_ENOUGH_DATA: 'NOT_ENOUGH_DATA',
  /** Unknown: nobody in the group has been matched in the whole recent window. */
  NO_RECENT_MATCHES: 'NO_RECENT_MATCHES',
} as const;

/** One of the {@link EstimateReason} codes. */
export type EstimateReasonCode = (typeof EstimateReason)[keyof typeof EstimateReason];

/**
 * A wait estimate as shown to a user: a range, how sure it is, and why. Never a bare number: when
 * `estimateKnown` is false the three figures are null and `sentence` says what is known instead.
 */
export interface WaitEstimate {
  /** False when recent history is too thin for an honest range (see `reason`). */
  readonly estimateKnown: boolean;
  /** 10th percentile of the wait from now, in ms (whole ms); null when unknown. */
  readonly p10Ms: number | null;
  /** Median wait from now, in ms; null when unknown. */
  readonly p50Ms: number | null;
  /** 90th percentile of the wait from now, in ms; null when unknown. */
  readonly p90Ms: number | null;
  /** How many of the group's matches in the recent window the range rests on. */
  readonly sampleSize: number;
  readonly reason: EstimateReasonCode;
  /** One or two plain sentences saying why, with the live numbers (rounded for reading). */
  readonly sentence: string;
}
