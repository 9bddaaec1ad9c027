import type { Kysely } from 'kysely';
import type { AuditRetention, StoreTables } from './types.js';

/**
 * Target of the summary rows of refused requests (no or a wrong key) to authenticated endpoints.
 * They have their own cap ({@link AuditRetention.targetCaps}), so a flood of refusals can never
 * push out the rows of real actions, and `list({ excludeTarget })` leaves them out.
 */
export const AUDIT_REFUSED_TARGET = 'auth:refused';

/** The defaults of {@link AuditRetention}. */
export const DEFAULT_AUDIT_RETENTION: AuditRetention = {
  maxAgeMs: 90 * 86_400_000,
  maxRows: 100_000,
  targetCaps: { [AUDIT_REFUSED_TARGET]: 1_000 },
  batchSize: 500,
  maxBatches: 200,
};

/**
 * Applies the retention, in batches of at most `batchSize` rows by ascending id (the primary key),
 * yielding to the event loop between statements: per-target caps first, then the total cap, then
 * age; at most `maxBatches` delete statements per run.
 * Resolves with the number of rows deleted. Ids only grow and rows are appended in time order, so
 * "oldest" is "lowest id" and no statement needs an index beyond the primary key and
 * `(target, id)`. Driver errors reject (the caller guards).
 */
export async function pruneAudit(
  db: Kysely<StoreTables>,
  retention: AuditRetention,
  now: number,
): Promise<number> {
  let budget = retention.maxBatches;
  let deleted = 0;
  const run = async (cutId: number, target: string | undefined): Promise<void> => {
    while (budget > 0) {
      budget -= 1;
      let batch = db.selectFrom('bulwark_audit').select('id').where('id', '<=', cutId);
      if (target !== undefined) batch = batch.where('target', '=', target);
      const result = await db
        .deleteFrom('bulwark_audit')
        .where('id', 'in', batch.orderBy('id').limit(retention.batchSize))
        .executeTakeFirst();
      const count = Number(result.numDeletedRows);
      deleted += count;
      if (count < retention.batchSize) return;
      await yieldToLoop();
    }
  };
  for (const [target, cap] of Object.entries(retention.targetCaps)) {
    const cut = await newestBeyond(db, cap, target);
    if (cut !== undefined) await run(cut, target);
  }
  const cut = await newestBeyond(db, retention.maxRows, undefined);
  if (cut !== undefined) await run(cut, undefined);
  // Expired rows are the oldest ones (rows are appended in time order): look at the oldest batch,
  // delete its expired prefix, and go on while a whole batch was expired.
  const before = now - retention.maxAgeMs;
  while (budget > 0) {
    budget -= 1;
    const oldest = await db
      .selectFrom('bulwark_audit')
      .select(['id', 'at'])
      .orderBy('id')
      .limit(retention.batchSize)
      .execute();
    const firstKept = oldest.findIndex((row) => Number(row.at) >= before);
    const last = oldest[(firstKept === -1 ? oldest.length : firstKept) - 1];
    if (last === undefined) break;
    const result = await db.deleteFrom('bulwark_audit').where('id', '<=', Number(last.id)).executeTakeFirst();
    deleted += Number(result.numDeletedRows);
    if (firstKept !== -1 || oldest.length < retention.batchSize) break;
    await yieldToLoop();
  }
  return deleted;
}

/** The id of the newest row past the `keep` newest (of `target`), i.e. the first one to delete. */
async function newestBeyond(
  db: Kysely<StoreTables>,
  keep: number,
  target: string | undefined,
): Promise<number | undefined> {
  let query = db.selectFrom('bulwark_audit').select('id');
  if (target !== undefined) query = query.where('target', '=', target);
  const row = await query.orderBy('id', 'desc').limit(1).offset(keep).executeTakeFirst();
  return row === undefined ? undefined : Number(row.id);
}

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
