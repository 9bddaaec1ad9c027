import { bulwarkError, isBulwarkError } from '../errors/index.js';
import type { AlertEngineOptions } from './engine-options.js';
import { StoreLease } from './lease.js';
import { AlertSilences, type Ack } from './manager.js';
import {
  closeNotifiers,
  deliver as deliverNotification,
  type Notification,
  type Receiver,
} from './notifiers.js';
import { AlertOutbox } from './outbox.js';
import {
  evaluateRule,
  storedStatus,
  type AlertRule,
  type AnomalyDetail,
  type Judged,
  type RuleStatus,
} from './rules.js';
import { AlertSender } from './sender.js';

export type { AlertEngineOptions, SeriesReader } from './engine-options.js';

/** How long sent and dead notifications are kept by default (ms), and how often they are pruned. */
const OUTBOX_RETENTION_MS = 14 * 86_400_000;
const OUTBOX_PRUNE_EVERY_MS = 3_600_000;

/** While a loop keeps failing the same way, it is logged again this often (ms). */
const FAILURE_REMINDER_MS = 300_000;

/** A rule with its state, as the admin API shows it. */
export interface RuleView {
  rule: AlertRule;
  status: RuleStatus;
  /** An anomaly rule's baseline and band at its last evaluation here, or why it has none. */
  anomaly?: AnomalyDetail;
}

/**
 * Evaluates alert rules and delivers their notifications, exactly once per transition per
 * receiver. One instance at a time does both (a lease in the store). A transition (firing,
 * resolved) is written with a compare-and-set on the rule's state row and its notifications are
 * added to the durable outbox in the same transaction, under a unique idempotency key; the sender
 * takes them from the outbox, retries failures with exponential backoff within a per-receiver
 * budget, and marks each sent only once the receiver accepted it. A restart, a crash or a storm of
 * 500s therefore neither loses nor repeats a transition (receivers also get the key in an
 * `idempotency-key` header for the crash between their 2xx and our mark).
 */
export class AlertEngine {
  readonly #o: AlertEngineOptions;
  readonly #now: () => number;
  readonly #outbox: AlertOutbox;
  /** Silences and acknowledgements (shared by every instance through the store). */
  readonly silences: AlertSilences;
  readonly #lease: StoreLease;
  readonly #receivers: Map<string, Receiver>;
  readonly #sender: AlertSender;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #anomalies = new Map<string, AnomalyDetail>();
  #evaluating: Promise<void> | undefined;
  #sending: Promise<number> | undefined;
  /** Loops failing now: why, when that was last logged, and how many passes failed so far. */
  readonly #failing = new Map<string, { reason: string; loggedAt: number; failures: number }>();
  #outboxPrunedAt = Number.NEGATIVE_INFINITY;

  constructor(opts: AlertEngineOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#outbox = new AlertOutbox(opts.store.db);
    this.silences = new AlertSilences(opts.store.kv);
    this.#receivers = new Map(opts.receivers.map((r) => [r.name, r]));
    this.#sender = new AlertSender(opts, this.#outbox, this.silences, this.#receivers);
    this.#lease = new StoreLease({
      kv: opts.store.kv,
      key: 'alerts',
      owner: opts.instanceId,
      ttlMs: opts.leaseMs ?? 15_000,
      now: this.#now,
    });
  }

  get outbox(): AlertOutbox {
    return this.#outbox;
  }

  /**
   * Starts evaluating every `evaluateEveryMs` and delivering every `sendEveryMs` (unref'd timers). A
   * failing pass (the store down, say) is logged when it starts failing, again every 5 minutes
   * while it keeps failing the same way (with the count), and when it works again; the loops keep
   * running and the next pass retries.
   */
  start(): void {
    const evaluate = setInterval(
      () => void this.#pass('evaluation', () => this.evaluateOnce()),
      this.#o.evaluateEveryMs ?? 10_000,
    );
    const send = setInterval(
      () => void this.#pass('delivery', () => this.sendOnce()),
      this.#o.sendEveryMs ?? 1_000,
    );
    this.#timers.push(evaluate, send);
    for (const timer of this.#timers) timer.unref();
  }

  /** One timer-driven pass; never rejects. */
  async #pass(what: 'evaluation' | 'delivery', run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (error) {
      // Same failure = same code (or message): a store outage is one failure however its driver words it.
      const reason = isBulwarkError(error) ? error.code : String(error);
      const failing = this.#failing.get(what);
      const now = this.#now();
      if (failing?.reason === reason && now - failing.loggedAt < FAILURE_REMINDER_MS) {
        failing.failures += 1;
        return;
      }
      const failures = failing?.reason === reason ? failing.failures + 1 : 1;
      this.#failing.set(what, { reason, loggedAt: now, failures });
      this.#o.logger.warn({ err: error, failures }, `alerts: ${what} failed`);
      return;
    }
    const failed = this.#failing.get(what);
    if (failed === undefined) return;
    this.#failing.delete(what);
    this.#o.logger.info({ failures: failed.failures }, `alerts: ${what} works again`);
  }

  #warn(what: string): (error: unknown) => void {
    return (error) => this.#o.logger.warn({ err: error }, `alerts: ${what} failed`);
  }

  /** The configured rules (a stored state whose rule is not among them is a leftover of a removed rule). */
  get configuredRules(): readonly AlertRule[] {
    return this.#o.rules;
  }

  /** The configured receivers by name and type (never their URLs, keys or addresses: secrets). */
  get receivers(): { name: string; type: Receiver['type'] }[] {
    return [...this.#receivers.values()].map((r) => ({ name: r.name, type: r.type }));
  }

  /** An anomaly rule's baseline and band at its last evaluation on this instance, or why it has none. */
  anomaly(ruleId: string): AnomalyDetail | undefined {
    return this.#anomalies.get(ruleId);
  }

  /** Every rule with its stored state. */
  async rules(): Promise<RuleView[]> {
    const rows = await this.#o.store.db.selectFrom('bulwark_alerts').selectAll().execute();
    const byRule = new Map(rows.map((row) => [row.rule, row]));
    return this.#o.rules.map((rule) => {
      const row = byRule.get(rule.id);
      const anomaly = this.#anomalies.get(rule.id);
      return {
        rule,
        ...(anomaly === undefined ? {} : { anomaly }),
        status: storedStatus(row, this.#now()),
      };
    });
  }

  /** Evaluates every rule once (if this instance holds the lease); resolves with the transitions. */
  evaluateOnce(): Promise<void> {
    this.#evaluating ??= this.#evaluate().finally(() => (this.#evaluating = undefined));
    return this.#evaluating;
  }

  async #evaluate(): Promise<void> {
    if (!(await this.#lease.acquire())) return;
    const now = this.#now();
    const rows = await this.#o.store.db.selectFrom('bulwark_alerts').selectAll().execute();
    const stored = new Map(rows.map((row) => [row.rule, row]));
    for (const rule of this.#o.rules) {
      const row = stored.get(rule.id);
      const previous = storedStatus(row, now);
      let value: number | undefined | Error | Judged;
      try {
        if (rule.kind !== 'anomaly') value = await this.#o.read(rule.series, rule.windowMs ?? 0, now);
        else if (this.#o.judge === undefined) throw new Error('anomaly rules need the metrics history');
        else this.#anomalies.set(rule.id, (value = await this.#o.judge(rule, now)).detail);
      } catch (error) {
        value = error instanceof Error ? error : new Error(String(error));
      }
      const { status, transition } = evaluateRule(rule, previous, value, now);
      const changed =
        row === undefined ||
        status.state !== previous.state ||
        status.since !== previous.since ||
        status.value !== previous.value;
      if (!changed) {
        if (status.state === 'firing') await this.#followUps(rule, status, now);
        continue;
      }
      const committed = await this.#write(rule, row?.version ?? 0, status, transition, now);
      if (committed && transition !== undefined) {
        this.#o.logger.warn(
          { rule: rule.id, severity: rule.severity, value: status.value },
          `alert ${rule.id} ${transition === 'firing' ? 'FIRING' : 'resolved'}: ${rule.summary}`,
        );
        if (transition === 'firing' && rule.action !== undefined)
          await this.#o.act?.(rule).catch(this.#warn(`the action of ${rule.id}`));
      }
    }
    // Ended silences would otherwise pile up in the store, read by every silence check; delivered
    // notifications in the outbox, with every transition of every rule.
    await this.silences.prune(now).catch(this.#warn('pruning ended silences'));
    if (now - this.#outboxPrunedAt >= OUTBOX_PRUNE_EVERY_MS) {
      this.#outboxPrunedAt = now;
      await this.#outbox
        .prune(now - (this.#o.outboxRetentionMs ?? OUTBOX_RETENTION_MS))
        .catch(this.#warn('pruning the outbox'));
    }
  }

  /** The state row (compare-and-set on its version) and the transition's notifications, in one transaction. */
  async #write(
    rule: AlertRule,
    version: number,
    status: RuleStatus,
    transition: 'firing' | 'resolved' | undefined,
    now: number,
  ): Promise<boolean> {
    return this.#o.store.db.transaction().execute(async (trx) => {
      const values = {
        state: status.state,
        since: status.since,
        value: status.value ?? null,
        transitions: status.transitions,
        version: version + 1,
        updated_at: now,
      };
      if (version === 0) {
        const inserted = await trx
          .insertInto('bulwark_alerts')
          .values({ rule: rule.id, ...values })
          .onConflict((oc) => oc.column('rule').doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
      } else {
        const updated = await trx
          .updateTable('bulwark_alerts')
          .set(values)
          .where('rule', '=', rule.id)
          .where('version', '=', version)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) return false;
      }
      if (transition !== undefined) {
        const names = this.#o.routes?.(rule) ?? [...this.#receivers.keys()];
        const startsAt = transition === 'firing' ? now : status.since;
        await AlertOutbox.enqueue(
          trx,
          this.#notifications(rule, status, transition, names, '', startsAt, now),
          now,
        );
      }
      return true;
    });
  }

  /** One notification per receiver, keyed `<rule>:<transition>[:<follow-up>]:<receiver>`. */
  #notifications(
    rule: AlertRule,
    status: RuleStatus,
    transition: 'firing' | 'resolved',
    names: string[],
    followUp: string,
    startsAt: number,
    now: number,
  ): { key: string; receiver: string; payload: string }[] {
    return names
      .filter((name) => this.#receivers.has(name))
      .map((name) => {
        const key = `${rule.id}:${status.transitions}${followUp === '' ? '' : `:${followUp}`}:${name}`;
        const notification: Notification = {
          key,
          rule: rule.id,
          status: transition,
          severity: rule.severity,
          summary: rule.summary,
          labels: { alertname: rule.id, severity: rule.severity, ...rule.labels },
          ...(status.value === undefined ? {} : { value: status.value }),
          startsAt,
          ...(transition === 'resolved' ? { endsAt: now } : {}),
          service: this.#o.serviceId,
          instance: this.#o.instanceId,
        };
        return { key, receiver: name, payload: JSON.stringify(notification) };
      });
  }

  /**
   * A firing alert nobody acknowledged: a repeat every `repeatIntervalMs`, and each escalation step
   * whose time has come. Their keys name the repeat or step, so each is enqueued once.
   */
  async #followUps(rule: AlertRule, status: RuleStatus, now: number): Promise<void> {
    if ((await this.silences.acked(rule.id, status.transitions)) !== undefined) return;
    const entries: { key: string; receiver: string; payload: string }[] = [];
    const repeats = Math.floor((now - status.since) / (this.#o.repeatIntervalMs ?? 4 * 3_600_000));
    if (repeats >= 1) {
      const names = this.#o.routes?.(rule) ?? [...this.#receivers.keys()];
      entries.push(
        ...this.#notifications(rule, status, 'firing', names, `repeat${repeats}`, status.since, now),
      );
    }
    (this.#o.escalation?.(rule) ?? []).forEach((step, i) => {
      if (now - status.since >= step.afterMs)
        entries.push(
          ...this.#notifications(
            rule,
            status,
            'firing',
            step.receivers,
            `escalation${i + 1}`,
            status.since,
            now,
          ),
        );
    });
    if (entries.length === 0) return;
    await this.#o.store.db.transaction().execute((trx) => AlertOutbox.enqueue(trx, entries, now));
  }

  /** Delivers due notifications once (if this instance holds the lease); resolves with how many were sent. */
  sendOnce(): Promise<number> {
    this.#sending ??= this.#lease
      .acquire()
      .then((held) => (held ? this.#sender.send() : 0))
      .finally(() => (this.#sending = undefined));
    return this.#sending;
  }

  /**
   * Acknowledges `ruleId`'s current firing: no repeats and no escalation until it resolves or fires
   * again. `BWK_ERR_ALERTS_NOT_FIRING` when it is not firing.
   */
  async ack(ruleId: string, by: string, comment: string): Promise<Ack> {
    const view = (await this.rules()).find((r) => r.rule.id === ruleId);
    if (view?.status.state !== 'firing')
      throw bulwarkError('BWK_ERR_ALERTS_NOT_FIRING', {
        rule: ruleId,
        state: view?.status.state ?? 'unknown',
      });
    const ack = await this.silences.ack({
      rule: ruleId,
      transition: view.status.transitions,
      by,
      at: this.#now(),
      comment,
    });
    await this.#o.store.audit.append({
      actor: by,
      action: 'alerts.ack',
      target: `alert:${ruleId}`,
      detail: { comment },
    });
    return ack;
  }

  /**
   * An app's own report or notice to the alert receivers (a daily summary, say), through the durable
   * outbox like an alert: delivered once per receiver and `key` (a report retried, or made by two
   * instances, goes out once), retried on failure, silences and budgets applying. `receivers` names
   * some (default every receiver but PagerDuty's); an unknown name is `BWK_ERR_ALERTS_RECEIVER_NOT_FOUND` and
   * nothing is enqueued. Resolves with the receivers it was enqueued for.
   */
  async report(input: {
    /** Stable per report: `spin.daily:2026-12-03`. Letters, digits and `._:-` only, ≤ 200 characters. */
    key: string;
    title: string;
    /** The plain-text body (several lines). */
    text: string;
    severity?: 'info' | 'warning' | 'critical';
    receivers?: string[];
  }): Promise<string[]> {
    if (!/^[\w.:-]{1,200}$/.test(input.key))
      throw new TypeError(
        `a report key is letters, digits and ._:- (at most 200): got ${JSON.stringify(input.key)}`,
      );
    // PagerDuty takes no reports (each would open an incident): left out unless named, refused if named.
    const all = [...this.#receivers.values()].filter((r) => r.type !== 'pagerduty').map((r) => r.name);
    const names = [...new Set(input.receivers ?? all)];
    for (const name of names) {
      const known = this.#receivers.get(name);
      if (known === undefined) throw bulwarkError('BWK_ERR_ALERTS_RECEIVER_NOT_FOUND', { receiver: name });
      if (known.type === 'pagerduty')
        throw new TypeError(`receiver ${name} is PagerDuty, which takes no reports`);
    }
    const now = this.#now();
    const severity = input.severity ?? 'info';
    const rule = `report.${input.key.split(':')[0] ?? input.key}`;
    const entries = names.map((receiver) => {
      const key = `app-report:${input.key}:${receiver}`;
      const notification: Notification = {
        key,
        rule,
        status: 'firing',
        severity,
        summary: input.title,
        labels: { alertname: rule, severity },
        startsAt: now,
        service: this.#o.serviceId,
        instance: this.#o.instanceId,
        details: input.text,
      };
      return { key, receiver, payload: JSON.stringify(notification) };
    });
    await this.#o.store.db.transaction().execute((trx) => AlertOutbox.enqueue(trx, entries, now));
    return names;
  }

  /**
   * Sends a test notification to `receiver` now (not through the outbox); resolves whether it was
   * delivered and why not. `BWK_ERR_ALERTS_RECEIVER_NOT_FOUND` for an unknown receiver.
   */
  async test(name: string): Promise<{ delivered: boolean; error?: string }> {
    const receiver = this.#receivers.get(name);
    if (receiver === undefined) throw bulwarkError('BWK_ERR_ALERTS_RECEIVER_NOT_FOUND', { receiver: name });
    const now = this.#now();
    try {
      await (this.#o.deliver ?? deliverNotification)(receiver, {
        key: `test:${now}:${name}`,
        rule: 'bulwark.test',
        status: 'firing',
        severity: 'info',
        summary: 'Test notification from Bulwark (no action needed)',
        labels: { alertname: 'bulwark.test', severity: 'info' },
        startsAt: now,
        service: this.#o.serviceId,
        instance: this.#o.instanceId,
      });
      return { delivered: true };
    } catch (error) {
      return { delivered: false, error: error instanceof Error ? error.message : String(error) };
    }
  }

  /** Stops the timers, waits for a running pass, and gives the lease up. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    await Promise.allSettled([this.#evaluating, this.#sending]);
    await this.#lease.release().catch(() => undefined);
    closeNotifiers();
  }
}
