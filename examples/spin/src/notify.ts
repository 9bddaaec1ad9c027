// Spin's e-mails, as jobs of Bulwark's queue `spin.notify` (durable, retried with backoff, run by
// any instance): "you have a match" for users who opted in (a match is marked once its notices are
// queued, so those of a match made just before a crash are queued by the next check), and "your
// wait changed a lot" for those who opted in to that. SMTP from SPIN_SMTP_URL (a local server in development, e.g. smtp://127.0.0.1:1025);
// without it nothing is sent and the first skipped notice says so once.
import { createHash } from 'node:crypto';
import type { Bulwark, Job } from 'bulwark';
import { createTransport, type Transporter } from 'nodemailer';
import { formatDuration } from './domain/wording.js';
import type { SpinService } from './service.js';
import type { MatchPair, SpinUser } from './store.js';

export const NOTIFY_QUEUE = 'spin.notify';

/** Where e-mail goes out. */
export interface MailOptions {
  /** `smtp://user:password@host:port` or `smtps://…`; never logged (it may hold a password). */
  smtpUrl?: string | undefined;
  /** The From address (default `Spin <spin@localhost>`). */
  from?: string | undefined;
}

/** One e-mail to send. */
export type Notice =
  | { kind: 'match'; userId: string; matchId: string; partnerName: string }
  | { kind: 'wait'; userId: string; sentence: string; before: { p50Ms: number }; now: { p50Ms: number } };

/** How often the matcher instance checks whether estimates moved enough to tell people. */
const WAIT_CHECK_MS = 30_000;
/** How far back the check for matches whose notices were never queued looks... */
const RECOVER_WINDOW_MS = 3_600_000;
/** ...leaving alone the last few seconds' (their notices are being queued as the matches are made). */
const RECOVER_GRACE_MS = 10_000;
/** A wait estimate "changed a lot": its median moved by half and by at least two minutes. */
const WAIT_CHANGE_RATIO = 0.5;
const WAIT_CHANGE_MIN_MS = 120_000;

export class SpinNotifier {
  readonly #bulwark: Bulwark;
  readonly #spin: SpinService;
  readonly #from: string;
  readonly #transport: Transporter | undefined;
  /** The estimate each waiting, opted-in user was last told (or first seen with), by user id. */
  readonly #told = new Map<string, number>();
  #warned = false;
  #timer: NodeJS.Timeout | undefined;
  /** Matches whose notices are queued, to be marked so in the store (one statement per turn). */
  #noticed: string[] = [];
  #stopMatched: (() => void) | undefined;

  constructor(options: { bulwark: Bulwark; spin: SpinService; mail?: MailOptions }) {
    this.#bulwark = options.bulwark;
    this.#spin = options.spin;
    this.#from = options.mail?.from ?? 'Spin <spin@localhost>';
    const url = options.mail?.smtpUrl;
    this.#transport = url === undefined || url === '' ? undefined : transportFor(url);
  }

  /** Runs the queue's jobs here, enqueues match notices as the matcher makes matches, checks waits. */
  start(): void {
    this.#bulwark.queues.process<Notice>(NOTIFY_QUEUE, (job) => this.#send(job), { concurrency: 4 });
    this.#stopMatched = this.#spin.onMatched((match) => {
      this.#matched({ matchId: match.matchId, userA: match.first.userId, userB: match.second.userId }).catch(
        (error: unknown) => this.#bulwark.logger.warn({ err: error }, 'spin: enqueuing match notices failed'),
      );
    });
    this.#timer = setInterval(() => {
      if (!this.#spin.isMatcher) return;
      this.checkWaits().catch((error: unknown) =>
        this.#bulwark.logger.warn({ err: error }, 'spin: checking wait changes failed'),
      );
      this.recoverNotices().catch((error: unknown) =>
        this.#bulwark.logger.warn({ err: error }, 'spin: queuing missed match notices failed'),
      );
    }, WAIT_CHECK_MS);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#stopMatched?.();
    this.#transport?.close();
  }

  /**
   * Queues the notices of matches made more than 10 s and less than an hour ago whose notices were
   * never queued: the instance that made them stopped (a crash) between the match and its notices.
   * Runs on the matcher's instance every 30 s. A notice queued but not yet marked so when the
   * instance stopped is queued again: its job id dedupes it while it waits; one already sent is sent
   * again, with the same Message-ID (at least once, never lost). Resolves how many matches it found.
   */
  async recoverNotices(graceMs = RECOVER_GRACE_MS): Promise<number> {
    const now = Date.now();
    const missed = await this.#spin.store.unnoticedMatches(now - RECOVER_WINDOW_MS, now - graceMs);
    for (const match of missed) await this.#matched(match);
    return missed.length;
  }

  /**
   * Both sides of a new match who opted in get a notice (a job each; its id dedupes a repeat); then
   * the match is marked as noticed.
   */
  async #matched(match: MatchPair): Promise<void> {
    const users = await this.#spin.store.usersById([match.userA, match.userB]);
    for (const [self, partner] of [
      [match.userA, match.userB],
      [match.userB, match.userA],
    ] as const) {
      const user = users.get(self);
      if (user === undefined || !user.notify.match || user.email === null) continue;
      await this.#bulwark.queues.add<Notice>(
        NOTIFY_QUEUE,
        {
          kind: 'match',
          userId: user.id,
          matchId: match.matchId,
          partnerName: users.get(partner)?.displayName ?? 'someone',
        },
        { id: `match:${match.matchId}:${user.id}`, attempts: 5 },
      );
    }
    if (this.#noticed.push(match.matchId) === 1)
      setImmediate(() => {
        const ids = this.#noticed.splice(0);
        this.#spin.store
          .markNoticed(ids)
          .catch((error: unknown) =>
            this.#bulwark.logger.warn({ err: error }, 'spin: marking match notices as queued failed'),
          );
      });
  }

  /**
   * Tells waiting users who opted in when their estimate moved a lot since they were last told (the
   * first check only notes where each stands). Runs on the matcher's instance, every 30 s.
   */
  async checkWaits(): Promise<number> {
    const waiting = [...this.#spin.waiters()];
    const ids = new Set(waiting.map((w) => w.userId));
    for (const id of this.#told.keys()) if (!ids.has(id)) this.#told.delete(id);
    const users = await this.#spin.store.usersById([...ids]);
    let sent = 0;
    for (const user of users.values()) {
      if (!user.notify.waitChange || user.email === null) continue;
      const status = await this.#spin.status(user);
      if (!status.waiting || !status.estimate.estimateKnown || status.estimate.p50Ms === null) continue;
      const now = status.estimate.p50Ms;
      const before = this.#told.get(user.id);
      this.#told.set(user.id, before ?? now);
      if (before === undefined) continue;
      const moved = Math.abs(now - before);
      if (moved < WAIT_CHANGE_MIN_MS || moved < before * WAIT_CHANGE_RATIO) continue;
      this.#told.set(user.id, now);
      await this.#bulwark.queues.add<Notice>(
        NOTIFY_QUEUE,
        {
          kind: 'wait',
          userId: user.id,
          sentence: status.estimate.sentence,
          before: { p50Ms: before },
          now: { p50Ms: now },
        },
        { attempts: 3 },
      );
      sent += 1;
    }
    return sent;
  }

  async #send(job: Job<Notice>): Promise<void> {
    const notice = job.data;
    const user = (await this.#spin.store.usersById([notice.userId])).get(notice.userId);
    if (user?.email === null || user === undefined) return; // gone, or no address any more
    if (this.#transport === undefined) {
      if (!this.#warned)
        this.#bulwark.logger.warn('spin: SPIN_SMTP_URL is not set: notification e-mails are not sent');
      this.#warned = true;
      return;
    }
    const { subject, text } = message(notice, user);
    // The same notice always has the same Message-ID, so a mail server or client can tell a resend.
    const id = createHash('sha256').update(`${job.queue}:${job.id}`).digest('hex').slice(0, 32);
    await this.#transport.sendMail({
      from: this.#from,
      to: user.email,
      subject,
      text,
      messageId: `<${id}@spin>`,
    });
  }
}

/**
 * A pooled SMTP transport for `smtp[s]://[user:password@]host[:port]`, with every timeout set. The
 * URL is parsed here (a bad one throws naming SPIN_SMTP_URL, without its password).
 */
function transportFor(raw: string): Transporter {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(
      'SPIN_SMTP_URL is not a URL: use smtp://host:port or smtps://user:password@host:port',
    );
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:')
    throw new TypeError(`SPIN_SMTP_URL must be smtp:// or smtps://, got ${url.protocol}//`);
  const secure = url.protocol === 'smtps:';
  return createTransport({
    pool: true,
    maxConnections: 2,
    host: url.hostname,
    port: url.port === '' ? (secure ? 465 : 587) : Number(url.port),
    secure,
    ...(url.username === ''
      ? {}
      : { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } }),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
    dnsTimeout: 10_000,
    logger: false,
  });
}

function message(notice: Notice, user: SpinUser): { subject: string; text: string } {
  if (notice.kind === 'match')
    return {
      subject: 'You have a match on Spin',
      text: `Hi ${user.displayName},\n\nyou were matched with ${notice.partnerName}. Open Spin to say whether you like them: if you both do, it is a match.\n`,
    };
  return {
    subject: `Your wait on Spin changed: now about ${formatDuration(notice.now.p50Ms)}`,
    text: `Hi ${user.displayName},\n\nyour estimated wait moved from about ${formatDuration(notice.before.p50Ms)} to about ${formatDuration(notice.now.p50Ms)}.\n${notice.sentence}\n`,
  };
}
