// What the live event stream watches: the changes of a Bulwark, as small events (ids, keys, counts).
// Flags are pushed by the flag service; everything else is read by the hub's shared pollers (once a
// second per process, only while a stream is open), each with one bounded query or in memory.
import type { Kysely } from 'kysely';
import type { InstanceRegistry } from '../instances/registry.js';
import type { QueueCounts } from '../queue/index.js';
import type { Bulwark } from '../runtime/create.js';
import { AUDIT_REFUSED_TARGET } from '../store/audit-retention.js';
import type { StoreTables } from '../store/types.js';
import type { EventData, EventHub } from './event-hub.js';

/** New audit rows read per poll at most (more set `more: true`). */
const AUDIT_BATCH = 20;

/** The keys whose values differ between two records (absent counts as a difference). */
function changedKeys<V>(before: Record<string, V>, after: Record<string, V>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key])).sort();
}

/** Equal JSON: no event; else `event(after)`. */
function whenChanged<S>(event: (after: S) => EventData): (before: S, after: S) => EventData | undefined {
  return (before, after) => (JSON.stringify(before) === JSON.stringify(after) ? undefined : event(after));
}

/**
 * Connects `hub` to `bulwark`: flag changes as they happen (`flags`: `{ keys }`), and the polled
 * sources — `dependencies` (`{ names }` whose mode or kill switch changed), `alerts` (`{ firing,
 * pending }`), `queues` (`{ queues: { name: counts } }` for the queues whose counts changed, and
 * `paused: [names]` for those paused or resumed), `audit`
 * (`{ rows: [{ id, action, target }] }`: new records, without the admin API's own reads and the refusal
 * summaries), `instances` (`{ ids, alive }`), `config` (`{ revision }`) and `errors` (`{ groups, open,
 * newest }`).
 */
export function watchBulwark(hub: EventHub, bulwark: Bulwark): void {
  bulwark.flags.onChange((change) => hub.publish('flags', { keys: [change.key] }));
  const db = bulwark.store.db;

  hub.addSource({
    topic: 'dependencies',
    read: () =>
      Object.fromEntries(
        Object.values(bulwark.dependencies).map((d) => [d.name, { mode: d.mode, forced: d.forced }]),
      ),
    diff: (before, after) => {
      const names = changedKeys(before, after);
      return names.length === 0 ? undefined : { names };
    },
  });

  const alerts = bulwark.alerts;
  if (alerts !== undefined)
    hub.addSource({ topic: 'alerts', read: () => alertCounts(db), diff: whenChanged((counts) => counts) });

  hub.addSource({
    topic: 'queues',
    read: async () => ({
      counts: Object.fromEntries(await bulwark.queues.counts()),
      // As this process last read it from the store (every 250 ms): no query of its own.
      paused: Object.fromEntries([...bulwark.queues.paused].map((name) => [name, true])),
    }),
    diff: (
      before: { counts: Record<string, QueueCounts>; paused: Record<string, boolean> },
      after: { counts: Record<string, QueueCounts>; paused: Record<string, boolean> },
    ) => {
      const names = changedKeys(before.counts, after.counts);
      const paused = changedKeys(before.paused, after.paused);
      if (names.length === 0 && paused.length === 0) return undefined;
      const zero = { waiting: 0, delayed: 0, retrying: 0, active: 0, dead: 0 };
      // A queue whose last job finished leaves the counts: it is reported with zeros.
      return {
        queues: Object.fromEntries(names.map((name) => [name, after.counts[name] ?? zero])),
        ...(paused.length === 0 ? {} : { paused }),
      };
    },
  });

  hub.addSource(auditSource(db));

  hub.addSource({
    topic: 'instances',
    read: async () => {
      const registry = bulwark.parts.get('instances') as InstanceRegistry | undefined;
      const rows = (await registry?.list({ includeStopped: true })) ?? [];
      return Object.fromEntries(
        rows.map((row) => [
          row.instanceId,
          { alive: row.alive, stopped: row.stoppedAt !== undefined, deps: row.dependencies },
        ]),
      );
    },
    diff: (before, after) => {
      const ids = changedKeys(before, after);
      if (ids.length === 0) return undefined;
      return { ids, alive: Object.values(after).filter((row) => row.alive).length };
    },
  });

  const config = bulwark.config;
  if (config !== undefined)
    hub.addSource({
      topic: 'config',
      read: () => config.revision,
      diff: whenChanged((revision) => ({ revision })),
    });

  hub.addSource({ topic: 'errors', read: () => errorCounts(db), diff: whenChanged((counts) => counts) });
}

/** Rules firing and pending now: one grouped count over the rule states. */
async function alertCounts(db: Kysely<StoreTables>): Promise<{ firing: number; pending: number }> {
  const rows = await db
    .selectFrom('bulwark_alerts')
    .select((eb) => ['state', eb.fn.countAll<number>().as('n')])
    .where('state', 'in', ['firing', 'pending'])
    .groupBy('state')
    .execute();
  const count = (state: string) => Number(rows.find((row) => row.state === state)?.n ?? 0);
  return { firing: count('firing'), pending: count('pending') };
}

/** Error groups: how many, how many open, and the newest one's fingerprint. */
async function errorCounts(
  db: Kysely<StoreTables>,
): Promise<{ groups: number; open: number; newest: string | null }> {
  const rows = await db
    .selectFrom('bulwark_error_groups')
    .select((eb) => ['state', eb.fn.countAll<number>().as('n')])
    .groupBy('state')
    .execute();
  const newest = await db
    .selectFrom('bulwark_error_groups')
    .select('fingerprint')
    .orderBy('first_seen', 'desc')
    .limit(1)
    .executeTakeFirst();
  return {
    groups: rows.reduce((sum, row) => sum + Number(row.n), 0),
    open: Number(rows.find((row) => row.state === 'open')?.n ?? 0),
    newest: newest?.fingerprint ?? null,
  };
}

/**
 * New audit rows since the last poll (by id: ids only grow), at most {@link AUDIT_BATCH} a poll. The
 * admin API's own reads (`GET ...`, one per page refetch) and the refusal summaries are left out: a
 * page refetching on `audit` would otherwise cause the next one.
 */
function auditSource(db: Kysely<StoreTables>) {
  let last: number | undefined;
  return {
    topic: 'audit' as const,
    reset: () => (last = undefined),
    read: async (): Promise<{ last: number; rows: { id: number; action: string; target: string }[] }> => {
      if (last === undefined) {
        const top = await db
          .selectFrom('bulwark_audit')
          .select('id')
          .orderBy('id', 'desc')
          .limit(1)
          .executeTakeFirst();
        last = Number(top?.id ?? 0);
        return { last, rows: [] };
      }
      const rows = await db
        .selectFrom('bulwark_audit')
        .select(['id', 'action', 'target'])
        .where('id', '>', last)
        .orderBy('id')
        .limit(AUDIT_BATCH)
        .execute();
      last = rows.length === 0 ? last : Number(rows.at(-1)?.id);
      return {
        last,
        rows: rows
          .filter((row) => !row.action.startsWith('GET ') && row.target !== AUDIT_REFUSED_TARGET)
          .map((row) => ({ id: Number(row.id), action: row.action, target: row.target })),
      };
    },
    diff: (_before: unknown, after: { rows: unknown[] }) =>
      after.rows.length === 0 ? undefined : { rows: after.rows },
  };
}
