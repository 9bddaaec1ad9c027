// What needs an operator's attention, for the console's overview: one small, bounded read per source
// (degradable dependencies, instances, alerts, queues, error groups, the supervisor, load shedding), each turned into
// items with a one-word verdict and a console link. The route is overview.ts.
import type { AlertEngine } from '../alerts/engine.js';
import type { AlertRule } from '../alerts/rules.js';
import type { InstanceRegistry, InstanceView } from '../instances/registry.js';
import type { Bulwark } from '../runtime/create.js';
import { requestSupervisor } from '../supervised/control-client.js';

export type Severity = 'critical' | 'warning' | 'info';

/** One thing that needs attention. */
export interface AttentionItem {
  severity: Severity;
  /** One word: degraded, forced, lost, firing, dead, stuck, paused, new, regressed, parked, restarting, shedding, unavailable. */
  verdict: string;
  title: string;
  detail: string;
  /** A console path, e.g. `/admin/queues/email?state=dead`. */
  link: string;
}

/** Thresholds of {@link attention} (ms). */
export interface AttentionOptions {
  /** A queue whose oldest waiting job has waited longer is `stuck` (default 5 min). */
  stuckAfterMs?: number;
  /** Error groups first seen, or back after being resolved, within this window (default 1 h). */
  recentMs?: number;
  /** How long the supervisor's status may take (default 250). */
  supervisorTimeoutMs?: number;
  now?: () => number;
}

/** Items one source contributes at most. */
export const MAX_PER_SOURCE = 20;

const RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

type Source = (bulwark: Bulwark, o: Required<AttentionOptions>, now: number) => Promise<AttentionItem[]>;

/**
 * Everything that needs attention now, worst first (critical, warning, info; within a severity, in
 * source order: dependencies, instances, alerts, queues, errors, processes, load), at most
 * {@link MAX_PER_SOURCE} items per source. A source that cannot be read (the store down) is one
 * `unavailable` warning rather than a failure of the whole answer. Never rejects.
 */
export async function attention(bulwark: Bulwark, options: AttentionOptions = {}): Promise<AttentionItem[]> {
  const o: Required<AttentionOptions> = {
    stuckAfterMs: 300_000,
    recentMs: 3_600_000,
    supervisorTimeoutMs: 250,
    now: Date.now,
    ...options,
  };
  const now = o.now();
  const sources: [string, string, Source][] = [
    ['dependencies', '/admin/dependencies', dependencies],
    ['instances', '/admin/instances', instances],
    ['alerts', '/admin/alerts', alerts],
    ['queues', '/admin/queues', queues],
    ['error groups', '/admin/errors', errors],
    ['the supervisor', '/admin/processes', processes],
    ['load shedding', '/admin/metrics', load],
  ];
  const lists = await Promise.all(
    sources.map(async ([name, link, source]) => {
      try {
        return (await source(bulwark, o, now)).slice(0, MAX_PER_SOURCE);
      } catch (error) {
        bulwark.logger.warn({ err: error, source: name }, 'overview: a source cannot be read');
        const reason = error instanceof Error ? error.message : String(error);
        const item: AttentionItem = {
          severity: 'warning',
          verdict: 'unavailable',
          title: `Cannot read ${name}`,
          detail: reason,
          link,
        };
        return [item];
      }
    }),
  );
  // A stable sort: within a severity, the sources' own order (each worst first) is kept.
  return lists.flat().sort((a, b) => RANK[a.severity] - RANK[b.severity]);
}

/** A duration as operators read it: `45 s`, `7 min`, `3 h 5 min`. */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.floor(min / 60);
  return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
}

function registryOf(bulwark: Bulwark): InstanceRegistry | undefined {
  return bulwark.parts.get('instances') as InstanceRegistry | undefined;
}

/** Live instances (from the registry), this one as it is now. */
async function liveInstances(bulwark: Bulwark): Promise<InstanceView[]> {
  return ((await registryOf(bulwark)?.list()) ?? []).filter((row) => row.alive);
}

/**
 * Dependencies on their fallback: `degraded` (critical) when it failed over on some instance, `forced`
 * (warning) when the kill switch holds it there. Every live instance counts, this one as it is now.
 */
const dependencies: Source = async (bulwark) => {
  const modes = new Map<string, { fallback: string[]; forced: string[]; total: number }>();
  const add = (instance: string, name: string, mode: string, forced: boolean) => {
    const entry = modes.get(name) ?? { fallback: [], forced: [], total: 0 };
    entry.total += 1;
    if (forced) entry.forced.push(instance);
    else if (mode === 'fallback') entry.fallback.push(instance);
    modes.set(name, entry);
  };
  for (const failover of Object.values(bulwark.dependencies))
    add(bulwark.instanceId, failover.name, failover.mode, failover.forced);
  for (const row of await liveInstances(bulwark)) {
    if (row.instanceId === bulwark.instanceId) continue;
    for (const [name, dep] of Object.entries(row.dependencies))
      add(row.instanceId, name, dep.mode, dep.forced);
  }
  const items: AttentionItem[] = [];
  for (const [name, { fallback, forced, total }] of [...modes].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const on = (ids: string[]) => (total === 1 ? '' : ` on ${ids.length} of ${total} instances`);
    if (fallback.length > 0)
      items.push({
        severity: 'critical',
        verdict: 'degraded',
        title: `${name} is degraded`,
        detail: `served from its fallback${on(fallback)} after failures`,
        link: '/admin/dependencies',
      });
    if (forced.length > 0)
      items.push({
        severity: 'warning',
        verdict: 'forced',
        title: `${name} is forced onto its fallback`,
        detail: `the kill switch is on${on(forced)}`,
        link: '/admin/dependencies',
      });
  }
  return items;
};

/** This instance shedding requests under overload (docs/protection.md): `shedding` (warning). */
const load: Source = async (bulwark) => {
  if (!bulwark.protection.shedding) return [];
  const { refusal, limit, inFlight, queued } = bulwark.protection.shedder.state();
  const share = (p: number | undefined) => `${Math.round((p ?? 0) * 100)}%`;
  return [
    {
      severity: 'warning',
      verdict: 'shedding',
      title: 'This instance is shedding load',
      detail:
        `refusing ${share(refusal[2])} of sheddable and ${share(refusal[1])} of default requests; ` +
        `concurrency limit ${Math.round(limit)}, ${inFlight} in flight, ${queued} waiting`,
      link: '/admin/metrics',
    },
  ];
};

/** Instances that stopped sending heartbeats without closing: `lost`. */
const instances: Source = async (bulwark, _o, now) => {
  const rows = (await registryOf(bulwark)?.list({ limit: 200 })) ?? [];
  return rows
    .filter((row) => !row.alive && row.stoppedAt === undefined)
    .map((row) => ({
      severity: 'warning' as const,
      verdict: 'lost',
      title: `Instance ${row.instanceId} stopped answering`,
      detail: `${row.host} pid ${row.pid}, last seen ${age(now - row.lastSeen)} ago without closing`,
      link: '/admin/instances',
    }));
};

/** The configured rules by id, and their ids by severity (built once per engine). */
const rulesOf = new WeakMap<AlertEngine, { byId: Map<string, AlertRule>; ids: Record<Severity, string[]> }>();

function indexRules(engine: AlertEngine): { byId: Map<string, AlertRule>; ids: Record<Severity, string[]> } {
  let index = rulesOf.get(engine);
  if (index === undefined) {
    const ids: Record<Severity, string[]> = { critical: [], warning: [], info: [] };
    for (const rule of engine.configuredRules) ids[rule.severity].push(rule.id);
    index = { byId: new Map(engine.configuredRules.map((rule) => [rule.id, rule])), ids };
    rulesOf.set(engine, index);
  }
  return index;
}

/**
 * Firing alerts of the configured rules, critical first, then the longest firing: one read per
 * severity (the rules' ids of that severity, at most the 20 still wanted), stopping at 20.
 */
const alerts: Source = async (bulwark, _o, now) => {
  const engine: AlertEngine | undefined = bulwark.alerts;
  if (engine === undefined) return [];
  const { byId, ids } = indexRules(engine);
  const items: AttentionItem[] = [];
  for (const severity of ['critical', 'warning', 'info'] as const) {
    const wanted = MAX_PER_SOURCE - items.length;
    if (wanted === 0 || ids[severity].length === 0) continue;
    const rows = await bulwark.store.db
      .selectFrom('bulwark_alerts')
      .select(['rule', 'since', 'value'])
      .where('state', '=', 'firing')
      .where('rule', 'in', ids[severity])
      .orderBy('since')
      .limit(wanted)
      .execute();
    for (const row of rows)
      items.push({
        severity,
        verdict: 'firing',
        title: byId.get(row.rule)?.summary ?? row.rule,
        detail: `${row.rule}: value ${row.value ?? 'none'}, firing for ${age(now - Number(row.since))}`,
        link: '/admin/alerts?state=firing',
      });
  }
  return items;
};

/**
 * Queues with dead jobs (`dead`), whose oldest waiting job has waited past the threshold (`stuck`,
 * critical past 6× it), and paused queues with work waiting (`paused`, info). The age is read for the
 * 20 queues with the most waiting jobs: one oldest-first read of one job each.
 */
const queues: Source = async (bulwark, o, now) => {
  const [counts, paused] = await Promise.all([bulwark.queues.counts(), bulwark.queues.pausedQueues()]);
  const items: AttentionItem[] = [];
  const link = (queue: string, state: string) => `/admin/queues/${encodeURIComponent(queue)}?state=${state}`;
  const dead = [...counts].filter(([, c]) => c.dead > 0).sort(([, a], [, b]) => b.dead - a.dead);
  for (const [queue, c] of dead.slice(0, MAX_PER_SOURCE))
    items.push({
      severity: 'warning',
      verdict: 'dead',
      title: `${c.dead} dead job${c.dead === 1 ? '' : 's'} in ${queue}`,
      detail: 'failed every attempt: redrive or remove them',
      link: link(queue, 'dead'),
    });
  const waiting = [...counts].filter(([, c]) => c.waiting > 0).sort(([, a], [, b]) => b.waiting - a.waiting);
  const oldest = await Promise.all(
    waiting.slice(0, MAX_PER_SOURCE).map(async ([queue, c]) => {
      const [job] = await bulwark.queues.list(queue, 'waiting', 1);
      return { queue, waiting: c.waiting, waitedMs: job === undefined ? 0 : now - job.runAt };
    }),
  );
  for (const { queue, waiting: n, waitedMs } of oldest.sort((a, b) => b.waitedMs - a.waitedMs)) {
    const isPaused = paused.has(queue);
    if (waitedMs <= o.stuckAfterMs && !isPaused) continue;
    items.push({
      severity: isPaused ? 'info' : waitedMs > 6 * o.stuckAfterMs ? 'critical' : 'warning',
      verdict: isPaused ? 'paused' : 'stuck',
      title: isPaused ? `${queue} is paused` : `${queue} is not keeping up`,
      detail: `${n} waiting; the oldest has waited ${age(waitedMs)}`,
      link: link(queue, 'waiting'),
    });
  }
  return items.sort((a, b) => RANK[a.severity] - RANK[b.severity]);
};

/**
 * Open error groups seen within the window that are `new` (first seen in it) or `regressed` (came
 * back after being resolved): one read of the (state, last_seen) index, at most 20 rows.
 */
const errors: Source = async (bulwark, o, now) => {
  const since = now - o.recentMs;
  const rows = await bulwark.store.db
    .selectFrom('bulwark_error_groups')
    .select(['fingerprint', 'type', 'message', 'count', 'first_seen', 'last_release', 'regressions'])
    .where('state', '=', 'open')
    .where('last_seen', '>=', since)
    .where((eb) => eb.or([eb('first_seen', '>=', since), eb('regressions', '>', 0)]))
    .orderBy('last_seen', 'desc')
    .limit(MAX_PER_SOURCE)
    .execute();
  return rows.map((row) => {
    const regressed = Number(row.regressions) > 0;
    const count = Number(row.count);
    return {
      severity: 'warning' as const,
      verdict: regressed ? 'regressed' : 'new',
      title: `${row.type}: ${row.message}`.slice(0, 200),
      detail: regressed
        ? `back after being resolved (${Number(row.regressions)}×), ${count} event${count === 1 ? '' : 's'}, release ${row.last_release}`
        : `first seen ${age(now - Number(row.first_seen))} ago, ${count} event${count === 1 ? '' : 's'}, release ${row.last_release}`,
      link: `/admin/errors/${encodeURIComponent(row.fingerprint)}`,
    };
  });
};

interface SlotStatus {
  slot?: number;
  state?: string;
}
interface CrashStatus {
  at?: string;
  slot?: number;
  reason?: string;
}

/**
 * Under `bulwark supervise`: `parked` slots (critical: the app is not running there) and slots that
 * `restarting` within the window (crash records newer than it). Nothing when not supervised.
 */
const processes: Source = async (_bulwark, o, now) => {
  const stateDir = process.env['BULWARK_SUPERVISOR_STATE_DIR'];
  if (stateDir === undefined || stateDir === '') return [];
  const { body } = await requestSupervisor(stateDir, 'GET', '/status', o.supervisorTimeoutMs);
  const slots = (body['instances'] as SlotStatus[] | undefined) ?? [];
  const crashes = ((body['crashes'] as CrashStatus[] | undefined) ?? []).filter(
    (crash) => now - Date.parse(crash.at ?? '') <= o.recentMs,
  );
  const items: AttentionItem[] = [];
  for (const slot of slots)
    if (slot.state === 'parked')
      items.push({
        severity: 'critical',
        verdict: 'parked',
        title: `Slot ${slot.slot ?? '?'} is parked`,
        detail: 'it crashed too often and is no longer restarted automatically',
        link: '/admin/processes',
      });
  const bySlot = new Map<number, CrashStatus[]>();
  for (const crash of crashes) bySlot.set(crash.slot ?? 0, [...(bySlot.get(crash.slot ?? 0) ?? []), crash]);
  for (const [slot, list] of bySlot)
    items.push({
      severity: 'warning',
      verdict: 'restarting',
      title: `Slot ${slot} restarted ${list.length} time${list.length === 1 ? '' : 's'} in the last ${age(o.recentMs)}`,
      detail: `last: ${list.at(-1)?.reason ?? 'unknown'}`,
      link: '/admin/processes',
    });
  return items;
};
