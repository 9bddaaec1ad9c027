// Spin's API over real HTTP (the app listening on loopback, a SQLite store in a temporary directory):
// sign up, join, watch the live stream, get matched, vote; every bad input refused with a code naming
// the field; a join retried with its Idempotency-Key joins once; a stream that drops and resumes with
// Last-Event-ID gets the match made meanwhile exactly once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpin } from '../src/app.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'spin-api-'));
let app: Awaited<ReturnType<typeof buildSpin>>;
let base: string;

beforeAll(async () => {
  app = await buildSpin({
    env: { BULWARK_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    spin: { matchIntervalMs: 100, pollMs: 20 },
  });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Signed {
  token: string;
  user: { id: string; displayName: string };
}

/** What the tests read of an answer (each route answers a part of it). */
interface Body {
  error: { code: string; details: { field: string }[] };
  waiting: boolean;
  position: number;
  estimate: { estimateKnown: boolean; reason: string; sentence: string };
  matches: { id: string }[];
  left: boolean;
  displayName: string;
  gender: string;
  email: string | null;
  notify: { match: boolean; waitChange: boolean };
}

/** An event's data. */
interface EventData {
  matchId: string;
  partnerId: string;
  outcome: string;
  at: number;
}

async function call(
  method: string,
  url: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Body; headers: Headers }> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
      ...opts.headers,
    },
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Body, headers: res.headers };
}

async function signUp(displayName: string, gender: string, seeking: string[]): Promise<Signed> {
  const res = await call('POST', '/api/users', { body: { displayName, gender, seeking } });
  expect(res.status).toBe(201);
  return res.body as unknown as Signed;
}

/** A live stream: the events it received so far, and a way to wait for one. */
function listen(token: string, lastEventId?: string) {
  const controller = new AbortController();
  const events: { id?: string | undefined; event: string; data: EventData }[] = [];
  const waiters: (() => void)[] = [];
  const done = (async () => {
    const res = await fetch(`${base}/api/events`, {
      headers: {
        authorization: `Bearer ${token}`,
        ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
      },
      signal: controller.signal,
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split('\n')
            .filter((line) => !line.startsWith(':') && line.includes(': '))
            .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]),
        );
        if (fields['event'] === undefined) continue;
        events.push({
          id: fields['id'],
          event: fields['event'],
          data: JSON.parse(fields['data'] ?? 'null') as EventData,
        });
        for (const wake of waiters.splice(0)) wake();
      }
    }
  })().catch(() => undefined);
  const next = async (type: string, timeoutMs = 5000) => {
    const started = Date.now();
    for (;;) {
      const found = events.find((e) => e.event === type);
      if (found !== undefined) return found;
      if (Date.now() - started > timeoutMs) throw new Error(`no ${type} event within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  };
  return { events, next, close: () => controller.abort(), done };
}

describe('Spin API', () => {
  it('documents every route in OpenAPI, each security scheme a route uses declared', async () => {
    const spec = (await (await fetch(`${base}/api-docs/json`)).json()) as {
      paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    for (const path of [
      '/api/users',
      '/api/queue/join',
      '/api/queue/status',
      '/api/matches/{id}/vote',
      '/api/events',
    ])
      expect(spec.paths[path], path).toBeDefined();
    const used = new Set(
      Object.values(spec.paths).flatMap((methods) =>
        Object.values(methods).flatMap((op) => (op.security ?? []).flatMap((s) => Object.keys(s))),
      ),
    );
    expect([...used].sort()).toEqual(expect.arrayContaining(['spinUser']));
    for (const name of used) expect(spec.components.securitySchemes, name).toHaveProperty(name);
  });

  it('two compatible users join, are matched live, and both liking makes a success', async () => {
    const ann = await signUp('Ann', 'woman', ['man']);
    const bob = await signUp('Bob', 'man', ['woman']);
    const annStream = listen(ann.token);
    const bobStream = listen(bob.token);
    await annStream.next('status');
    const joined = await call('POST', '/api/queue/join', { token: ann.token });
    expect(joined.status).toBe(200);
    expect(joined.body).toMatchObject({ waiting: true, position: 1 });
    expect(typeof joined.body.estimate.estimateKnown).toBe('boolean');
    expect(joined.body.estimate.reason).toMatch(/^[A-Z_]+$/);
    expect(joined.body.estimate.sentence.length).toBeGreaterThan(10);
    await call('POST', '/api/queue/join', { token: bob.token });

    const annMatch = await annStream.next('match');
    const bobMatch = await bobStream.next('match');
    expect(annMatch.data.matchId).toBe(bobMatch.data.matchId);
    expect(annMatch.data.partnerId).toBe(bob.user.id);
    expect(Date.now() - annMatch.data.at).toBeLessThan(5000);
    expect((await call('GET', '/api/queue/status', { token: ann.token })).body).toEqual({ waiting: false });
    // Both events were timed from the match to the stream: the match-to-event latency metric.
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(Number(/^spin_match_event_seconds_count (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);

    const matchId = annMatch.data.matchId;
    const first = await call('POST', `/api/matches/${matchId}/vote`, {
      token: ann.token,
      body: { vote: 'like' },
    });
    expect(first.body).toMatchObject({ myVote: 'like', partnerVote: null, outcome: 'pending' });
    const second = await call('POST', `/api/matches/${matchId}/vote`, {
      token: bob.token,
      body: { vote: 'like' },
    });
    expect(second.body).toMatchObject({ myVote: 'like', partnerVote: 'like', outcome: 'success' });
    expect((await annStream.next('outcome')).data).toMatchObject({ matchId, outcome: 'success' });
    const again = await call('POST', `/api/matches/${matchId}/vote`, {
      token: bob.token,
      body: { vote: 'pass' },
    });
    expect([again.status, again.body.error.code]).toEqual([409, 'SPIN_ALREADY_VOTED']);

    const history = await call('GET', '/api/matches', { token: bob.token });
    expect(history.body.matches).toEqual([
      expect.objectContaining({
        id: matchId,
        partner: { id: ann.user.id, displayName: 'Ann' },
        outcome: 'success',
      }),
    ]);
    annStream.close();
    bobStream.close();
  });

  it('refuses bad input with a coded 400 naming the field, and no token with 401', async () => {
    const bad = await call('POST', '/api/users', { body: { displayName: '', gender: 'robot', seeking: [] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('BWK_ERR_HTTP_VALIDATION');
    const fields = (bad.body.error.details as { field: string }[]).map((d) => d.field);
    expect(fields).toEqual(expect.arrayContaining(['body.displayName']));
    const twice = await call('POST', '/api/users', {
      body: { displayName: 'Eve', gender: 'woman', seeking: ['man', 'man'] },
    });
    expect([twice.status, twice.body.error.details[0]?.field]).toEqual([400, 'body.seeking']);
    const none = await call('POST', '/api/queue/join');
    expect([none.status, none.body.error.code]).toEqual([401, 'SPIN_UNAUTHORIZED']);
    const wrong = await call('GET', '/api/queue/status', { token: 'not-a-token' });
    expect([wrong.status, wrong.body.error.code]).toEqual([401, 'SPIN_UNAUTHORIZED']);
    const eve = await signUp('Eve', 'woman', ['woman']);
    const notMine = await call('POST', '/api/matches/nope/vote', {
      token: eve.token,
      body: { vote: 'like' },
    });
    expect([notMine.status, notMine.body.error.code]).toEqual([404, 'SPIN_MATCH_NOT_FOUND']);
    const badVote = await call('POST', '/api/matches/nope/vote', {
      token: eve.token,
      body: { vote: 'maybe' },
    });
    expect(badVote.status).toBe(400);
  });

  it('PATCH /api/me changes only the fields sent, is read at once, and refuses what may not change', async () => {
    const una = await signUp('Una', 'woman', ['man']);
    expect((await call('GET', '/api/me', { token: una.token })).body.notify).toEqual({
      match: false,
      waitChange: false,
    });
    const opted = await call('PATCH', '/api/me', {
      token: una.token,
      body: { email: 'una@example.com', notify: { match: true } },
    });
    expect(opted.status).toBe(200);
    expect([opted.body.displayName, opted.body.email, opted.body.notify]).toEqual([
      'Una',
      'una@example.com',
      { match: true, waitChange: false },
    ]);
    // The cached user was replaced: the next request sees the change.
    const read = await call('GET', '/api/me', { token: una.token });
    expect([read.body.email, read.body.notify.match]).toEqual(['una@example.com', true]);
    const renamed = await call('PATCH', '/api/me', {
      token: una.token,
      body: { displayName: ' Una B ', email: null },
    });
    expect([renamed.body.displayName, renamed.body.email, renamed.body.notify.match]).toEqual([
      'Una B',
      null,
      true,
    ]);
    // Gender and whom one seeks decide the line one waits in: not changed here (sign up anew).
    const gender = await call('PATCH', '/api/me', { token: una.token, body: { gender: 'man' } });
    expect([gender.status, gender.body.error.code]).toEqual([400, 'BWK_ERR_HTTP_VALIDATION']);
    const badMail = await call('PATCH', '/api/me', { token: una.token, body: { email: 'not-an-address' } });
    expect([badMail.status, badMail.body.error.details[0]?.field]).toEqual([400, 'body.email']);
    const empty = await call('PATCH', '/api/me', { token: una.token, body: {} });
    expect(empty.status).toBe(400);
    const none = await call('PATCH', '/api/me', { body: { notify: { match: false } } });
    expect([none.status, none.body.error.code]).toEqual([401, 'SPIN_UNAUTHORIZED']);
    // Nothing of the refused changes was applied.
    const after = await call('GET', '/api/me', { token: una.token });
    expect([after.body.gender, after.body.email, after.body.notify.match]).toEqual(['woman', null, true]);
  });

  it('a join retried with its Idempotency-Key after a match does not join again', async () => {
    const cat = await signUp('Cat', 'nonbinary', ['nonbinary']);
    const dan = await signUp('Dan', 'nonbinary', ['nonbinary']);
    const headers = { 'idempotency-key': 'join-1' };
    const first = await call('POST', '/api/queue/join', { token: cat.token, headers });
    expect(first.body.waiting).toBe(true);
    const stream = listen(cat.token);
    await call('POST', '/api/queue/join', { token: dan.token });
    await stream.next('match');
    // The client never saw the first answer and sends the same request again.
    const replay = await call('POST', '/api/queue/join', { token: cat.token, headers });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    expect((await call('GET', '/api/queue/status', { token: cat.token })).body).toEqual({ waiting: false });
    const reused = await call('DELETE', '/api/queue', { token: cat.token });
    expect(reused.body).toEqual({ left: false });
    stream.close();
  });

  it('ten joins sent at once with one Idempotency-Key join once; the key on another request is a 422', async () => {
    const hal = await signUp('Hal', 'man', ['man']);
    const headers = { 'idempotency-key': 'hal-join' };
    const joins = await Promise.all(
      Array.from({ length: 10 }, () => call('POST', '/api/queue/join', { token: hal.token, headers })),
    );
    expect(joins.map((j) => j.status)).toEqual(Array(10).fill(200));
    expect(joins.filter((j) => j.headers.get('idempotent-replayed') === 'true')).toHaveLength(9);
    for (const j of joins) expect(j.body).toEqual(joins[0]!.body);
    const reused = await call('POST', '/api/matches/some-match/vote', {
      token: hal.token,
      headers,
      body: { vote: 'like' },
    });
    expect([reused.status, reused.body.error.code]).toEqual([422, 'SPIN_IDEMPOTENCY_KEY_REUSED']);
    const voteKey = { 'idempotency-key': 'hal-vote' };
    const vote = await call('POST', '/api/matches/some-match/vote', {
      token: hal.token,
      headers: voteKey,
      body: { vote: 'like' },
    });
    expect(vote.status).toBe(404);
    const joinWithVoteKey = await call('POST', '/api/queue/join', { token: hal.token, headers: voteKey });
    expect(joinWithVoteKey.status).toBe(200); // a failed request is not remembered: its key is free
    expect(await call('DELETE', '/api/queue', { token: hal.token })).toMatchObject({ body: { left: true } });
  });

  it('a stream resumed from Last-Event-ID 0 (opened on an empty feed) gets every event of its user', async () => {
    const ivy = await signUp('Ivy', 'woman', ['man']);
    const jon = await signUp('Jon', 'man', ['woman']);
    await call('POST', '/api/queue/join', { token: ivy.token });
    await call('POST', '/api/queue/join', { token: jon.token });
    await expect
      .poll(async () => (await call('GET', '/api/matches', { token: ivy.token })).body.matches.length)
      .toBe(1);
    const resumed = listen(ivy.token, '0');
    expect((await resumed.next('match')).data.partnerId).toBe(jon.user.id);
    resumed.close();
  });

  it('a stream that drops and resumes with Last-Event-ID gets the match made meanwhile, once', async () => {
    const fay = await signUp('Fay', 'woman', ['woman']);
    const gia = await signUp('Gia', 'woman', ['woman']);
    const first = listen(fay.token);
    await first.next('status');
    await call('POST', '/api/queue/join', { token: fay.token });
    const matchedBefore = await call('GET', '/api/matches', { token: fay.token });
    expect(matchedBefore.body.matches).toEqual([]);
    first.close();
    await first.done;
    // While Fay is disconnected, Gia joins and they are matched.
    await call('POST', '/api/queue/join', { token: gia.token });
    const until = Date.now() + 5000;
    while ((await call('GET', '/api/matches', { token: fay.token })).body.matches.length === 0) {
      if (Date.now() > until) throw new Error('no match within 5 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const lastSeen = first.events.filter((e) => e.id !== undefined).at(-1)?.id ?? '0';
    const resumed = listen(fay.token, lastSeen === '0' ? '1' : lastSeen);
    const match = await resumed.next('match');
    expect(match.data.partnerId).toBe(gia.user.id);
    await resumed.next('status');
    expect(resumed.events.filter((e) => e.event === 'match')).toHaveLength(1);
    resumed.close();
  });
});
