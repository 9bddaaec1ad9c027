import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { controlSocketPath, locateControlSocket } from '../src/supervised/control-client.js';
import type { Instance } from '../src/supervisor/instance.js';
import { LivenessMonitor, type LivenessContext } from '../src/supervisor/liveness.js';
import { flagOf, resolveSuperviseOptions, superviseSchema } from '../src/supervisor/options.js';
import { RestartPolicy } from '../src/supervisor/policy.js';
import { PressureLadder } from '../src/supervisor/pressure.js';
import { createSlot } from '../src/supervisor/slot.js';
import { isSecretName, redactDeep, redactUrls, secretValues } from '../src/supervisor/redact.js';
import { until } from './helpers/wait.js';

describe('RestartPolicy', () => {
  const policy = (random = () => 0.5) =>
    new RestartPolicy({
      initialMs: 100,
      maxMs: 1000,
      stableMs: 10_000,
      maxRestarts: 5,
      windowMs: 60_000,
      random,
    });

  it('restarts the first crash at once, then doubles with equal jitter up to the cap', () => {
    const p = policy(() => 0);
    const delays = [0, 1, 2, 3, 4].map((i) => p.next(i * 10, 5));
    expect(delays.map((d) => (d.action === 'restart' ? d.delayMs : -1))).toEqual([0, 50, 100, 200, 400]);
    const high = policy(() => 0.999_999);
    expect([1, 2, 3, 4, 5, 6].map((s) => high.delayFor(s))).toEqual([0, 100, 200, 400, 800, 1000]);
  });

  it('a stable run ends the streak: the next crash restarts at once again', () => {
    const p = policy();
    p.next(0, 5);
    expect(p.next(10, 5)).toMatchObject({ action: 'restart', streak: 2 });
    expect(p.next(20, 20_000)).toMatchObject({ action: 'restart', delayMs: 0, streak: 1 });
  });

  it('parks past the budget of the window, and counts again once the window moved on', () => {
    const p = policy();
    for (let i = 0; i < 5; i++) expect(p.next(i * 1000, 20_000).action).toBe('restart');
    expect(p.next(5_000, 20_000)).toEqual({ action: 'park', restartsInWindow: 5 });
    expect(p.next(70_000, 20_000).action).toBe('restart');
    p.reset();
    expect(p.restartsInWindow(70_000)).toBe(0);
  });
});

describe('PressureLadder', () => {
  const ladder = (hardAtLimit = true) =>
    new PressureLadder({ limit: 1000, warnAt: 0.7, actAt: 0.8, dwellMs: 100, hardAtLimit });

  it('warns once, then soft → medium → hard while the steps do not help, with before and after', () => {
    const l = ladder();
    expect(l.observe(0, 500)).toEqual([]);
    expect(l.observe(10, 720)).toEqual([{ kind: 'warn', value: 720, threshold: 700 }]);
    expect(l.observe(20, 750)).toEqual([]);
    expect(l.observe(30, 810)).toEqual([{ kind: 'step', step: 'soft', value: 810, threshold: 800 }]);
    expect(l.observe(100, 900)).toEqual([]); // still dwelling
    expect(l.observe(130, 850)).toEqual([
      { kind: 'judged', step: 'soft', before: 810, after: 850, helped: false },
      { kind: 'step', step: 'medium', value: 850, threshold: 800 },
    ]);
    expect(l.observe(230, 880)).toEqual([
      { kind: 'judged', step: 'medium', before: 850, after: 880, helped: false },
      { kind: 'step', step: 'hard', value: 880, threshold: 800 },
    ]);
    expect(l.observe(400, 990)).toEqual([]); // hard is final until reset
  });

  it('a step that helped ends the ladder; pressure later starts it over at soft', () => {
    const l = ladder();
    l.observe(0, 820);
    expect(l.observe(100, 750)).toEqual([
      { kind: 'judged', step: 'soft', before: 820, after: 750, helped: true },
    ]);
    expect(l.step).toBeUndefined();
    expect(l.observe(110, 500)).toEqual([{ kind: 'clear', value: 500 }]);
    expect(l.observe(120, 830)).toEqual([{ kind: 'step', step: 'soft', value: 830, threshold: 800 }]);
  });

  it('reaching the limit is hard at once, whatever the step in force', () => {
    const l = ladder();
    l.observe(0, 820);
    expect(l.observe(10, 1000)).toEqual([
      { kind: 'judged', step: 'soft', before: 820, after: 1000, helped: false },
      { kind: 'step', step: 'hard', value: 1000, threshold: 1000 },
    ]);
    const fresh = ladder();
    expect(fresh.observe(0, 5000)).toEqual([{ kind: 'step', step: 'hard', value: 5000, threshold: 1000 }]);
  });

  it('without hardAtLimit (CPU) every step gets its dwell time, even at the limit', () => {
    const l = ladder(false);
    expect(l.observe(0, 1500)).toEqual([{ kind: 'step', step: 'soft', value: 1500, threshold: 800 }]);
    expect(l.observe(50, 1500)).toEqual([]);
    expect(l.observe(100, 1500).at(-1)).toEqual({
      kind: 'step',
      step: 'medium',
      value: 1500,
      threshold: 800,
    });
    expect(l.observe(200, 1500).at(-1)).toEqual({ kind: 'step', step: 'hard', value: 1500, threshold: 800 });
  });
});

describe('supervise options', () => {
  const problems = (input: Parameters<typeof resolveSuperviseOptions>[0]) => {
    try {
      resolveSuperviseOptions(input);
    } catch (error) {
      if (isBulwarkError(error, 'BWK_ERR_SUPERVISOR_OPTIONS')) return error.details ?? [];
      throw error;
    }
    return [];
  };

  it('defaults, env, then flags; exit codes from a comma list', () => {
    const options = resolveSuperviseOptions({
      cli: { command: ['node', 'app.js'], instances: '2', finalExitCodes: '78, 64' },
      env: { PORT: '4000', BULWARK_DATA_DIR: '/srv/data' },
    });
    expect(options).toMatchObject({
      command: ['node', 'app.js'],
      instances: 2,
      port: 4000,
      stateDir: '/srv/data/supervisor',
      finalExitCodes: [78, 64],
      heartbeatTimeoutMs: 3000,
    });
  });

  it('names every bad field by its flag, and the missing command', () => {
    const found = problems({ cli: { instances: '0', startTimeoutMs: '1e3', port: 'x' }, env: {} });
    expect(found.map((p) => p.field)).toEqual([
      '--port',
      '--start-timeout-ms',
      '<command...>',
      '--instances',
    ]);
    expect(found[0]?.message).toBe('"x" is not an integer');
    expect(found[1]?.message).toBe('"1e3" is not an integer');
    expect(found[2]?.message).toContain('missing');
    expect(found[3]?.message).toContain('"0" is invalid');
    expect(problems({ cli: { command: ['x'] }, env: { PORT: '99999' } }).map((p) => p.field)).toEqual([
      'PORT',
    ]);
  });

  it('trusted proxies from a comma list; an entry that is not an address or a range is named', () => {
    const base = { command: ['node', 'app.js'] };
    expect(
      resolveSuperviseOptions({
        cli: { ...base, trustedProxies: '10.0.0.0/8, 192.168.1.5,fd00::/8' },
        env: {},
      }).trustedProxies,
    ).toEqual(['10.0.0.0/8', '192.168.1.5', 'fd00::/8']);
    expect(resolveSuperviseOptions({ cli: base, env: {} }).trustedProxies).toEqual([]);
    expect(
      problems({ cli: { ...base, trustedProxies: '10.0.0.0/8,lb.internal,10.0.0.0/40' }, env: {} }),
    ).toEqual([
      {
        field: '--trusted-proxies',
        message: '"lb.internal", "10.0.0.0/40": not an IP address or CIDR range',
      },
    ]);
  });

  it('names a config file field, an unknown key and a bad file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bwk-opts-'));
    const file = path.join(dir, 'supervise.json');
    writeFileSync(file, JSON.stringify({ command: ['node', 'a.js'], maxMemoryMb: 'lots', colour: 'red' }));
    expect(problems({ configFile: file, env: {} })).toEqual([
      { field: `${file}: maxMemoryMb`, message: '"lots" is not an integer' },
      { field: `${file}: colour`, message: 'unknown option "colour"' },
    ]);
    writeFileSync(file, '{ "command": [');
    const [bad] = problems({ configFile: file, env: {} });
    expect(bad?.field).toBe('--config');
    expect(bad?.message).toContain('not valid JSON');
    // Flags override the file.
    writeFileSync(file, JSON.stringify({ command: ['node', 'a.js'], instances: 3 }));
    expect(resolveSuperviseOptions({ configFile: file, cli: { instances: '2' }, env: {} }).instances).toBe(2);
  });
});

describe('control socket path', () => {
  it('is in the state dir; too long a path has none there (no predictable name elsewhere)', async () => {
    expect(controlSocketPath('/srv/app/data/supervisor')).toBe('/srv/app/data/supervisor/control.sock');
    expect(await locateControlSocket('/srv/app/data/supervisor')).toBe(
      '/srv/app/data/supervisor/control.sock',
    );
    const long = `/srv/${'x'.repeat(120)}/supervisor`;
    expect(controlSocketPath(long)).toBeUndefined();
    // Nothing recorded: no supervisor to reach.
    expect(await locateControlSocket(long)).toBeUndefined();
  });

  it('a recorded socket path is followed only into a private directory of this user', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'bwk-sock-'));
    const stateDir = path.join(root, 'x'.repeat(100));
    mkdirSync(stateDir);
    const record = (socket: string) => writeFileSync(path.join(stateDir, 'control.sock.path'), `${socket}\n`);
    const privateDir = mkdtempSync(path.join(os.tmpdir(), 'bwk-private-'));
    record(path.join(privateDir, 'control.sock'));
    expect(await locateControlSocket(stateDir)).toBe(path.join(privateDir, 'control.sock'));
    // A directory others may enter (or a name straight in the shared temp dir) is not trusted.
    chmodSync(privateDir, 0o755);
    expect(await locateControlSocket(stateDir)).toBeUndefined();
    record(path.join(os.tmpdir(), 'control.sock'));
    expect(await locateControlSocket(stateDir)).toBeUndefined();
    rmSync(root, { recursive: true, force: true });
    rmSync(privateDir, { recursive: true, force: true });
  });
});

describe('redaction of what the supervisor writes', () => {
  const env = {
    BULWARK_ADMIN_KEY: 'admin-key-0123456789',
    SENTRY_DSN: 'https://publickey123@o1.ingest.sentry.io/42',
    DB_PASSWORD: 'hunter2-hunter2',
    DATABASE_URL: 'postgres://app:pg%40secret@db:5432/app?sslmode=require',
    MYSQL_URL: 'mysql://db/app?user=app&password=query-secret',
    PWD: '/srv/app',
    NODE_ENV: 'production',
    SHORT_TOKEN: 'abc',
  };

  it('names that say secret, not the working directory', () => {
    for (const name of [
      'BULWARK_ADMIN_KEY',
      'apiKey',
      'NPM_AUTHTOKEN',
      'sslpassword',
      'DB_PWD',
      'SESSION_SECRET',
      'SENTRY_DSN',
      'STRIPE_KEY',
      'GITHUB_PAT',
    ])
      expect(isSecretName(name), name).toBe(true);
    for (const name of ['PWD', 'OLDPWD', 'NODE_ENV', 'PATH', 'PORT', 'HOSTNAME', 'MONKEY_COUNT', 'AUTHOR'])
      expect(isSecretName(name), name).toBe(false);
  });

  it('masks URL credentials and secret query parameters, keeping the rest', () => {
    expect(redactUrls('postgres://app:pw@db:5432/app?sslmode=require')).toBe(
      'postgres://app:[redacted]@db:5432/app?sslmode=require',
    );
    expect(redactUrls('redis://:pw@cache:6379/0 and https://token@sentry.io/1')).toBe(
      'redis://:[redacted]@cache:6379/0 and https://[redacted]@sentry.io/1',
    );
    expect(redactUrls('mysql://db/app?user=app&password=x&ssl=true')).toBe(
      'mysql://db/app?user=app&password=[redacted]&ssl=true',
    );
    expect(redactUrls('no url here = fine')).toBe('no url here = fine');
  });

  it('the secret values of an environment, decoded too; short ones left out', () => {
    const secrets = secretValues(env);
    for (const value of [
      'admin-key-0123456789',
      'hunter2-hunter2',
      'pg%40secret',
      'pg@secret',
      'query-secret',
    ])
      expect(secrets).toContain(value);
    expect(secrets).not.toContain('abc');
    expect(secrets).not.toContain('/srv/app');
  });

  it('a report or status with no secret left, names and structure kept', () => {
    const report = {
      header: { commandLine: ['node', 'app.js', '--db-password=hunter2-hunter2', 'DB_PASSWORD=x'] },
      environmentVariables: env,
      javascriptStack: { message: 'failed to connect to pg@secret', stack: ['at connect (db.js:1:1)'] },
      libuv: [{ type: 'tcp', port: 5432 }],
    };
    const clean = redactDeep(report, secretValues(env));
    expect(clean.header.commandLine).toEqual([
      'node',
      'app.js',
      '--db-password=[redacted]',
      'DB_PASSWORD=[redacted]',
    ]);
    expect(clean.environmentVariables).toEqual({
      BULWARK_ADMIN_KEY: '[redacted]',
      SENTRY_DSN: '[redacted]',
      DB_PASSWORD: '[redacted]',
      DATABASE_URL: 'postgres://app:[redacted]@db:5432/app?sslmode=require',
      MYSQL_URL: 'mysql://db/app?user=app&password=[redacted]',
      PWD: '/srv/app',
      NODE_ENV: 'production',
      SHORT_TOKEN: '[redacted]',
    });
    expect(clean.javascriptStack.message).toBe('failed to connect to [redacted]');
    expect(clean.libuv).toEqual(report.libuv);
    expect(report.environmentVariables.DB_PASSWORD).toBe('hunter2-hunter2'); // not mutated
  });
});

describe('LivenessMonitor samples', () => {
  it('a process that exited but is not reaped yet (a zombie, 0 bytes) is no sample: the RSS at death stays the last real one', async () => {
    // sh starts a short sleep, then becomes a long one that never reaps it: a zombie for 30 s.
    const parent = spawn('sh', ['-c', 'sleep 0.05 & exec sleep 30'], { stdio: 'ignore' });
    try {
      let zombie = 0;
      await until(
        () => {
          const line = execFileSync('ps', ['-o', 'pid=,stat=', '--ppid', String(parent.pid)], {
            encoding: 'utf8',
          }).trim();
          zombie = line.endsWith('Z') ? Number(line.split(/\s+/)[0]) : 0;
          return zombie !== 0;
        },
        10_000,
        'a zombie',
      );
      const options = resolveSuperviseOptions({
        cli: { command: ['x'], sampleMs: '50', probeIntervalMs: '86400000' },
        env: {},
      });
      const logger = pino({ level: 'silent' });
      // Plain stand-ins for two ready instances: the sampler reads only their pid, state and sample.
      const instance = (pid: number) => ({ state: 'ready', pid, sample: undefined }) as unknown as Instance;
      const dead = createSlot(0, options, logger);
      const alive = createSlot(1, options, logger);
      dead.instance = instance(zombie);
      alive.instance = instance(process.pid);
      const monitor = new LivenessMonitor({
        options,
        logger,
        slots: [dead, alive],
        records: undefined as never,
        metrics: undefined as never,
        secrets: [],
        proxy: () => undefined,
      } satisfies LivenessContext);
      monitor.start();
      // Both are sampled in the same round: once the live one has a sample, the zombie was read too.
      await until(() => alive.instance?.sample !== undefined, 10_000, 'a sample of the live process');
      monitor.stop();
      expect(alive.instance.sample?.rss).toBeGreaterThan(1024 * 1024);
      expect(dead.instance.sample).toBeUndefined();
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('docs/supervisor.md', () => {
  it('lists every option with its flag and config key', () => {
    const doc = readFileSync('docs/supervisor.md', 'utf8');
    for (const key of Object.keys(superviseSchema.properties)) {
      if (key === 'command' || key === 'env') continue;
      const flag = key === 'echo' ? '--no-echo' : flagOf(key);
      expect(doc, key).toMatch(new RegExp(`\\| \`${flag}\` +\\| \`${key}\` `));
    }
  });
});
