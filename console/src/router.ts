// Deep links without a router library: the console's state is the URL (path and query), pushed
// with the History API; every page reads it with useRoute() and changes it with navigate().
import { useEffect, useState } from 'preact/hooks';

/** Where the console is mounted. */
export const BASE = '/admin';

export interface Route {
  /** The path under BASE, always starting with '/': `/flags`, `/queues/mail`. */
  path: string;
  query: URLSearchParams;
}

const listeners = new Set<() => void>();

function current(): Route {
  const { pathname, search } = window.location;
  const path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) || '/' : '/';
  return { path, query: new URLSearchParams(search) };
}

/** Goes to `to` (a path under BASE with its query), adding a history entry unless `replace`. */
export function navigate(to: string, replace = false): void {
  const url = `${BASE}${to}`;
  if (url === window.location.pathname + window.location.search) return;
  if (replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
  for (const listener of listeners) listener();
}

/** Replaces query parameters of the current route (null or '' removes one), without a new history entry. */
export function setQuery(changes: Record<string, string | number | null | undefined>): void {
  const { path, query } = current();
  for (const [name, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === '') query.delete(name);
    else query.set(name, String(value));
  }
  const text = query.toString();
  navigate(text === '' ? path : `${path}?${text}`, true);
}

window.addEventListener('popstate', () => {
  for (const listener of listeners) listener();
});

/** The current route; the component renders again when it changes. */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const listener = () => setRoute(current());
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }, []);
  return route;
}
