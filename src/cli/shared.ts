import { createBulwark, type Bulwark } from '../runtime/create.js';

/**
 * Opens Bulwark from the environment (the same variables as the server), runs `fn`, then closes it.
 * Logs (warnings and worse) go to stderr so that stdout stays parseable with `--json`.
 */
export async function withBulwark<T>(fn: (bulwark: Bulwark) => Promise<T>): Promise<T> {
  const bulwark = await createBulwark({
    logLevel: 'warn',
    defaultMetrics: false,
    logDestination: process.stderr,
    // A command is not the service: its process must not sample into the service's metrics history.
    metricsHistory: false,
  });
  try {
    return await fn(bulwark);
  } finally {
    await bulwark.close();
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
