// The embedded queue's worker closing while a claim is in flight (a round trip to PostgreSQL): the
// jobs that claim hands out are waited for like the others, never started after close() returned.
// The store is a stand-in here (the order of close and a claim's answer is pure worker logic); the
// conformance suite (test/queue.test.ts) runs the same close on real SQLite and PostgreSQL.
import { describe, expect, it } from 'vitest';
import { EmbeddedWorker } from '../src/queue/embedded-worker.js';
import type { JobRow, SqlJobs } from '../src/queue/sql-jobs.js';

const row = (seq: number, data: string): JobRow =>
  ({
    seq,
    queue: 'q',
    id: `job-${seq}`,
    data: JSON.stringify(data),
    options: null,
    attempts: 1,
    max_attempts: 3,
    priority: 0,
    created_at: 0,
    run_at: 0,
  }) as unknown as JobRow;

describe('an embedded worker closing during a claim', () => {
  it('waits for the jobs that claim hands out (they finish before close() returns)', async () => {
    let answer: (rows: JobRow[]) => void = () => undefined;
    const claimed = new Promise<JobRow[]>((resolve) => (answer = resolve));
    let claims = 0;
    const completed: number[] = [];
    const jobs = {
      claim: async () => (claims++ === 0 ? claimed : []),
      complete: async (_owner: string, seqs: number[]) => void completed.push(...seqs),
      extend: async () => undefined,
      release: async () => undefined,
      fail: async () => undefined,
    } as unknown as SqlJobs;
    const events: string[] = [];
    const worker = new EmbeddedWorker({
      queue: 'q',
      handler: async () => {
        events.push('job started');
        await new Promise((resolve) => setTimeout(resolve, 50));
        events.push('job finished');
      },
      concurrency: 2,
      limiter: undefined,
      owner: 'me',
      jobs,
      leaseMs: 30_000,
      pollMs: 10_000,
      claimBatch: 10,
      paused: () => false,
      ready: Promise.resolve(),
      metrics: undefined,
      logger: undefined,
      now: Date.now,
      onError: (error) => events.push(`error ${String(error)}`),
    });
    worker.start();
    await new Promise((resolve) => setTimeout(resolve, 10)); // the claim is sent, not answered
    expect(claims).toBe(1);
    const closed = worker.close(2_000).then(() => events.push('closed'));
    answer([row(1, 'quick')]);
    await closed;
    expect(events).toEqual(['job started', 'job finished', 'closed']);
    expect(completed).toEqual([1]);
  });
});
