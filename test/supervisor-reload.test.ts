// Rolling reloads in cluster mode under real load, judged by what clients see AND by the proxy's
// retry counter: the proxy retries an idempotent request cut by a stopping instance, so a reload
// that stopped instances still in use would fail no request and show only as retries.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import type { ProxyStats } from '../src/supervisor/proxy.js';
import { spawnTs } from './helpers/process.js';
import {
  alive,
  get,
  PROXY_CLUSTER,
  runningPid,
  startSupervisor,
  stopSupervisors,
  type SupervisorRun,
  versionFile,
} from './helpers/supervisor.js';
import { until } from './helpers/wait.js';

afterEach(stopSupervisors);

const APP = [process.execPath, '--import', 'tsx', 'test/fixtures/reload-app.ts'];
// Judged by the proxy's retry counter: --balance proxy (test/supervisor-socket.test.ts covers the socket).
const CLUSTER = [...PROXY_CLUSTER, '--start-timeout-ms', '60000'];
// Generous: each reload starts two tsx processes, many seconds on a loaded 2-core machine.
const TIMEOUT = { timeout: 240_000 };
// Successful answers required before the reload, and again from the new version after it.
const MIN_OK = 200;

/** A cluster of two reload-app instances on a public port the kernel picked (`--port 0`). */
async function cluster(file: string): Promise<{ run: SupervisorRun; port: number; pids: number[] }> {
  const run = await startSupervisor(CLUSTER, { env: { VERSION_FILE: file }, command: APP, port: 0 });
  const pids = [await runningPid(run, 0, undefined, 90_000), await runningPid(run, 1, undefined, 90_000)];
  return { run, port: (await run.status()).port, pids };
}

async function proxyStats(run: SupervisorRun): Promise<ProxyStats> {
  return ((await run.status()) as unknown as { proxy: ProxyStats }).proxy;
}

async function reloadCli(stateDir: string): Promise<{ code: number | null; out: string }> {
  const cli = spawnTs('src/cli/main.ts', ['supervise', 'reload', '--state-dir', stateDir], {});
  const { code } = await cli.exited;
  return { code, out: cli.stdout() + cli.stderr() };
}

/** Keep-alive GET / load with live counts: answers by version, and every failure with its reason. */
function traffic(port: number, concurrency = 8) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const ok = new Map<string, number>();
  const failures: string[] = [];
  let running = true;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const answer = await get(port, '/', agent);
      if ('status' in answer && answer.status === 200) {
        const { version } = JSON.parse(answer.body) as { version: string };
        ok.set(version, (ok.get(version) ?? 0) + 1);
      } else if (failures.length < 20)
        failures.push('status' in answer ? `${answer.status} ${answer.body.slice(0, 200)}` : answer.error);
      else failures.push('…');
    }
  });
  return {
    ok: (version: string) => ok.get(version) ?? 0,
    total: () => [...ok.values()].reduce((a, b) => a + b, 0),
    failures,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

/**
 * A v1 cluster under load that has answered `MIN_OK` requests, with the proxy's retry count at that
 * point; the load stops when the test ends.
 */
async function clusterUnderLoad() {
  const file = versionFile('v1');
  const { run, port, pids } = await cluster(file);
  const load = traffic(port);
  onTestFinished(() => load.stop());
  await until(() => load.ok('v1') >= MIN_OK, 60_000, `${MIN_OK} answers from v1`);
  const retriedBefore = (await proxyStats(run)).retried;
  return {
    file,
    run,
    port,
    pids,
    load,
    retried: async () => (await proxyStats(run)).retried - retriedBefore,
  };
}

async function versionAt(port: number): Promise<string | undefined> {
  const answer = await get(port, '/');
  return 'body' in answer ? (JSON.parse(answer.body) as { version: string }).version : undefined;
}

describe('rolling reload under load (cluster mode, real processes)', () => {
  it(
    'replaces every instance: 0 failed requests, 0 proxy retries, traffic served throughout',
    TIMEOUT,
    async () => {
      const { file, run, port, pids, load, retried } = await clusterUnderLoad();
      writeFileSync(file, 'v2');
      const atReload = load.total();
      const reload = await reloadCli(run.stateDir);
      expect(reload.code, reload.out).toBe(0);
      expect(reload.out).toContain('2 new instance(s) passed 3 probes; 2 old drained and stopped');
      const duringReload = load.total() - atReload;
      await until(() => load.ok('v2') >= MIN_OK, 60_000, `${MIN_OK} answers from v2`);
      await load.stop();

      expect(load.failures).toEqual([]);
      // Requests kept being answered while the new instances started, passed their probes and the
      // old ones drained (the reload takes seconds: two processes start and are probed 3 times).
      expect(duringReload).toBeGreaterThan(0);
      // On failure, the crashes say whether an instance died for another reason (a retry's other source).
      const crashes = JSON.stringify((await run.status()).crashes);
      expect({ retried: await retried(), failed: (await proxyStats(run)).failed }, crashes).toEqual({
        retried: 0,
        failed: 0,
      });
      const after = (await run.status()).instances.map((i) => i.pid);
      expect(after.filter((pid) => pid === undefined || pids.includes(pid))).toEqual([]);
      for (const pid of pids) await until(() => !alive(pid), 30_000, `old instance ${pid} stopped`);
      expect(await versionAt(port)).toBe('v2');
    },
  );

  it(
    'a new version that is ready but then fails its liveness probe is rolled back; traffic keeps flowing on the old one',
    TIMEOUT,
    async () => {
      const { file, run, port, pids, load, retried } = await clusterUnderLoad();
      writeFileSync(file, 'unlive');
      const reload = await reloadCli(run.stateDir);
      expect(reload.code, reload.out).toBe(1);
      expect(reload.out).toContain('BWK_ERR_SUPERVISOR_RELOAD_FAILED');
      // Both new instances became ready, passed probe 1 and failed probe 2.
      expect(reload.out.match(/liveness probe 2 of 3 failed \(503\)/g)).toEqual([
        'liveness probe 2 of 3 failed (503)',
        'liveness probe 2 of 3 failed (503)',
      ]);
      const atRollback = load.ok('v1');
      await until(() => load.ok('v1') >= atRollback + MIN_OK, 60_000, `${MIN_OK} more answers from v1`);
      await load.stop();

      expect(load.failures).toEqual([]);
      expect(load.ok('unlive')).toBe(0);
      expect(await retried(), JSON.stringify((await run.status()).crashes)).toBe(0);
      const status = await run.status();
      expect(status.instances.map((i) => i.pid)).toEqual(pids);
      expect(status.lastReload).toMatchObject({ ok: false });
      // The two rolled-back instances were stopped as such.
      let rolledBack: number[] = [];
      await until(
        async () => {
          rolledBack = (await run.events())
            .filter((e) => e.type === 'exited' && e.detail?.['reason'] === 'reload-failed')
            .map((e) => Number(e.detail?.['pid']));
          return rolledBack.length === 2;
        },
        30_000,
        'two rolled-back instances exited',
      );
      expect(rolledBack.filter((pid) => pids.includes(pid) || alive(pid))).toEqual([]);
      expect(await versionAt(port)).toBe('v1');
    },
  );
});
