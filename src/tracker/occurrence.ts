// What an occurrence keeps of what was thrown and of what happened before it: the type, message
// and stack of anything thrown (an Error or not), and the newest breadcrumbs, each cut.
import type { Breadcrumb } from './types.js';

/** Breadcrumbs kept per sample (the newest), and characters of each message. */
const BREADCRUMBS = { count: 30, message: 500 } as const;

/** The newest breadcrumbs, each message cut: what a sample keeps of a trail. */
export function trail(breadcrumbs: Breadcrumb[] | undefined): Breadcrumb[] | undefined {
  if (breadcrumbs === undefined || breadcrumbs.length === 0) return undefined;
  return breadcrumbs.slice(-BREADCRUMBS.count).map((b) => ({
    ...b,
    category: String(b.category).slice(0, 100),
    message: String(b.message).slice(0, BREADCRUMBS.message),
  }));
}

/** Type, message and stack of anything thrown. */
export function describe(error: unknown): { type: string; message: string; stack: string | undefined } {
  if (error instanceof Error)
    return {
      type: error.name || error.constructor.name || 'Error',
      message: error.message,
      stack: error.stack,
    };
  if (typeof error === 'object' && error !== null) {
    const o = error as { name?: unknown; message?: unknown; stack?: unknown };
    return {
      type: typeof o.name === 'string' ? o.name : 'Object',
      message: typeof o.message === 'string' ? o.message : safeJson(error),
      stack: typeof o.stack === 'string' ? o.stack : undefined,
    };
  }
  return { type: typeof error, message: String(error), stack: undefined };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value).slice(0, 2_000);
  } catch {
    return String(value);
  }
}
