// What the supervisor leaves on disk and on its sockets: no secret of the app in any file, files
// 0600 and directories 0700 whatever the umask, a control socket no other user can connect to,
// and hang reports taken without opening the inspector on a TCP port.
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
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
import { spawnTs } from './helpers/process.js';

const temps: string[] = [];
afterEach(async () => {
  await stopSupervisors();
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const FAST = ['--backoff-initial-ms', '100', '--stable-ms', '5000', '--start-timeout-ms', '30000'];
// An upper bound only, for a loaded machine where each tsx process takes seconds to start.
const TIMEOUT = 180_000;

/** A fresh directory that others may enter (as a data directory's parent usually is). */
function openDir(mode = 0o755): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bwk-sec-'));
  chmodSync(dir, mode);
  temps.push(dir);
  return dir;
}

/** Every entry under `root` (itself included), with its type and permission bits. */
function tree(root: string): { file: string; kind: 'dir' | 'file' | 'socket' | 'other'; mode: number }[] {
  // A temp file of an atomic write may be gone between the listing and its stat.
  const stat = lstatSync(root, { throwIfNoEntry: false });
  if (stat === undefined) return [];
  const kind = stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : stat.isSocket() ? 'socket' : 'other';
  const entry = { file: root, kind, mode: stat.mode & 0o777 } as const;
  if (kind !== 'dir') return [entry];
  return [entry, ...readdirSync(root).flatMap((name) => tree(path.join(root, name)))];
}

const asRoot = process.getuid?.() === 0;

/**
 * Runs `script` with node as another user of this process's group (uid 65534, our gid): what a
 * group member could do under the permissions the supervisor set. Only possible as root.
 */
function asGroupMember(script: string): string {
  const result = spawnSync(process.execPath, ['-e', script], {
    uid: 65534,
    gid: process.getgid?.() ?? 0,
    cwd: '/',
    env: {},
    encoding: 'utf8',
    timeout: 30_000,
  });
  return `${result.stdout}${result.stderr}`.trim();
}

const connectScript = (socket: string) =>
  `require('node:net').connect(${JSON.stringify(socket)})` +
  `.on('connect', () => { console.log('connected'); process.exit(0); })` +
  `.on('error', (e) => { console.log(e.code); process.exit(1); })`;

const readScript = (file: string) =>
  `try { require('node:fs').readFileSync(${JSON.stringify(file)}); console.log('read') } catch (e) { console.log(e.code) }`;

// Values that must appear in no file the supervisor writes.
const SECRET_ENV = {
  BULWARK_ADMIN_KEY: 'admin-key-0123456789abcdef',
  SENTRY_DSN: 'https://f00dfeedpublickey@o1.ingest.sentry.io/42',
  DB_PASSWORD: 'hunter2-db-password',
  DATABASE_URL: 'postgres://app:pg-url-secret-99@db.internal:5432/app?sslmode=require',
  REDIS_URL: 'redis://:redis-url-secret-77@cache.internal:6379/0',
  MYSQL_URL: 'mysql://db.internal/app?user=app&password=query-secret-55',
  PAYMENTS_TOKEN: 'tok-live-payments-4242',
};
const SECRETS = [
  'admin-key-0123456789abcdef',
  'f00dfeedpublickey',
  'hunter2-db-password',
  'pg-url-secret-99',
  'redis-url-secret-77',
  'query-secret-55',
  'tok-live-payments-4242',
  'cmdline-secret-33',
];

describe('bulwark supervise: secrets and permissions on disk', { timeout: TIMEOUT }, () => {
  it('a hung app: its report holds no secret, nor does any file in the state dir; files 0600, dirs 0700 under umask 002', async () => {
    const stateDir = path.join(openDir(), 'data', 'supervisor');
    const run = await startSupervisor([...FAST, '--heartbeat-timeout-ms', '1000'], {
      stateDir,
      umask: 0o002,
      env: SECRET_ENV,
      // A secret on the command line too (the report and state.json show the command).
      command: [...FIXTURE_APP, '--api-token=cmdline-secret-33'],
    });
    const pid = await runningPid(run);
    await get(run.port, '/block?ms=120000');
    await runningPid(run, 0, pid);
    expect(alive(pid)).toBe(false);
    const crash = (await run.status()).crashes.at(-1);
    expect(crash).toMatchObject({ reason: 'hung', signal: 'SIGKILL' });
    const reportPath = crash?.reportPath ?? '';
    expect(path.dirname(reportPath)).toBe(path.join(stateDir, 'reports'));
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as {
      header: { processId: number; commandLine: string[] };
      javascriptStack: { stack: string[] };
      environmentVariables: Record<string, string>;
    };
    // Still a useful report: the blocked stack, every variable named; only the secret values gone.
    expect(report.header.processId).toBe(pid);
    expect(report.javascriptStack.stack.join('\n')).toMatch(/at block \(.*supervised-app\.ts/);
    expect(report.environmentVariables).toMatchObject({
      BULWARK_ADMIN_KEY: '[redacted]',
      SENTRY_DSN: '[redacted]',
      DB_PASSWORD: '[redacted]',
      PAYMENTS_TOKEN: '[redacted]',
      DATABASE_URL: 'postgres://app:[redacted]@db.internal:5432/app?sslmode=require',
      REDIS_URL: 'redis://:[redacted]@cache.internal:6379/0',
      MYSQL_URL: 'mysql://db.internal/app?user=app&password=[redacted]',
      BULWARK_SUPERVISED: '1',
    });
    expect(report.header.commandLine).toContain('--api-token=[redacted]');

    const running = tree(stateDir);
    expect(running.filter((e) => e.kind === 'socket').map((e) => e.mode)).toEqual([0o600]);
    if (asRoot) {
      // A member of the group tries what the reporter did: connect, read the report.
      expect(asGroupMember(connectScript(path.join(stateDir, 'control.sock')))).not.toBe('connected');
      expect(asGroupMember(readScript(reportPath))).not.toBe('read');
    }
    expect((await run.stop()).code).toBe(0);

    const entries = tree(stateDir);
    const files = entries.filter((e) => e.kind === 'file');
    expect(files.map((e) => path.relative(stateDir, e.file)).sort()).toEqual(
      expect.arrayContaining(['logs/app.log', 'state.json', path.relative(stateDir, reportPath)]),
    );
    for (const entry of entries) {
      if (entry.kind === 'dir') expect([entry.file, entry.mode.toString(8)]).toEqual([entry.file, '700']);
      else expect([entry.file, entry.mode.toString(8)]).toEqual([entry.file, '600']);
      if (entry.kind !== 'file') continue;
      const text = readFileSync(entry.file, 'utf8');
      for (const secret of SECRETS) expect(text.includes(secret), `${secret} in ${entry.file}`).toBe(false);
    }
    // The command is shown with the secret argument masked.
    const state = JSON.parse(readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as {
      command: string[];
    };
    expect(state.command.at(-1)).toBe('--api-token=[redacted]');
  });

  it('takes the hang report without opening the inspector (no TCP port, no SIGUSR1)', async () => {
    const run = await startSupervisor([...FAST, '--heartbeat-timeout-ms', '1000', '--no-echo']);
    const pid = await runningPid(run);
    await get(run.port, '/block?ms=120000');
    await runningPid(run, 0, pid);
    const crash = (await run.status()).crashes.at(-1);
    expect(crash?.reportPath).toBeDefined();
    // Node prints this line whenever its inspector starts listening (SIGUSR1, --inspect).
    const log = readFileSync(path.join(run.stateDir, 'logs', 'app.log'), 'utf8');
    expect(log).toContain(`pid ${pid}`);
    expect(log).not.toContain('Debugger listening');
    expect(crash?.lastLines.join('\n')).not.toContain('Debugger listening');
    // Nor is the app started with an inspector port that a SIGUSR1 would open.
    const environ = readFileSync(`/proc/${await runningPid(run)}/environ`, 'utf8');
    expect(environ).not.toContain('--inspect');
  });

  it('existing files from an earlier run are made 0600, the state dir 0700', async () => {
    const parent = openDir();
    const stateDir = path.join(parent, 'supervisor');
    const first = await startSupervisor(FAST, { stateDir, umask: 0o022 });
    await runningPid(first);
    await first.stop();
    // As an older version (or a looser umask) left them.
    for (const entry of tree(stateDir)) chmodSync(entry.file, entry.kind === 'dir' ? 0o755 : 0o644);
    const second = await startSupervisor(FAST, { stateDir, umask: 0o022 });
    await runningPid(second);
    for (const entry of tree(stateDir))
      expect([entry.file, entry.mode.toString(8)]).toEqual([
        entry.file,
        entry.kind === 'dir' ? '700' : '600',
      ]);
  });
});

describe('bulwark supervise: the control socket', { timeout: TIMEOUT }, () => {
  it('is 0600 in a 0700 state dir under umask 002: no group member can connect', async () => {
    const stateDir = path.join(openDir(), 'state');
    const run = await startSupervisor(FAST, { stateDir, umask: 0o002 });
    await runningPid(run);
    const socket = path.join(stateDir, 'control.sock');
    expect((lstatSync(socket).mode & 0o777).toString(8)).toBe('600');
    expect((lstatSync(stateDir).mode & 0o777).toString(8)).toBe('700');
    if (asRoot) expect(asGroupMember(connectScript(socket))).not.toBe('connected');
  });

  it('a state dir too long for a socket path: the socket is in a private mkdtemp dir, and clients find it', async () => {
    // A temp dir of its own, world-writable like /tmp: every socket in it is the supervisor's.
    const tmp = openDir(0o1777);
    const stateDir = path.join(openDir(), 'x'.repeat(100), 'supervisor');
    const run = await startSupervisor(FAST, { stateDir, umask: 0o002, env: { TMPDIR: tmp } });
    await runningPid(run);
    const sockets = tree(tmp).filter((e) => e.kind === 'socket');
    expect(sockets).toHaveLength(1);
    const socket = sockets[0]?.file ?? '';
    const dir = path.dirname(socket);
    // Not a name in the shared temp dir that another user could have taken first.
    expect(dir).not.toBe(tmp);
    expect(path.dirname(dir)).toBe(tmp);
    expect(lstatSync(dir).uid).toBe(process.getuid?.());
    expect((lstatSync(dir).mode & 0o777).toString(8)).toBe('700');
    expect((lstatSync(socket).mode & 0o777).toString(8)).toBe('600');
    if (asRoot) expect(asGroupMember(connectScript(socket))).not.toBe('connected');
    // The CLI finds it from the state dir alone.
    const status = spawnTs('src/cli/main.ts', ['supervise', 'status', '--json', '--state-dir', stateDir], {});
    expect((await status.exited).code).toBe(0);
    expect(JSON.parse(status.stdout())).toMatchObject({ live: true, state: 'running' });
    // Stopped: the private directory is gone.
    expect((await run.stop()).code).toBe(0);
    expect(tree(tmp).filter((e) => e.file === dir)).toEqual([]);
  });
});
