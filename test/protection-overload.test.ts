// A real app overloaded about twice over by an open-model load (requests sent on a schedule, as
// users arrive, whatever the answers): critical requests keep succeeding while sheddable ones get
// the coded 503 with Retry-After; /health says so; the log says so once, not per request; the app
// is back the moment the load stops. The figures at 1×–5× and the peers are bench/overload.ts's.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listeningPort, spawnTs, type Spawned } from './helpers/process.js';
import { until } from './helpers/wait.js';

const RATE = 900; // requests a second: about twice what the app can serve on an idle machine
const SECONDS = 4;

interface Outcome {
  cls: string;
  status: number;
  retryAfter: string | undefined;
  body: string;
}

let app: Spawned;
let port: number;

beforeAll(async () => {
  app = spawnTs('test/fixtures/overload-app.ts', [], { IO_MS: '5', CPU_MS: '2', LOG_LEVEL: 'info' });
  port = await listeningPort(app, /listening on http:\/\/127\.0\.0\.1:(\d+)/, 30_000);
}, 40_000);

afterAll(async () => {
  app.child.kill('SIGTERM');
  await app.exited;
});

function get(agent: http.Agent, path: string): Promise<Outcome & { ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const request = http.get({ agent, host: '127.0.0.1', port, path, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () =>
        resolve({
          cls: path.slice(1),
          status: res.statusCode ?? 0,
          retryAfter: res.headers['retry-after'],
          body,
          ms: performance.now() - started,
        }),
      );
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () =>
      resolve({ cls: path.slice(1), status: 0, retryAfter: undefined, body: '', ms: 0 }),
    );
  });
}

describe('an overloaded app', () => {
  it('keeps critical requests succeeding and sheds sheddable ones first, then recovers at once', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1000 });
    // Warm up: JIT, connections, the latency baseline.
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => get(agent, i % 2 === 0 ? '/default' : '/critical')),
    );
    const pending: Promise<Outcome>[] = [];
    const healthSeen: string[] = [];
    const start = performance.now();
    const total = RATE * SECONDS;
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * RATE) / 1000));
      for (; sent < due; sent++) {
        // 10% critical, 45% default, 45% sheddable.
        const path = sent % 10 === 0 ? '/critical' : sent % 2 === 0 ? '/default' : '/sheddable';
        pending.push(get(agent, path));
      }
      if (sent % 500 < 10) {
        void get(agent, '/health').then((h) => healthSeen.push(h.body));
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const outcomes = await Promise.all(pending);
    const share = (cls: string) => {
      const mine = outcomes.filter((o) => o.cls === cls);
      return mine.filter((o) => o.status === 200).length / mine.length;
    };
    // Every request got an answer: a 200 or a coded 503, nothing left hanging or reset.
    expect(outcomes.filter((o) => o.status !== 200 && o.status !== 503)).toEqual([]);
    expect(share('critical')).toBeGreaterThanOrEqual(0.95);
    expect(share('sheddable')).toBeLessThan(share('critical') - 0.3);
    const shed = outcomes.filter((o) => o.status === 503);
    expect(shed.length).toBeGreaterThan(0);
    for (const o of shed) {
      expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(o.body)).toMatchObject({ error: { code: 'BWK_ERR_PROTECTION_OVERLOADED' } });
    }
    // /health says so during the episode (which lasts while the curve relaxes, seconds after the load).
    if (!healthSeen.some((h) => h.includes('"protection:shedding"') && h.includes('"warn"'))) {
      const warned = async () => {
        const h = await get(agent, '/health');
        const report = JSON.parse(h.body) as { checks?: Record<string, { status: string }[]> };
        return report.checks?.['protection:shedding']?.[0]?.status === 'warn';
      };
      await until(warned, 5000, '/health warning of the shedding');
    }

    // The load stops: a critical request is answered at once, and the episode ends in the log.
    const after = await get(agent, '/critical');
    expect(after.status).toBe(200);
    await app.waitFor('shedding stopped', 15_000);
    const lines = (app.stdout() + app.stderr()).split('\n').filter((l) => l.startsWith('{'));
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string; statusCode?: number; level: unknown });
    expect(parsed.filter((l) => l.msg.startsWith('overloaded: shedding')).length).toBeGreaterThanOrEqual(1);
    // No request line for the thousands of 503s.
    expect(parsed.filter((l) => l.msg === 'request' && l.statusCode === 503)).toEqual([]);
    expect(app.child.exitCode).toBeNull();
    agent.destroy();
  }, 60_000);
});
