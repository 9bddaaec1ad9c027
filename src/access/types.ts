// The access capability's contract: admin keys with a role, console sessions and one-time login
// tokens, all kept in the store as SHA-256 digests (src/access/service.ts).

/** What a caller may do: `viewer` reads, `operator` also changes things. */
export const ROLES = ['viewer', 'operator'] as const;
export type Role = (typeof ROLES)[number];

/** Names of stored keys: what the audit log shows as `key:<name>`. */
export const KEY_NAME_PATTERN = /^[a-z0-9._-]{1,64}$/;

/** The name of the key the reference app creates on its first start (see `prepareFirstLogin`). */
export const BOOTSTRAP_KEY_NAME = 'bootstrap';

/** The audit actor of the `BULWARK_ADMIN_KEY` bootstrap key (never stored). */
export const ADMIN_ACTOR = 'admin';

/** A stored key as listed: never the key nor its digest. Times in ms since the epoch. */
export interface KeyInfo {
  name: string;
  role: Role;
  createdAt: number;
  /** Last use, to the minute (written at most once a minute per key); null when never used. */
  lastUsedAt: number | null;
  /** When it was revoked; null while it is valid. */
  revokedAt: number | null;
}

/** Who a request acts as. */
export interface Identity {
  /** The audit actor: `key:<name>` for a stored key, `admin` for `BULWARK_ADMIN_KEY`. */
  actor: string;
  role: Role;
  /** The stored key's name; undefined for the `BULWARK_ADMIN_KEY` bootstrap key. */
  keyName: string | undefined;
}

/** A console session as `POST|GET /admin/api/session` answer it. */
export interface SessionInfo {
  role: Role;
  actor: string;
  /** Sent back as `X-CSRF-Token` on every mutating request made with the session cookie. */
  csrfToken: string;
  /** The absolute end of the session, ms since the epoch (it also ends after the idle timeout). */
  expiresAt: number;
}

/** The access tables (migration `0007_access`); timestamps in ms since the epoch. */
export type AccessTables = {
  bulwark_access_keys: {
    /** SHA-256 of the key, hex: how a key is looked up. */
    digest: string;
    name: string;
    role: string;
    created_at: number;
    last_used_at: number | null;
    revoked_at: number | null;
  };
  bulwark_access_sessions: {
    /** SHA-256 of the session id (the cookie's value), hex. */
    digest: string;
    /** The stored key it was opened with; null for `BULWARK_ADMIN_KEY`. */
    key_name: string | null;
    actor: string;
    role: string;
    csrf_token: string;
    created_at: number;
    last_seen_at: number;
    expires_at: number;
  };
  bulwark_access_tokens: {
    /** SHA-256 of the one-time login token, hex. */
    digest: string;
    key_name: string;
    created_at: number;
    expires_at: number;
  };
};

/** A stored key just created: the key itself exists only in this answer. */
export interface CreatedKey {
  /** `bwk_` + 32 random bytes, base64url: shown once, never stored (only its digest is). */
  key: string;
  info: KeyInfo;
}

/** A valid console session, found by its id (the cookie's value). */
export interface OpenSession {
  identity: Identity;
  session: SessionInfo;
}

/**
 * Admin keys, console sessions and one-time login tokens, in the store; `BULWARK_ADMIN_KEY` is a
 * bootstrap operator key beside them, never stored. Keys, session ids and tokens are 256 random bits,
 * kept only as SHA-256 digests. Store failures reject with `BWK_ERR_STORE_UNAVAILABLE`.
 */
export interface Access {
  /**
   * Whether any key can open the admin API: `BULWARK_ADMIN_KEY` is set or a key is stored (revoked
   * ones too). Cached: true once seen true (keys are never deleted), false re-read at most once a second.
   */
  enabled(): Promise<boolean>;
  /** Who `key` is: a stored key that is not revoked, else the bootstrap key (compared in constant time), else undefined. */
  authenticate(key: string): Promise<Identity | undefined>;
  /**
   * Stores a new key. Throws `BWK_ERR_ACCESS_KEY_INVALID` for a bad name or role,
   * `BWK_ERR_ACCESS_KEY_EXISTS` when the name is taken (also by a revoked key: names are never
   * reused, so the audit log's `key:<name>` always means one key). Audited as `key.create` by `actor`.
   */
  createKey(name: string, role: Role, actor: string): Promise<CreatedKey>;
  /** Every stored key, by name. */
  listKeys(): Promise<KeyInfo[]>;
  /**
   * Revokes a key (again: no change) and ends its sessions and login tokens, in one transaction.
   * Throws `BWK_ERR_ACCESS_KEY_NOT_FOUND`. Audited as `key.revoke` by `actor`.
   */
  revokeKey(name: string, actor: string): Promise<{ info: KeyInfo; sessionsEnded: number }>;
  /** Counts a login attempt of a client network; refused beyond 10 a minute (in this process). */
  loginAttempt(network: string): LoginDecision;
  /** Opens a session for `identity`; the oldest sessions of the same actor beyond 20 are ended. */
  startSession(identity: Identity): Promise<{ id: string; session: SessionInfo }>;
  /** The session with this id, unless it is unknown, expired (12 h), idle (1 h) or its key revoked. */
  session(id: string): Promise<OpenSession | undefined>;
  /** Ends a session; true when there was one. */
  endSession(id: string): Promise<boolean>;
  /**
   * Exchanges a one-time login token for the identity of its key (the token, and every other token
   * of the key, are deleted); undefined when unknown, used, expired or its key revoked.
   */
  redeemLoginToken(token: string): Promise<Identity | undefined>;
  /**
   * The reference app's first start: unless `BULWARK_ADMIN_KEY` is set, when no key is stored creates
   * the operator key `bootstrap` (its key is thrown away) and, while that key is the only one and
   * has never been used, replaces its login token with a new one (valid 24 h) and returns it.
   * Undefined once any other key exists or the bootstrap key was used.
   */
  prepareFirstLogin(): Promise<string | undefined>;
  /** Deletes expired and idle sessions and expired login tokens; resolves with the rows deleted. */
  purge(): Promise<number>;
  /** Stops the purge timer. */
  close(): void;
}

/** The answer to one login attempt count. */
export interface LoginDecision {
  allowed: boolean;
  /** Seconds until the client network's window ends (at least 1): the `Retry-After` of a refusal. */
  retryAfterS: number;
}
