// Joins and votes made while the browser is offline: kept in this browser (localStorage, so a reload
// does not lose them) with their Idempotency-Key, and sent when it is back online. The key is the
// action's, not the attempt's: whatever sends it again (a retry, a reload mid-send, another tab
// sending the same kept list) gets the first answer back from the server, never a second effect.
import { api, ApiError } from './api.js';
import { online, watchOnline } from './network.js';

/** A keyed request: sent now, or kept until the browser is back online. */
export interface Kept {
  /** Its Idempotency-Key, one per action. */
  key: string;
  method: string;
  path: string;
  token: string;
  body?: unknown;
  /** What the page calls it: "Your join". */
  label: string;
}

const STORE = 'spin.kept';

/** The callers of `send` waiting for their kept request's answer, in this page. */
const waiting = new Map<
  string,
  { request: Kept; settle: { resolve(answer: unknown): void; reject(error: unknown): void }[] }
>();
const listeners = new Set<(kept: Kept[]) => void>();
/** Where the failure of a request kept by an earlier page (nobody waits for it) goes. */
let orphaned: (error: unknown) => void = () => undefined;
let sending: Promise<void> | undefined;

/** The requests kept in this browser, oldest first. */
export function kept(): Kept[] {
  try {
    const list: unknown = JSON.parse(localStorage.getItem(STORE) ?? '[]');
    return Array.isArray(list) ? (list as Kept[]) : [];
  } catch {
    return []; // not ours, or cut: nothing to send
  }
}

function save(list: Kept[]): void {
  if (list.length === 0) localStorage.removeItem(STORE);
  else localStorage.setItem(STORE, JSON.stringify(list));
  for (const listener of listeners) listener(list);
}

/** Follows the kept requests (this page's and, through `storage` events, other tabs'). */
export function watchKept(listener: (kept: Kept[]) => void): () => void {
  const fromOtherTab = (event: StorageEvent) => {
    if (event.key === STORE) listener(kept());
  };
  listeners.add(listener);
  window.addEventListener('storage', fromOtherTab);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('storage', fromOtherTab);
  };
}

/** The key of the kept request to `path` of the user of `token`, if one is kept. */
export function keptKey(path: string, token: string): string | undefined {
  return kept().find((k) => k.path === path && k.token === token)?.key;
}

/** No answer came: the network failed, whatever `navigator.onLine` says. */
function unanswered(error: unknown): boolean {
  return error instanceof ApiError && error.status === 0;
}

/** The next try of the kept requests after one went unanswered while the browser said online. */
let retry: ReturnType<typeof setTimeout> | undefined;
let retryMs = 1_000;

/**
 * `navigator.onLine` can say online with no network (a page reloaded while the emulated or real
 * network is gone, a captive portal): no `online` event will come, so try again later, 1 s doubling
 * to 30 s. Offline, the `online` event sends them.
 */
function retryLater(): void {
  if (retry !== undefined || !navigator.onLine) return;
  retry = setTimeout(() => {
    retry = undefined;
    void sendAll();
  }, retryMs);
  retryMs = Math.min(retryMs * 2, 30_000);
}

function call<T>(request: Kept): Promise<T> {
  const { method, path, token, body, key } = request;
  return api<T>(method, path, { token, body, headers: { 'idempotency-key': key } });
}

/**
 * Sends a keyed request now or, when offline (no network, or no answer: network.ts), keeps it and
 * sends it once back online: resolves with its answer either way, rejects with what `api` rejects
 * with when the server answered with a refusal.
 */
export async function send<T>(request: Kept): Promise<T> {
  if (online()) {
    try {
      return await call<T>(request);
    } catch (error) {
      if (!unanswered(error)) throw error; // answered: the caller has its refusal
    }
  }
  // Kept: sent when back online, or by a later try if the browser says online already.
  retryLater();
  return new Promise<T>((resolve, reject) => {
    const list = kept();
    if (!list.some((k) => k.key === request.key)) save([...list, request]);
    const entry = waiting.get(request.key) ?? { request, settle: [] };
    entry.settle.push({ resolve, reject });
    waiting.set(request.key, entry);
  });
}

/** Sends the kept requests one at a time, oldest first, until none is left or the browser is offline. */
async function sendKept(): Promise<void> {
  for (;;) {
    // A request another tab sent is gone from the list: sent again here, its answer is a replay.
    const request = kept()[0] ?? waiting.values().next().value?.request;
    if (request === undefined || !navigator.onLine) return;
    let outcome: { answer: unknown } | { error: unknown };
    try {
      outcome = { answer: await call(request) };
      retryMs = 1_000;
    } catch (error) {
      // No answer (offline again, or a network the browser calls online): still kept, and its key
      // makes a later send safe. Only an answer settles it.
      if (unanswered(error)) return retryLater();
      outcome = { error };
    }
    save(kept().filter((k) => k.key !== request.key));
    const settle = waiting.get(request.key)?.settle ?? [];
    waiting.delete(request.key);
    if ('error' in outcome && settle.length === 0) orphaned(outcome.error);
    for (const s of settle) {
      if ('answer' in outcome) s.resolve(outcome.answer);
      else s.reject(outcome.error);
    }
  }
}

function sendAll(): Promise<void> {
  sending ??= sendKept().finally(() => (sending = undefined));
  return sending;
}

/**
 * Sends the kept requests now (those an earlier page kept too) and each time the page is back
 * online (the browser's `online` event, or an answer after none: network.ts); a failure nobody in
 * this page waits for goes to `fail`. Returns the stop.
 */
export function sendWhenOnline(fail: (error: unknown) => void): () => void {
  orphaned = fail;
  const stop = watchOnline((isOnline) => {
    if (isOnline) void sendAll();
  });
  void sendAll();
  return stop;
}
