import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requireBinary } from './helpers/binaries.js';
import { listeningPort, spawnTs } from './helpers/process.js';
import {
  alive,
  get,
  load,
  PROXY_CLUSTER,
  runningPid,
  startSupervisor,
  stopSupervisors,
} from './helpers/supervisor.js';
import { until } from './helpers/wait.js';

afterEach(stopSupervisors);

// The proxy's behaviour (retries of a killed instance's requests, 502 on a hang): --balance proxy.
const CLUSTER = [...PROXY_CLUSTER, '--start-timeout-ms', '15000'];

function versionFile(content: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'bwk-deploy-')), 'version');
  writeFileSync(file, content);
  return file;
}

async function reloadCli(stateDir: string): Promise<{ code: number | null; out: string }> {
  const cli = spawnTs('src/cli/main.ts', ['supervise', 'reload', '--state-dir', stateDir], {});
  const { code } = await cli.exited;
  return { code, out: cli.stdout() + cli.stderr() };
}

/** Waits until `traffic` got `more` answers than it had: load flowed (across a fault). */
async function flowed(traffic: ReturnType<typeof load>, more = 100): Promise<void> {
  const from = traffic.ok();
  await until(() => traffic.ok() >= from + more, 60_000, `${more} more answers`);
}

// Upper bounds only: two tsx app processes and a reload take long on a loaded machine.
describe('bulwark supervise --instances (cluster mode)', { timeout: 180_000 }, () => {
  it('kill -9 of one instance under load fails no request; the slot is restarted', async () => {
    const run = await startSupervisor(CLUSTER);
    const victim = await runningPid(run, 0);
    await runningPid(run, 1);
    const traffic = load(run.port, 16);
    await flowed(traffic);
    process.kill(victim, 'SIGKILL');
    await runningPid(run, 0, victim);
    await flowed(traffic);
    const result = await traffic.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.ok).toBeGreaterThanOrEqual(200);
    const status = await run.status();
    expect(status.crashes.at(-1)).toMatchObject({ reason: 'crash', signal: 'SIGKILL', pid: victim });
  });

  it('a rolling reload under load replaces every instance and fails no request', async () => {
    const file = versionFile('v1');
    const run = await startSupervisor(CLUSTER, { env: { VERSION_FILE: file } });
    const before = [await runningPid(run, 0), await runningPid(run, 1)];
    const traffic = load(run.port, 16);
    await flowed(traffic);
    writeFileSync(file, 'v2');
    const reload = await reloadCli(run.stateDir);
    expect(reload.code).toBe(0);
    expect(reload.out).toContain('reloaded in');
    await flowed(traffic);
    const result = await traffic.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    const after = (await run.status()).instances.map((i) => i.pid);
    expect(after.some((pid) => pid === undefined || before.includes(pid))).toBe(false);
    for (const pid of before) await until(() => !alive(pid), 30_000, `old instance ${pid} stopped`);
    const answer = await get(run.port, '/');
    expect('body' in answer && answer.body).toContain('"version":"v2"');
  });

  it('a broken deploy is rolled back: the old instances keep serving, 0 failed requests, reload exits 1', async () => {
    const file = versionFile('v1');
    const run = await startSupervisor(CLUSTER, { env: { VERSION_FILE: file } });
    const before = [await runningPid(run, 0), await runningPid(run, 1)];
    const traffic = load(run.port, 16);
    await flowed(traffic);
    writeFileSync(file, 'broken');
    const reload = await reloadCli(run.stateDir);
    expect(reload.code).toBe(1);
    expect(reload.out).toContain('BWK_ERR_SUPERVISOR_RELOAD_FAILED');
    expect(reload.out).toContain('broken deploy');
    await flowed(traffic);
    const result = await traffic.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    const status = await run.status();
    expect(status.instances.map((i) => i.pid)).toEqual(before);
    expect(status.lastReload).toMatchObject({ ok: false });
    const answer = await get(run.port, '/');
    expect('body' in answer && answer.body).toContain('"version":"v1"');
  });

  it('a request that blocks an instance is not replayed: one instance killed, the client gets 502 BWK_ERR_SUPERVISOR_HUNG', async () => {
    const run = await startSupervisor([...CLUSTER, '--heartbeat-timeout-ms', '1000']);
    const pids = [await runningPid(run, 0), await runningPid(run, 1)];
    // Blocks the event loop of the instance it reaches, before any answer.
    const answer = await get(run.port, '/hang?ms=600000', false, 120_000);
    expect(answer).toMatchObject({ status: 502 });
    const body = JSON.parse('body' in answer ? answer.body : '{}') as { error?: { code: string } };
    expect(body.error?.code).toBe('BWK_ERR_SUPERVISOR_HUNG');
    // The client's answer can come before the supervisor has handled the exit.
    const hungCrashes = async () => (await run.status()).crashes.filter((c) => c.reason === 'hung');
    await until(async () => (await hungCrashes()).length > 0, 30_000, 'the hung crash recorded');
    const victim = (await hungCrashes())[0]?.pid ?? 0;
    const slot = pids.indexOf(victim);
    expect(slot).not.toBe(-1);
    await runningPid(run, slot, victim);
    // The other instance never got the request: still the same process, still serving.
    const other = pids[1 - slot] ?? 0;
    expect(alive(other)).toBe(true);
    expect((await run.status()).instances[1 - slot]?.pid).toBe(other);
    expect(run.stdout().match(/fixture: \/hang on pid \d+/g)).toEqual([`fixture: /hang on pid ${victim}`]);
    expect(await hungCrashes()).toHaveLength(1);
  });

  it('serves its own /metrics: restarts by reason, slots by state, events', async () => {
    // Port 0: the port it got is in the supervisor's start line.
    const run = await startSupervisor([...CLUSTER, '--metrics-port', '0', '--sample-ms', '100']);
    const metricsPort = await listeningPort(run, /"metricsPort":(\d+)/);
    const victim = await runningPid(run, 1);
    process.kill(victim, 'SIGKILL');
    await runningPid(run, 1, victim);
    let text = '';
    await until(
      async () => {
        const metrics = await get(metricsPort, '/metrics');
        text = 'body' in metrics ? metrics.body : '';
        return /bulwark_supervisor_instance_resident_memory_bytes\{slot="1"\} \d+/.test(text);
      },
      30_000,
      'a sample of the new instance',
    );
    expect(text).toContain('bulwark_supervisor_restarts_total{reason="crash"} 1');
    expect(text).toContain('bulwark_supervisor_slots{state="running"} 2');
    expect(text).toMatch(/bulwark_supervisor_events_total\{type="exited"\} 1/);
    expect(text).toMatch(/bulwark_supervisor_instance_resident_memory_bytes\{slot="0"\} \d+/);
    // The read-only port takes no commands.
    expect(await get(metricsPort, '/reload')).toMatchObject({ status: 404 });
    const promtool = requireBinary('promtool', 'prometheus');
    expect(execFileSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' })).toBe('');
  });
});
