// The access capability on a real store (SQLite and PostgreSQL): migration 0007_access, keys kept
// as digests and looked up by them, sessions with their expiry, idle timeout and cap, the one-time
// login token of the first start, and the purge. Time is driven by an injected clock.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  LOGIN_TOKEN_TTL_MS,
  SESSION_IDLE_MS,
  SESSION_MAX_AGE_MS,
  SESSIONS_PER_KEY,
  SqlAccess,
} from '../src/access/sql.js';
import type { AccessTables } from '../src/access/types.js';
import type { Store } from '../src/store/types.js';
import { postgresForFile, rejection, storeFixture } from './helpers/store.js';

const pgUrl = postgresForFile();
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const ADMIN_KEY = 'bootstrap-admin-key-0123456789';
const MINUTE = 60_000;

describe.each(['sqlite', 'postgres'] as const)('access on %s', (engine) => {
  const fixture = storeFixture(engine, pgUrl);
  let clock = 1_700_000_000_000;

  /** An access service over `store`, on the test's clock, without the purge timer. */
  function accessOn(store: Store, adminKey?: string): SqlAccess {
    return new SqlAccess({
      db: store.db.withTables<AccessTables>(),
      audit: store.audit,
      adminKey,
      now: () => clock,
      purgeEveryMs: false,
    });
  }

  async function rows(store: Store, table: keyof AccessTables) {
    return store.db.withTables<AccessTables>().selectFrom(table).selectAll().execute();
  }

  it('migrates 0007_access; stores a key as its digest only and finds it by that digest', async () => {
    const store = await fixture.open();
    expect((await store.migrations.status()).map((m) => m.name)).toContain('0007_access');
    const access = accessOn(store);
    expect(await access.enabled()).toBe(false);

    const { key, info } = await access.createKey('ada', 'operator', 'cli:test');
    expect(key).toMatch(/^bwk_[A-Za-z0-9_-]{43}$/);
    expect(info).toEqual({
      name: 'ada',
      role: 'operator',
      createdAt: clock,
      lastUsedAt: null,
      revokedAt: null,
    });
    const [row] = await rows(store, 'bulwark_access_keys');
    expect(row).toMatchObject({ digest: sha256(key), name: 'ada', role: 'operator' });
    expect(JSON.stringify(row)).not.toContain(key.slice(4));
    expect(await access.enabled()).toBe(true);

    expect(await access.authenticate(key)).toEqual({ actor: 'key:ada', role: 'operator', keyName: 'ada' });
    expect(await access.authenticate(`${key.slice(0, -1)}x`)).toBeUndefined();
    expect(await access.authenticate('not-a-key')).toBeUndefined();

    await rejection(access.createKey('ada', 'viewer', 'cli:test'), 'BWK_ERR_ACCESS_KEY_EXISTS');
    await rejection(access.createKey('Ada!', 'viewer', 'cli:test'), 'BWK_ERR_ACCESS_KEY_INVALID');
    await rejection(access.createKey('x'.repeat(65), 'viewer', 'cli:test'), 'BWK_ERR_ACCESS_KEY_INVALID');
    await rejection(access.createKey('bob', 'root' as 'viewer', 'cli:test'), 'BWK_ERR_ACCESS_KEY_INVALID');
    const audit = await store.audit.list({ target: 'key:ada' });
    expect(audit).toMatchObject([{ actor: 'cli:test', action: 'key.create', detail: { role: 'operator' } }]);
  });

  it('writes a key’s last use at most once a minute; the bootstrap key is never stored', async () => {
    const store = await fixture.open();
    const access = accessOn(store, ADMIN_KEY);
    expect(await access.enabled()).toBe(true);
    expect(await access.authenticate(ADMIN_KEY)).toEqual({
      actor: 'admin',
      role: 'operator',
      keyName: undefined,
    });
    expect(await rows(store, 'bulwark_access_keys')).toEqual([]);

    const { key } = await access.createKey('ci', 'viewer', 'cli:test');
    const start = clock;
    await access.authenticate(key);
    clock += 30_000;
    await access.authenticate(key);
    expect((await access.listKeys())[0]?.lastUsedAt).toBe(start);
    clock += 30_000;
    await access.authenticate(key);
    expect((await access.listKeys())[0]?.lastUsedAt).toBe(start + MINUTE);
  });

  it('revoking a key refuses it and ends its sessions; unknown names are refused', async () => {
    const store = await fixture.open();
    const access = accessOn(store);
    const { key } = await access.createKey('ops', 'operator', 'cli:test');
    const identity = await access.authenticate(key);
    const first = await access.startSession(identity!);
    await access.startSession(identity!);
    clock += 1000;
    const revoked = await access.revokeKey('ops', 'cli:ada');
    expect(revoked).toMatchObject({ sessionsEnded: 2, info: { name: 'ops', revokedAt: clock } });
    expect(await access.authenticate(key)).toBeUndefined();
    expect(await access.session(first.id)).toBeUndefined();
    expect(await rows(store, 'bulwark_access_sessions')).toEqual([]);
    // Again: no change, the first revocation time stays.
    clock += 1000;
    expect((await access.revokeKey('ops', 'cli:ada')).info.revokedAt).toBe(clock - 1000);
    await rejection(access.revokeKey('nobody', 'cli:ada'), 'BWK_ERR_ACCESS_KEY_NOT_FOUND');
    await rejection(access.createKey('ops', 'operator', 'cli:test'), 'BWK_ERR_ACCESS_KEY_EXISTS');
    expect((await store.audit.list({ target: 'key:ops' })).map((r) => [r.actor, r.action])).toEqual([
      ['cli:ada', 'key.revoke'],
      ['cli:ada', 'key.revoke'],
      ['cli:test', 'key.create'],
    ]);
  });

  it('a session ends after 1 h idle or 12 h in all, is found by its digest, and is capped per key', async () => {
    const store = await fixture.open();
    const access = accessOn(store, ADMIN_KEY);
    const { key } = await access.createKey('ops', 'operator', 'cli:test');
    const ops = (await access.authenticate(key))!;
    const { id, session } = await access.startSession(ops);
    expect(session).toEqual({
      role: 'operator',
      actor: 'key:ops',
      csrfToken: session.csrfToken,
      expiresAt: clock + SESSION_MAX_AGE_MS,
    });
    expect(session.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(session.csrfToken).not.toBe(id);
    const stored = await rows(store, 'bulwark_access_sessions');
    expect(stored).toMatchObject([{ digest: sha256(id), actor: 'key:ops', key_name: 'ops' }]);
    expect(JSON.stringify(stored)).not.toContain(id);
    expect(await access.session(id)).toEqual({ identity: ops, session });

    // Active every 59 minutes: never idle, still over at 12 h.
    const opened = clock;
    while (clock + 59 * MINUTE < opened + SESSION_MAX_AGE_MS) {
      clock += 59 * MINUTE;
      expect(await access.session(id), `at ${(clock - opened) / MINUTE} min`).toBeDefined();
    }
    clock = opened + SESSION_MAX_AGE_MS;
    expect(await access.session(id)).toBeUndefined();

    const idle = await access.startSession(ops);
    clock += SESSION_IDLE_MS - MINUTE;
    expect(await access.session(idle.id)).toBeDefined();
    clock += SESSION_IDLE_MS;
    expect(await access.session(idle.id)).toBeUndefined();

    // The cap: the oldest of this key's sessions go; another actor's stay.
    const admin = await access.startSession((await access.authenticate(ADMIN_KEY))!);
    const ids: string[] = [];
    for (let i = 0; i < SESSIONS_PER_KEY + 2; i += 1) {
      clock += 1;
      ids.push((await access.startSession(ops)).id);
    }
    expect(await access.session(ids[0]!)).toBeUndefined();
    expect(await access.session(ids[1]!)).toBeUndefined();
    expect(await access.session(ids[2]!)).toBeDefined();
    expect(await access.session(admin.id)).toBeDefined();
    expect((await rows(store, 'bulwark_access_sessions')).length).toBe(SESSIONS_PER_KEY + 1);

    // A session of BULWARK_ADMIN_KEY ends when the setting is removed.
    expect(await accessOn(store).session(admin.id)).toBeUndefined();
    expect(await access.endSession(ids[5]!)).toBe(true);
    expect(await access.session(ids[5]!)).toBeUndefined();
  });

  it('purges expired and idle sessions and expired login tokens', async () => {
    const store = await fixture.open();
    const access = accessOn(store, ADMIN_KEY);
    const admin = (await access.authenticate(ADMIN_KEY))!;
    await access.startSession(admin);
    clock += SESSION_IDLE_MS / 2;
    const recent = await access.startSession(admin);
    expect(await access.purge()).toBe(0);
    clock += SESSION_IDLE_MS / 2;
    expect(await access.purge()).toBe(1);
    expect(await access.session(recent.id)).toBeDefined();
    const fresh = accessOn(store);
    const token = await fresh.prepareFirstLogin();
    expect(token).toBeDefined();
    clock += LOGIN_TOKEN_TTL_MS;
    // Both are a day old by now: the session idle, the token expired.
    expect(await fresh.purge()).toBe(2);
    expect(await rows(store, 'bulwark_access_tokens')).toEqual([]);
  });

  it('first start: a bootstrap key and a one-time token, replaced each start until used, then never', async () => {
    const store = await fixture.open();
    expect(await accessOn(store, ADMIN_KEY).prepareFirstLogin()).toBeUndefined();
    const access = accessOn(store);
    const first = await access.prepareFirstLogin();
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await access.listKeys()).toMatchObject([
      { name: 'bootstrap', role: 'operator', lastUsedAt: null },
    ]);
    const second = await access.prepareFirstLogin();
    expect(second).not.toBe(first);
    expect(await rows(store, 'bulwark_access_tokens')).toMatchObject([{ digest: sha256(second!) }]);
    expect(await access.redeemLoginToken(first!)).toBeUndefined();

    // Two uses racing: one wins.
    const uses = await Promise.all([access.redeemLoginToken(second!), access.redeemLoginToken(second!)]);
    expect(uses.filter((u) => u !== undefined)).toEqual([
      { actor: 'key:bootstrap', role: 'operator', keyName: 'bootstrap' },
    ]);
    expect(await access.redeemLoginToken(second!)).toBeUndefined();
    expect((await access.listKeys())[0]?.lastUsedAt).toBe(clock);
    expect(await access.prepareFirstLogin()).toBeUndefined();
    expect((await store.audit.list({ target: 'key:bootstrap' })).map((r) => [r.actor, r.action])).toEqual([
      ['bulwark', 'key.login-link'],
      ['bulwark', 'key.create'],
    ]);
  });

  it('first start: no link once another key exists; an expired or revoked token opens nothing', async () => {
    const store = await fixture.open();
    const access = accessOn(store);
    const token = await access.prepareFirstLogin();
    clock += LOGIN_TOKEN_TTL_MS;
    expect(await access.redeemLoginToken(token!)).toBeUndefined();
    const again = await access.prepareFirstLogin();
    await access.revokeKey('bootstrap', 'cli:ada');
    expect(await access.redeemLoginToken(again!)).toBeUndefined();
    expect(await access.prepareFirstLogin()).toBeUndefined();
  });

  it('first start: no key and no link when a key was created before it', async () => {
    const store = await fixture.open();
    const access = accessOn(store);
    await access.createKey('ada', 'operator', 'cli:ada');
    expect(await access.prepareFirstLogin()).toBeUndefined();
    expect(await rows(store, 'bulwark_access_keys')).toHaveLength(1);
    expect(await rows(store, 'bulwark_access_tokens')).toEqual([]);
  });
});
