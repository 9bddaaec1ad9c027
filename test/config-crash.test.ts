import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Value from 'typebox/value';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigManager } from '../src/config/index.js';
import { stressSchema } from './fixtures/config-schema.js';
import { spawnTs } from './helpers/process.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function configFile(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-config-crash-'));
  dirs.push(dir);
  const file = path.join(dir, 'config.json');
  writeFileSync(file, `${JSON.stringify({ counter: 0, writer: 'init', payload: '' }, null, 2)}\n`);
  return file;
}

/** The file parses and validates, and so does every revision file beside it. */
function expectIntact(file: string): { counter: number } {
  const value = JSON.parse(readFileSync(file, 'utf8')) as { counter: number };
  expect([...Value.Errors(stressSchema, value)], 'schema errors of the config file').toEqual([]);
  const revisions = path.join(path.dirname(file), '.config.json.revisions');
  for (const name of readdirSync(revisions).filter((n) => /^\d+\.json$/.test(n))) {
    const record = JSON.parse(readFileSync(path.join(revisions, name), 'utf8')) as { content: string };
    expect(Value.Check(stressSchema, JSON.parse(record.content)), `revision ${name}`).toBe(true);
  }
  return value;
}

describe('config writes under kill -9 and concurrent writers', () => {
  it(
    'a writer killed with -9 at random moments never leaves a torn or invalid file, nor a lock that blocks the next one',
    { timeout: 240_000 },
    async () => {
      const file = configFile();
      const started = Date.now();
      const kills = 20;
      let staleLocks = 0;
      let lastRevision = 0;
      let lastCounter = 0;
      let writes = 0;
      for (let i = 0; i < kills; i++) {
        const writer = spawnTs('test/fixtures/config-writer.ts', [file, `w${i}`], {});
        try {
          // The first write of each new writer proves no stray lock blocks it (stale takeover).
          await writer.waitFor(/^wrote \d+/m, 30_000);
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 250));
        } finally {
          writer.child.kill('SIGKILL');
          await writer.exited;
        }
        const wrote = [...writer.stdout().matchAll(/^wrote (\d+) (\d+)$/gm)].map((m) => ({
          revision: Number(m[1]),
          counter: Number(m[2]),
        }));
        const first = wrote[0]?.revision ?? 0;
        const last = wrote.at(-1) ?? { revision: 0, counter: 0 };
        expect(first, `the first revision of writer ${i}`).toBeGreaterThan(lastRevision);
        lastRevision = last.revision;
        lastCounter = last.counter;
        writes += wrote.length;
        if (existsSync(`${file}.lock`)) staleLocks++;

        // Never torn, never invalid, and every acknowledged write is on disk.
        expect(expectIntact(file).counter).toBeGreaterThanOrEqual(lastCounter);
      }

      const manager = new ConfigManager({
        schema: stressSchema,
        file,
        env: {},
        lock: { staleMs: 1000, updateMs: 250 },
      });
      const report = await manager.start();
      expect(report.from).toBe('file');
      expect(report.revision).toBeGreaterThanOrEqual(lastRevision);
      expect(manager.get('counter')).toBeGreaterThanOrEqual(lastCounter);
      const history = await manager.history();
      expect(history.map((r) => r.revision)).toEqual(
        Array.from({ length: history.length }, (_, k) => report.revision - k),
      );
      await manager.close();
      console.log(
        `kill -9 loop: ${kills} kills, ${writes} acknowledged writes, ${staleLocks} kills left a lock that was ` +
          `taken over as stale, final revision ${report.revision}, ${Date.now() - started} ms`,
      );
    },
  );

  it('4 processes x 250 compare-and-set increments lose no update', { timeout: 180_000 }, async () => {
    const file = configFile();
    const first = new ConfigManager({ schema: stressSchema, file, env: {} });
    expect((await first.start()).revision).toBe(1);
    await first.close();

    const processes = 4;
    const each = 250;
    const startAt = Date.now() + 4000;
    const counters = Array.from({ length: processes }, (_, i) =>
      spawnTs('test/fixtures/config-counter.ts', [file, `c${i}`, String(each), String(startAt)], {}),
    );
    const exits = await Promise.all(counters.map((c) => c.exited));
    const elapsed = Date.now() - startAt;
    exits.forEach((exit, i) => expect(exit, counters[i]?.stderr()).toEqual({ code: 0, signal: null }));
    const stats = counters.map(
      (c) =>
        JSON.parse(c.stdout().trim().split('\n').at(-1) ?? '{}') as {
          done: number;
          conflicts: number;
          locked: number;
        },
    );

    const manager = new ConfigManager({ schema: stressSchema, file, env: {} });
    expect(await manager.start()).toEqual({ revision: processes * each + 1, from: 'file' });
    expect(manager.get('counter')).toBe(processes * each);
    const history = await manager.history();
    expect(history).toHaveLength(50);
    history.forEach((record, k) => {
      const revision = processes * each + 1 - k;
      expect(record.revision).toBe(revision);
      expect(record.diff).toEqual([{ path: 'counter', before: revision - 2, after: revision - 1 }]);
    });
    expect(stats.map((s) => s.done)).toEqual(Array.from({ length: processes }, () => each));
    await manager.close();
    const sum = (key: 'done' | 'conflicts' | 'locked') => stats.reduce((total, s) => total + s[key], 0);
    console.log(
      `compare-and-set: ${processes} x ${each} increments in ${elapsed} ms ` +
        `(${Math.round((sum('done') * 1000) / elapsed)} increments/s), ${sum('conflicts')} conflicts, ` +
        `${sum('locked')} lock timeouts retried`,
    );
  });
});
