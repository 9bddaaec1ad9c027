// A page of alert rules with their states, for the admin API and the console: the rules come from
// the configuration (in memory), their states from `bulwark_alerts`, their acknowledgements and
// silences from the key-value table; each a bounded read, whatever the number of rules.
import type { Kysely } from 'kysely';
import { bulwarkError } from '../errors/index.js';
import type { StoreTables } from '../store/types.js';
import { matches, type Ack, type Silence } from './manager.js';
import { storedStatus, type AlertRule, type AlertState, type AnomalyDetail, type Severity } from './rules.js';

/** Which rules a page shows: one state, `active` (firing and pending), or `all` (every configured rule). */
export type AlertFilter = AlertState | 'active' | 'all';

/** One rule as a page shows it. */
export interface AlertRow {
  id: string;
  severity: Severity;
  summary: string;
  series: string;
  /** What silences match: `alertname` (the id), `severity` and the rule's own labels. */
  labels: Record<string, string>;
  state: AlertState;
  since: number;
  value?: number;
  transitions: number;
  /** The acknowledgement of the current firing, if any. */
  ack?: Ack;
  /** The silence covering it now, if any. */
  silence?: { id: string; endsAt: number; createdBy: string };
  /** An anomaly rule's baseline and band at its last evaluation, or why it has none. */
  anomaly?: AnomalyDetail;
}

/** A page of rules: `next` is the `after` of the following page (undefined on the last). */
export interface AlertPage {
  rules: AlertRow[];
  total: number;
  next: string | undefined;
}

/** What a page needs besides the options. */
export interface AlertPageSource {
  db: Kysely<StoreTables>;
  rules: readonly AlertRule[];
  /** The acknowledgements of these rules, by rule (one read). */
  acks: (rules: string[]) => Promise<Map<string, Ack>>;
  /** The silences not yet ended. */
  silences: () => Promise<Silence[]>;
  /** An anomaly rule's last baseline and band (where this instance evaluated it). */
  anomaly?: (rule: string) => AnomalyDetail | undefined;
  now: number;
}

/** The labels an alert of `rule` carries (what silences and inhibition match). */
export function labelsOf(rule: AlertRule): Record<string, string> {
  return { alertname: rule.id, severity: rule.severity, ...rule.labels };
}

const sortedRules = new WeakMap<readonly AlertRule[], AlertRule[]>();

/** The configured rules by id (sorted once per configuration). */
function byId(rules: readonly AlertRule[]): AlertRule[] {
  let sorted = sortedRules.get(rules);
  if (sorted === undefined) {
    sorted = [...rules].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    sortedRules.set(rules, sorted);
  }
  return sorted;
}

function matching(rules: AlertRule[], q: string | undefined): AlertRule[] {
  const text = q?.trim().toLowerCase() ?? '';
  if (text === '') return rules;
  return rules.filter((r) => r.id.toLowerCase().includes(text) || r.summary.toLowerCase().includes(text));
}

/** The cursor of a page of states: where the last row was in (state, since, rule) order. */
type StateCursor = [state: string, since: number, rule: string];

function encode(cursor: StateCursor | string): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decode(after: string): unknown {
  try {
    return JSON.parse(Buffer.from(after, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function badCursor(): Error {
  return bulwarkError('BWK_ERR_HTTP_VALIDATION', {
    part: 'querystring',
    detail: 'after: not the `next` of an earlier page',
  });
}

/**
 * One page of rules with their states. `all` pages the configured rules by id (their states read
 * for the page only); a state or `active` pages the stored states of configured rules in (state,
 * since, rule) order — firing before pending, the longest first — with a keyset cursor. `q`
 * matches a part of the id or summary. Throws `BWK_ERR_HTTP_VALIDATION` for a cursor this did not
 * write.
 */
export async function alertPage(
  source: AlertPageSource,
  opts: { filter: AlertFilter; q?: string | undefined; after?: string | undefined; limit: number },
): Promise<AlertPage> {
  const candidates = matching(byId(source.rules), opts.q);
  const found =
    opts.filter === 'all'
      ? await everyRule(source.db, candidates, opts.after, opts.limit)
      : await inState(source.db, candidates, opts.filter, opts.after, opts.limit);
  const { page } = found;
  const firing = page.filter((p) => p.row?.state === 'firing').map((p) => p.rule.id);
  const [acks, silences] = await Promise.all([
    firing.length === 0 ? new Map<string, Ack>() : source.acks(firing),
    page.length === 0 ? [] : source.silences(),
  ]);
  return {
    rules: page.map(({ rule, row }) => {
      const anomaly = source.anomaly?.(rule.id);
      return {
        ...toRow(rule, row, acks, silences, source.now),
        ...(anomaly === undefined ? {} : { anomaly }),
      };
    }),
    total: found.total,
    next: found.next,
  };
}

interface Found {
  page: { rule: AlertRule; row: StateRow | undefined }[];
  total: number;
  next: string | undefined;
}

/** The configured rules by id, a page after the id `after`, with their stored states. */
async function everyRule(
  db: Kysely<StoreTables>,
  candidates: AlertRule[],
  after: string | undefined,
  limit: number,
): Promise<Found> {
  const from = after === undefined ? undefined : decode(after);
  if (after !== undefined && typeof from !== 'string') throw badCursor();
  const start = typeof from === 'string' ? candidates.findIndex((r) => r.id > from) : 0;
  const slice = start < 0 ? [] : candidates.slice(start, start + limit);
  const rows = await stateRows(
    db,
    slice.map((r) => r.id),
  );
  const last = slice.at(-1);
  return {
    page: slice.map((rule) => ({ rule, row: rows.get(rule.id) })),
    total: candidates.length,
    next: start >= 0 && start + limit < candidates.length && last !== undefined ? encode(last.id) : undefined,
  };
}

/** The stored states of `candidates` in one state (or firing and pending), a page after `after`. */
async function inState(
  db: Kysely<StoreTables>,
  candidates: AlertRule[],
  filter: Exclude<AlertFilter, 'all'>,
  after: string | undefined,
  limit: number,
): Promise<Found> {
  const cursor = after === undefined ? undefined : decode(after);
  if (after !== undefined && !isStateCursor(cursor)) throw badCursor();
  if (candidates.length === 0) return { page: [], total: 0, next: undefined };
  const known = new Map(candidates.map((r) => [r.id, r]));
  const base = db
    .selectFrom('bulwark_alerts')
    .where('state', 'in', filter === 'active' ? ['firing', 'pending'] : [filter])
    .where('rule', 'in', [...known.keys()]);
  let query = base.select(['rule', 'state', 'since', 'value', 'transitions']);
  if (isStateCursor(cursor)) {
    const [state, since, rule] = cursor;
    query = query.where((eb) =>
      eb.or([
        eb('state', '>', state),
        eb.and([eb('state', '=', state), eb('since', '>', since)]),
        eb.and([eb('state', '=', state), eb('since', '=', since), eb('rule', '>', rule)]),
      ]),
    );
  }
  const [rows, count] = await Promise.all([
    query
      .orderBy('state')
      .orderBy('since')
      .orderBy('rule')
      .limit(limit + 1)
      .execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return {
    page: shown.flatMap((row) => {
      const rule = known.get(row.rule);
      return rule === undefined ? [] : [{ rule, row }];
    }),
    total: Number(count.n),
    next:
      rows.length > limit && last !== undefined
        ? encode([last.state, Number(last.since), last.rule])
        : undefined,
  };
}

function isStateCursor(value: unknown): value is StateCursor {
  return (
    Array.isArray(value) &&
    value.length === 3 &&
    typeof value[0] === 'string' &&
    Number.isSafeInteger(value[1]) &&
    typeof value[2] === 'string'
  );
}

interface StateRow {
  rule: string;
  state: string;
  since: number;
  value: number | null;
  transitions: number;
}

/** The stored states of `ids` (one query). */
async function stateRows(db: Kysely<StoreTables>, ids: string[]): Promise<Map<string, StateRow>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('bulwark_alerts')
    .select(['rule', 'state', 'since', 'value', 'transitions'])
    .where('rule', 'in', ids)
    .execute();
  return new Map(rows.map((row) => [row.rule, row]));
}

function toRow(
  rule: AlertRule,
  row: StateRow | undefined,
  acks: Map<string, Ack>,
  silences: Silence[],
  now: number,
): AlertRow {
  const status = storedStatus(row, now);
  const labels = labelsOf(rule);
  const ack = acks.get(rule.id);
  const silence = silences.find((s) => s.startsAt <= now && matches(s.matchers, labels));
  return {
    id: rule.id,
    severity: rule.severity,
    summary: rule.summary,
    series: rule.series,
    labels,
    state: status.state,
    since: status.since,
    ...(status.value === undefined ? {} : { value: status.value }),
    transitions: status.transitions,
    ...(ack !== undefined && status.state === 'firing' && ack.transition === status.transitions
      ? { ack }
      : {}),
    ...(silence === undefined
      ? {}
      : { silence: { id: silence.id, endsAt: silence.endsAt, createdBy: silence.createdBy } }),
  };
}
