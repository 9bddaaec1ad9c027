import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { SupervisorMetrics } from './metrics.js';
import type { CrashRecord, RecoveryRecord, SupervisorEvent } from './record-types.js';
import { redactDeep } from './redact.js';
import type { Slot } from './slot.js';

export type { CrashRecord, RecoveryRecord, SupervisorEvent } from './record-types.js';

const CRASHES_KEPT = 50;
const EVENTS_KEPT = 500;
const RECOVERIES_KEPT = 200;

/** Options of {@link SupervisorRecords}. */
export interface RecordsOptions {
  /** `state.json` is written here. */
  stateDir: string;
  logger: Logger;
  /** Events are counted in `metrics.events`. */
  metrics: SupervisorMetrics;
  /** Secret values of the app's environment, scrubbed from `state.json` (crash records hold app output). */
  secrets: readonly string[];
  /** The status written to `state.json`, next to the full crash history. */
  snapshot: () => Record<string, unknown>;
}

/**
 * The supervisor's bounded memory of what happened: the last 500 events, 50 crash records and 200
 * recovery records (oldest dropped first), and their persistence in `<state-dir>/state.json`,
 * written atomically (mode 0600) so a crash of the supervisor leaves the previous file or the new
 * one, with every secret of the app scrubbed. Write failures are logged, never thrown.
 */
export class SupervisorRecords {
  readonly #opts: RecordsOptions;
  readonly #crashes: CrashRecord[] = [];
  readonly #events: SupervisorEvent[] = [];
  readonly #recoveries: RecoveryRecord[] = [];
  #persistTimer: NodeJS.Timeout | undefined;
  #persisting: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(opts: RecordsOptions) {
    this.#opts = opts;
  }

  /** The crash records, oldest first (those of earlier runs after {@link load}). */
  get crashes(): readonly CrashRecord[] {
    return this.#crashes;
  }

  /** The recovery records, oldest first. */
  get recoveries(): readonly RecoveryRecord[] {
    return this.#recoveries;
  }

  /** The kept events after `since` (an ISO time; all when omitted), oldest first. */
  events(since?: string): SupervisorEvent[] {
    return since === undefined ? [...this.#events] : this.#events.filter((e) => e.at > since);
  }

  /** Records an event of `slot` (and its current instance), counts it and logs it at debug level. */
  event(type: string, slot?: Slot, detail?: Record<string, unknown>): void {
    const event: SupervisorEvent = {
      at: new Date().toISOString(),
      type,
      ...(slot === undefined ? {} : { slot: slot.index, instanceId: slot.instance?.id }),
      ...(detail === undefined ? {} : { detail }),
    };
    this.#events.push(event);
    if (this.#events.length > EVENTS_KEPT) this.#events.splice(0, this.#events.length - EVENTS_KEPT);
    this.#opts.metrics.events.inc({ type });
    this.#opts.logger.debug({ event: type, slot: slot?.index, ...detail }, `supervisor event ${type}`);
  }

  /** Keeps a crash record (not persisted by itself: call {@link persist}). */
  crash(record: CrashRecord): void {
    this.#crashes.push(record);
    if (this.#crashes.length > CRASHES_KEPT) this.#crashes.splice(0, this.#crashes.length - CRASHES_KEPT);
  }

  /** Keeps a recovery record and persists soon. */
  recovery(record: RecoveryRecord): void {
    this.#recoveries.push(record);
    if (this.#recoveries.length > RECOVERIES_KEPT)
      this.#recoveries.splice(0, this.#recoveries.length - RECOVERIES_KEPT);
    this.persist();
  }

  /** The newest recovery record that `match` accepts (to be completed in place), if any. */
  latestRecovery(match: (record: RecoveryRecord) => boolean): RecoveryRecord | undefined {
    return [...this.#recoveries].reverse().find(match);
  }

  get #stateFile(): string {
    return path.join(this.#opts.stateDir, 'state.json');
  }

  /** Keeps the crash history of earlier runs; a missing or unreadable file starts a fresh one. */
  async load(): Promise<void> {
    try {
      const previous = JSON.parse(await readFile(this.#stateFile, 'utf8')) as { crashes?: CrashRecord[] };
      if (Array.isArray(previous.crashes)) this.#crashes.push(...previous.crashes.slice(-CRASHES_KEPT));
    } catch {
      // No earlier state, or unreadable: start a fresh history.
    }
  }

  /** Writes state.json soon (calls within 20 ms are coalesced), atomically; a no-op once closed. */
  persist(): void {
    if (this.#persistTimer !== undefined || this.#closed) return;
    this.#persistTimer = setTimeout(() => {
      this.#persistTimer = undefined;
      this.#persisting = this.#persisting.then(() => this.#write());
    }, 20);
  }

  /** Ends persisting: waits for a write under way, then writes the final state. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#persistTimer);
    await this.#persisting;
    await this.#write();
  }

  async #write(): Promise<void> {
    try {
      const state = redactDeep({ ...this.#opts.snapshot(), crashes: this.#crashes }, this.#opts.secrets);
      await writeFileAtomic(this.#stateFile, `${JSON.stringify(state, null, 2)}\n`);
    } catch (error) {
      this.#opts.logger.warn({ err: error }, 'could not write the supervisor state file');
    }
  }
}
