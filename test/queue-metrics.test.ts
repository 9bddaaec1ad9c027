// Queue metrics are tallied per job and handed to prom-client when read (TalliedHistogram and
// tallied counters): every read reports every job up to that moment.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { QueueMetrics } from '../src/queue/index.js';

describe('QueueMetrics', () => {
  it('reports the events and durations of every job, read after read', async () => {
    const registry = new Registry();
    const metrics = new QueueMetrics(registry);
    metrics.added('q', 3);
    metrics.started('q', 0.004);
    metrics.finished('q', 'completed', 0.02, 0.03);
    metrics.started('q', undefined); // a retry: its wait is not known
    metrics.finished('q', 'retried', 0.5, undefined);
    let text = await registry.metrics();
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="added"} 3');
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="started"} 2');
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="completed"} 1');
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="retried"} 1');
    expect(text).not.toContain('event="dead"');
    expect(text).toContain('bulwark_queue_wait_seconds_count{queue="q"} 1');
    expect(text).toContain('bulwark_queue_wait_seconds_bucket{le="0.005",queue="q"} 1');
    expect(text).toContain('bulwark_queue_run_seconds_count{queue="q",outcome="retried"} 1');
    expect(text).toContain('bulwark_queue_run_seconds_bucket{le="0.25",queue="q",outcome="retried"} 0');
    expect(text).toContain('bulwark_queue_latency_seconds_sum{queue="q"} 0.03');
    // A second read adds only what happened since the first.
    metrics.added('q');
    metrics.started('q', 0);
    metrics.finished('q', 'dead', 1, undefined);
    metrics.recovered(2);
    text = await registry.metrics();
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="added"} 4');
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="started"} 3');
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="dead"} 1');
    expect(text).toContain('bulwark_queue_jobs_total{queue="*",event="recovered"} 2');
    expect(text).toContain('bulwark_queue_wait_seconds_count{queue="q"} 2');
    expect(text).toContain('bulwark_queue_run_seconds_count{queue="q",outcome="dead"} 1');
    expect(metrics.timings('q').run.count).toBe(3);
  });
});
