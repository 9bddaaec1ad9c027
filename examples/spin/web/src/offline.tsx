// The pages offline: the service worker registered (sw/sw.ts keeps the pages and the user's data
// for when the network is gone), a banner while offline (network.ts), the joins and votes kept
// until it is back (outbox.ts) and a new version offered once its worker took over.
//
// A new version is offered, not loaded by itself: the page is kept open for long waits and acted on
// (a sign-up being typed, a Like on its way), and a reload under the person's hands would lose what
// they typed or leave them wondering whether their click counted. Nothing keeps them on the old
// build: the new worker is active, so the next page they open, and Reload now, are the new build.
import { useEffect, useState } from 'preact/hooks';
import { online, watchOnline } from './network.js';
import { kept, sendWhenOnline, watchKept, type Kept } from './outbox.js';
import type { Fail } from './ui.js';
import './offline.css';

function useOnline(): boolean {
  const [isOnline, setOnline] = useState(online());
  useEffect(() => watchOnline(setOnline), []);
  return isOnline;
}

/** Whether this page's scripts and style sheets are all of the build the active worker serves. */
async function ofWorkersBuild(): Promise<boolean> {
  const worker = navigator.serviceWorker.controller;
  if (worker === null) return true;
  const files = await new Promise<string[]>((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => resolve((event.data as { files: string[] }).files);
    worker.postMessage('build', [channel.port2]);
  });
  const served = new Set(files);
  const used = document.querySelectorAll<HTMLScriptElement | HTMLLinkElement>(
    'script[src], link[rel="stylesheet"]',
  );
  return [...used].every((el) => served.has(el instanceof HTMLScriptElement ? el.src : el.href));
}

/**
 * Registers the service worker; `onNewer` is called when one of a newer build than this page takes
 * over. Without service workers (or when registering fails) the pages work online only.
 */
function registerWorker(onNewer: () => void): () => void {
  if (!('serviceWorker' in navigator)) return () => undefined;
  const { serviceWorker } = navigator;
  // The first worker taking over the page it was registered from is no new version.
  let controlled = serviceWorker.controller !== null;
  const changed = () => {
    if (!controlled) controlled = true;
    else void ofWorkersBuild().then((same) => same || onNewer());
  };
  // A page kept open for hours asks for a new build when it is shown again and when back online
  // (the browser itself asks only when a page is opened).
  const check = () => {
    if (document.visibilityState === 'visible' && navigator.onLine)
      void serviceWorker.getRegistration().then((r) => r?.update().catch(() => undefined));
  };
  serviceWorker.addEventListener('controllerchange', changed);
  window.addEventListener('online', check);
  document.addEventListener('visibilitychange', check);
  serviceWorker
    .register(`${import.meta.env.BASE_URL}sw.js`, { updateViaCache: 'none' })
    .catch(() => undefined);
  return () => {
    serviceWorker.removeEventListener('controllerchange', changed);
    window.removeEventListener('online', check);
    document.removeEventListener('visibilitychange', check);
  };
}

/**
 * The offline state as the person sees it (one live region): the banner while offline, each kept
 * join or vote, and a new version once it is ready.
 */
export function Offline({ fail }: { fail: Fail }) {
  const online = useOnline();
  const [waiting, setWaiting] = useState<Kept[]>(kept);
  const [newer, setNewer] = useState(false);
  useEffect(() => watchKept(setWaiting), []);
  useEffect(() => sendWhenOnline(fail), []);
  useEffect(() => registerWorker(() => setNewer(true)), []);
  return (
    <div role="status" class="notices">
      {!online && <p class="offline">You are offline. Spin will catch up when you are back.</p>}
      {waiting.map((k) => (
        <p key={k.key} class="kept">
          {k.label} {online ? 'is being sent.' : 'will be sent when you are back online.'}
        </p>
      ))}
      {newer && (
        <p class="newer">
          A new version of Spin is ready. <button onClick={() => location.reload()}>Reload</button>
        </p>
      )}
    </div>
  );
}
