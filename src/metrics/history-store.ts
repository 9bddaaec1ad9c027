// SQL of the metrics history over `bulwark_metric_points` (migration 0005_metrics_history): one row
// per (series, resolution in s, bucket start in ms) holding count, sum, min, max and last of the
// samples in the bucket. The same statements run on SQLite and PostgreSQL.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { StoreEngine, StoreTables } from '../store/types.js';

/** One stored bucket. */
export type PointRow = StoreTables['bulwark_metric_points'];

/** Rows per INSERT: 8 parameters each, well under both engines' limit on parameters per statement. */
const CHUNK = 500;
/** Serialises downsampling across instances sharing a PostgreSQL store (pg_advisory_xact_lock key). */
const DOWNSAMPLE_LOCK = 0x62776b6d; // 'bwkm'

const TABLE = sql.table('bulwark_metric_points');
const OLD = (column: string) => sql.ref(`bulwark_metric_points.${column}`);
const NEW = (column: string) => sql.ref(`excluded.${column}`);

/** The statements of the history; plain and throwing, the caller logs. */
export class PointStore {
  readonly #db: Kysely<StoreTables>;
  readonly #engine: StoreEngine;

  constructor(db: Kysely<StoreTables>, engine: StoreEngine) {
    this.#db = db;
    this.#engine = engine;
  }

  /**
   * Writes one sample's rows in one transaction. A row whose bucket already holds samples (a second
   * sample in the same bucket, or another instance writing the same series) is merged into it.
   */
  async write(rows: PointRow[]): Promise<void> {
    // One order for every writer, so two instances upserting the same rows cannot deadlock.
    const sorted = rows.slice().sort((a, b) => (a.series < b.series ? -1 : a.series > b.series ? 1 : 0));
    await this.#db.transaction().execute(async (trx) => {
      for (let i = 0; i < sorted.length; i += CHUNK) {
        await trx
          .insertInto('bulwark_metric_points')
          .values(sorted.slice(i, i + CHUNK))
          .onConflict((oc) =>
            oc.columns(['series', 'resolution', 'at']).doUpdateSet({
              count: sql<number>`${OLD('count')} + ${NEW('count')}`,
              sum: sql<number>`${OLD('sum')} + ${NEW('sum')}`,
              min: sql<number>`case when ${NEW('min')} < ${OLD('min')} then ${NEW('min')} else ${OLD('min')} end`,
              max: sql<number>`case when ${NEW('max')} > ${OLD('max')} then ${NEW('max')} else ${OLD('max')} end`,
              last: sql<number>`${NEW('last')}`,
            }),
          )
          .execute();
      }
    });
  }

  /**
   * Recomputes the `coarseS` buckets that end at or before `endMs` from the `fineS` rows, from the
   * newest `coarseS` bucket already stored on (it may have missed late samples), or from the oldest
   * `fineS` row when there is none. A stored bucket is replaced, never added to, so running this twice,
   * or on two instances at once, gives the same rows. The newest stored bucket is only recomputed while
   * its fine rows are all still kept (it starts at or after `keptFromMs`).
   */
  async downsample(fineS: number, coarseS: number, endMs: number, keptFromMs: number): Promise<void> {
    const coarseMs = coarseS * 1000;
    const newest = sql`(select max(at) from ${TABLE} where resolution = ${coarseS})`;
    const start = sql`coalesce(case when ${newest} >= ${keptFromMs} then ${newest} else ${newest} + ${sql.lit(coarseMs)} end, 0)`;
    const buckets = aggregate(coarseMs, sql`resolution = ${fineS} and at >= ${start} and at < ${endMs}`);
    const statement = sql`insert into ${TABLE} (series, resolution, at, "count", "sum", "min", "max", "last")
      select series, ${sql.lit(coarseS)}, at, "count", "sum", "min", "max", "last" from (${buckets}) as b where true
      on conflict (series, resolution, at) do update set "count" = excluded."count", "sum" = excluded."sum",
        "min" = excluded."min", "max" = excluded."max", "last" = excluded."last"`;
    if (this.#engine === 'sqlite') {
      // One statement: SQLite runs it under its single write lock.
      await statement.execute(this.#db);
      return;
    }
    // Two instances upserting the same buckets in different orders could deadlock; one at a time.
    await this.#db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${sql.lit(DOWNSAMPLE_LOCK)})`.execute(trx);
      await statement.execute(trx);
    });
  }

  /** Deletes the rows of `resolutionS` whose bucket started before `beforeMs`; resolves with how many. */
  async deleteBefore(resolutionS: number, beforeMs: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('bulwark_metric_points')
      .where('resolution', '=', resolutionS)
      .where('at', '<', beforeMs)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Deletes rows of resolutions other than `kept` that started before `beforeMs` (tiers changed). */
  async deleteOtherResolutions(kept: number[], beforeMs: number): Promise<void> {
    await this.#db
      .deleteFrom('bulwark_metric_points')
      .where('resolution', 'not in', kept)
      .where('at', '<', beforeMs)
      .execute();
  }

  /** Start of the newest stored bucket of `resolutionS`, over all series. */
  async newestAt(resolutionS: number): Promise<number | undefined> {
    const row = await this.#db
      .selectFrom('bulwark_metric_points')
      .select((eb) => eb.fn.max('at').as('at'))
      .where('resolution', '=', resolutionS)
      .executeTakeFirst();
    return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
  }

  /** Stored buckets of one series and resolution starting in [fromMs, toMs], oldest first. */
  async points(series: string, resolutionS: number, fromMs: number, toMs: number): Promise<PointRow[]> {
    const rows = await this.#db
      .selectFrom('bulwark_metric_points')
      .selectAll()
      .where('series', '=', series)
      .where('resolution', '=', resolutionS)
      .where('at', '>=', fromMs)
      .where('at', '<=', toMs)
      .orderBy('at')
      .execute();
    return rows.map(numeric);
  }

  /**
   * Every distinct series name, by a skip scan of the primary key (one index probe per name, not a
   * pass over every row).
   */
  async seriesNames(): Promise<string[]> {
    const { rows } = await sql<{ series: string | null }>`with recursive names(series) as (
        select min(series) from ${TABLE}
        union all
        select (select min(p.series) from ${TABLE} as p where p.series > names.series)
        from names where names.series is not null
      ) select series from names where series is not null`.execute(this.#db);
    return rows.flatMap((row) => (row.series === null ? [] : [row.series]));
  }
}

/**
 * Rows matching `where` merged into buckets of `bucketMs`: count and sum added, min of mins, max of
 * maxes, and the `last` of the newest row. Columns: series, at (bucket start), count, sum, min, max, last.
 */
function aggregate(bucketMs: number, where: RawBuilder<unknown>): RawBuilder<unknown> {
  const bucket = sql`(at / ${sql.lit(bucketMs)}) * ${sql.lit(bucketMs)}`;
  return sql`select series, bucket as at, sum("count") as "count", sum("sum") as "sum", min("min") as "min",
      max("max") as "max", max(final) as "last"
    from (
      select series, ${bucket} as bucket, "count", "sum", "min", "max",
        first_value("last") over (partition by series, ${bucket} order by at desc) as final
      from ${TABLE} where ${where}
    ) as rows_in_bucket
    where true
    group by series, bucket`;
}

/** Rows (oldest first) merged into buckets of `resolutionS`, as downsampling would. */
export function mergeInto(rows: PointRow[], resolutionS: number): PointRow[] {
  const bucketMs = resolutionS * 1000;
  const merged = new Map<number, PointRow>();
  for (const row of rows) {
    const at = Math.floor(row.at / bucketMs) * bucketMs;
    const into = merged.get(at);
    if (into === undefined) {
      merged.set(at, { ...row, resolution: resolutionS, at });
      continue;
    }
    into.count += row.count;
    into.sum += row.sum;
    into.min = Math.min(into.min, row.min);
    into.max = Math.max(into.max, row.max);
    into.last = row.last;
  }
  return [...merged.values()];
}

/** PostgreSQL returns sums of integers as bigint; the pool parses those, but be explicit. */
function numeric(row: PointRow): PointRow {
  return {
    series: row.series,
    resolution: Number(row.resolution),
    at: Number(row.at),
    count: Number(row.count),
    sum: Number(row.sum),
    min: Number(row.min),
    max: Number(row.max),
    last: Number(row.last),
  };
}
