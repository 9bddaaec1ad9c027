import path from 'node:path';
import type { InvalidationBus } from '../cache/bus.js';
import type { Part, ToolFlag } from '../parts/index.js';
import type { RedisDependency } from '../redis/connection.js';
import type { Store } from '../store/types.js';
import type { GuardedRollouts } from './guard.js';
import type { FlagService } from './service.js';
import type { FlagDefinition } from './types.js';

/** A tool flag as a flag definition: boolean, on by default. */
function toolFlag({ key, description }: ToolFlag): FlagDefinition {
  return {
    key,
    type: 'boolean',
    description,
    variants: { on: true, off: false },
    defaultVariant: 'on',
    offVariant: 'off',
    enabled: true,
  };
}

/**
 * The flag service: store-backed, a snapshot in the data dir (none with an in-memory store), the
 * bootstrap file of `BULWARK_FLAGS_FILE`, changes announced on Redis pub/sub; the tool flags every
 * part of the application declared (`core.toolFlags`) are its defaults. Reports where its flags
 * come from (`flags:source`).
 */
export function flagsPart(options: {
  inMemory: boolean;
}): Part<'flags', FlagService, { store: Store; redis: RedisDependency | undefined }> {
  let bus: InvalidationBus<{ revision: number }> | undefined;
  return {
    name: 'flags',
    needs: ['store', 'redis'],
    checks: ['flags:source'],
    async start({ store, redis }, { settings, health, logger, instanceId, toolFlags }) {
      const { FlagService } = await import('./service.js');
      if (redis !== undefined) {
        const { InvalidationBus } = await import('../cache/bus.js');
        bus = new InvalidationBus<{ revision: number }>({
          client: redis.client,
          channel: 'bulwark:flags:changed',
          instanceId,
          logger,
        });
        bus.start();
      }
      const flags = new FlagService({
        store,
        ...(options.inMemory ? {} : { snapshotFile: path.join(settings.dataDir, 'flags.snapshot.json') }),
        ...(settings.flagsFile === undefined ? {} : { bootstrapFile: settings.flagsFile }),
        defaults: await declaredToolFlags(store, toolFlags.map(toolFlag), logger),
        ...(bus === undefined ? {} : { bus }),
        logger,
      });
      await flags.start();
      health.register({
        name: 'flags:source',
        componentType: 'component',
        critical: false,
        readiness: true,
        intervalMs: 5000,
        check: () => {
          const p = flags.provenance;
          const age = Math.round((Date.now() - p.loadedAt) / 1000);
          const output = `${p.flags} flags from the ${p.source} (revision ${p.revision}, read ${age} s ago)`;
          return { status: p.source === 'store' ? 'pass' : 'warn', observedValue: p.source, output };
        },
      });
      return flags;
    },
    close(flags) {
      flags.close();
      bus?.close();
    },
  };
}

/** Where the tool flags a process declares are written down for every process on the store. */
const DECLARED = 'bulwark.flags.declared';

/**
 * The tool flags of this process (`mine`) and those other processes on the store declared: each
 * process writes its own down, so a command (`bulwark flags kill app.tool`), which runs none of the
 * application's parts, knows the application's tool flags and can kill one never changed before.
 * An unreadable store leaves this process's own (the flag service then reports where it read from).
 */
async function declaredToolFlags(
  store: Store,
  mine: FlagDefinition[],
  logger: { warn: (obj: object, msg: string) => void },
): Promise<FlagDefinition[]> {
  try {
    const recorded = new Map(
      (await store.kv.list<FlagDefinition>(DECLARED)).map((entry) => [entry.key, entry.value]),
    );
    const changed = mine.filter((flag) => JSON.stringify(recorded.get(flag.key)) !== JSON.stringify(flag));
    if (changed.length > 0)
      await store.kv.putMany(
        DECLARED,
        changed.map((flag) => ({ key: flag.key, value: flag })),
      );
    const known = new Set(mine.map((flag) => flag.key));
    return [...mine, ...[...recorded.values()].filter((flag) => !known.has(flag.key))];
  } catch (error) {
    logger.warn({ err: error }, 'flags: the tool flags other processes declared could not be read');
    return mine;
  }
}

/** Guarded progressive rollouts of flags, evaluated every 5 s on the outcomes of every instance. */
export function rolloutsPart(): Part<'rollouts', GuardedRollouts, { flags: FlagService; store: Store }> {
  return {
    name: 'rollouts',
    needs: ['flags', 'store'],
    checks: [],
    async start({ flags, store }, { instanceId, logger }) {
      const { GuardedRollouts } = await import('./guard.js');
      const rollouts = new GuardedRollouts({ flags, store, instanceId, logger });
      rollouts.startTicking();
      return rollouts;
    },
    close: (rollouts) => rollouts.close(),
  };
}
