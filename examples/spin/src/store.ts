// Spin's data in the store: users, who waits, matches and votes, the event feed and the answers of
// idempotent requests. Plain queries over Kysely (SQLite or PostgreSQL alike); every write that must
// be all-or-nothing is one transaction. Store failures reject with Bulwark's
// BWK_ERR_STORE_UNAVAILABLE (the store guards its driver), which the app answers as a 503.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Insertable, Kysely, Selectable, Transaction } from 'kysely';
import type { Store } from 'bulwark';
import { groupKey } from './domain/groups.js';
import { GENDERS, type Gender, type Seeking, type Waiter } from './domain/types.js';
import type { SpinTables } from './schema.js';

/** A user as the API shows it (never the token). */
export interface SpinUser {
  id: string;
  displayName: string;
  gender: Gender;
  seeking: Seeking;
  notify: { match: boolean; waitChange: boolean };
  /** Only shown to the user themself. */
  email: string | null;
  createdAt: number;
}

/** What a new user gives. */
export interface NewUser {
  displayName: string;
  gender: Gender;
  seeking: Seeking;
  email?: string | undefined;
  notify?: { match?: boolean | undefined; waitChange?: boolean | undefined } | undefined;
}

/** What a user may change of themself (PATCH /api/me); absent fields stay as they are. */
export interface UserChange {
  displayName?: string | undefined;
  email?: string | null | undefined;
  notify?: { match?: boolean | undefined; waitChange?: boolean | undefined } | undefined;
}

export type Vote = 'like' | 'pass';

/** A match as one of its two users sees it. */
export interface MatchView {
  id: string;
  matchedAt: number;
  partner: { id: string; displayName: string };
  /** How long this user had waited. */
  waitedMs: number;
  myVote: Vote | null;
  /** The partner's vote is shown only once both voted. */
  partnerVote: Vote | null;
  outcome: 'pending' | 'success' | 'declined';
}

/** One row of the event feed. */
export interface FeedEvent {
  id: number;
  userId: string | null;
  type: string;
  data: Record<string, unknown>;
  at: number;
}

/** A feed event not yet written. */
export type NewEvent = Omit<FeedEvent, 'id' | 'at'>;

/** A match by its id and its two users (the first the one whose turn it was). */
export interface MatchPair {
  matchId: string;
  userA: string;
  userB: string;
}

/** A join asked for; with an Idempotency-Key, the key and the request's fingerprint. */
export interface JoinRequest {
  user: SpinUser;
  key?: string | undefined;
  fingerprint?: string | undefined;
}

/** The answer an idempotent request was given (and is given again). */
export interface Answer {
  status: number;
  body: unknown;
}

/** A stored answer and the fingerprint of the request it answered. */
export interface Remembered extends Answer {
  fingerprint: string;
}

/** What became of a join: answered before (`replayed`), or joined or found waiting now. */
export type JoinResult =
  | ({ replayed: true } & Remembered)
  | ({ replayed: false; joinedAt: number | undefined; joined: boolean } & Answer);

type Db = Kysely<SpinTables> | Transaction<SpinTables>;

/** The digest a token is found by: SHA-256, hex. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** `woman+nonbinary` ⇄ `['woman', 'nonbinary']`, in the canonical order. */
export function seekingText(seeking: readonly Gender[]): string {
  return GENDERS.filter((g) => seeking.includes(g)).join('+');
}

function seekingOf(text: string): Seeking {
  return text.split('+') as unknown as Seeking;
}

function eventOf(row: Selectable<SpinTables['spin_events']>): FeedEvent {
  return {
    id: Number(row.id),
    userId: row.user_id,
    type: row.type,
    data: JSON.parse(row.data) as Record<string, unknown>,
    at: Number(row.at),
  };
}

function rememberedOf(row: Selectable<SpinTables['spin_idempotency']>): Remembered {
  return { fingerprint: row.fingerprint, status: row.status, body: JSON.parse(row.body) as unknown };
}

function userOf(row: SpinTables['spin_users']): SpinUser {
  return {
    id: row.id,
    displayName: row.display_name,
    gender: row.gender as Gender,
    seeking: seekingOf(row.seeking),
    notify: { match: row.notify_match === 1, waitChange: row.notify_wait === 1 },
    email: row.email,
    createdAt: Number(row.created_at),
  };
}

/** Spin's repository over the store Bulwark opened. */
export class SpinStore {
  readonly #db: Kysely<SpinTables>;
  readonly #now: () => number;

  constructor(store: Store, now: () => number = Date.now) {
    this.#db = store.db.withTables<SpinTables>();
    this.#now = now;
  }

  /** Creates a user; resolves with it and its bearer token (shown once, stored only as a digest). */
  async createUser(input: NewUser): Promise<{ user: SpinUser; token: string }> {
    const { row, token } = newUserRow(input, this.#now());
    await this.#db.insertInto('spin_users').values(row).execute();
    return { user: userOf(row), token };
  }

  /**
   * Creates many users at once (the test endpoints' seed and simulated arrivals): one transaction
   * per {@link BATCH} users, each a few multi-row INSERTs. With `join`, each also joins the queue at
   * `now`, its `joined` event written in the same transaction. Resolves with every user and its
   * token, in the order given; a failed batch rejects, the batches before it stay.
   */
  async createUsers(
    inputs: readonly NewUser[],
    opts: { join?: boolean; now?: number } = {},
  ): Promise<{ user: SpinUser; token: string }[]> {
    const now = opts.now ?? this.#now();
    const created: { user: SpinUser; token: string }[] = [];
    for (let i = 0; i < inputs.length; i += BATCH) {
      const batch = inputs.slice(i, i + BATCH).map((input) => newUserRow(input, now));
      const users = batch.map(({ row }) => userOf(row));
      await this.#db.transaction().execute(async (trx) => {
        await trx
          .insertInto('spin_users')
          .values(batch.map(({ row }) => row))
          .execute();
        if (opts.join !== true || users.length === 0) return;
        await trx
          .insertInto('spin_queue')
          .values(users.map((user) => ({ user_id: user.id, group_key: groupKey(user), joined_at: now })))
          .execute();
        await this.#append(trx, now, users.map(joinedEvent));
      });
      created.push(...users.map((user, j) => ({ user, token: batch[j]!.token })));
    }
    return created;
  }

  /**
   * Changes what a user may change of themself (name, e-mail, which notices they want): only the
   * fields given; resolves with the user as stored after the change, or undefined if there is none.
   */
  async updateUser(id: string, change: UserChange): Promise<SpinUser | undefined> {
    const set: Partial<SpinTables['spin_users']> = {
      ...(change.displayName === undefined ? {} : { display_name: change.displayName }),
      ...(change.email === undefined ? {} : { email: change.email }),
      ...(change.notify?.match === undefined ? {} : { notify_match: change.notify.match ? 1 : 0 }),
      ...(change.notify?.waitChange === undefined ? {} : { notify_wait: change.notify.waitChange ? 1 : 0 }),
    };
    if (Object.keys(set).length > 0)
      await this.#db.updateTable('spin_users').set(set).where('id', '=', id).execute();
    const row = await this.#db.selectFrom('spin_users').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : userOf(row);
  }

  async userByDigest(digest: string): Promise<SpinUser | undefined> {
    const row = await this.#db
      .selectFrom('spin_users')
      .selectAll()
      .where('token_digest', '=', digest)
      .executeTakeFirst();
    return row === undefined ? undefined : userOf(row);
  }

  /** The users of `ids` that exist, by id (read through `db`: inside a transaction, its own). */
  async usersById(ids: readonly string[], db: Db = this.#db): Promise<Map<string, SpinUser>> {
    const found = new Map<string, SpinUser>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await db
        .selectFrom('spin_users')
        .selectAll()
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
      for (const row of rows) found.set(row.id, userOf(row));
    }
    return found;
  }

  /**
   * Puts `user` in the queue (at `now`) unless it already waits; resolves with when it joined and
   * whether this call did it. The `joined` event is written in the same transaction.
   */
  async join(user: SpinUser, now = this.#now()): Promise<{ joinedAt: number; joined: boolean }> {
    const [result] = await this.joinMany([{ user }], undefined, now);
    if (result === undefined || result.replayed || result.joinedAt === undefined)
      throw new Error(`${user.id} left the queue while joining it`);
    return { joinedAt: result.joinedAt, joined: result.joined };
  }

  /**
   * Joins many at once, in one transaction (a group commit: one commit for all of them). A request
   * with an Idempotency-Key whose answer is stored (or given earlier in the same batch) is not
   * joined again: its result is that answer, `replayed`. Every other request joins (or finds its
   * user already waiting) and gets the answer `answer` makes of it, which is stored with its key in
   * the same transaction. Results are in the order of `requests`; a failed transaction rejects and
   * leaves nothing behind.
   */
  async joinMany(
    requests: readonly JoinRequest[],
    answer: (user: SpinUser, joinedAt: number | undefined, joined: boolean) => Answer = () => ({
      status: 200,
      body: null,
    }),
    now = this.#now(),
  ): Promise<JoinResult[]> {
    const keyOf = (r: JoinRequest) => (r.key === undefined ? undefined : `${r.user.id}\n${r.key}`);
    return this.#db.transaction().execute(async (trx) => {
      const earlier = new Map<string, Remembered>();
      const keyed = requests.filter((r) => r.key !== undefined);
      if (keyed.length > 0) {
        const rows = await trx
          .selectFrom('spin_idempotency')
          .selectAll()
          .where('user_id', 'in', [...new Set(keyed.map((r) => r.user.id))])
          .where('key', 'in', [...new Set(keyed.map((r) => r.key!))])
          .execute();
        for (const row of rows) earlier.set(`${row.user_id}\n${row.key}`, rememberedOf(row));
      }
      const fresh = new Map<string, SpinUser>();
      for (const r of requests) if (!earlier.has(keyOf(r) ?? '')) fresh.set(r.user.id, r.user);
      const joinedNow = new Set<string>();
      const waitingSince = new Map<string, number>();
      if (fresh.size > 0) {
        const inserted = await trx
          .insertInto('spin_queue')
          .values([...fresh.values()].map((u) => ({ user_id: u.id, group_key: groupKey(u), joined_at: now })))
          .onConflict((oc) => oc.column('user_id').doNothing())
          .returning('user_id')
          .execute();
        for (const row of inserted) joinedNow.add(row.user_id);
        const already = [...fresh.keys()].filter((id) => !joinedNow.has(id));
        if (already.length > 0) {
          const rows = await trx
            .selectFrom('spin_queue')
            .select(['user_id', 'joined_at'])
            .where('user_id', 'in', already)
            .execute();
          for (const row of rows) waitingSince.set(row.user_id, Number(row.joined_at));
        }
        // In queue order (all joined at `now`, so by user id): the feed then brings them in the
        // order of the queue, which the instances' copies keep without sorting.
        if (joinedNow.size > 0)
          await this.#append(
            trx,
            now,
            [...joinedNow].sort().map((id) => joinedEvent(fresh.get(id)!)),
          );
      }
      const results: JoinResult[] = [];
      const toRemember: SpinTables['spin_idempotency'][] = [];
      const counted = new Set<string>();
      for (const r of requests) {
        const key = keyOf(r);
        const prior = key === undefined ? undefined : earlier.get(key);
        if (prior !== undefined) {
          results.push({ replayed: true, ...prior });
          continue;
        }
        // The same user twice in one batch: the first joined, the second found it waiting.
        const joined = joinedNow.has(r.user.id) && !counted.has(r.user.id);
        counted.add(r.user.id);
        const joinedAt = joinedNow.has(r.user.id) ? now : waitingSince.get(r.user.id);
        const given = answer(r.user, joinedAt, joined);
        results.push({ replayed: false, joinedAt, joined, ...given });
        if (key === undefined) continue;
        earlier.set(key, { fingerprint: r.fingerprint ?? '', ...given });
        toRemember.push({
          user_id: r.user.id,
          key: r.key!,
          fingerprint: r.fingerprint ?? '',
          status: given.status,
          body: JSON.stringify(given.body),
          created_at: now,
        });
      }
      // Another instance answering the same key at the same moment: the first one stored wins.
      for (let i = 0; i < toRemember.length; i += INSERT_ROWS)
        await trx
          .insertInto('spin_idempotency')
          .values(toRemember.slice(i, i + INSERT_ROWS))
          .onConflict((oc) => oc.columns(['user_id', 'key']).doNothing())
          .execute();
      return results;
    });
  }

  /** Takes `user` out of the queue; resolves false when it was not waiting. */
  async leave(user: SpinUser, now = this.#now()): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .deleteFrom('spin_queue')
        .where('user_id', '=', user.id)
        .returning('joined_at')
        .executeTakeFirst();
      if (row === undefined) return false;
      await this.#append(trx, now, [
        {
          userId: null,
          type: 'left',
          data: { group: groupKey(user), userId: user.id, waitedMs: now - Number(row.joined_at) },
        },
      ]);
      return true;
    });
  }

  /** When `userId` joined the queue, or undefined when it is not waiting. */
  async waitingSince(userId: string): Promise<number | undefined> {
    const row = await this.#db
      .selectFrom('spin_queue')
      .select('joined_at')
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row === undefined ? undefined : Number(row.joined_at);
  }

  /** Everyone waiting, in queue order (joined_at, then user id). */
  async waiting(): Promise<Waiter[]> {
    const rows = await this.#db
      .selectFrom('spin_queue')
      .innerJoin('spin_users', 'spin_users.id', 'spin_queue.user_id')
      .select(['spin_queue.user_id', 'spin_queue.joined_at', 'spin_users.gender', 'spin_users.seeking'])
      .orderBy('spin_queue.joined_at')
      .orderBy('spin_queue.user_id')
      .execute();
    return rows.map((row) => ({
      userId: row.user_id,
      joinedAt: Number(row.joined_at),
      gender: row.gender as Gender,
      seeking: seekingOf(row.seeking),
    }));
  }

  /** How many wait, by group key. */
  async waitingByGroup(): Promise<Map<string, number>> {
    const rows = await this.#db
      .selectFrom('spin_queue')
      .select((eb) => ['group_key', eb.fn.countAll<number | string>().as('n')])
      .groupBy('group_key')
      .execute();
    return new Map(rows.map((row) => [row.group_key, Number(row.n)]));
  }

  /**
   * Pairs `first` and `second` if both still wait: in one transaction, takes both out of the queue
   * (or neither, when another matcher took one first: resolves undefined), records the match and
   * its events. This claim is what makes a double match impossible, whatever runs the matcher.
   */
  async claim(first: Waiter, second: Waiter, now = this.#now()): Promise<string | undefined> {
    const [id] = await this.claimMany([{ first, second }], now);
    return id;
  }

  /**
   * {@link claim} for many pairs in one transaction (a matcher round's: one commit for all). Each
   * pair is claimed or not on its own: a pair one of whose two no longer waits is left as it was
   * (the one still waiting is put back as it was). Resolves each pair's match id, or undefined for
   * a pair not claimed, in the order given.
   */
  async claimMany(
    pairs: readonly { first: Waiter; second: Waiter }[],
    now = this.#now(),
  ): Promise<(string | undefined)[]> {
    if (pairs.length === 0) return [];
    return this.#db.transaction().execute(async (trx) => {
      const taken = new Map<string, SpinTables['spin_queue']>();
      const ids = pairs.flatMap(({ first, second }) => [first.userId, second.userId]);
      for (let i = 0; i < ids.length; i += INSERT_ROWS) {
        const rows = await trx
          .deleteFrom('spin_queue')
          .where('user_id', 'in', ids.slice(i, i + INSERT_ROWS))
          .returning(['user_id', 'group_key', 'joined_at'])
          .execute();
        for (const row of rows) taken.set(row.user_id, row);
      }
      const used = new Set<string>();
      const matches: Insertable<SpinTables['spin_matches']>[] = [];
      const events: NewEvent[] = [];
      const claimed = pairs.map(({ first, second }) => {
        const free = (w: Waiter) => taken.has(w.userId) && !used.has(w.userId);
        if (first.userId === second.userId || !free(first) || !free(second)) return undefined;
        used.add(first.userId).add(second.userId);
        const id = randomUUID();
        const waitedA = Math.max(0, now - first.joinedAt);
        const waitedB = Math.max(0, now - second.joinedAt);
        matches.push({
          id,
          user_a: first.userId,
          user_b: second.userId,
          matched_at: now,
          waited_a_ms: waitedA,
          waited_b_ms: waitedB,
          vote_a: null,
          vote_b: null,
          outcome: 'pending',
          noticed: 0,
        });
        const matched = (w: Waiter, partner: Waiter, waitedMs: number): NewEvent[] => [
          { userId: w.userId, type: 'match', data: { matchId: id, partnerId: partner.userId, waitedMs } },
          { userId: null, type: 'matched', data: { group: groupKey(w), userId: w.userId, waitedMs } },
        ];
        events.push(...matched(first, second, waitedA), ...matched(second, first, waitedB));
        return id;
      });
      // Taken but not matched (the other of its pair no longer waited): back as it was.
      const putBack = [...taken.values()].filter((row) => !used.has(row.user_id));
      for (let i = 0; i < putBack.length; i += INSERT_ROWS)
        await trx
          .insertInto('spin_queue')
          .values(putBack.slice(i, i + INSERT_ROWS))
          .execute();
      for (let i = 0; i < matches.length; i += INSERT_ROWS)
        await trx
          .insertInto('spin_matches')
          .values(matches.slice(i, i + INSERT_ROWS))
          .execute();
      for (let i = 0; i < events.length; i += INSERT_ROWS)
        await this.#append(trx, now, events.slice(i, i + INSERT_ROWS));
      return claimed;
    });
  }

  /**
   * Matches made between `from` and `to` (ms) whose e-mail notices are not queued yet, oldest first
   * (read through the partial index that holds only those).
   */
  async unnoticedMatches(from: number, to: number, limit = 500): Promise<MatchPair[]> {
    const rows = await this.#db
      .selectFrom('spin_matches')
      .select(['id', 'user_a', 'user_b'])
      .where('noticed', '=', 0)
      .where('matched_at', '>=', from)
      .where('matched_at', '<=', to)
      .orderBy('matched_at')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ matchId: row.id, userA: row.user_a, userB: row.user_b }));
  }

  /** Notes that the notices of these matches are queued. */
  async markNoticed(matchIds: readonly string[]): Promise<void> {
    for (let i = 0; i < matchIds.length; i += INSERT_ROWS)
      await this.#db
        .updateTable('spin_matches')
        .set({ noticed: 1 })
        .where('id', 'in', matchIds.slice(i, i + INSERT_ROWS))
        .execute();
  }

  /**
   * Records `userId`'s vote on a match; the second vote settles the outcome, told to both. Resolves
   * the match as the voter sees it, `undefined` when the match is not theirs, or `'voted'` when
   * they already voted (a vote is final).
   */
  async vote(
    matchId: string,
    userId: string,
    vote: Vote,
    now = this.#now(),
  ): Promise<MatchView | 'voted' | undefined> {
    return this.#db.transaction().execute(async (trx) => {
      const match = await trx
        .selectFrom('spin_matches')
        .selectAll()
        .where('id', '=', matchId)
        .executeTakeFirst();
      if (match === undefined || (match.user_a !== userId && match.user_b !== userId)) return undefined;
      const side = match.user_a === userId ? 'a' : 'b';
      if (match[`vote_${side}`] !== null) return 'voted';
      const other = side === 'a' ? match.vote_b : match.vote_a;
      const outcome =
        other === null ? 'pending' : other === 'like' && vote === 'like' ? 'success' : 'declined';
      const updated = await trx
        .updateTable('spin_matches')
        .set(side === 'a' ? { vote_a: vote, outcome } : { vote_b: vote, outcome })
        .where('id', '=', matchId)
        .where(`vote_${side}`, 'is', null)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) return 'voted';
      if (outcome !== 'pending')
        await this.#append(
          trx,
          now,
          [match.user_a, match.user_b].map((user) => ({
            userId: user,
            type: 'outcome',
            data: { matchId, outcome },
          })),
        );
      return (await this.#matchesOf(trx, userId, { id: matchId }))[0];
    });
  }

  /** The user's matches, newest first, at most `limit`, those before `before` (ms) for paging. */
  history(userId: string, limit: number, before?: number): Promise<MatchView[]> {
    return this.#matchesOf(this.#db, userId, { limit, ...(before === undefined ? {} : { before }) });
  }

  async #matchesOf(
    db: Db,
    userId: string,
    opts: { id?: string; limit?: number; before?: number },
  ): Promise<MatchView[]> {
    let query = db
      .selectFrom('spin_matches')
      .selectAll()
      .where((eb) => eb.or([eb('user_a', '=', userId), eb('user_b', '=', userId)]));
    if (opts.id !== undefined) query = query.where('id', '=', opts.id);
    if (opts.before !== undefined) query = query.where('matched_at', '<', opts.before);
    const rows = await query
      .orderBy('matched_at', 'desc')
      .limit(opts.limit ?? 1)
      .execute();
    const partners = await this.usersById(
      rows.map((r) => (r.user_a === userId ? r.user_b : r.user_a)),
      db,
    );
    return rows.map((row) => {
      const mine = row.user_a === userId;
      const partnerId = mine ? row.user_b : row.user_a;
      const myVote = (mine ? row.vote_a : row.vote_b) as Vote | null;
      const theirs = (mine ? row.vote_b : row.vote_a) as Vote | null;
      return {
        id: row.id,
        matchedAt: Number(row.matched_at),
        partner: { id: partnerId, displayName: partners.get(partnerId)?.displayName ?? 'someone' },
        waitedMs: Number(mine ? row.waited_a_ms : row.waited_b_ms),
        myVote,
        partnerVote: row.outcome === 'pending' ? null : theirs,
        outcome: row.outcome as MatchView['outcome'],
      };
    });
  }

  /** Feed events after `afterId`, oldest first, at most `limit` (of one user, or all). */
  async events(afterId: number, limit: number, userId?: string): Promise<FeedEvent[]> {
    let query = this.#db.selectFrom('spin_events').selectAll().where('id', '>', afterId);
    if (userId !== undefined) query = query.where('user_id', '=', userId);
    const rows = await query.orderBy('id').limit(limit).execute();
    return rows.map(eventOf);
  }

  /** The id of the newest event (0 when there is none): where a new reader of the feed starts. */
  async lastEventId(): Promise<number> {
    const row = await this.#db
      .selectFrom('spin_events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  /** Events of the last `sinceMs` of the given global types, oldest first (to rebuild statistics). */
  async recent(types: readonly string[], since: number): Promise<FeedEvent[]> {
    const rows = await this.#db
      .selectFrom('spin_events')
      .selectAll()
      .where('user_id', 'is', null)
      .where('type', 'in', [...types])
      .where('at', '>=', since)
      .orderBy('id')
      .execute();
    return rows.map(eventOf);
  }

  /** The stored answer of an idempotent request, if any. */
  async remembered(userId: string, key: string): Promise<Remembered | undefined> {
    const row = await this.#db
      .selectFrom('spin_idempotency')
      .selectAll()
      .where('user_id', '=', userId)
      .where('key', '=', key)
      .executeTakeFirst();
    return row === undefined ? undefined : rememberedOf(row);
  }

  /** Keeps the answer of an idempotent request (the first one wins when two race). */
  async remember(
    userId: string,
    key: string,
    fingerprint: string,
    status: number,
    body: unknown,
  ): Promise<void> {
    await this.#db
      .insertInto('spin_idempotency')
      .values({
        user_id: userId,
        key,
        fingerprint,
        status,
        body: JSON.stringify(body),
        created_at: this.#now(),
      })
      .onConflict((oc) => oc.columns(['user_id', 'key']).doNothing())
      .execute();
  }

  /** Deletes events and idempotent answers older than `before` (ms); resolves how many rows went. */
  async prune(before: number): Promise<number> {
    const events = await this.#db.deleteFrom('spin_events').where('at', '<', before).executeTakeFirst();
    const answers = await this.#db
      .deleteFrom('spin_idempotency')
      .where('created_at', '<', before)
      .executeTakeFirst();
    return Number(events.numDeletedRows) + Number(answers.numDeletedRows);
  }

  /**
   * Empties the queue and the feed (the test endpoints' reset) and, with `users`, the users, their
   * matches and the answers of their idempotent requests too; users and matches stay otherwise. In
   * one transaction, which writes a `reset` event as the new feed's first: every instance reading
   * the feed drops its copy of the queue. Resolves with how many rows of each went.
   */
  async reset(opts: { users?: boolean } = {}, now = this.#now()): Promise<ResetCounts> {
    return this.#db.transaction().execute(async (trx) => {
      const count = (result: { numDeletedRows: bigint }) => Number(result.numDeletedRows);
      const waiting = count(await trx.deleteFrom('spin_queue').executeTakeFirst());
      const events = count(await trx.deleteFrom('spin_events').executeTakeFirst());
      let users = 0;
      let matches = 0;
      if (opts.users === true) {
        matches = count(await trx.deleteFrom('spin_matches').executeTakeFirst());
        await trx.deleteFrom('spin_idempotency').execute();
        users = count(await trx.deleteFrom('spin_users').executeTakeFirst());
      }
      await this.#append(trx, now, [{ userId: null, type: 'reset', data: { users: opts.users === true } }]);
      return { waiting, events, users, matches };
    });
  }

  async #append(db: Db, at: number, events: NewEvent[]): Promise<void> {
    await db
      .insertInto('spin_events')
      .values(events.map((e) => ({ user_id: e.userId, type: e.type, data: JSON.stringify(e.data), at })))
      .execute();
  }
}

/** Rows per multi-row statement: at most 9 values each, far below either engine's limit of parameters. */
const INSERT_ROWS = 250;

/** Users written per transaction by {@link SpinStore.createUsers}: 9 values each, far below SQLite's limit. */
const BATCH = 500;

/** What {@link SpinStore.reset} deleted: rows of each table. */
export interface ResetCounts {
  waiting: number;
  events: number;
  users: number;
  matches: number;
}

/** A new user's row and its token (the row holds only the token's digest). */
function newUserRow(input: NewUser, now: number): { row: SpinTables['spin_users']; token: string } {
  const token = randomBytes(32).toString('base64url');
  const row: SpinTables['spin_users'] = {
    id: randomUUID(),
    token_digest: tokenDigest(token),
    display_name: input.displayName,
    gender: input.gender,
    seeking: seekingText(input.seeking),
    notify_match: input.notify?.match === true ? 1 : 0,
    notify_wait: input.notify?.waitChange === true ? 1 : 0,
    email: input.email ?? null,
    created_at: now,
  };
  return { row, token };
}

/** The feed event of a user joining the queue (every instance adds it to its copy). */
function joinedEvent(user: SpinUser): NewEvent {
  return { userId: null, type: 'joined', data: { group: groupKey(user), userId: user.id } };
}
