// The port helpers' own tests: a port taken between picking and binding must not fail a start.
// Each case hands the helper a port another process holds first (as a parallel test or an outbound
// connection may), and shows the start fails on it without the retry and ends up elsewhere with it.
import { once } from 'node:events';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, isPortInUse, onFreePort, type PortChoice } from './helpers/ports.js';
import { spawnOnFreePort, type Spawned } from './helpers/process.js';
import { startPostgres } from './helpers/postgres.js';
import { startRedis } from './helpers/redis.js';
import { get, runningPid, startSupervisor, stopSupervisors } from './helpers/supervisor.js';

let holder: net.Server;
let taken: number;

beforeAll(async () => {
  holder = net.createServer((socket) => socket.destroy());
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  taken = (holder.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => holder.close(() => resolve())));

/** The taken port first, then free ones; counts the picks. */
function takenFirst(attempts?: number): PortChoice & { picks: number[] } {
  const picks: number[] = [];
  return {
    picks,
    ...(attempts === undefined ? {} : { attempts }),
    pick: async () => {
      const port = picks.length === 0 ? taken : await freePort();
      picks.push(port);
      return port;
    },
  };
}

const procs: Spawned[] = [];
afterEach(async () => {
  await stopSupervisors();
  for (const proc of procs.splice(0)) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
});

describe('onFreePort', () => {
  it('retries a port-in-use failure on a fresh port, rethrows anything else at once', async () => {
    const choice = takenFirst();
    const bound = await onFreePort(async (port) => {
      const server = net.createServer();
      server.listen(port, '127.0.0.1');
      await once(server, 'listening'); // rejects with EADDRINUSE on the taken port
      server.close();
      return port;
    }, choice);
    expect(choice.picks).toEqual([taken, bound]);
    expect(bound).not.toBe(taken);

    const other = takenFirst();
    await expect(onFreePort(() => Promise.reject(new Error('ECONNREFUSED')), other)).rejects.toThrow(
      'ECONNREFUSED',
    );
    expect(other.picks).toHaveLength(1);
  });
});

describe('helpers that start a server on a port picked in advance', { timeout: 120_000 }, () => {
  const upstream = (choice: PortChoice) =>
    spawnOnFreePort(
      'test/fixtures/proxy-upstream.ts',
      [],
      { ID: 'u' },
      (port) => `listening ${port}`,
      choice,
    );

  it('spawnOnFreePort: a fixture that dies of EADDRINUSE is spawned again elsewhere', async () => {
    const error = await upstream(takenFirst(1)).catch((e: unknown) => e);
    expect(isPortInUse(error)).toBe(true);

    const choice = takenFirst();
    const { proc, port } = await upstream(choice);
    procs.push(proc);
    expect(choice.picks).toEqual([taken, port]);
    expect(await get(port, '/id')).toMatchObject({ status: 200, body: 'u' });
  });

  it('startRedis: a redis-server that cannot bind is started again elsewhere', async () => {
    const error = await startRedis({ ports: takenFirst(1) }).catch((e: unknown) => e);
    expect(isPortInUse(error)).toBe(true);

    const choice = takenFirst();
    const redis = await startRedis({ ports: choice });
    try {
      expect(choice.picks).toEqual([taken, redis.port]);
    } finally {
      await redis.stop();
    }
  });

  it('startPostgres: a PostgreSQL that cannot bind is started again elsewhere', async () => {
    const error = await startPostgres({ ports: takenFirst(1) }).catch((e: unknown) => e);
    expect(isPortInUse(error)).toBe(true);

    const choice = takenFirst();
    const pg = await startPostgres({ ports: choice });
    try {
      expect(choice.picks).toEqual([taken, pg.port]);
    } finally {
      await pg.stop();
    }
  });

  it('startSupervisor (direct mode): a first start on a taken port is made again elsewhere', async () => {
    // The supervisor waits for its port up to --stop-timeout-ms (at most 5 s) before giving up. With
    // --balance proxy the app binds the port itself, as direct mode did before the shared socket.
    const args = ['--balance', 'proxy', '--stop-timeout-ms', '1000', '--start-timeout-ms', '60000'];
    const error = await startSupervisor(args, { ports: takenFirst(1) }).catch((e: unknown) => e);
    expect(isPortInUse(error)).toBe(true);

    const choice = takenFirst();
    const run = await startSupervisor(args, { ports: choice });
    expect(choice.picks).toEqual([taken, run.port]);
    await runningPid(run);
    expect(await get(run.port, '/')).toMatchObject({ status: 200 });
  });

  it('startSupervisor (cluster mode): binds port 0 and reports the port it got', async () => {
    const run = await startSupervisor(['--instances', '1', '--start-timeout-ms', '60000']);
    expect(run.port).toBeGreaterThan(0);
    await runningPid(run);
    expect(await get(run.port, '/')).toMatchObject({ status: 200 });
  });
});
