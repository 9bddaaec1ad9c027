// Spin's pages: the waiting page at /, the public queue status at /status, the queue dashboard for
// admins at /dashboard; one error boundary and one place for failures shown as toasts.
import { render, type ComponentType } from 'preact';
import { useEffect, useErrorBoundary, useState } from 'preact/hooks';
import { report } from './api.js';
import { Offline } from './offline.js';
import { Broken, problemOf, Toast, type Fail, type Problem } from './ui.js';
import { WaitingPage } from './waiting.js';
import './style.css';

/** The page of the address: the status and the dashboard load their code (and uPlot) when opened. */
function Page({ fail }: { fail: Fail }) {
  const path = location.pathname.replace(/\/+$/, '');
  const [loaded, setLoaded] = useState<ComponentType<{ fail: Fail }> | null>(null);
  useEffect(() => {
    if (path === '/status') void import('./status.js').then((m) => setLoaded(() => m.StatusPage), fail);
    else if (path === '/dashboard')
      void import('./dashboard.js').then((m) => setLoaded(() => m.DashboardPage), fail);
  }, [path]);
  if (path !== '/status' && path !== '/dashboard') return <WaitingPage fail={fail} />;
  const Loaded = loaded;
  return Loaded === null ? <p aria-busy="true">Loading…</p> : <Loaded fail={fail} />;
}

function App() {
  const [problem, setProblem] = useState<Problem | null>(null);
  const broken: unknown = useErrorBoundary((error: unknown) => void report(problemOf(error)))[0];
  if (broken !== undefined) return <Broken />;
  const fail: Fail = (error, retry) => setProblem(problemOf(error, retry));
  return (
    <main>
      <Offline fail={fail} />
      <Page fail={fail} />
      {problem !== null && <Toast problem={problem} close={() => setProblem(null)} />}
    </main>
  );
}

// What no handler caught is reported too (the page goes on).
window.addEventListener('error', (event) => void report(problemOf(event.error ?? new Error(event.message))));
window.addEventListener('unhandledrejection', (event) => void report(problemOf(event.reason)));

render(<App />, document.getElementById('app')!);
