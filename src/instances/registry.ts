import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DependencyMode } from '../failover/index.js';
import type { StoreTables } from '../store/types.js';

/** A dependency's side as an instance reports it. */
export interface InstanceDependency {
  mode: DependencyMode;
  forced: boolean;
}

/** Where an instance runs under `bulwark supervise`: its slot and how many processes the slot has started. */
export interface InstanceSupervisor {
  slot: number;
  /** 1 for the slot's first process; each restart or reload adds one. */
  generation: number;
}

/** One instance as the registry lists it. Times in ms since the epoch. */
export interface InstanceView {
  instanceId: string;
  serviceId: string;
  host: string;
  pid: number;
  version: string;
  startedAt: number;
  lastSeen: number;
  /** Set when the instance closed cleanly; undefined while it runs (or if it died without closing). */
  stoppedAt: number | undefined;
  /** Seen within the last {@link ALIVE_MS} and not stopped. */
  alive: boolean;
  dependencies: Record<string, InstanceDependency>;
  supervisor: InstanceSupervisor | undefined;
}

/** Heartbeat interval (ms): each instance upserts its row this often. */
export const HEARTBEAT_MS = 10_000;
/** An instance seen within this long (ms) is alive. */
export const ALIVE_MS = 30_000;
/** Rows not seen for this long (ms) are deleted. */
export const RETENTION_MS = 600_000;
/** Rows `list()` answers at most. */
export const MAX_INSTANCES = 200;
/** How long `close()` waits for its "stopped" write before giving up (ms). */
const CLOSE_WRITE_MS = 2_000;

/** The registry's table, outside the shared `StoreTables` (this part owns it). */
export type InstanceTables = {
  bulwark_instances: {
    instance_id: string;
    service_id: string;
    host: string;
    pid: number;
    version: string;
    started_at: number;
    last_seen: number;
    stopped_at: number | null;
    /** JSON text of `Record<string, InstanceDependency>`. */
    dependencies: string;
    /** JSON text of {@link InstanceSupervisor}, or null. */
    supervisor: string | null;
  };
};

/** Options of {@link InstanceRegistry}. Times in ms. */
export interface InstanceRegistryOptions {
  db: Kysely<StoreTables>;
  logger: Logger;
  identity: {
    instanceId: string;
    serviceId: string;
    host: string;
    pid: number;
    version: string;
  };
  /** This instance's dependencies now (read at every beat). */
  dependencies: () => Record<string, InstanceDependency>;
  supervisor?: InstanceSupervisor | undefined;
  /** Default {@link HEARTBEAT_MS}. */
  heartbeatMs?: number;
  /** Default {@link RETENTION_MS}. */
  retentionMs?: number;
  /** Default {@link ALIVE_MS}. */
  aliveMs?: number;
  now?: () => number;
}

/**
 * The instances registry: every running Bulwark instance keeps a row in the store (`bulwark_instances`)
 * so that the console shows a cluster, or several hosts, together. `start()` writes the row and
 * upserts it every `heartbeatMs` (and at once when `changed()` is called, e.g. on a dependency
 * switch); `close()` marks it stopped. Each beat also deletes the rows not seen for `retentionMs`, so
 * the table stays bounded.
 *
 * Errors: a beat that fails (the store down) is skipped and logged once per outage; a beat still in
 * flight when the next is due makes that one skip too, so a slow store never piles up writes. Neither
 * `start()` nor `close()` rejects, and `close()` waits at most 2 s for its write.
 */
export class InstanceRegistry {
  readonly #db: Kysely<StoreTables & InstanceTables>;
  readonly #o: InstanceRegistryOptions;
  readonly #now: () => number;
  readonly #startedAt: number;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  /** A `changed()` during a beat: beat again right after it. */
  #again = false;
  #failing = false;
  #closed = false;

  constructor(opts: InstanceRegistryOptions) {
    this.#o = opts;
    this.#db = opts.db.withTables<InstanceTables>();
    this.#now = opts.now ?? Date.now;
    this.#startedAt = this.#now();
  }

  /** Writes this instance's row, then keeps it fresh. Never rejects (see the class). */
  async start(): Promise<void> {
    await this.beat();
    if (this.#closed) return;
    this.#timer = setInterval(() => void this.beat(), this.#o.heartbeatMs ?? HEARTBEAT_MS);
    this.#timer.unref();
  }

  /** Something in the row changed (a dependency switched): writes it now, or right after the beat in flight. */
  changed(): void {
    if (this.#closed) return;
    if (this.#beating !== undefined) this.#again = true;
    else void this.beat();
  }

  /**
   * One heartbeat: upserts the row and deletes rows past the retention. Resolves when done or
   * skipped (a beat in flight; the store failing). Never rejects.
   */
  beat(): Promise<void> {
    if (this.#beating !== undefined || this.#closed) return this.#beating ?? Promise.resolve();
    this.#beating = this.#write(undefined)
      .then(
        () => this.#recovered(),
        (error: unknown) => this.#failed(error),
      )
      .finally(() => {
        this.#beating = undefined;
        if (this.#again && !this.#closed) {
          this.#again = false;
          void this.beat();
        }
      });
    return this.#beating;
  }

  /** Stops the heartbeat and marks the row stopped (waiting at most 2 s for the store). Never rejects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CLOSE_WRITE_MS);
    });
    // After the beat in flight (it never rejects), so that it cannot overwrite the stopped row.
    const write = (this.#beating ?? Promise.resolve())
      .then(() => this.#write(this.#now()))
      .catch((error: unknown) =>
        this.#o.logger.warn({ err: error }, 'instances: could not mark this instance stopped'),
      );
    await Promise.race([write, deadline]);
    clearTimeout(timer);
  }

  /**
   * The instances, newest (latest started) first, at most `limit` (default and ceiling 200): those
   * not stopped, or all with `includeStopped`. Rejects with `BWK_ERR_STORE_UNAVAILABLE` when the store
   * fails.
   */
  async list(opts: { includeStopped?: boolean; limit?: number } = {}): Promise<InstanceView[]> {
    const limit = Math.min(Math.max(1, opts.limit ?? MAX_INSTANCES), MAX_INSTANCES);
    let query = this.#db.selectFrom('bulwark_instances').selectAll();
    if (opts.includeStopped !== true) query = query.where('stopped_at', 'is', null);
    const rows = await query.orderBy('started_at', 'desc').orderBy('instance_id').limit(limit).execute();
    const now = this.#now();
    const aliveMs = this.#o.aliveMs ?? ALIVE_MS;
    return rows.map((row) => ({
      instanceId: row.instance_id,
      serviceId: row.service_id,
      host: row.host,
      pid: Number(row.pid),
      version: row.version,
      startedAt: Number(row.started_at),
      lastSeen: Number(row.last_seen),
      stoppedAt: row.stopped_at === null ? undefined : Number(row.stopped_at),
      alive: row.stopped_at === null && now - Number(row.last_seen) <= aliveMs,
      dependencies: parse<Record<string, InstanceDependency>>(row.dependencies) ?? {},
      supervisor: row.supervisor === null ? undefined : parse<InstanceSupervisor>(row.supervisor),
    }));
  }

  async #write(stoppedAt: number | undefined): Promise<void> {
    const now = this.#now();
    const { identity } = this.#o;
    const changing = {
      last_seen: now,
      stopped_at: stoppedAt ?? null,
      dependencies: JSON.stringify(this.#o.dependencies()),
    };
    await this.#db
      .insertInto('bulwark_instances')
      .values({
        instance_id: identity.instanceId,
        service_id: identity.serviceId,
        host: identity.host,
        pid: identity.pid,
        version: identity.version,
        started_at: this.#startedAt,
        supervisor: this.#o.supervisor === undefined ? null : JSON.stringify(this.#o.supervisor),
        ...changing,
      })
      .onConflict((oc) => oc.column('instance_id').doUpdateSet(changing))
      .execute();
    await this.#db
      .deleteFrom('bulwark_instances')
      .where('last_seen', '<', now - (this.#o.retentionMs ?? RETENTION_MS))
      .execute();
  }

  #failed(error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#o.logger.warn(
      { err: error },
      'instances: heartbeat failed; skipping beats until the store answers',
    );
  }

  #recovered(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#o.logger.info('instances: heartbeat works again');
  }
}

function parse<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** `<slot>.<generation>` (the supervisor's instance id) as its parts; undefined for anything else. */
export function supervisorSlot(id: string | undefined): InstanceSupervisor | undefined {
  const match = /^(\d+)\.(\d+)$/.exec(id ?? '');
  if (match === null) return undefined;
  return { slot: Number(match[1]), generation: Number(match[2]) };
}
