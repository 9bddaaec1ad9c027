import type { ConfigLogger } from './types.js';

/** The default logger: warnings and errors as JSON lines on stderr. */
export const stderrLogger: ConfigLogger = {
  info: () => undefined,
  warn: (obj, msg) => console.error(JSON.stringify({ level: 'warn', msg, ...printable(obj) })),
  error: (obj, msg) => console.error(JSON.stringify({ level: 'error', msg, ...printable(obj) })),
};

function printable(obj: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...obj };
  if (out['err'] instanceof Error)
    out['err'] = { message: out['err'].message, code: (out['err'] as { code?: unknown }).code };
  return out;
}
