import { hostname } from 'node:os';
import type { Part } from '../parts/index.js';
import type { RedisDependency } from '../redis/connection.js';
import type { Store } from '../store/types.js';
import type { SupervisorClient } from '../supervised/client.js';
import type { InstanceRegistry } from './registry.js';

/** Options of {@link instancesPart} (times in ms); the defaults are what the console expects. */
export interface InstancesPartOptions {
  /** Default 10 000. */
  heartbeatMs?: number;
  /** Default 600 000 (10 min). */
  retentionMs?: number;
  /** Default 30 000. */
  aliveMs?: number;
}

/**
 * The instances registry (`bulwark.parts.get('instances')`): this instance's row in
 * `bulwark_instances` (id, service, host, pid, version, start, last seen, dependency modes, supervisor
 * slot), written at start, every 10 s and on every dependency switch, and marked stopped at close. A
 * store outage skips beats; it never fails the start or holds the close.
 */
export function instancesPart(
  options: InstancesPartOptions = {},
): Part<
  'instances',
  InstanceRegistry,
  { store: Store; redis: RedisDependency | undefined; supervisor: SupervisorClient | undefined }
> {
  return {
    name: 'instances',
    needs: ['store', 'redis', 'supervisor'],
    checks: [],
    migrations: async (engine) => (await import('./migrations.js')).instancesMigrations(engine),
    async start({ store, redis, supervisor }, { logger, instanceId, serviceId, version }) {
      const { InstanceRegistry, supervisorSlot } = await import('./registry.js');
      const failover = redis?.failover;
      const registry = new InstanceRegistry({
        db: store.db,
        logger,
        identity: { instanceId, serviceId, host: hostname(), pid: process.pid, version },
        dependencies: () =>
          failover === undefined ? {} : { [failover.name]: { mode: failover.mode, forced: failover.forced } },
        supervisor: supervisorSlot(supervisor?.instanceId),
        ...options,
      });
      failover?.onChange(() => registry.changed());
      await registry.start();
      return registry;
    },
    close: (registry) => registry.close(),
  };
}
