import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { InvalidationBus } from '../cache/bus.js';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { PRIVATE_DIR_MODE } from '../store/permissions.js';
import type { AuditRecord, Store } from '../store/types.js';
import { evaluate } from './evaluate.js';
import type { EvaluationContext, EvaluationDetails, FlagDefinition, FlagType, FlagValue } from './types.js';
import { validateFlag } from './validate.js';

/** Where the flags being evaluated came from. */
export type FlagSource = 'store' | 'snapshot' | 'bootstrap' | 'defaults';

/** The provenance reported by readiness and the admin API. */
export interface FlagProvenance {
  source: FlagSource;
  /** When that source was read (ms since the epoch). */
  loadedAt: number;
  /** The store's flag revision the definitions correspond to (0 when not from the store). */
  revision: number;
  flags: number;
}

/** A change to one flag, as heard by `onChange` listeners. */
export interface FlagChange {
  key: string;
  before: FlagDefinition | undefined;
  after: FlagDefinition | undefined;
}

/** Who changes a flag and why: recorded in the audit log. */
export interface FlagActor {
  actor: string;
  reason?: string;
}

/** Options of {@link FlagService}. Times in milliseconds. */
export interface FlagServiceOptions {
  store: Store;
  /** Last-known-good copy of the definitions, rewritten atomically after every load from the store. */
  snapshotFile?: string;
  /** JSON file of definitions (`{ "flags": [...] }` or an array) seeding an empty store. */
  bootstrapFile?: string;
  /** Definitions every instance has even with nothing stored (Bulwark's own tool flags). */
  defaults?: FlagDefinition[];
  /** Announces changes to other instances at once (Redis pub/sub); closed by `close()`. */
  bus?: InvalidationBus<{ revision: number }>;
  /** How often the store's revision is checked, the fallback when the bus is down (default 1 000). */
  pollMs?: number;
  logger?: Logger;
  now?: () => number;
}

const NAMESPACE = 'bulwark.flags';
const META = 'bulwark.flags.meta';
const REVISION = 'revision';

/**
 * Feature flags: definitions in the store (the source of truth once written), an in-memory copy for
 * evaluation (no I/O on the evaluation path), a crash-safe snapshot on disk for booting with the
 * store down, and a bootstrap file for the first start. Changes reach other instances over Redis
 * pub/sub at once, and through polling of the store's flag revision when pub/sub is down.
 * Every change is audited (who, when, why, before/after).
 */
export class FlagService {
  readonly #o: FlagServiceOptions;
  readonly #pollMs: number;
  readonly #now: () => number;
  readonly #listeners: ((change: FlagChange) => void)[] = [];
  #flags = new Map<string, FlagDefinition>();
  #provenance: FlagProvenance;
  #revision = 0;
  #timer: NodeJS.Timeout | undefined;
  #reloading: Promise<void> | undefined;

  constructor(opts: FlagServiceOptions) {
    this.#o = opts;
    this.#pollMs = opts.pollMs ?? 1000;
    this.#now = opts.now ?? Date.now;
    this.#provenance = { source: 'defaults', loadedAt: this.#now(), revision: 0, flags: 0 };
    this.#replace(new Map(), 'defaults', 0);
    opts.bus?.onInvalidate(() => void this.reload());
    opts.bus?.onResubscribed(() => this.reload());
  }

  /**
   * Loads the definitions: from the store (seeding it from the bootstrap file when it holds no
   * flags yet); if the store cannot be read, from the snapshot, else the bootstrap file, else the
   * defaults. Never rejects for a missing or unreadable source: the provenance says what was used.
   */
  async start(): Promise<void> {
    try {
      await this.#seed();
      await this.reload();
    } catch (error) {
      this.#o.logger?.warn({ err: error }, 'flags: store unavailable, using the last known good snapshot');
      const fallback = (await this.#readFile(this.#o.snapshotFile, 'snapshot')) ?? undefined;
      if (fallback !== undefined) this.#replace(fallback.flags, 'snapshot', fallback.revision);
      else {
        const boot = await this.#readFile(this.#o.bootstrapFile, 'bootstrap');
        if (boot !== undefined) this.#replace(boot.flags, 'bootstrap', 0);
      }
    }
    this.#timer = setInterval(() => void this.#poll(), this.#pollMs);
    this.#timer.unref();
  }

  /** Evaluates a flag from memory (no I/O). Unknown flags and type mismatches return `defaultValue`. */
  evaluate<T extends FlagValue>(
    key: string,
    context: EvaluationContext,
    defaultValue: T,
    expectedType?: FlagType,
  ): EvaluationDetails<T> {
    return evaluate(this.#flags.get(key), key, context, defaultValue, expectedType) as EvaluationDetails<T>;
  }

  /** The boolean value of a flag (`defaultValue` when it is unknown or not boolean). */
  isEnabled(key: string, context: EvaluationContext = {}, defaultValue = false): boolean {
    return this.evaluate(key, context, defaultValue, 'boolean').value;
  }

  get(key: string): FlagDefinition | undefined {
    return this.#flags.get(key);
  }

  list(): FlagDefinition[] {
    return [...this.#flags.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  get provenance(): FlagProvenance {
    return this.#provenance;
  }

  /** Calls `listener` for every flag whose definition changed here (local writes and reloads). */
  onChange(listener: (change: FlagChange) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Creates or replaces a flag. `ifVersion` (from `versionOf`) makes it a compare-and-set:
   * `BWK_ERR_STORE_CONFLICT` if someone changed it since. Validates first (`BWK_ERR_FLAG_INVALID`
   * naming the field); nothing is written on a bad definition.
   */
  async set(input: unknown, who: FlagActor, opts: { ifVersion?: number } = {}): Promise<FlagDefinition> {
    const flag = validateFlag(input);
    const before = await this.#o.store.kv.get<FlagDefinition>(NAMESPACE, flag.key);
    await this.#o.store.kv.put(
      NAMESPACE,
      flag.key,
      flag,
      opts.ifVersion === undefined ? {} : { ifVersion: opts.ifVersion },
    );
    await this.#changed(flag.key, before?.value, flag, who, 'flag.set');
    return flag;
  }

  /** The stored version of a flag (the compare-and-set token), 0 when absent. */
  async versionOf(key: string): Promise<number> {
    return (await this.#o.store.kv.get(NAMESPACE, key))?.version ?? 0;
  }

  /** The stored version and time of the last write of each of `keys` (in one query), by key; absent: never stored. */
  async storedStates(keys: readonly string[]): Promise<Map<string, { version: number; updatedAt: number }>> {
    const entries = await this.#o.store.kv.getMany(NAMESPACE, keys);
    return new Map(
      [...entries].map(([key, entry]) => [key, { version: entry.version, updatedAt: entry.updatedAt }]),
    );
  }

  /** Kill switch: `enabled: false` serves the off variant to everyone, at once on every instance. */
  kill(key: string, who: FlagActor): Promise<FlagDefinition> {
    return this.#update(key, who, 'flag.kill', (flag) => ({ ...flag, enabled: false }));
  }

  /** Releases the kill switch. */
  revive(key: string, who: FlagActor): Promise<FlagDefinition> {
    return this.#update(key, who, 'flag.revive', (flag) => ({ ...flag, enabled: true }));
  }

  /**
   * Sets the flag's top-level rollout percentage (0–100); `variant`/`otherwise` default to the
   * current rollout's, or for a boolean flag to the variants holding `true` and `false`.
   */
  rollout(
    key: string,
    percentage: number,
    who: FlagActor,
    variants: { variant?: string; otherwise?: string } = {},
  ): Promise<FlagDefinition> {
    return this.#update(key, who, 'flag.rollout', (flag) => {
      const find = (value: boolean) => Object.entries(flag.variants).find(([, v]) => v === value)?.[0];
      const variant =
        variants.variant ?? flag.rollout?.variant ?? (flag.type === 'boolean' ? find(true) : undefined);
      const otherwise =
        variants.otherwise ??
        flag.rollout?.otherwise ??
        (flag.type === 'boolean' ? find(false) : flag.defaultVariant);
      if (variant === undefined || otherwise === undefined)
        throw bulwarkError('BWK_ERR_FLAG_INVALID', {
          key,
          detail: 'rollout needs variant and otherwise for a non-boolean flag',
        });
      return { ...flag, rollout: { variant, otherwise, percentage } };
    });
  }

  /** Deletes a flag (evaluations then return the caller's default). */
  async remove(key: string, who: FlagActor): Promise<boolean> {
    const before = await this.#o.store.kv.get<FlagDefinition>(NAMESPACE, key);
    if (before === undefined) return false;
    await this.#o.store.kv.delete(NAMESPACE, key);
    await this.#changed(key, before.value, undefined, who, 'flag.delete');
    return true;
  }

  /** The audit records of one flag, newest first. */
  async history(key: string, limit = 50): Promise<AuditRecord[]> {
    return this.#o.store.audit.list({ target: `flag:${key}`, limit });
  }

  /**
   * Reads every definition from the store and applies it; concurrent calls share one read. Rejects
   * when the store cannot be read (what is in memory stays in use).
   */
  reload(): Promise<void> {
    this.#reloading ??= this.#reload().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  /** Stops polling and closes the bus. */
  close(): void {
    clearInterval(this.#timer);
    this.#o.bus?.close();
  }

  async #reload(): Promise<void> {
    const revision = (await this.#o.store.kv.get<{ revision: number }>(META, REVISION))?.value.revision ?? 0;
    const entries = await this.#o.store.kv.list<unknown>(NAMESPACE);
    const flags = new Map<string, FlagDefinition>();
    for (const entry of entries) {
      try {
        flags.set(entry.key, validateFlag(entry.value));
      } catch (error) {
        // One bad row must not take the others down: keep its last good definition, if any.
        this.#o.logger?.error(
          { err: error, flag: entry.key },
          'flags: invalid definition in the store ignored',
        );
        const previous = this.#flags.get(entry.key);
        if (previous !== undefined) flags.set(entry.key, previous);
      }
    }
    this.#replace(flags, 'store', revision);
    await this.#saveSnapshot(flags, revision);
  }

  /** Rewrites the last-known-good snapshot (atomically) with the stored definitions. */
  async #saveSnapshot(flags: Map<string, FlagDefinition>, revision: number): Promise<void> {
    const file = this.#o.snapshotFile;
    if (file === undefined) return;
    const snapshot = JSON.stringify({ revision, savedAt: this.#now(), flags: [...flags.values()] }, null, 2);
    // Private like the rest of the data dir (0700, 0600): definitions can name users and segments.
    await mkdir(path.dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE })
      .then(() => writeFileAtomic(file, snapshot))
      .catch((error: unknown) => this.#o.logger?.warn({ err: error }, 'flags: cannot write the snapshot'));
  }

  /** Swaps in a new set of definitions (defaults underneath) and tells listeners what changed. */
  #replace(stored: Map<string, FlagDefinition>, source: FlagSource, revision: number): void {
    const next = new Map<string, FlagDefinition>();
    for (const flag of this.#o.defaults ?? []) next.set(flag.key, flag);
    for (const [key, flag] of stored) next.set(key, flag);
    const before = this.#flags;
    this.#flags = next;
    this.#revision = revision;
    this.#provenance = { source, loadedAt: this.#now(), revision, flags: next.size };
    for (const key of new Set([...before.keys(), ...next.keys()])) {
      const a = before.get(key);
      const b = next.get(key);
      if (JSON.stringify(a) !== JSON.stringify(b)) this.#emit({ key, before: a, after: b });
    }
  }

  #emit(change: FlagChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        this.#o.logger?.error({ err: error, flag: change.key }, 'flags: change listener failed');
      }
    }
  }

  async #update(
    key: string,
    who: FlagActor,
    action: string,
    change: (flag: FlagDefinition) => FlagDefinition,
  ): Promise<FlagDefinition> {
    // Compare-and-set against concurrent writers: re-read and retry on a conflict.
    for (let attempt = 0; ; attempt += 1) {
      const current = await this.#o.store.kv.get<FlagDefinition>(NAMESPACE, key);
      const base = current?.value ?? this.#o.defaults?.find((f) => f.key === key);
      if (base === undefined) throw bulwarkError('BWK_ERR_FLAG_NOT_FOUND', { key });
      const next = validateFlag(change(base));
      try {
        await this.#o.store.kv.put(NAMESPACE, key, next, { ifVersion: current?.version ?? 0 });
      } catch (error) {
        if (isBulwarkError(error, 'BWK_ERR_STORE_CONFLICT') && attempt < 5) continue;
        throw error;
      }
      await this.#changed(key, base, next, who, action);
      return next;
    }
  }

  /** After a write: bump the revision, audit, apply here, announce to the others. */
  async #changed(
    key: string,
    before: FlagDefinition | undefined,
    after: FlagDefinition | undefined,
    who: FlagActor,
    action: string,
  ): Promise<void> {
    const revision = await this.#bumpRevision();
    await this.#o.store.audit.append({
      actor: who.actor,
      action,
      target: `flag:${key}`,
      detail: { before: before ?? null, after: after ?? null, reason: who.reason ?? null, revision },
    });
    const flags = new Map(this.#flags);
    for (const flag of this.#o.defaults ?? []) if (flags.get(flag.key) === flag) flags.delete(flag.key);
    if (after === undefined) flags.delete(key);
    else flags.set(key, after);
    this.#replace(flags, 'store', revision);
    await this.#saveSnapshot(flags, revision);
    // Not awaited: a paused Redis must not hold up the write; polling covers a missed message.
    void this.#o.bus?.publish({ revision }).catch(() => undefined);
  }

  async #bumpRevision(): Promise<number> {
    for (;;) {
      const current = await this.#o.store.kv.get<{ revision: number }>(META, REVISION);
      const revision = (current?.value.revision ?? 0) + 1;
      try {
        await this.#o.store.kv.put(META, REVISION, { revision }, { ifVersion: current?.version ?? 0 });
        return revision;
      } catch (error) {
        if (!isBulwarkError(error, 'BWK_ERR_STORE_CONFLICT')) throw error;
      }
    }
  }

  /** Reloads when the store's revision moved (a change whose announcement did not reach us). */
  async #poll(): Promise<void> {
    try {
      const revision =
        (await this.#o.store.kv.get<{ revision: number }>(META, REVISION))?.value.revision ?? 0;
      if (revision !== this.#revision || this.#provenance.source !== 'store') await this.reload();
    } catch {
      // The store is down: keep serving what is in memory; the store's health check reports it.
    }
  }

  /** Writes the bootstrap file's flags into a store that has none yet (first start). */
  async #seed(): Promise<void> {
    if (this.#o.bootstrapFile === undefined) return;
    if ((await this.#o.store.kv.list(NAMESPACE, { limit: 1 })).length > 0) return;
    const boot = await this.#readFile(this.#o.bootstrapFile, 'bootstrap');
    if (boot === undefined) return;
    for (const flag of boot.flags.values()) {
      await this.#o.store.kv.put(NAMESPACE, flag.key, flag, { ifVersion: 0 }).catch((error: unknown) => {
        if (!isBulwarkError(error, 'BWK_ERR_STORE_CONFLICT')) throw error; // another instance seeded it
      });
    }
    await this.#bumpRevision();
    this.#o.logger?.info(
      { flags: boot.flags.size, file: this.#o.bootstrapFile },
      'flags: store seeded from the bootstrap file',
    );
  }

  /** A snapshot or bootstrap file's flags, or undefined when absent or invalid (logged). */
  async #readFile(
    file: string | undefined,
    kind: 'snapshot' | 'bootstrap',
  ): Promise<{ flags: Map<string, FlagDefinition>; revision: number } | undefined> {
    if (file === undefined) return undefined;
    try {
      await stat(file);
    } catch {
      return undefined;
    }
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
      const list = Array.isArray(parsed) ? parsed : (parsed as { flags?: unknown }).flags;
      if (!Array.isArray(list)) throw new Error('expected an array of flags or { "flags": [...] }');
      const flags = new Map<string, FlagDefinition>();
      for (const [i, item] of list.entries()) {
        try {
          const flag = validateFlag(item);
          flags.set(flag.key, flag);
        } catch (error) {
          throw new Error(`flags[${i}]: ${(error as Error).message}`, { cause: error });
        }
      }
      const revision = Array.isArray(parsed) ? 0 : Number((parsed as { revision?: unknown }).revision ?? 0);
      return { flags, revision };
    } catch (error) {
      this.#o.logger?.error({ err: error, file }, `flags: the ${kind} file is invalid and was not used`);
      return undefined;
    }
  }
}
