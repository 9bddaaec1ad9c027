import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  alive,
  FIXTURE_APP,
  get,
  runningPid,
  startSupervisor,
  stopSupervisors,
} from './helpers/supervisor.js';
import { Registry } from 'prom-client';
import { MetricsHistory } from '../src/metrics/history.js';
import { createStore } from '../src/runtime/store.js';
import { registerSupervisorSeries } from '../src/supervised/series.js';
import { procStat } from './helpers/proc.js';
import { spawnTs } from './helpers/process.js';
import { until } from './helpers/wait.js';
import type { SupervisorStatus } from './helpers/supervisor.js';

afterEach(stopSupervisors);

const FAST = ['--backoff-initial-ms', '100', '--stable-ms', '5000', '--start-timeout-ms', '10000'];

describe('bulwark supervise (direct mode)', () => {
  it('restarts a crashed app at once, records the crash, and answers again', async () => {
    const run = await startSupervisor([...FAST, '--sample-ms', '100']);
    const pid = await runningPid(run);
    await until(async () => (await run.status()).instances[0]?.rss !== undefined, 5_000, 'a sample');
    expect(await get(run.port, '/crash')).toMatchObject({ status: 200 });
    const next = await runningPid(run, 0, pid);
    expect(next).not.toBe(pid);
    const answer = await get(run.port, '/');
    expect(answer).toMatchObject({ status: 200 });
    const status = await run.status();
    const crash = status.crashes.at(-1);
    expect(crash).toMatchObject({ reason: 'crash', exitCode: 3, signal: null });
    expect(crash?.uptimeMs).toBeGreaterThan(0);
    expect(crash?.rssAtDeath ?? 0).toBeGreaterThan(1024 * 1024);
    expect(crash?.lastLines.join('\n')).toContain(`pid ${pid}`);
    expect(status.instances[0]?.restarts).toBe(1);
    expect(status.instances[0]?.heartbeat).toBe(true);
    // Persisted: the state file keeps the crash for `status` when the supervisor is gone.
    const persisted = JSON.parse(readFileSync(path.join(run.stateDir, 'state.json'), 'utf8')) as {
      crashes: { exitCode: number }[];
    };
    expect(persisted.crashes.at(-1)?.exitCode).toBe(3);
  });

  it('a crash loop gets growing delays, then is parked (not abandoned) and comes back when fixed', async () => {
    const versionFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'bwk-fixture-')), 'version');
    await writeFile(versionFile, 'broken');
    const run = await startSupervisor(
      [
        '--backoff-initial-ms',
        '100',
        '--max-restarts',
        '4',
        '--restart-window-ms',
        '60000',
        '--park-probe-ms',
        '1500',
      ],
      { env: { VERSION_FILE: versionFile } },
    );
    await until(
      async () => (await run.status().catch(() => undefined))?.instances[0]?.state === 'parked',
      20_000,
      'parked',
    );
    const events = await run.events();
    const delays = events.filter((e) => e.type === 'restarting').map((e) => Number(e.detail?.['delayMs']));
    expect(delays).toHaveLength(4);
    // Immediate, then ~100, ~200, ~400 ms with equal jitter (half fixed, half random).
    expect(delays[0]).toBe(0);
    expect(delays[1]).toBeGreaterThanOrEqual(50);
    expect(delays[2]).toBeGreaterThanOrEqual(100);
    expect(delays[3]).toBeGreaterThanOrEqual(200);
    expect(delays[3]).toBeGreaterThan(delays[1] ?? 0);
    expect(events.some((e) => e.type === 'parked')).toBe(true);
    expect(run.stderr()).toContain('parked');
    const status = await run.status();
    expect(status.crashes.at(-1)?.lastLines.join('\n')).toContain('broken deploy');
    // Fixed deploy: the next park probe starts it.
    await writeFile(versionFile, 'v2');
    await until(async () => (await run.status()).instances[0]?.state === 'running', 10_000, 'unparked');
    const answer = await get(run.port, '/');
    expect('body' in answer && answer.body).toContain('"version":"v2"');
    expect((await run.events()).some((e) => e.type === 'unparked')).toBe(true);
  });

  it('an exit code that means "do not restart" stops the supervisor with that code', async () => {
    const versionFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'bwk-fixture-')), 'version');
    await writeFile(versionFile, 'exit78');
    const run = await startSupervisor(FAST, { env: { VERSION_FILE: versionFile } });
    const exit = await run.exited;
    expect(exit.code).toBe(78);
    expect(run.stderr()).toContain('do not restart');
  });

  it('a blocked event loop is detected by its missing heartbeats, reported, killed and restarted', async () => {
    const run = await startSupervisor([...FAST, '--heartbeat-timeout-ms', '1000']);
    const pid = await runningPid(run);
    await get(run.port, '/block?ms=120000');
    const next = await runningPid(run, 0, pid, 20_000);
    expect(alive(pid)).toBe(false);
    expect(next).not.toBe(pid);
    const crash = (await run.status()).crashes.at(-1);
    expect(crash).toMatchObject({ reason: 'hung', signal: 'SIGKILL' });
    // A real Node diagnostic report, with the blocked function on its JavaScript stack.
    expect(crash?.reportPath).toBeDefined();
    const report = JSON.parse(readFileSync(crash?.reportPath ?? '', 'utf8')) as {
      header: { processId: number };
      javascriptStack: { stack: string[] };
    };
    expect(report.header.processId).toBe(pid);
    expect(report.javascriptStack.stack.join('\n')).toMatch(/at block \(.*supervised-app\.ts/);
  });

  it('slow liveness answers with heartbeats still coming are not a hang: no restart', async () => {
    const run = await startSupervisor(
      [...FAST, '--probe-interval-ms', '200', '--probe-timeout-ms', '100', '--probe-failures', '2'],
      { env: { FIXTURE_SLOW_LIVE: '1' } },
    );
    const pid = await runningPid(run);
    await until(
      async () => (await run.events()).some((e) => e.type === 'probe-failing'),
      10_000,
      'probe-failing',
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const status = await run.status();
    expect(status.instances[0]?.pid).toBe(pid);
    expect(status.crashes).toHaveLength(0);
  });

  it('an app without heartbeats whose loop blocks is restarted after failed liveness probes', async () => {
    const run = await startSupervisor(
      [...FAST, '--probe-interval-ms', '200', '--probe-timeout-ms', '200', '--probe-failures', '3'],
      { env: { FIXTURE_NO_IPC: '1' } },
    );
    const pid = await runningPid(run);
    expect((await run.status()).instances[0]?.heartbeat).toBe(false);
    await get(run.port, '/block?ms=120000');
    await runningPid(run, 0, pid, 20_000);
    expect((await run.status()).crashes.at(-1)).toMatchObject({ reason: 'unresponsive', signal: 'SIGKILL' });
  });

  it('a memory leak meets soft, then medium, then hard recovery, each recorded with before and after', async () => {
    const run = await startSupervisor([
      ...FAST,
      '--max-memory-mb',
      '400',
      '--pressure-warn-at',
      '0.3',
      '--pressure-act-at',
      '0.4',
      '--sample-ms',
      '200',
      '--recovery-dwell-ms',
      '800',
    ]);
    const pid = await runningPid(run);
    await get(run.port, '/leak?mb=8&everyMs=100');
    const next = await runningPid(run, 0, pid, 30_000);
    expect(next).not.toBe(pid);
    const status = await run.status();
    const steps = status.recoveries.filter((r) => r.resource === 'memory').map((r) => r.step);
    expect(steps).toEqual(['warn', 'soft', 'medium', 'hard']);
    const [, soft, medium] = status.recoveries;
    expect(soft).toMatchObject({ helped: false, actions: ['soft: nothing to free'] });
    expect(soft?.after ?? 0).toBeGreaterThan(soft?.before ?? 0);
    expect(medium?.helped).toBe(false);
    expect(status.crashes.at(-1)).toMatchObject({ reason: 'memory' });
  });

  it('sustained CPU use meets the same graded response, judged on the mean over the window', async () => {
    const run = await startSupervisor([
      ...FAST,
      '--max-cpu-percent',
      '60',
      '--cpu-window-ms',
      '600',
      '--sample-ms',
      '200',
      '--recovery-dwell-ms',
      '700',
    ]);
    const pid = await runningPid(run);
    await get(run.port, '/spin?busyMs=9');
    const next = await runningPid(run, 0, pid, 30_000);
    expect(next).not.toBe(pid);
    const status = await run.status();
    const steps = status.recoveries.filter((r) => r.resource === 'cpu').map((r) => r.step);
    expect(steps.slice(-3)).toEqual(['soft', 'medium', 'hard']);
    expect(status.crashes.at(-1)).toMatchObject({ reason: 'cpu' });
    // The heartbeat kept coming all along: this was pressure, not a hang.
    expect(status.crashes.some((c) => c.reason === 'hung')).toBe(false);
  });

  it('a soft recovery that helps stops the ladder', async () => {
    const run = await startSupervisor(
      [
        ...FAST,
        '--max-memory-mb',
        '400',
        '--pressure-warn-at',
        '0.3',
        '--pressure-act-at',
        '0.4',
        '--sample-ms',
        '200',
        '--recovery-dwell-ms',
        '800',
      ],
      { env: { FIXTURE_FREES: 'soft' }, command: [process.execPath, '--expose-gc', ...FIXTURE_APP.slice(1)] },
    );
    const pid = await runningPid(run);
    await get(run.port, '/leak?mb=8&everyMs=100');
    await until(
      async () => (await run.status()).recoveries.some((r) => r.step === 'soft' && r.helped !== undefined),
      20_000,
      'soft judged',
    );
    const status = await run.status();
    const soft = status.recoveries.find((r) => r.step === 'soft');
    expect(soft?.helped).toBe(true);
    expect(soft?.actions?.[0]).toMatch(/^freed \d+ MiB$/);
    expect(status.recoveries.some((r) => r.step === 'medium' || r.step === 'hard')).toBe(false);
    expect(status.instances[0]?.pid).toBe(pid);
  });

  it('stopping reaches everything the app started: no orphan keeps running or holds the port', async () => {
    // On Linux the app shares the supervisor's session (a session of its own is a scheduler
    // autogroup of its own, and stalls under load); its processes are found by their mark, so a
    // grandchild in a session of its own is reached too.
    const linux = process.platform === 'linux';
    const run = await startSupervisor(FAST, { env: { FIXTURE_CHILD: linux ? 'detached' : '1' } });
    const pid = await runningPid(run);
    if (linux) expect(procStat(pid)?.session).toBe(procStat(run.child.pid ?? 0)?.session);
    await run.waitFor(/grandchild \d+/);
    const grandchild = Number(/grandchild (\d+)/.exec(run.stdout())?.[1]);
    expect(alive(grandchild)).toBe(true);
    // kill -9 of the app: the supervisor reaps its group before restarting.
    process.kill(pid, 'SIGKILL');
    await runningPid(run, 0, pid);
    await until(() => !alive(grandchild), 5_000, 'orphan reaped');
    const second = Number([...run.stdout().matchAll(/grandchild (\d+)/g)].at(-1)?.[1]);
    expect(second).not.toBe(grandchild);
    const exit = await run.stop();
    expect(exit.code).toBe(0);
    expect(alive(second)).toBe(false);
    expect(run.stdout()).toContain('fixture: SIGTERM, closing');
    expect(await get(run.port, '/')).toMatchObject({ error: 'ECONNREFUSED' });
  });

  it('an app stopped from outside (SIGTERM, then exit 0) just before the supervisor is not restarted; alone, it is', async () => {
    // As Ctrl-C, `timeout` or systemd's stop of a whole control group do: the app and the
    // supervisor get the stop at once, and the app may end first.
    const run = await startSupervisor(FAST);
    const pid = await runningPid(run);
    process.kill(pid, 'SIGTERM'); // the fixture closes its server and exits 0
    await until(() => !alive(pid), 5_000, 'the app gone');
    run.child.kill('SIGTERM');
    expect((await run.exited).code).toBe(0);
    expect(run.stdout()).toContain('fixture: SIGTERM, closing');
    expect(run.stderr()).not.toContain('restarting');
    expect(run.stdout().match(/fixture \S+ listening/g)).toHaveLength(1);

    const alone = await startSupervisor(FAST);
    const first = await runningPid(alone);
    process.kill(first, 'SIGTERM');
    expect(await runningPid(alone, 0, first)).not.toBe(first);
    expect(alone.stderr()).toContain('restarting');
  });

  it('app output goes to size-capped rotated log files', async () => {
    const run = await startSupervisor([...FAST, '--log-max-bytes', '8192', '--log-keep', '2', '--no-echo']);
    await runningPid(run);
    for (let i = 0; i < 20; i++) await get(run.port, '/chatty?lines=15');
    const logs = path.join(run.stateDir, 'logs');
    await until(() => existsSync(path.join(logs, 'app.log.2')), 5_000, 'rotated');
    const files = readdirSync(logs).sort();
    expect(files).toEqual(['app.log', 'app.log.1', 'app.log.2']);
    for (const file of files) expect(statSync(path.join(logs, file)).size).toBeLessThanOrEqual(8192);
    expect(readFileSync(path.join(logs, 'app.log'), 'utf8')).toContain('chatty line');
    expect(run.stdout()).not.toContain('chatty line');
  });

  it('runs the reference app (as npm start does): heartbeats, restart after kill -9, crash records and a reload in the admin API', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bwk-app-'));
    const run = await startSupervisor(FAST, {
      command: [process.execPath, '--import', 'tsx', 'src/app/server.ts'],
      env: { BULWARK_DATA_DIR: dataDir, BULWARK_ADMIN_KEY: 'test-admin-key-123456' },
    });
    const pid = await runningPid(run, 0, undefined, 30_000);
    expect((await run.status()).instances[0]?.heartbeat).toBe(true);
    process.kill(pid, 'SIGKILL');
    await runningPid(run, 0, pid, 30_000);
    const answer = await new Promise<{ supervised: boolean; live: boolean; status: SupervisorStatus }>(
      (resolve, reject) => {
        http
          .get(
            {
              host: '127.0.0.1',
              port: run.port,
              path: '/admin/api/supervisor',
              headers: { authorization: 'Bearer test-admin-key-123456' },
            },
            (response) => {
              let body = '';
              response.on('data', (chunk: Buffer) => (body += chunk.toString()));
              response.on('end', () => resolve(JSON.parse(body) as never));
            },
          )
          .on('error', reject);
      },
    );
    expect(answer).toMatchObject({ supervised: true, live: true });
    expect(answer.status.crashes.at(-1)).toMatchObject({ reason: 'crash', signal: 'SIGKILL', pid });
    expect(answer.status.instances[0]?.restarts).toBe(1);
    // A reload from the admin API (the console's Processes page): a new instance replaces the old.
    const before = await runningPid(run, 0);
    const reload = await fetch(`http://127.0.0.1:${run.port}/admin/api/supervisor/reload`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-admin-key-123456', 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'test' }),
    });
    expect(reload.status).toBe(202);
    expect(await reload.json()).toMatchObject({ started: true });
    await until(async () => (await run.status()).lastReload?.ok === true, 30_000, 'reloaded');
    expect(await runningPid(run, 0)).not.toBe(before);
    const audit = await fetch(`http://127.0.0.1:${run.port}/admin/api/audit?target=supervisor`, {
      headers: { authorization: 'Bearer test-admin-key-123456' },
    });
    expect(await audit.json()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          actor: 'admin',
          action: 'supervisor.reload',
          detail: { reason: 'test' },
        }),
      ]),
    );
    expect((await run.stop()).code).toBe(0);
    expect(run.stdout()).toContain('shut down cleanly');
  });

  it("the reference app's built-in recovery: soft drops its L1 cache, medium also holds its background jobs", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bwk-app-'));
    // A limit the app is always above: every step is taken and none helps.
    const run = await startSupervisor(
      [
        ...FAST,
        '--max-memory-mb',
        '2000',
        '--pressure-warn-at',
        '0.01',
        '--pressure-act-at',
        '0.02',
        '--sample-ms',
        '100',
        '--recovery-dwell-ms',
        '600',
      ],
      {
        command: [process.execPath, '--import', 'tsx', 'src/app/server.ts'],
        env: { BULWARK_DATA_DIR: dataDir },
      },
    );
    await until(
      async () =>
        (await run.status().catch(() => undefined))?.recoveries.some(
          (r) => r.step === 'medium' && r.actions !== undefined,
        ) === true,
      30_000,
      'medium recovery answered',
    );
    const { recoveries } = await run.status();
    expect(recoveries.find((r) => r.step === 'soft')?.actions).toEqual([
      expect.stringMatching(/^dropped the L1 cache \(\d+ entries\)$/),
      'gc not exposed (run node with --expose-gc)',
    ]);
    expect(recoveries.find((r) => r.step === 'medium')?.actions).toContain(
      'held the background jobs of this instance',
    );
  });
});

describe('bulwark supervise CLI', () => {
  async function cli(args: string[]) {
    const run = spawnTs('src/cli/main.ts', args, {});
    const { code } = await run.exited;
    return { code, stdout: run.stdout(), stderr: run.stderr() };
  }

  it('--help documents every option and the subcommands', async () => {
    const help = await cli(['supervise', '--help']);
    expect(help.code).toBe(0);
    for (const text of [
      '--instances <n>',
      '--max-memory-mb <mb>',
      '--heartbeat-timeout-ms <ms>',
      'status',
      'reload',
    ])
      expect(help.stdout).toContain(text);
    for (const sub of ['status', 'reload', 'stop'])
      expect((await cli(['supervise', sub, '--help'])).stdout).toContain('--state-dir');
  });

  it('bad options exit 1 naming each flag; nothing starts', async () => {
    const bad = await cli(['supervise', '--instances', 'two', '--max-restarts', '0', '--', 'node', 'x.js']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('BWK_ERR_SUPERVISOR_OPTIONS');
    expect(bad.stderr).toContain('--instances: "two" is not an integer');
    expect(bad.stderr).toContain('--max-restarts: "0" is invalid');
    const none = await cli(['supervise']);
    expect(none.stderr).toContain('<command...>: missing');
  });

  it('status without a running supervisor prints the persisted state and its crashes', async () => {
    const run = await startSupervisor(FAST);
    const pid = await runningPid(run);
    await get(run.port, '/crash');
    await runningPid(run, 0, pid);
    await run.stop();
    const status = await cli(['supervise', 'status', '--state-dir', run.stateDir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('not running (last persisted state)');
    expect(status.stdout).toMatch(/slot 0 {2}crash {2}exit code 3/);
    expect(status.stdout).toContain(`| fixture v1 listening on ${run.port} pid ${pid}`);
    const json = JSON.parse(
      (await cli(['supervise', 'status', '--json', '--state-dir', run.stateDir])).stdout,
    ) as {
      live: boolean;
      crashes: unknown[];
    };
    expect(json.live).toBe(false);
    expect(json.crashes.length).toBeGreaterThan(0);
    const missing = await cli(['supervise', 'reload', '--state-dir', run.stateDir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('BWK_ERR_SUPERVISOR_NOT_RUNNING');
  });
});

describe('supervisor series in the app metrics history', () => {
  it('samples restarts in the window and parked slots over the control socket', async () => {
    const run = await startSupervisor([...FAST, '--stable-ms', '60000']);
    let pid = await runningPid(run);
    for (let i = 0; i < 4; i++) {
      await get(run.port, '/crash');
      pid = await runningPid(run, 0, pid);
    }
    const store = await createStore({ sqliteFile: ':memory:' });
    try {
      const history = new MetricsHistory({ store, registry: new Registry() });
      expect(registerSupervisorSeries(history, { BULWARK_SUPERVISOR_STATE_DIR: run.stateDir })).toBe(true);
      expect(registerSupervisorSeries(history, {})).toBe(false);
      await history.sampleNow();
      const now = history.now();
      const restarts = await history.query('supervisor.restarts_in_window', now - 60_000, now);
      expect(restarts.points.at(-1)?.last).toBe(4);
      const parked = await history.query('supervisor.parked_slots', now - 60_000, now);
      expect(parked.points.at(-1)?.last).toBe(0);
      await history.close();
    } finally {
      await store.close();
    }
  });
});
