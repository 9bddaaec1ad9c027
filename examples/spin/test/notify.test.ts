// Spin's e-mails through a real SMTP server (smtp-server on loopback): a user who opted in gets one
// "you have a match" mail when matched, one who did not gets none; a waiting user who opted in is
// told once when the estimate moves a lot, not when it barely moves; the notices of a match made
// just before a crash (never queued) are queued by the next check, once.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test/helpers/wait.js';
import { buildSpin } from '../src/app.js';
import type { SpinUser } from '../src/store.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'spin-notify-'));
const mails: { to: string; subject: string; messageId: string }[] = [];
let smtp: SMTPServer;
let app: Awaited<ReturnType<typeof buildSpin>>;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, done) {
      let text = '';
      stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
      stream.on('end', () => {
        mails.push({
          to: session.envelope.rcptTo.map((r) => r.address).join(','),
          subject: /^Subject: (.*)$/m.exec(text)?.[1] ?? '',
          messageId: /^Message-ID: (.*)$/im.exec(text)?.[1] ?? '',
        });
        done();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const port = (smtp.server.address() as AddressInfo).port;
  app = await buildSpin({
    env: { BULWARK_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    spin: { matchIntervalMs: 100, pollMs: 20 },
    mail: { smtpUrl: `smtp://127.0.0.1:${port}` },
    queues: { pollMs: 50 },
  });
});

afterAll(async () => {
  await app?.close();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  rmSync(dataDir, { recursive: true, force: true });
});

describe('Spin notifications', () => {
  // First: the statistics are fed a past in time order, before any other event of this app.
  it('tells a waiting user who opted in when the estimate moves a lot, once; not when it does not', async () => {
    const group = { gender: 'woman', seeking: ['man'] } as const;
    const now = Date.now();
    // The last 20 minutes: a woman seeking a man arrived every 2 minutes and was matched 90 s later.
    for (let t = now - 20 * 60_000; t < now - 90_000; t += 120_000) {
      app.spin.stats.arrived(group, t);
      app.spin.stats.matched(group, t + 90_000, 90_000);
    }
    const ahead: SpinUser[] = [];
    for (let i = 0; i < 4; i += 1) {
      const { user } = await app.spin.store.createUser({ displayName: `W${i}`, ...group, seeking: ['man'] });
      await app.spin.store.join(user);
      ahead.push(user);
      await new Promise((resolve) => setTimeout(resolve, 2)); // no two join in the same millisecond
    }
    const eve = await app.spin.store.createUser({
      displayName: 'Eve',
      gender: 'woman',
      seeking: ['man'],
      email: 'eve@example.test',
      notify: { waitChange: true },
    });
    await new Promise((resolve) => setTimeout(resolve, 2));
    await app.spin.store.join(eve.user);
    const inCopy = (id: string) => [...app.spin.waiters()].some((w) => w.userId === id);
    await until(
      async () => {
        const status = await app.spin.status(eve.user);
        return (
          inCopy(eve.user.id) && status.waiting && status.position === 5 && status.estimate.estimateKnown
        );
      },
      5000,
      'Eve fifth in line with a known estimate',
    );
    expect(await app.notifier.checkWaits()).toBe(0); // notes where she stands
    expect(await app.notifier.checkWaits()).toBe(0); // nothing moved
    for (const user of ahead) await app.spin.store.leave(user);
    await until(
      async () => {
        const status = await app.spin.status(eve.user);
        return !ahead.some((user) => inCopy(user.id)) && status.waiting && status.position === 1;
      },
      5000,
      'Eve first in line',
    );
    expect(await app.notifier.checkWaits()).toBe(1);
    await until(() => mails.some((m) => m.to === 'eve@example.test'), 15_000, 'the wait mail');
    expect(mails.find((m) => m.to === 'eve@example.test')?.subject).toMatch(
      /^Your wait on Spin changed: now about /,
    );
    expect(await app.notifier.checkWaits()).toBe(0); // told once
    await app.spin.store.leave(eve.user);
  });

  it('mails a match to the side that opted in, once, and nothing to the side that did not', async () => {
    const ann = await app.spin.store.createUser({
      displayName: 'Ann',
      gender: 'woman',
      seeking: ['man'],
      email: 'ann@example.test',
      notify: { match: true },
    });
    const bob = await app.spin.store.createUser({
      displayName: 'Bob',
      gender: 'man',
      seeking: ['woman'],
      email: 'bob@example.test',
    });
    await app.spin.store.join(ann.user);
    await app.spin.store.join(bob.user);
    const matchMail = () => mails.find((m) => m.subject === 'You have a match on Spin');
    await until(() => matchMail() !== undefined, 15_000, 'the match mail');
    expect(matchMail()).toMatchObject({ to: 'ann@example.test' });
    expect(matchMail()?.messageId).toMatch(/^<[0-9a-f]{32}@spin>$/);
    // Time for a second (duplicate) or a mail to Bob to arrive, were there one.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(mails.filter((m) => m.subject === 'You have a match on Spin')).toHaveLength(1);
    expect(mails.some((m) => m.to === 'bob@example.test')).toBe(false);
  });

  it('queues the notices of a match made just before a crash (never queued) at the next check, once', async () => {
    // A claim made straight in the store is a match whose instance stopped before queuing its notices.
    // Two the matcher would never pair (the claim itself does not ask), so it cannot beat us to it.
    const cat = await app.spin.store.createUser({
      displayName: 'Cat',
      gender: 'woman',
      seeking: ['woman'],
      email: 'cat@example.test',
      notify: { match: true },
    });
    const dan = await app.spin.store.createUser({ displayName: 'Dan', gender: 'man', seeking: ['man'] });
    const catJoined = (await app.spin.store.join(cat.user)).joinedAt;
    const danJoined = (await app.spin.store.join(dan.user)).joinedAt;
    // The matches of the test before were noticed as they were made: nothing to recover.
    expect(await app.notifier.recoverNotices(0)).toBe(0);
    const waiter = (user: typeof cat.user, joinedAt: number) => ({
      userId: user.id,
      gender: user.gender,
      seeking: user.seeking,
      joinedAt,
    });
    const now = Date.now();
    expect(
      await app.spin.store.claim(waiter(cat.user, catJoined), waiter(dan.user, danJoined), now),
    ).toBeDefined();
    expect(await app.notifier.recoverNotices()).toBe(0); // made a moment ago: left to its own instance
    expect(await app.notifier.recoverNotices(0)).toBe(1);
    await until(() => mails.some((m) => m.to === 'cat@example.test'), 15_000, "Cat's match mail");
    await until(
      async () => (await app.notifier.recoverNotices(0)) === 0,
      5000,
      'the match marked as noticed',
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(mails.filter((m) => m.to === 'cat@example.test')).toHaveLength(1);
  });
});
