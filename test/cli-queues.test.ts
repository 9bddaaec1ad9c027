import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobSummary } from '../src/queue/index.js';
import { createBulwark } from '../src/runtime/create.js';
import type { AuditRecord } from '../src/store/types.js';
import { spawnTs } from './helpers/process.js';
import { until } from './helpers/wait.js';

let dataDir: string;

async function cli(...args: string[]) {
  const run = spawnTs('src/cli/main.ts', args, { BULWARK_DATA_DIR: dataDir });
  const { code } = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Opens the data dir in this process, runs `fn`, closes it (so no worker outlives the test). */
async function withStore<T>(fn: (bw: Awaited<ReturnType<typeof createBulwark>>) => Promise<T>): Promise<T> {
  const bw = await createBulwark({
    env: {},
    dataDir,
    logLevel: 'warn',
    defaultMetrics: false,
    queues: { pollMs: 20 },
  });
  try {
    return await fn(bw);
  } finally {
    await bw.close();
  }
}

/** The table row of `queue` in `bulwark queues list`, split into cells. */
function rowOf(stdout: string, queue: string): string[] | undefined {
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((cells) => cells[0] === queue);
}

const DAY_MS = 24 * 60 * 60 * 1000;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-cli-queues-'));
  await withStore(async (bw) => {
    // Due in a day: the tests below (a minute or more on a busy machine) still find them delayed.
    await bw.queues.add('email', { to: 'a' }, { id: 'e1', delay: DAY_MS });
    await bw.queues.add('email', { to: 'b' }, { id: 'e2', delay: DAY_MS });
    await bw.queues.add('billing', { n: 1 }, { id: 'b1' });
    bw.queues.process('failing', async () => {
      throw new Error('smtp refused');
    });
    await bw.queues.add('failing', { n: 1 }, { id: 'f1', attempts: 1 });
    await until(
      async () => (await bw.queues.counts('failing')).get('failing')?.dead === 1,
      10_000,
      'a dead job',
    );
  });
});

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

// Each test spawns the CLI (tsx, seconds per start on a loaded machine) up to 8 times in sequence.
describe('bulwark queues', { timeout: 120_000 }, () => {
  it('--help lists the subcommands; each has its own --help', async () => {
    const runs = await Promise.all(
      [[], ['list'], ['jobs'], ['redrive'], ['pause']].map((sub) => cli('queues', ...sub, '--help')),
    );
    for (const run of runs) expect(run.code).toBe(0);
    const [top, list, jobs, redrive, pause] = runs;
    for (const sub of ['list', 'jobs', 'redrive', 'promote', 'remove', 'pause', 'resume'])
      expect(top?.stdout).toContain(sub);
    expect(list?.stdout).toContain('--json');
    expect(jobs?.stdout).toContain('--state <state>');
    expect(jobs?.stdout).toContain('--limit <n>');
    expect(redrive?.stdout).toContain('[ids...]');
    expect(pause?.stdout).toContain('--reason <text>');
    expect((await cli('--help')).stdout).toContain('queues');
  });

  it('list prints each queue with its counts (table and --json); jobs lists one state', async () => {
    const [table, json, delayed, limited, dead] = await Promise.all([
      cli('queues', 'list'),
      cli('queues', 'list', '--json'),
      cli('queues', 'jobs', 'email', '--state', 'delayed'),
      cli('queues', 'jobs', 'email', '--state', 'delayed', '--limit', '1', '--json'),
      cli('queues', 'jobs', 'failing', '--state', 'dead', '--json'),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]?.trim().split(/\s+/)).toEqual([
      'queue',
      'paused',
      'waiting',
      'delayed',
      'retrying',
      'active',
      'dead',
    ]);
    expect(rowOf(table.stdout, 'billing')).toEqual(['billing', 'no', '1', '0', '0', '0', '0']);
    expect(rowOf(table.stdout, 'email')).toEqual(['email', 'no', '0', '2', '0', '0', '0']);
    expect(rowOf(table.stdout, 'failing')).toEqual(['failing', 'no', '0', '0', '0', '0', '1']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toContainEqual({
      queue: 'email',
      paused: false,
      counts: { waiting: 0, delayed: 2, retrying: 0, active: 0, dead: 0 },
    });

    expect(delayed.code).toBe(0);
    expect(rowOf(delayed.stdout, 'e1')?.slice(0, 3)).toEqual(['e1', '0/3', '0']);
    expect(rowOf(delayed.stdout, 'e2')).toBeDefined();
    expect((JSON.parse(limited.stdout) as JobSummary[]).map((j) => j.id)).toEqual(['e1']);
    expect(JSON.parse(dead.stdout)).toEqual([
      expect.objectContaining({ id: 'f1', state: 'dead', lastError: 'Error: smtp refused', data: { n: 1 } }),
    ]);
  });

  it('promote, remove and redrive change the queue, and are audited', async () => {
    const promote = await cli('queues', 'promote', 'email', 'e1');
    expect(promote).toMatchObject({ code: 0, stdout: 'promoted email/e1: due now\n' });
    const remove = await cli('queues', 'remove', 'email', 'e2');
    expect(remove).toMatchObject({ code: 0, stdout: 'removed email/e2\n' });
    const redrive = await cli('queues', 'redrive', 'failing');
    expect(redrive.code).toBe(0);
    expect(redrive.stdout).toBe('redriven 1 dead job(s) of failing\n  f1\n');

    const list = await cli('queues', 'list');
    expect(rowOf(list.stdout, 'email')).toEqual(['email', 'no', '1', '0', '0', '0', '0']);
    expect(rowOf(list.stdout, 'failing')).toEqual(['failing', 'no', '1', '0', '0', '0', '0']);
    const audit = await withStore((bw) => bw.store.audit.list({ limit: 10 }));
    expect(audit.filter((r) => r.actor === 'cli').map((r) => [r.action, r.target])).toEqual([
      ['queue.redrive', 'queue:failing'],
      ['queue.remove', 'queue:email'],
      ['queue.promote', 'queue:email'],
    ]);
  });

  it('pause and resume show in list, audited with before/after', async () => {
    const pause = await cli('queues', 'pause', 'billing', '--reason', 'drill');
    expect(pause).toMatchObject({ code: 0, stdout: 'paused billing\n' });
    expect((await cli('queues', 'pause', 'billing')).stdout).toBe('billing was already paused\n');
    expect((await cli('queues', 'pause', 'quiet')).code).toBe(0);
    const paused = (await cli('queues', 'list')).stdout;
    expect(rowOf(paused, 'billing')?.slice(0, 2)).toEqual(['billing', 'yes']);
    // A paused queue without jobs is listed too.
    expect(rowOf(paused, 'quiet')).toEqual(['quiet', 'yes', '0', '0', '0', '0', '0']);

    const resume = await cli('queues', 'resume', 'billing');
    expect(resume).toMatchObject({ code: 0, stdout: 'resumed billing\n' });
    expect(rowOf((await cli('queues', 'list')).stdout, 'billing')?.slice(0, 2)).toEqual(['billing', 'no']);
    const records: AuditRecord[] = await withStore((bw) => bw.store.audit.list({ target: 'queue:billing' }));
    expect(records.map((r) => [r.actor, r.action, r.detail])).toEqual([
      ['cli', 'queue.resume', { before: true, after: false, reason: null }],
      ['cli', 'queue.pause', { before: true, after: true, reason: null }],
      ['cli', 'queue.pause', { before: false, after: true, reason: 'drill' }],
    ]);
  });

  it('bad arguments and missing jobs exit 1 with a message naming what is wrong', async () => {
    const [state, missingState, limit, promote, remove, name, unknown] = await Promise.all([
      cli('queues', 'jobs', 'email', '--state', 'finished'),
      cli('queues', 'jobs', 'email'),
      cli('queues', 'jobs', 'email', '--state', 'dead', '--limit', '0'),
      cli('queues', 'promote', 'email', 'nope'),
      cli('queues', 'remove', 'email', 'nope'),
      cli('queues', 'jobs', 'bad name', '--state', 'dead'),
      cli('queues', 'frobnicate'),
    ]);
    expect(state.code).toBe(1);
    expect(state.stderr).toContain('--state');
    expect(state.stderr).toContain('finished');
    expect(missingState.code).toBe(1);
    expect(missingState.stderr).toContain('--state');
    expect(limit.code).toBe(1);
    expect(limit.stderr).toContain('--limit');
    for (const run of [promote, remove]) {
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('BWK_ERR_QUEUE_JOB_NOT_FOUND');
      expect(run.stderr).toContain('nope');
      expect(run.stdout).toBe('');
    }
    expect(name.code).toBe(1);
    expect(name.stderr).toContain('BWK_ERR_QUEUE_OPTIONS');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('frobnicate');
  });
});
