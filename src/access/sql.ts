import type { Kysely, Selectable } from 'kysely';
import type { Logger } from 'pino';
import { bulwarkError } from '../errors/index.js';
import type { AuditLog } from '../store/types.js';
import { LoginLimiter, type LoginLimiterOptions } from './login-limiter.js';
import { digestOf, looksLikeKey, newKey, newSecret, sameSecret } from './secrets.js';
import {
  ADMIN_ACTOR,
  BOOTSTRAP_KEY_NAME,
  KEY_NAME_PATTERN,
  ROLES,
  type Access,
  type AccessTables,
  type CreatedKey,
  type Identity,
  type KeyInfo,
  type LoginDecision,
  type OpenSession,
  type Role,
  type SessionInfo,
} from './types.js';

/** A session ends this long after it was opened, whatever happens (12 h). */
export const SESSION_MAX_AGE_MS = 12 * 3_600_000;
/** A session ends after this long without a request (1 h; measured to the minute). */
export const SESSION_IDLE_MS = 3_600_000;
/** Sessions kept per actor: opening one more ends the oldest. */
export const SESSIONS_PER_KEY = 20;
/** How long the first start's one-time login token is valid (24 h). */
export const LOGIN_TOKEN_TTL_MS = 24 * 3_600_000;
/** A key's last use and a session's last activity are written at most this often, ms. */
const TOUCH_EVERY_MS = 60_000;
/** How long "no key is stored" is believed before the store is asked again, ms. */
const NO_KEY_RECHECK_MS = 1_000;
/** Default period of {@link SqlAccess.purge}, ms. */
const PURGE_EVERY_MS = 600_000;
/** What a session id or login token looks like: 32 bytes in base64url. */
const SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** The actor, in the audit log, of what Bulwark does by itself (the first start's key). */
const SYSTEM_ACTOR = 'bulwark';

/** The identity of `BULWARK_ADMIN_KEY`. */
const ADMIN: Identity = { actor: ADMIN_ACTOR, role: 'operator', keyName: undefined };

type KeyRow = Selectable<AccessTables['bulwark_access_keys']>;

/** Options of {@link SqlAccess}. */
export interface SqlAccessOptions {
  /** The store's query builder, with the access tables (`store.db.withTables<AccessTables>()`). */
  db: Kysely<AccessTables>;
  /** Where key creations and revocations are recorded. */
  audit: AuditLog;
  /** `BULWARK_ADMIN_KEY`: the bootstrap operator key, compared in constant time, never stored. */
  adminKey?: string | undefined;
  /** Clock, ms since the epoch (default `Date.now`): expiries, last use, the login limiter. */
  now?: () => number;
  /** Period of the purge of expired sessions and tokens, ms (default 10 min); false: none. */
  purgeEveryMs?: number | false;
  /** The login limiter (default 10 attempts per client network and minute). */
  login?: Omit<LoginLimiterOptions, 'now'>;
  /** Where a failed background purge is logged. */
  logger?: Pick<Logger, 'warn'>;
}

/**
 * {@link Access} over the tables of migration `0007_access`, one set of queries for SQLite and
 * PostgreSQL. Revocation, the session cap and the first start's token are transactions; a login
 * token is deleted by the statement that reads it, so it is used once even when two requests race.
 */
export class SqlAccess implements Access {
  readonly #db: Kysely<AccessTables>;
  readonly #audit: AuditLog;
  readonly #adminKey: string | undefined;
  readonly #now: () => number;
  readonly #logins: LoginLimiter;
  #anyKey = false;
  #noKeyUntil = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SqlAccessOptions) {
    this.#db = options.db;
    this.#audit = options.audit;
    this.#adminKey = options.adminKey;
    this.#now = options.now ?? Date.now;
    this.#logins = new LoginLimiter({ ...options.login, now: this.#now });
    const every = options.purgeEveryMs ?? PURGE_EVERY_MS;
    if (every !== false) {
      this.#timer = setInterval(() => {
        this.purge().catch((error: unknown) =>
          options.logger?.warn({ err: error }, 'expired admin sessions could not be purged; retried later'),
        );
      }, every);
      this.#timer.unref();
    }
  }

  async enabled(): Promise<boolean> {
    if (this.#adminKey !== undefined || this.#anyKey) return true;
    const now = this.#now();
    if (now < this.#noKeyUntil) return false;
    const row = await this.#db.selectFrom('bulwark_access_keys').select('name').limit(1).executeTakeFirst();
    this.#anyKey = row !== undefined;
    this.#noKeyUntil = now + NO_KEY_RECHECK_MS;
    return this.#anyKey;
  }

  async authenticate(key: string): Promise<Identity | undefined> {
    // Only what could be a stored key costs a query: any other string goes straight to the bootstrap key.
    if (looksLikeKey(key)) {
      const row = await this.#db
        .selectFrom('bulwark_access_keys')
        .selectAll()
        .where('digest', '=', digestOf(key))
        .executeTakeFirst();
      if (row !== undefined && row.revoked_at === null) {
        await this.#touchKey(row.name, row.last_used_at);
        return keyIdentity(row.name, row.role);
      }
    }
    return this.#adminKey !== undefined && sameSecret(key, this.#adminKey) ? ADMIN : undefined;
  }

  async createKey(name: string, role: Role, actor: string): Promise<CreatedKey> {
    checkKey(name, role);
    const key = newKey();
    const now = this.#now();
    const inserted = await this.#db
      .insertInto('bulwark_access_keys')
      .values({ digest: digestOf(key), name, role, created_at: now, last_used_at: null, revoked_at: null })
      .onConflict((conflict) => conflict.doNothing())
      .returning('name')
      .executeTakeFirst();
    if (inserted === undefined) throw bulwarkError('BWK_ERR_ACCESS_KEY_EXISTS', { name });
    this.#anyKey = true;
    await this.#audit.append({ actor, action: 'key.create', target: `key:${name}`, detail: { role } });
    return { key, info: { name, role, createdAt: now, lastUsedAt: null, revokedAt: null } };
  }

  async listKeys(): Promise<KeyInfo[]> {
    const rows = await this.#db.selectFrom('bulwark_access_keys').selectAll().orderBy('name').execute();
    return rows.map(keyInfo);
  }

  async revokeKey(name: string, actor: string): Promise<{ info: KeyInfo; sessionsEnded: number }> {
    const now = this.#now();
    const result = await this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('bulwark_access_keys')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const revokedAt = row.revoked_at === null ? now : Number(row.revoked_at);
      if (row.revoked_at === null)
        await trx
          .updateTable('bulwark_access_keys')
          .set({ revoked_at: now })
          .where('name', '=', name)
          .execute();
      const ended = await trx
        .deleteFrom('bulwark_access_sessions')
        .where('actor', '=', `key:${name}`)
        .executeTakeFirst();
      await trx.deleteFrom('bulwark_access_tokens').where('key_name', '=', name).execute();
      return { info: { ...keyInfo(row), revokedAt }, sessionsEnded: Number(ended.numDeletedRows) };
    });
    if (result === undefined)
      throw bulwarkError('BWK_ERR_ACCESS_KEY_NOT_FOUND', { name: JSON.stringify(name) });
    await this.#audit.append({
      actor,
      action: 'key.revoke',
      target: `key:${name}`,
      detail: { sessionsEnded: result.sessionsEnded },
    });
    return result;
  }

  loginAttempt(network: string): LoginDecision {
    return this.#logins.attempt(network);
  }

  async startSession(identity: Identity): Promise<{ id: string; session: SessionInfo }> {
    const id = newSecret();
    const now = this.#now();
    const session: SessionInfo = {
      role: identity.role,
      actor: identity.actor,
      csrfToken: newSecret(),
      expiresAt: now + SESSION_MAX_AGE_MS,
    };
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .insertInto('bulwark_access_sessions')
        .values({
          digest: digestOf(id),
          key_name: identity.keyName ?? null,
          actor: identity.actor,
          role: identity.role,
          csrf_token: session.csrfToken,
          created_at: now,
          last_seen_at: now,
          expires_at: session.expiresAt,
        })
        .execute();
      // The newest SESSIONS_PER_KEY of this actor stay: a script that logs in in a loop cannot grow the table.
      await trx
        .deleteFrom('bulwark_access_sessions')
        .where('actor', '=', identity.actor)
        .where('digest', 'not in', (newest) =>
          newest
            .selectFrom('bulwark_access_sessions')
            .select('digest')
            .where('actor', '=', identity.actor)
            .orderBy('created_at', 'desc')
            .orderBy('digest')
            .limit(SESSIONS_PER_KEY),
        )
        .execute();
    });
    return { id, session };
  }

  async session(id: string): Promise<OpenSession | undefined> {
    if (!SECRET_SHAPE.test(id)) return undefined;
    const digest = digestOf(id);
    const row = await this.#db
      .selectFrom('bulwark_access_sessions as s')
      .leftJoin('bulwark_access_keys as k', 'k.name', 's.key_name')
      .select([
        's.key_name',
        's.actor',
        's.role',
        's.csrf_token',
        's.last_seen_at',
        's.expires_at',
        'k.revoked_at',
        'k.last_used_at',
      ])
      .where('s.digest', '=', digest)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const now = this.#now();
    const lastSeen = Number(row.last_seen_at);
    if (Number(row.expires_at) <= now || lastSeen + SESSION_IDLE_MS <= now) {
      await this.#db.deleteFrom('bulwark_access_sessions').where('digest', '=', digest).execute();
      return undefined;
    }
    // A stored key's session ends with the key; one of BULWARK_ADMIN_KEY ends when the setting is removed.
    if (row.key_name === null ? this.#adminKey === undefined : row.revoked_at !== null) return undefined;
    if (now - lastSeen >= TOUCH_EVERY_MS) {
      await this.#db
        .updateTable('bulwark_access_sessions')
        .set({ last_seen_at: now })
        .where('digest', '=', digest)
        .execute();
      if (row.key_name !== null) await this.#touchKey(row.key_name, row.last_used_at);
    }
    const role = row.role as Role;
    return {
      identity: { actor: row.actor, role, keyName: row.key_name ?? undefined },
      session: { role, actor: row.actor, csrfToken: row.csrf_token, expiresAt: Number(row.expires_at) },
    };
  }

  async endSession(id: string): Promise<boolean> {
    if (!SECRET_SHAPE.test(id)) return false;
    const result = await this.#db
      .deleteFrom('bulwark_access_sessions')
      .where('digest', '=', digestOf(id))
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async redeemLoginToken(token: string): Promise<Identity | undefined> {
    if (!SECRET_SHAPE.test(token)) return undefined;
    // Read and deleted in one statement: of two requests racing with one token, one gets the row.
    const used = await this.#db
      .deleteFrom('bulwark_access_tokens')
      .where('digest', '=', digestOf(token))
      .returningAll()
      .executeTakeFirst();
    const now = this.#now();
    if (used === undefined || Number(used.expires_at) <= now) return undefined;
    const key = await this.#db
      .selectFrom('bulwark_access_keys')
      .selectAll()
      .where('name', '=', used.key_name)
      .executeTakeFirst();
    if (key === undefined || key.revoked_at !== null) return undefined;
    // The first login is done: no other link of this key works any more, and none is printed again.
    await this.#db.deleteFrom('bulwark_access_tokens').where('key_name', '=', used.key_name).execute();
    await this.#touchKey(key.name, null);
    return keyIdentity(key.name, key.role);
  }

  async prepareFirstLogin(): Promise<string | undefined> {
    if (this.#adminKey !== undefined) return undefined;
    const token = newSecret();
    const now = this.#now();
    const outcome = await this.#db.transaction().execute(async (trx) => {
      const keys = await trx
        .selectFrom('bulwark_access_keys')
        .select(['name', 'last_used_at', 'revoked_at'])
        .limit(2)
        .execute();
      const [only] = keys;
      if (keys.length > 1) return undefined;
      if (
        only !== undefined &&
        (only.name !== BOOTSTRAP_KEY_NAME || only.last_used_at !== null || only.revoked_at !== null)
      )
        return undefined;
      let created = false;
      if (only === undefined) {
        // The key itself is never shown: the one-time token is how its first session is opened.
        const inserted = await trx
          .insertInto('bulwark_access_keys')
          .values({
            digest: digestOf(newKey()),
            name: BOOTSTRAP_KEY_NAME,
            role: 'operator',
            created_at: now,
            last_used_at: null,
            revoked_at: null,
          })
          .onConflict((conflict) => conflict.doNothing())
          .executeTakeFirst();
        created = Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0;
      }
      await trx.deleteFrom('bulwark_access_tokens').where('key_name', '=', BOOTSTRAP_KEY_NAME).execute();
      await trx
        .insertInto('bulwark_access_tokens')
        .values({
          digest: digestOf(token),
          key_name: BOOTSTRAP_KEY_NAME,
          created_at: now,
          expires_at: now + LOGIN_TOKEN_TTL_MS,
        })
        .execute();
      return { created };
    });
    if (outcome === undefined) return undefined;
    this.#anyKey = true;
    await this.#audit.append({
      actor: SYSTEM_ACTOR,
      action: outcome.created ? 'key.create' : 'key.login-link',
      target: `key:${BOOTSTRAP_KEY_NAME}`,
      detail: outcome.created
        ? { role: 'operator', firstStart: true }
        : { expiresAt: now + LOGIN_TOKEN_TTL_MS },
    });
    return token;
  }

  async purge(): Promise<number> {
    const now = this.#now();
    const sessions = await this.#db
      .deleteFrom('bulwark_access_sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', now), eb('last_seen_at', '<=', now - SESSION_IDLE_MS)]))
      .executeTakeFirst();
    const tokens = await this.#db
      .deleteFrom('bulwark_access_tokens')
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    return Number(sessions.numDeletedRows) + Number(tokens.numDeletedRows);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Writes a key's last use unless it was written less than a minute ago (`last` as read). */
  async #touchKey(name: string, last: number | string | null): Promise<void> {
    const now = this.#now();
    if (last !== null && now - Number(last) < TOUCH_EVERY_MS) return;
    await this.#db
      .updateTable('bulwark_access_keys')
      .set({ last_used_at: now })
      .where('name', '=', name)
      .execute();
  }
}

function keyIdentity(name: string, role: string): Identity {
  return { actor: `key:${name}`, role: role as Role, keyName: name };
}

function keyInfo(row: KeyRow): KeyInfo {
  return {
    name: row.name,
    role: row.role as Role,
    createdAt: Number(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}

/** Throws `BWK_ERR_ACCESS_KEY_INVALID` naming what is wrong with a new key's name or role. */
function checkKey(name: string, role: string): void {
  if (!KEY_NAME_PATTERN.test(name))
    throw bulwarkError('BWK_ERR_ACCESS_KEY_INVALID', {
      detail: `name ${JSON.stringify(name)}: use 1 to 64 of a-z, 0-9, '.', '_' and '-'`,
    });
  if (!(ROLES as readonly string[]).includes(role))
    throw bulwarkError('BWK_ERR_ACCESS_KEY_INVALID', {
      detail: `role ${JSON.stringify(role)}: use ${ROLES.join(' or ')}`,
    });
}
