import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { bulwarkError } from '../errors/index.js';
import { redactSecrets } from '../logging/redact.js';
import type { AuditLog } from '../store/types.js';
import { culpritOf, fingerprintOf, messageTemplate, parseStack } from './fingerprint.js';
import {
  BROWSER_TEXT_LIMITS,
  DEFAULT_ERROR_LIMITS,
  GROUP_FIELD_LIMITS,
  NewGroupBudget,
  fitSample,
  sampleBytes,
  type ErrorLimits,
} from './limits.js';
import type { SentryForwarder } from './sentry.js';
import {
  HOUR_MS,
  hourOf,
  type ErrorStore,
  type GroupCursor,
  type GroupFilter,
  type PendingGroup,
} from './store.js';
import { describe, trail } from './occurrence.js';
import { userKey } from './users.js';
import type {
  BrowserReport,
  CaptureContext,
  CaptureResult,
  ErrorGroup,
  ErrorSample,
  ErrorSource,
  ErrorState,
} from './types.js';

/** The flags the tracker follows (a subset of `FlagService`). */
export interface TrackerFlags {
  isEnabled(key: string, context?: { targetingKey?: string }, defaultValue?: boolean): boolean;
}

/** Options of {@link ErrorTracker}. */
export interface ErrorTrackerOptions {
  errors: ErrorStore;
  audit: AuditLog;
  logger: Logger;
  flags: TrackerFlags;
  /** The service's release (its version). */
  release: string;
  registry?: Registry;
  sentry?: SentryForwarder;
  /** Samples kept per server group, newest first (default 20; same as `limits.serverSamplesPerGroup`). */
  samplesPerGroup?: number;
  /** What may be stored: groups, samples and their sizes, new browser groups per minute. */
  limits?: Partial<ErrorLimits>;
  /** Groups not seen, and samples older than this are deleted (default 30 days). */
  retentionMs?: number;
  /** Gathered occurrences are written this often (default 1 000 ms). */
  flushMs?: number;
  now?: () => number;
}

/** Samples gathered per group between two writes. */
const SAMPLES_PER_FLUSH = 5;
/** Distinct users gathered per group between two writes (the rest of a flood is not counted). */
const USERS_PER_FLUSH = 1_000;
/** Groups gathered between two writes beyond which new groups are dropped (an error storm). */
const MAX_PENDING_GROUPS = 1_000;
/** Of those, browser groups at most: a browser flood never takes the room of server errors. */
const MAX_PENDING_BROWSER_GROUPS = 400;

/** Why an occurrence was not recorded. */
type DropReason = 'pending_full' | 'browser_rate';

/**
 * `bulwark.errors`: captures errors (request errors, process-level ones, browser reports, and any
 * the app reports), groups them by fingerprint, and keeps per group its counts, first and last
 * seen, releases, state, and a bounded set of samples with their request and user context
 * (secret-named fields redacted). Capturing is synchronous and costs no I/O: occurrences are
 * gathered in memory and written in one transaction per second. Storage is bounded (see
 * {@link ErrorLimits}): browser groups have their own cap, a budget of new groups per minute and
 * smaller samples, so reports from the internet can neither fill the disk nor push out server
 * errors. Flags: `bulwark.errors` (the whole
 * feature), `bulwark.errors.sample` (per occurrence: give it a rollout percentage to sample; counts
 * stay exact), `bulwark.errors.sentry` (forwarding, when `SENTRY_DSN` is set).
 */
export class ErrorTracker {
  readonly #o: ErrorTrackerOptions;
  readonly #now: () => number;
  readonly #pending = new Map<string, PendingGroup>();
  readonly #identities = new Map<string, { fingerprint: string; template: string; culprit: string }>();
  readonly #captured: Counter<'source'> | undefined;
  readonly #droppedTotal: Counter<'reason'> | undefined;
  readonly #limits: ErrorLimits;
  readonly #newBrowserGroups: NewGroupBudget;
  #pendingBrowser = 0;
  readonly #timer: NodeJS.Timeout;
  readonly #pruneTimer: NodeJS.Timeout;
  #writing: Promise<void> = Promise.resolve();
  readonly #dropped: Record<DropReason, number> = { pending_full: 0, browser_rate: 0 };
  #writeFailed = false;

  constructor(opts: ErrorTrackerOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#captured =
      opts.registry === undefined
        ? undefined
        : new Counter({
            name: 'bulwark_errors_captured_total',
            help: 'Errors captured by source (server|browser), sampled or not.',
            labelNames: ['source'],
            registers: [opts.registry],
          });
    this.#droppedTotal =
      opts.registry === undefined
        ? undefined
        : new Counter({
            name: 'bulwark_errors_dropped_total',
            help: 'Occurrences not recorded: too many distinct errors at once (pending_full) or over the budget of new browser groups (browser_rate).',
            labelNames: ['reason'],
            registers: [opts.registry],
          });
    this.#limits = {
      ...DEFAULT_ERROR_LIMITS,
      ...(opts.samplesPerGroup === undefined ? {} : { serverSamplesPerGroup: opts.samplesPerGroup }),
      ...opts.limits,
    };
    this.#newBrowserGroups = new NewGroupBudget(
      this.#limits.newBrowserGroupsPerMinute,
      this.#limits.maxBrowserGroups * 2,
    );
    this.#timer = setInterval(() => void this.flush(), opts.flushMs ?? 1_000);
    this.#timer.unref();
    this.#pruneTimer = setInterval(() => void this.prune().catch(() => undefined), 3_600_000);
    this.#pruneTimer.unref();
  }

  /** Whether the feature is on (flag `bulwark.errors`). */
  get enabled(): boolean {
    return this.#o.flags.isEnabled('bulwark.errors', {}, true);
  }

  /**
   * Records one occurrence of `error`; undefined while the feature is off. Never throws and never
   * waits: the write happens within `flushMs`.
   */
  capture(error: unknown, context: CaptureContext = {}): CaptureResult | undefined {
    if (!this.enabled) return undefined;
    const { type, message, stack } = describe(error);
    const result = this.#record('server', type, message, stack, context, undefined);
    const sentry = this.#o.sentry;
    if (
      result?.sampled === true &&
      sentry !== undefined &&
      this.#o.flags.isEnabled('bulwark.errors.sentry', {}, true)
    )
      sentry.forward(error, context, result.fingerprint);
    return result;
  }

  /**
   * Records a browser report (validated by the route); not forwarded to Sentry (the browser SDK's
   * job). Undefined when the feature is off or the report was dropped: a group not seen before,
   * over the budget of new browser groups per minute (counted in `bulwark_errors_dropped_total`).
   */
  captureBrowser(report: BrowserReport): CaptureResult | undefined {
    if (!this.enabled) return undefined;
    const url = report.url?.split(/[?#]/)[0]?.slice(0, BROWSER_TEXT_LIMITS.url);
    return this.#record(
      'browser',
      report.type ?? 'Error',
      report.message.slice(0, BROWSER_TEXT_LIMITS.message),
      report.stack?.slice(0, BROWSER_TEXT_LIMITS.stack),
      {
        ...(report.user === undefined ? {} : { user: report.user }),
        ...(report.breadcrumbs === undefined ? {} : { breadcrumbs: report.breadcrumbs }),
      },
      { ...(url === undefined ? {} : { url }), release: report.release ?? this.#o.release },
    );
  }

  #record(
    source: ErrorSource,
    type: string,
    message: string,
    stack: string | undefined,
    context: CaptureContext,
    browser: { url?: string; release: string } | undefined,
  ): CaptureResult | undefined {
    const now = this.#now();
    const { fingerprint, template, culprit } = this.#identify(type, message, stack);
    const release = (browser?.release ?? this.#o.release).slice(0, GROUP_FIELD_LIMITS.release);
    this.#captured?.inc({ source });
    let group = this.#pending.get(fingerprint);
    if (group === undefined) {
      if (source === 'browser' && !this.#newBrowserGroups.admit(fingerprint, now)) {
        this.#drop('browser_rate');
        return undefined;
      }
      const full =
        this.#pending.size >= MAX_PENDING_GROUPS ||
        (source === 'browser' && this.#pendingBrowser >= MAX_PENDING_BROWSER_GROUPS);
      if (full) {
        this.#drop('pending_full');
        return { fingerprint, sampled: false };
      }
      group = {
        fingerprint,
        type: type.slice(0, GROUP_FIELD_LIMITS.type),
        message: template.slice(0, GROUP_FIELD_LIMITS.message),
        culprit: culprit.slice(0, GROUP_FIELD_LIMITS.culprit),
        source,
        count: 0,
        firstSeen: now,
        lastSeen: now,
        release,
        samples: [],
        hours: new Map(),
        users: new Set(),
      };
      this.#pending.set(fingerprint, group);
      if (source === 'browser') this.#pendingBrowser += 1;
    }
    group.count += 1;
    group.lastSeen = now;
    const hour = hourOf(now);
    group.hours.set(hour, (group.hours.get(hour) ?? 0) + 1);
    const user = userKey(context.user);
    if (user !== undefined && group.users.size < USERS_PER_FLUSH) group.users.add(user);
    const sampled = this.#o.flags.isEnabled('bulwark.errors.sample', { targetingKey: randomUUID() }, true);
    if (sampled && group.samples.length < SAMPLES_PER_FLUSH) {
      const safe = redactSecrets({
        request: context.request,
        user: context.user,
        tags: context.tags,
        breadcrumbs: trail(context.breadcrumbs),
      });
      const sample = {
        at: now,
        release,
        type: type.slice(0, GROUP_FIELD_LIMITS.type),
        message: message.slice(0, 2_000),
        stack: stack?.slice(0, 16_000),
        level: context.level ?? 'error',
        handled: context.handled ?? true,
        source,
        ...(safe.request === undefined ? {} : { request: safe.request }),
        ...(safe.user === undefined ? {} : { user: safe.user }),
        ...(safe.tags === undefined ? {} : { tags: safe.tags }),
        ...(safe.breadcrumbs === undefined ? {} : { breadcrumbs: safe.breadcrumbs }),
        ...(browser?.url === undefined ? {} : { url: browser.url }),
      };
      group.samples.push(fitSample(sample, sampleBytes(this.#limits, source)));
    }
    return { fingerprint, sampled };
  }

  #drop(reason: DropReason): void {
    this.#dropped[reason] += 1;
    this.#droppedTotal?.inc({ reason });
  }

  /**
   * Fingerprint, template and culprit of an error, remembered by its type and stack (which holds
   * its message): an error storm repeats the same few, and parsing is most of a capture's cost.
   */
  #identify(
    type: string,
    message: string,
    stack: string | undefined,
  ): { fingerprint: string; template: string; culprit: string } {
    const key = `${type}\n${(stack ?? message).slice(0, 4_000)}`;
    let known = this.#identities.get(key);
    if (known === undefined) {
      const frames = parseStack(stack);
      const template = messageTemplate(message);
      known = { fingerprint: fingerprintOf(type, frames, template), template, culprit: culpritOf(frames) };
      if (this.#identities.size >= 1_000) this.#identities.clear();
      this.#identities.set(key, known);
    }
    return known;
  }

  /** Writes what was gathered; resolves when it is in the store (a failed write is retried with the next). */
  flush(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      if (this.#pending.size === 0) return;
      const batch = [...this.#pending.values()];
      this.#pending.clear();
      this.#pendingBrowser = 0;
      try {
        await this.#o.errors.write(batch, this.#limits);
        if (this.#writeFailed) this.#o.logger.info('errors: writing error groups again');
        this.#writeFailed = false;
      } catch (error) {
        if (!this.#writeFailed)
          this.#o.logger.warn({ err: error }, 'errors: cannot write error groups; keeping them');
        this.#writeFailed = true;
        for (const group of batch) this.#merge(group);
      }
      if (this.#dropped.pending_full > 0 || this.#dropped.browser_rate > 0) {
        this.#o.logger.warn(
          { dropped: { ...this.#dropped } },
          'errors: some occurrences were dropped (too many distinct errors at once, or new browser groups over their budget)',
        );
        this.#dropped.pending_full = 0;
        this.#dropped.browser_rate = 0;
      }
    });
    return this.#writing;
  }

  /** Puts a batch that could not be written back in front of what was gathered since. */
  #merge(group: PendingGroup): void {
    const newer = this.#pending.get(group.fingerprint);
    if (newer === undefined) {
      if (this.#pending.size < MAX_PENDING_GROUPS) {
        this.#pending.set(group.fingerprint, group);
        if (group.source === 'browser') this.#pendingBrowser += 1;
      }
      return;
    }
    newer.count += group.count;
    newer.firstSeen = Math.min(newer.firstSeen, group.firstSeen);
    for (const [hour, count] of group.hours) newer.hours.set(hour, (newer.hours.get(hour) ?? 0) + count);
    for (const user of group.users) if (newer.users.size < USERS_PER_FLUSH) newer.users.add(user);
    newer.samples = [...group.samples, ...newer.samples].slice(-SAMPLES_PER_FLUSH);
  }

  /** Groups, most recently seen first (default open and resolved and ignored alike, at most 50). */
  groups(opts: { state?: ErrorState; source?: ErrorSource; limit?: number } = {}): Promise<ErrorGroup[]> {
    return this.#o.errors.list({ ...opts, limit: opts.limit ?? 50 });
  }

  /**
   * A page of groups for a list (the console's): `filter`, most recently seen first, at most
   * `limit` after `after`, each with its occurrences per hour over the last 24 h (oldest first);
   * `total` is how many `filter` matches and `next` where the following page starts (none: last).
   * Three queries whatever the page's size.
   */
  async page(opts: GroupFilter & { limit: number; after?: GroupCursor | undefined }): Promise<{
    groups: (ErrorGroup & { hourly: number[] })[];
    total: number;
    next: GroupCursor | undefined;
  }> {
    const [rows, total] = await Promise.all([
      this.#o.errors.list({ ...opts, limit: opts.limit + 1 }),
      this.#o.errors.count(opts),
    ]);
    const groups = rows.slice(0, opts.limit);
    const hourly = await this.#o.errors.hourly(
      groups.map((g) => g.fingerprint),
      this.#now(),
    );
    const last = groups.at(-1);
    return {
      groups: groups.map((g) => ({ ...g, hourly: hourly.get(g.fingerprint) ?? [] })),
      total,
      next:
        rows.length > opts.limit && last !== undefined
          ? { lastSeen: last.lastSeen, fingerprint: last.fingerprint }
          : undefined,
    };
  }

  /**
   * One group with its occurrences per hour over the last 24 h and its samples, newest first;
   * `BWK_ERR_ERRORS_GROUP_NOT_FOUND` if none.
   */
  async group(
    fingerprint: string,
    samples = 20,
  ): Promise<{ group: ErrorGroup & { hourly: number[] }; samples: ErrorSample[] }> {
    const group = await this.#o.errors.get(fingerprint);
    if (group === undefined) throw bulwarkError('BWK_ERR_ERRORS_GROUP_NOT_FOUND', { fingerprint });
    const [hourly, stored] = await Promise.all([
      this.#o.errors.hourly([fingerprint], this.#now()),
      this.#o.errors.samples(fingerprint, samples),
    ]);
    return { group: { ...group, hourly: hourly.get(fingerprint) ?? [] }, samples: stored };
  }

  /** One sample of a group, whole; `BWK_ERR_ERRORS_GROUP_NOT_FOUND` if the group has none with that id. */
  async sample(fingerprint: string, id: number): Promise<ErrorSample> {
    const sample = await this.#o.errors.sample(fingerprint, id);
    if (sample === undefined) throw bulwarkError('BWK_ERR_ERRORS_GROUP_NOT_FOUND', { fingerprint });
    return sample;
  }

  /** Resolves, ignores or re-opens a group, recorded in the audit log with who and why. */
  async setState(
    fingerprint: string,
    state: ErrorState,
    actor: string,
    reason?: string,
  ): Promise<ErrorGroup> {
    await this.flush();
    const changed = await this.#o.errors.setState(fingerprint, state, this.#now());
    if (changed === undefined) throw bulwarkError('BWK_ERR_ERRORS_GROUP_NOT_FOUND', { fingerprint });
    await this.#o.audit.append({
      actor,
      action: `errors.${state === 'open' ? 'reopen' : state === 'resolved' ? 'resolve' : 'ignore'}`,
      target: `error:${fingerprint}`,
      detail: { before: changed.before.state, after: state, ...(reason === undefined ? {} : { reason }) },
    });
    return changed.after;
  }

  /** Applies the retention: deletes old samples, and groups not seen within it. */
  prune(): Promise<{ groups: number; samples: number }> {
    const now = this.#now();
    // Hourly counts: the 24 h the console shows.
    return this.#o.errors.prune(now - (this.#o.retentionMs ?? 30 * 86_400_000), hourOf(now) - 23 * HOUR_MS);
  }

  /** Writes what is gathered and lets Sentry send what it queued (at most `timeoutMs`). */
  async close(timeoutMs = 2_000): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#pruneTimer);
    await this.flush();
    await this.#o.sentry?.close(timeoutMs);
  }
}
