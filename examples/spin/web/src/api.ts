// Spin's API as the pages call it: JSON in and out, the user's bearer token, and every failure as an
// ApiError with the server's error code (or NETWORK when the server could not be reached).

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

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
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
    throw new ApiError(0, 'NETWORK', 'Spin could not be reached: check your connection.');
  }
  const text = await res.text();
  const data = (text === '' ? {} : JSON.parse(text)) as { error?: { code?: string; message?: string } };
  if (!res.ok)
    throw new ApiError(
      res.status,
      data.error?.code ?? `HTTP_${res.status}`,
      data.error?.message ?? res.statusText,
    );
  return data as T;
}

/** `95_000` → "about 2 min"; under a minute in seconds. */
export function duration(ms: number): string {
  if (ms < 60_000) return `${Math.max(1, Math.round(ms / 1000))} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
