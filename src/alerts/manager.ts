import { randomUUID } from 'node:crypto';
import { bulwarkError } from '../errors/index.js';
import type { KvEntry, KvRepository } from '../store/types.js';
import type { Severity } from './rules.js';

/** Label equality matchers: every one must hold (`alertname` is the rule id). */
export type Matchers = Record<string, string>;

/** A silence: matching alerts are not notified between `startsAt` and `endsAt`. */
export interface Silence {
  id: string;
  matchers: Matchers;
  startsAt: number;
  endsAt: number;
  createdBy: string;
  comment: string;
}

/**
 * A recurring maintenance window (UTC): on `days` (0 = Sunday) from `from` to `to` (`HH:MM`; a `to`
 * before `from` runs past midnight), matching alerts are not notified.
 */
export interface MaintenanceWindow {
  name: string;
  matchers: Matchers;
  days: number[];
  from: string;
  to: string;
}

/** A firing alert acknowledged by someone: no repeats, no escalation, until it resolves or fires anew. */
export interface Ack {
  rule: string;
  /** The firing transition it acknowledges. */
  transition: number;
  by: string;
  at: number;
  comment: string;
}

/**
 * A firing alert of `source` severity mutes firing alerts of `target` severity that have the same
 * values for every `equal` label (and have them): a critical "database down" mutes its warnings.
 */
export interface InhibitRule {
  source: Severity;
  target: Severity;
  equal: string[];
}

/** The default: a critical alert mutes the warnings of the same `component`. */
export const DEFAULT_INHIBIT: InhibitRule[] = [
  { source: 'critical', target: 'warning', equal: ['component'] },
];

const SILENCES = 'bulwark.alerts.silences';
/** Silences read per query. */
const SILENCE_PAGE = 1_000;
const ACKS = 'bulwark.alerts.acks';

/** True when every matcher holds on `labels`. */
export function matches(matchers: Matchers, labels: Record<string, string>): boolean {
  return Object.entries(matchers).every(([name, value]) => labels[name] === value);
}

function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

/** True while `window` is open at `now` (UTC). */
export function windowOpen(window: MaintenanceWindow, now: number): boolean {
  const date = new Date(now);
  const minute = date.getUTCHours() * 60 + date.getUTCMinutes();
  const from = minutes(window.from);
  const to = minutes(window.to);
  const day = date.getUTCDay();
  if (from <= to) return window.days.includes(day) && minute >= from && minute < to;
  // Past midnight: the evening part belongs to `day`, the morning part to the day before.
  if (minute >= from) return window.days.includes(day);
  return minute < to && window.days.includes((day + 6) % 7);
}

/** A firing alert as inhibition sees it. */
export interface FiringAlert {
  severity: Severity;
  labels: Record<string, string>;
}

/** True when some firing alert inhibits `alert` under `rules`. */
export function inhibited(alert: FiringAlert, firing: FiringAlert[], rules: InhibitRule[]): boolean {
  return rules.some(
    (rule) =>
      alert.severity === rule.target &&
      firing.some(
        (source) =>
          source.severity === rule.source &&
          rule.equal.every(
            (name) => alert.labels[name] !== undefined && alert.labels[name] === source.labels[name],
          ),
      ),
  );
}

/** Silences and acknowledgements in the store's key-value table (shared by every instance). */
export class AlertSilences {
  readonly #kv: KvRepository;

  constructor(kv: KvRepository) {
    this.#kv = kv;
  }

  /** Adds a silence; names bad fields with `BWK_ERR_ALERTS_CONFIG`. */
  async add(input: Omit<Silence, 'id'>): Promise<Silence> {
    const problems: string[] = [];
    if (Object.keys(input.matchers).length === 0) problems.push('matchers: at least one label matcher');
    if (!(input.endsAt > input.startsAt)) problems.push('endsAt: must be after startsAt');
    if (problems.length > 0)
      throw bulwarkError(
        'BWK_ERR_ALERTS_CONFIG',
        { summary: problems.join('; ') },
        { details: problems.map((p) => ({ field: p.split(':')[0] ?? '', message: p.split(': ')[1] ?? p })) },
      );
    const silence: Silence = { ...input, id: randomUUID() };
    await this.#kv.put(SILENCES, silence.id, silence);
    return silence;
  }

  /** Every stored silence, ended or not, a page of {@link SILENCE_PAGE} at a time. */
  async #stored(): Promise<KvEntry<Silence>[]> {
    const all: KvEntry<Silence>[] = [];
    for (;;) {
      const after = all.at(-1)?.key;
      const entries = await this.#kv.list<Silence>(SILENCES, {
        limit: SILENCE_PAGE,
        ...(after === undefined ? {} : { after }),
      });
      all.push(...entries);
      if (entries.length < SILENCE_PAGE) return all;
    }
  }

  /**
   * Silences not yet ended at `now` (active or future), soonest ending first. Reads every stored
   * silence: ended ones stay stored until {@link AlertSilences.prune} (each evaluation pass).
   */
  async list(now: number): Promise<Silence[]> {
    return (await this.#stored())
      .map((e) => e.value)
      .filter((s) => s.endsAt > now)
      .sort((a, b) => a.endsAt - b.endsAt);
  }

  /** Deletes the silences that ended at or before `now`; resolves how many. */
  async prune(now: number): Promise<number> {
    const ended = (await this.#stored()).filter((e) => e.value.endsAt <= now);
    for (const entry of ended) await this.#kv.delete(SILENCES, entry.key);
    return ended.length;
  }

  /** A stored silence, ended or not; undefined when there is none. */
  async get(id: string): Promise<Silence | undefined> {
    return (await this.#kv.get<Silence>(SILENCES, id))?.value;
  }

  /** Ends a silence now; false when there was none. */
  expire(id: string): Promise<boolean> {
    return this.#kv.delete(SILENCES, id);
  }

  /** The silence covering `labels` at `now`, if any. */
  async covering(labels: Record<string, string>, now: number): Promise<Silence | undefined> {
    return (await this.list(now)).find((s) => s.startsAt <= now && matches(s.matchers, labels));
  }

  async ack(ack: Ack): Promise<Ack> {
    await this.#kv.put(ACKS, ack.rule, ack);
    return ack;
  }

  /** The stored acknowledgements of `rules`, by rule, whatever firing they acknowledge: one read. */
  async acks(rules: string[]): Promise<Map<string, Ack>> {
    const entries = await this.#kv.getMany<Ack>(ACKS, rules);
    return new Map([...entries].map(([rule, entry]) => [rule, entry.value]));
  }

  /** The acknowledgement of `rule`'s firing transition `transition`, if it still applies. */
  async acked(rule: string, transition: number): Promise<Ack | undefined> {
    const entry = await this.#kv.get<Ack>(ACKS, rule);
    return entry !== undefined && entry.value.transition === transition ? entry.value : undefined;
  }
}
