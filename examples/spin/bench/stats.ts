// The queue statistics' window aggregate (stats-windows.ts) on a SQLite file holding MATCHES matches
// over 7 days (default 200,000, 20,000 users): the time of one aggregate per window at the default
// cap (DEFAULT_WINDOW_CAP matches; a window holding more is sampled) and uncapped, median of 5,
// against a plain COUNT(*) of the same window in the same run. Run: npx tsx examples/spin/bench/stats.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { createStore } from 'bulwark';
import { spinMigrations } from '../src/schema.js';
import { aggregateWindow, DEFAULT_WINDOW_CAP, WINDOWS, type WindowName } from '../src/stats-windows.js';
import type { SpinTables } from '../src/schema.js';

const MATCHES = Number(process.env['MATCHES'] ?? 200_000);
const USERS = 20_000;
const NOW = Date.now();

const print = (line: string): boolean => process.stdout.write(`${line}\n`);

async function medianMs(run: () => Promise<unknown>, times = 5): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i += 1) {
    const start = process.hrtime.bigint();
    await run();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] ?? 0;
}

const dir = mkdtempSync(path.join(tmpdir(), 'spin-stats-bench-'));
const store = await createStore({
  sqliteFile: path.join(dir, 'bench.sqlite'),
  migrations: async (engine) => spinMigrations(engine),
});
try {
  const db = store.db.withTables<SpinTables>();
  const groups = [
    ['man', 'woman'],
    ['woman', 'man'],
    ['man', 'man'],
    ['woman', 'woman+man'],
    ['nonbinary', 'woman+man+nonbinary'],
  ] as const;
  for (let i = 0; i < USERS; i += 1000)
    await db
      .insertInto('spin_users')
      .values(
        Array.from({ length: 1000 }, (_, k) => {
          const [gender, seeking] = groups[(i + k) % groups.length]!;
          return {
            id: `u${i + k}`,
            token_digest: `d${i + k}`,
            display_name: `user ${i + k}`,
            gender,
            seeking,
            notify_match: 0,
            notify_wait: 0,
            email: null,
            created_at: NOW,
          };
        }),
      )
      .execute();
  // Matches spread evenly over 7 days, waits from seconds to an hour.
  const step = WINDOWS['7d'] / MATCHES;
  for (let i = 0; i < MATCHES; i += 500)
    await db
      .insertInto('spin_matches')
      .values(
        Array.from({ length: Math.min(500, MATCHES - i) }, (_, k) => {
          const n = i + k;
          return {
            id: `m${n}`,
            user_a: `u${(n * 2) % USERS}`,
            user_b: `u${(n * 2 + 1) % USERS}`,
            matched_at: Math.round(NOW - n * step),
            waited_a_ms: (n * 7919) % 3_600_000,
            waited_b_ms: (n * 104_729) % 600_000,
            vote_a: null,
            vote_b: null,
            outcome: n % 3 === 0 ? 'success' : n % 3 === 1 ? 'declined' : 'pending',
          };
        }),
      )
      .execute();
  const cpu = cpus();
  print(`machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}; node ${process.version}; SQLite file`);
  print(`${MATCHES} matches over 7 days, ${USERS} users`);
  for (const window of Object.keys(WINDOWS) as WindowName[]) {
    const inWindow = Math.min(MATCHES, Math.round((WINDOWS[window] / WINDOWS['7d']) * MATCHES));
    const count = await medianMs(() =>
      db
        .selectFrom('spin_matches')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('matched_at', '>=', NOW - WINDOWS[window])
        .executeTakeFirst(),
    );
    const capped = await medianMs(() => aggregateWindow(store, window, NOW, DEFAULT_WINDOW_CAP));
    const uncapped = await medianMs(() => aggregateWindow(store, window, NOW, Number.MAX_SAFE_INTEGER));
    const { cells, sampled, sampleEvery } = await aggregateWindow(store, window, NOW, DEFAULT_WINDOW_CAP);
    print(
      `${window} (${inWindow} matches): aggregate ${capped.toFixed(1)} ms at the ${DEFAULT_WINDOW_CAP} cap (${sampled} read, 1 in ${sampleEvery}; ${cells.length} rows), ${uncapped.toFixed(1)} ms reading all; COUNT(*) ${count.toFixed(1)} ms`,
    );
  }
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
