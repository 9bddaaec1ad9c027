// Spin's API as the pages call it: JSON in and out, the user's bearer token, and every failure as an
// ApiError with the server's error code (or NETWORK when the server could not be reached).
import { noteAnswer } from './network.js';

export type Gender = 'woman' | 'man' | 'nonbinary';
export const GENDERS: readonly Gender[] = ['woman', 'man', 'nonbinary'];

export interface Estimate {
  estimateKnown: boolean;
  p10Ms: number | null;
  p50Ms: number | null;
  p90Ms: number | null;
  sampleSize: number;
  reason: string;
  sentence: string;
}

export type Status =
  | { waiting: false }
  | { waiting: true; joinedAt: number; waitedMs: number; position: number; estimate: Estimate };

export interface Me {
  id: string;
  displayName: string;
  gender: Gender;
  seeking: Gender[];
  email: string | null;
  notify: { match: boolean; waitChange: boolean };
}

export interface Match {
  id: string;
  matchedAt: number;
  partner: { id: string; displayName: string };
  waitedMs: number;
  myVote: 'like' | 'pass' | null;
  partnerVote: 'like' | 'pass' | null;
  outcome: 'pending' | 'success' | 'declined';
}

/** The public queue status (`GET /api/queue-status`): anonymised, rounded. */
export interface QueueStatus {
  waiting: { total: number; byGender: Record<Gender, number> };
  last24h: {
    matches: number;
    successRate: number | null;
    waits: Record<Gender, { avgMs: number; p90Ms: number } | null>;
  };
  health: { status: 'pass' | 'warn' | 'fail'; summary: string };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/**
 * Sends what went wrong to Bulwark's browser error endpoint (`POST /errors/browser`), with what the
 * page did before; resolves whether it was taken. Never throws.
 */
export async function report(problem: { message: string; code?: string; stack?: string }): Promise<boolean> {
  try {
    const res = await fetch('/errors/browser', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: problem.code === undefined ? problem.message : `${problem.code}: ${problem.message}`,
        type: problem.code ?? 'Error',
        ...(problem.stack === undefined ? {} : { stack: problem.stack.slice(0, 16_000) }),
        url: location.href,
        breadcrumbs,
      }),
    });
    return res.status === 202;
  } catch {
    return false;
  }
}

/** What the page did lately (the last 20 calls and what came of them), sent with a problem report. */
export const breadcrumbs: { at: number; category: string; message: string; level?: string }[] = [];

function crumb(message: string, level?: string): void {
  breadcrumbs.push({ at: Date.now(), category: 'api', message, ...(level === undefined ? {} : { level }) });
  if (breadcrumbs.length > 20) breadcrumbs.shift();
}

/**
 * Failures worth trying again by themselves: the network (not while the browser is offline: no try
 * can work before it is back, and a join or vote is then kept for it, outbox.ts), an overloaded or
 * restarting server.
 */
function transient(error: ApiError): boolean {
  return (error.status === 0 && navigator.onLine) || error.status === 503 || error.status === 429;
}

/**
 * One call to Spin's API. A GET, or a request with an Idempotency-Key (so a repeat has no second
 * effect), is tried again by itself after a transient failure: up to 3 more times, 0.5, 1 and 2 s
 * apart (with jitter), or after the server's Retry-After (at most 10 s).
 */
export async function api<T>(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
): Promise<T> {
  const repeatable = method === 'GET' || options.headers?.['idempotency-key'] !== undefined;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await once<T>(method, path, options);
    } catch (error) {
      if (!(error instanceof ApiError) || !repeatable || !transient(error) || attempt >= 3) throw error;
      const wait = error.retryAfterMs ?? 500 * 2 ** attempt * (0.8 + Math.random() * 0.4);
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 10_000)));
    }
  }
}

async function once<T>(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; headers?: Record<string, string> },
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: {
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  } catch {
    crumb(`${method} ${path} → no answer`, 'error');
    noteAnswer(false);
    throw new ApiError(0, 'NETWORK', 'Spin could not be reached: check your connection.');
  }
  // The service worker's copy, given because the network failed, is not the server's answer.
  noteAnswer(res.headers.get('x-spin-from-cache') === null);
  crumb(`${method} ${path} → ${res.status}`, res.ok ? undefined : 'error');
  const text = await res.text();
  let data: { error?: { code?: string; message?: string } } = {};
  try {
    data = text === '' ? {} : (JSON.parse(text) as typeof data);
  } catch {
    // Not JSON (a proxy's error page): the status says enough.
  }
  if (!res.ok) {
    const retryAfter = Number(res.headers.get('retry-after'));
    throw new ApiError(
      res.status,
      data.error?.code ?? `HTTP_${res.status}`,
      data.error?.message ?? (res.statusText || `HTTP ${res.status}`),
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    );
  }
  return data as T;
}

/** `95_000` → "about 2 min"; under a minute in seconds. */
export function duration(ms: number): string {
  if (ms < 60_000) return `${Math.max(1, Math.round(ms / 1000))} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
