import type { Logger } from 'pino';
import { isBulwarkError } from '../errors/index.js';
import type { AlertEngineOptions } from './engine-options.js';
import { digest, groupable, groupDue, groupKey } from './grouping.js';
import {
  DEFAULT_INHIBIT,
  inhibited,
  matches,
  windowOpen,
  type AlertSilences,
  type FiringAlert,
} from './manager.js';
import {
  deliver as deliverNotification,
  isRetryableDelivery,
  type Notification,
  type Receiver,
} from './notifiers.js';
import type { AlertOutbox, OutboxEntry } from './outbox.js';

/**
 * The alert engine's delivery side: takes due notifications from the outbox, holds back silenced
 * and inhibited ones (recorded as such), batches groupable ones into digests, delivers within each
 * receiver's budget, and records each outcome (sent, retry with backoff, dead).
 */
export class AlertSender {
  readonly #o: AlertEngineOptions;
  readonly #outbox: AlertOutbox;
  readonly #silences: AlertSilences;
  readonly #receivers: Map<string, Receiver>;
  readonly #now: () => number;
  readonly #budget = new Map<string, number[]>();
  /** When each group's last digest went out (a restart starts with a fresh group wait). */
  readonly #groupSent = new Map<string, number>();

  constructor(
    opts: AlertEngineOptions,
    outbox: AlertOutbox,
    silences: AlertSilences,
    receivers: Map<string, Receiver>,
  ) {
    this.#o = opts;
    this.#outbox = outbox;
    this.#silences = silences;
    this.#receivers = receivers;
    this.#now = opts.now ?? Date.now;
  }

  get #logger(): Logger {
    return this.#o.logger;
  }

  /**
   * Why a due notification must not go out now, if it must not: its alert is silenced (a silence
   * or a maintenance window) or inhibited. A resolve goes out exactly when its firing did.
   */
  async #suppressed(
    n: Notification,
    firing: FiringAlert[],
  ): Promise<['silenced' | 'inhibited', string] | undefined> {
    if (n.status === 'resolved') {
      const [rule, transition, ...rest] = n.key.split(':');
      const firingState = await this.#outbox.stateOf([rule, Number(transition) - 1, ...rest].join(':'));
      if (firingState === 'silenced' || firingState === 'inhibited')
        return [firingState, `its firing notification was ${firingState}`];
      return undefined;
    }
    const now = this.#now();
    const silence = await this.#silences.covering(n.labels, now);
    if (silence !== undefined)
      return ['silenced', `silence ${silence.id} by ${silence.createdBy}: ${silence.comment}`];
    const window = (this.#o.windows ?? []).find((w) => windowOpen(w, now) && matches(w.matchers, n.labels));
    if (window !== undefined) return ['silenced', `maintenance window ${window.name}`];
    if (inhibited({ severity: n.severity, labels: n.labels }, firing, this.#o.inhibit ?? DEFAULT_INHIBIT))
      return ['inhibited', 'a firing alert of higher severity with the same labels'];
    return undefined;
  }

  /** The alerts firing now, with their labels. */
  async #firing(): Promise<FiringAlert[]> {
    const rows = await this.#o.store.db
      .selectFrom('bulwark_alerts')
      .select('rule')
      .where('state', '=', 'firing')
      .execute();
    const ids = new Set(rows.map((r) => r.rule));
    return this.#o.rules
      .filter((rule) => ids.has(rule.id))
      .map((rule) => ({
        severity: rule.severity,
        labels: { alertname: rule.id, severity: rule.severity, ...rule.labels },
      }));
  }

  /** Delivers the due notifications once; resolves with how many were accepted. */
  async send(): Promise<number> {
    const now = this.#now();
    let sent = 0;
    const due = await this.#outbox.due(now, 100);
    const firing = due.length === 0 ? [] : await this.#firing();
    const batches = new Map<
      string,
      { receiver: Receiver; entries: OutboxEntry[]; notifications: Notification[] }
    >();
    for (const entry of due) {
      const receiver = this.#receivers.get(entry.receiver);
      if (receiver === undefined) {
        await this.#outbox.markFailed(
          entry.id,
          entry.attempts,
          now,
          `no receiver named ${entry.receiver}`,
          true,
        );
        continue;
      }
      const notification = JSON.parse(entry.payload) as Notification;
      const suppressed = await this.#suppressed(notification, firing);
      if (suppressed !== undefined) {
        await this.#outbox.suppress(entry.id, suppressed[0], suppressed[1]);
        continue;
      }
      if (this.#o.group !== undefined && groupable(receiver)) {
        const key = groupKey(entry.receiver, notification, this.#o.group.by);
        const batch = batches.get(key) ?? { receiver, entries: [], notifications: [] };
        batch.entries.push(entry);
        batch.notifications.push(notification);
        batches.set(key, batch);
        continue;
      }
      if (!this.#spend(entry.receiver, now)) continue; // over budget: stays due, goes later
      if (await this.#deliver(receiver, notification, [entry])) sent += 1;
    }
    const group = this.#o.group;
    for (const [key, batch] of group === undefined ? [] : batches) {
      if (group === undefined || !groupDue(batch.entries, this.#groupSent.get(key), group, now)) continue;
      if (!this.#spend(batch.receiver.name, now)) continue;
      if (await this.#deliver(batch.receiver, digest(batch.notifications, group.by), batch.entries)) {
        this.#groupSent.set(key, now);
        sent += batch.entries.length;
      }
    }
    return sent;
  }

  /** Delivers one notification (or a group's digest) standing for `entries`; true when accepted. */
  async #deliver(receiver: Receiver, notification: Notification, entries: OutboxEntry[]): Promise<boolean> {
    try {
      await (this.#o.deliver ?? deliverNotification)(receiver, notification);
      for (const entry of entries) await this.#outbox.markSent(entry.id, this.#now());
      return true;
    } catch (error) {
      for (const entry of entries) await this.#failed(entry, error);
      return false;
    }
  }

  async #failed(entry: OutboxEntry, error: unknown): Promise<void> {
    const attempts = entry.attempts + 1;
    const dead = !isRetryableDelivery(error) || attempts >= (this.#o.maxAttempts ?? 50);
    const backoff = Math.min(
      this.#o.retryMaxMs ?? 60_000,
      (this.#o.retryBaseMs ?? 1_000) * 2 ** (attempts - 1),
    );
    // A receiver's Retry-After (429, 503) is honoured when it asks for longer.
    const asked = (error as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
    const delay = typeof asked === 'number' ? Math.max(backoff, asked) : backoff;
    const message = isBulwarkError(error) || error instanceof Error ? error.message : String(error);
    await this.#outbox.markFailed(entry.id, attempts, this.#now() + delay, message, dead);
    this.#logger.warn(
      { receiver: entry.receiver, key: entry.key, attempts, dead, err: message },
      dead ? 'alerts: notification given up' : `alerts: notification failed, retrying in ${delay} ms`,
    );
  }

  /** Counts one delivery against the receiver's budget for the last minute; false when spent. */
  #spend(receiver: string, now: number): boolean {
    const recent = (this.#budget.get(receiver) ?? []).filter((at) => now - at < 60_000);
    if (recent.length >= (this.#o.receiverBudgetPerMinute ?? 30)) {
      this.#budget.set(receiver, recent);
      return false;
    }
    recent.push(now);
    this.#budget.set(receiver, recent);
    return true;
  }
}
