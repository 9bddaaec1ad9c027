// The spool replay's read (`SqlJobs.take`: the oldest queued jobs of every queue) is answered from
// an index, on a real SQLite file migrated as Bulwark migrates it. Without `0010_jobs_take_idx`
// SQLite sorted every queued row for each step of 25 (~2 ms for 37 000 jobs, on the event loop,
// growing with a long outage's spool: issue 18's failover benchmark).
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, type CompiledQuery } from 'kysely';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqlJobs } from '../src/queue/sql-jobs.js';
import { createStore } from '../src/runtime/store.js';
import { SQLITE_FILE_NAME } from '../src/store/index.js';
import type { StoreTables } from '../src/store/types.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the spool replay takes the oldest queued jobs', () => {
  it('through an index in (state, seq) order, without sorting every queued row', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-take-'));
    dirs.push(dir);
    const store = await createStore({ dataDir: dir });
    await store.close();

    // A second connection to the migrated file that records the SQL the repository runs.
    const file = new Database(path.join(dir, SQLITE_FILE_NAME));
    const queries: CompiledQuery[] = [];
    const db = new Kysely<StoreTables>({
      dialect: new SqliteDialect({ database: file }),
      log: (event) => void queries.push(event.query),
    });
    try {
      const insert = file.prepare(
        `insert into bulwark_jobs (queue, id, state, priority, run_at, attempts, max_attempts, data, created_at)
         values (?, ?, ?, 0, 0, 0, 3, '{}', 0)`,
      );
      file.transaction(() => {
        for (let i = 0; i < 3000; i += 1)
          insert.run(i % 2 === 0 ? 'a' : 'b', `j${i}`, i % 10 === 0 ? 'active' : 'queued');
      })();
      file.exec('analyze');

      const taken = await new SqlJobs(db, 'sqlite').take(25, 'replay:test', 1000, 30_000);
      // The 25 oldest queued jobs, whatever their queue (seq 1, 11, 21, … were active).
      const oldest = Array.from({ length: 3000 }, (_, i) => i + 1)
        .filter((seq) => (seq - 1) % 10 !== 0)
        .slice(0, 25);
      expect(taken.map((row) => Number(row.seq))).toEqual(oldest);

      const take = queries.find((q) => q.sql.startsWith('update "bulwark_jobs"'));
      expect(take).toBeDefined();
      const plan = file
        .prepare(`explain query plan ${take!.sql.replace(/ returning \*$/, '')}`)
        .all(...(take!.parameters as unknown[]))
        .map((row) => (row as { detail: string }).detail);
      expect(plan.join('\n')).toContain('bulwark_jobs_take_idx');
      expect(plan.join('\n')).not.toMatch(/TEMP B-TREE/);
    } finally {
      await db.destroy();
    }
  });
});
