import type { Access } from '../access/types.js';
import type { FlagService } from '../flags/service.js';
import type { JobQueue } from '../queue/types.js';
import type { Store } from '../store/types.js';

/** What a command may open: the store always, and the capabilities it names. */
export interface CliParts {
  store: Store;
  flags: FlagService;
  queues: JobQueue;
  access: Access;
}

/**
 * Opens the store and the capabilities named (with the parts they need, nothing else) from the
 * environment (the same variables as the server), runs `fn`, then closes them. Logs (warnings and
 * worse) go to stderr so that stdout stays parseable with `--json`.
 */
export async function withParts<K extends 'flags' | 'queues' | 'access', T>(
  names: K[],
  fn: (parts: Pick<CliParts, K | 'store'>) => Promise<T>,
): Promise<T> {
  const { openParts } = await import('../runtime/create.js');
  const opened = await openParts(names, {
    logLevel: 'warn',
    defaultMetrics: false,
    logDestination: process.stderr,
    // A command is not the service: its process must not sample into the service's metrics history.
    metricsHistory: false,
    // Nor does it live long enough for a checkpoint thread (~30 ms and 9 MiB of a command's run,
    // should its writes pass 1 MiB); SQLite's own checkpoints cover its few writes.
    // Nor for the read worker (the same cost): its counts run on its own loop, with nothing to hold up.
    store: { checkpoint: 'inline', readAside: 'inline' },
  });
  try {
    const parts = { store: opened.get<Store>('store') } as Pick<CliParts, K | 'store'>;
    for (const name of names) (parts as Record<string, unknown>)[name] = opened.get(name);
    return await fn(parts);
  } finally {
    await opened.close();
  }
}

/** Left-aligned columns, two spaces apart. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
