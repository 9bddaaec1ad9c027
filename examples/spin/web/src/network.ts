// Whether Spin's server answers, as this page last saw it. `navigator.onLine` says only whether the
// browser has a network, and can say online with none (a captive portal; a page reloaded while
// Chromium emulates offline keeps saying online): a request with no answer (or with the service
// worker's cached copy, given because the network failed) marks the server unreachable, any answer
// or the browser's `online` event marks it reachable again.

let reachable = true;
const listeners = new Set<(reachable: boolean) => void>();
// The browser's own word that the network is back: assume the server answers until a request says not.
window.addEventListener('online', () => noteAnswer(true));

/** Records whether a request got an answer (any status) or none (the network failed). */
export function noteAnswer(answered: boolean): void {
  if (answered === reachable) return;
  reachable = answered;
  for (const listener of listeners) listener(answered);
}

/** Online as far as this page can tell: the browser has a network and the last request was answered. */
export function online(): boolean {
  return navigator.onLine && reachable;
}

/** Calls `listener` with `online()` whenever the browser's network or the server's answers change it. */
export function watchOnline(listener: (online: boolean) => void): () => void {
  const changed = () => listener(online());
  listeners.add(changed);
  window.addEventListener('online', changed);
  window.addEventListener('offline', changed);
  return () => {
    listeners.delete(changed);
    window.removeEventListener('online', changed);
    window.removeEventListener('offline', changed);
  };
}
