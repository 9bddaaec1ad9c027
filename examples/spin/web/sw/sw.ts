// Spin's service worker, so the pages open offline after one visit. Hand-written: Workbox's
// runtime would be several times the size of these few rules. What it does:
// - at install, keeps the page (the app shell) and every hashed asset of its build (`__BUILD__`,
//   written in by console/web-build.ts) in a cache named by the build's version;
// - assets: cache first (a hashed name never changes its content), this build's only;
// - pages: network first, the kept shell when the network fails, so online a page is always the
//   newest build and never one a cache holds on to;
// - the user's own GETs the waiting page shows (/api/me, /api/matches): network first, the last
//   answer when the network fails, kept per bearer token so no one is shown another's data;
// - never anything else: no other API call (not the live stream /api/events), no POST, no
//   /admin or /api-docs page, no other origin; those go to the network as without a worker.
// A new build's worker takes over at once (skipWaiting, clients.claim) and deletes the old caches;
// the page then offers a reload (offline.tsx says why not by itself).

// A module (so `self` is this worker's scope here, not the lib's plain WorkerGlobalScope).
export {};
declare const self: ServiceWorkerGlobalScope;
declare const __BUILD__: { version: string; files: string[] };

const CACHE = `spin-${__BUILD__.version}`;
const SHELL = new URL('./', self.registration.scope).href;
const ASSETS = new URL('assets/', self.registration.scope).pathname;
/** The GETs of the user's own data kept for offline: what the waiting page shows of them. */
const DATA = new Set(['/api/me', '/api/matches']);
/** Pages that are not Spin's: the admin console, the API's documentation. */
const NOT_SPIN = /^\/(admin|api)/;

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(__BUILD__.files.map((file) => new URL(file, self.registration.scope).href));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys())
        if (name.startsWith('spin-') && name !== CACHE) await caches.delete(name);
      // The pages an older worker controlled are this one's already (skipWaiting); this takes the
      // page that registered the first worker, so it works offline without a reload.
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    if (!NOT_SPIN.test(url.pathname)) event.respondWith(page(request));
  } else if (url.pathname.startsWith(ASSETS)) event.respondWith(asset(request));
  else if (DATA.has(url.pathname)) event.respondWith(data(request));
});

// The page asks which files this worker's build has (their URLs), to tell whether it is older.
self.addEventListener('message', (event) => {
  if (event.data !== 'build') return;
  const files = __BUILD__.files.map((file) => new URL(file, self.registration.scope).href);
  event.ports[0]?.postMessage({ version: __BUILD__.version, files });
});

async function page(request: Request): Promise<Response> {
  try {
    return await fetch(request);
  } catch (error) {
    const shell = await caches.match(SHELL, { cacheName: CACHE });
    if (shell === undefined) throw error;
    return shell;
  }
}

async function asset(request: Request): Promise<Response> {
  // Another build's file (a page newer than this worker) is fetched, not kept: that build's worker
  // keeps its own, and this cache may be on its way out.
  return (await caches.match(request, { cacheName: CACHE })) ?? fetch(request);
}

/** The header of an answer the worker gave from its cache because the network failed. */
const FROM_CACHE = 'x-spin-from-cache';

async function data(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  const key = await perUser(request);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key, response.clone());
    return response;
  } catch (error) {
    const kept = await cache.match(key);
    if (kept === undefined) throw error;
    // Marked, so the page knows the server did not answer (web/src/network.ts).
    const headers = new Headers(kept.headers);
    headers.set(FROM_CACHE, '1');
    return new Response(kept.body, { status: kept.status, statusText: kept.statusText, headers });
  }
}

/** The cache key of a user's GET: its URL and a digest of its bearer token (never the token). */
async function perUser(request: Request): Promise<string> {
  const token = new TextEncoder().encode(request.headers.get('authorization') ?? '');
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', token));
  const url = new URL(request.url);
  url.searchParams.set(
    'sw-user',
    Array.from(digest.slice(0, 16), (b) => b.toString(16).padStart(2, '0')).join(''),
  );
  return url.href;
}
