// The console's frame: the session check, the sign-in page, the navigation and the page of the URL.
import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, onUnauthorized, setCsrfToken, type Session } from './api.js';
import { closeLive } from './live.js';
import { navigate, useRoute, type Route } from './router.js';
import { SessionContext } from './session.js';
import { ErrorNotice, Link, toastError, Toasts } from './ui.js';
import { LoginPage } from './pages/login.js';
import { OverviewPage } from './pages/overview.js';
import { DependenciesPage } from './pages/dependencies.js';
import { FlagsPage } from './pages/flags.js';
import { AuditPage } from './pages/audit.js';
import { MetricsPage } from './pages/metrics.js';
import { ProcessesPage } from './pages/processes.js';
import { OffendersPage } from './pages/offenders.js';
import { ConfigPage } from './pages/config.js';
import { InstancesPage } from './pages/instances.js';
import { QueuesPage } from './pages/queues.js';
import { AlertsPage } from './pages/alerts.js';
import { ErrorsPage } from './pages/errors.js';

/** A page of the console: its path (the first segment), its name in the navigation, its component. */
interface PageEntry {
  path: string;
  name: string;
  component: ComponentType<{ route: Route }>;
}

export const PAGES: PageEntry[] = [
  { path: '/', name: 'Overview', component: OverviewPage },
  { path: '/instances', name: 'Instances', component: InstancesPage },
  { path: '/dependencies', name: 'Dependencies', component: DependenciesPage },
  { path: '/flags', name: 'Flags', component: FlagsPage },
  { path: '/config', name: 'Config', component: ConfigPage },
  { path: '/queues', name: 'Queues', component: QueuesPage },
  { path: '/processes', name: 'Processes', component: ProcessesPage },
  { path: '/errors', name: 'Errors', component: ErrorsPage },
  { path: '/alerts', name: 'Alerts', component: AlertsPage },
  { path: '/metrics', name: 'Metrics', component: MetricsPage },
  { path: '/audit', name: 'Audit log', component: AuditPage },
  { path: '/offenders', name: 'Rate-limit offenders', component: OffendersPage },
];

function pageOf(path: string): PageEntry | undefined {
  const first = `/${path.split('/')[1] ?? ''}`;
  return PAGES.find((page) => page.path === first);
}

/**
 * `path` as an address on this site, or undefined when it would lead elsewhere: resolved as the
 * browser will (which drops tabs and newlines, so "/\t/evil.example" is "//evil.example"), not
 * judged by its first characters.
 */
function sameSite(path: string | null): string | undefined {
  if (path === null || !path.startsWith('/')) return undefined;
  const url = new URL(path, window.location.origin);
  return url.origin === window.location.origin ? url.href : undefined;
}

/** A page of the app's own that the console links to (the plugin option `console.links`). */
interface AppLink {
  name: string;
  href: string;
}

type State =
  | { kind: 'checking' }
  | { kind: 'signed-out' }
  | { kind: 'signed-in'; session: Session }
  | { kind: 'failed'; error: ApiError };

export function App() {
  const route = useRoute();
  const [state, setState] = useState<State>({ kind: 'checking' });
  const check = () => {
    setState({ kind: 'checking' });
    api<Session>('GET', '/session').then(
      (session) => {
        setCsrfToken(session.csrfToken);
        setState({ kind: 'signed-in', session });
      },
      (error: unknown) => {
        if (error instanceof ApiError && error.status === 401) setState({ kind: 'signed-out' });
        else
          setState({
            kind: 'failed',
            error: error instanceof ApiError ? error : new ApiError('CONSOLE_ERROR', String(error), 0),
          });
      },
    );
  };
  useEffect(check, []);
  // Signed in on the sign-in page (a bookmark, the back button): go where it was going, a console
  // page (`next`) or a page of the app's own that sent the admin here (`return`, a path on this site).
  useEffect(() => {
    if (state.kind !== 'signed-in' || route.path !== '/login') return;
    const back = sameSite(route.query.get('return'));
    if (back !== undefined) window.location.assign(back);
    else navigate(route.query.get('next') ?? '/', true);
  }, [state.kind, route.path]);
  const [links, setLinks] = useState<AppLink[]>([]);
  useEffect(() => {
    if (state.kind === 'signed-in')
      api<{ links: AppLink[] }>('GET', '/console/links').then(
        (answer) => setLinks(answer.links),
        () => setLinks([]),
      );
  }, [state.kind]);
  useEffect(
    () =>
      onUnauthorized(() => {
        setCsrfToken(undefined);
        closeLive();
        setState({ kind: 'signed-out' });
      }),
    [],
  );

  if (state.kind === 'checking')
    return (
      <p class="muted center" aria-busy="true">
        Loading…
      </p>
    );
  if (state.kind === 'failed') {
    return (
      <main class="center">
        <ErrorNotice error={state.error} retry={check} />
      </main>
    );
  }
  if (state.kind === 'signed-out') {
    return (
      <>
        <LoginPage
          onSignedIn={(session) => {
            setCsrfToken(session.csrfToken);
            setState({ kind: 'signed-in', session });
          }}
        />
        <Toasts />
      </>
    );
  }
  const signOut = () => {
    api('DELETE', '/session').then(() => {
      setCsrfToken(undefined);
      closeLive();
      setState({ kind: 'signed-out' });
    }, toastError);
  };
  const page = pageOf(route.path);
  const Page = page?.component;
  return (
    <SessionContext.Provider value={state.session}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link to="/" class="brand">
          Bulwark
        </Link>
        <span class="who">
          {state.session.actor} · <span class="role">{state.session.role}</span>
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <div class="layout">
        <nav aria-label="Console">
          <ul>
            {PAGES.map((entry) => (
              <li key={entry.path}>
                <Link to={entry.path} current={entry === page}>
                  {entry.name}
                </Link>
              </li>
            ))}
            {links.map((link) => (
              <li key={link.href} class="app-link">
                <a href={link.href}>{link.name}</a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main">
          {Page ? (
            <Page route={route} />
          ) : (
            <section>
              <h1>Not found</h1>
              <p>
                There is no console page at <code>{route.path}</code>. <Link to="/">Go to the overview</Link>.
              </p>
            </section>
          )}
        </main>
      </div>
      <Toasts />
    </SessionContext.Provider>
  );
}
