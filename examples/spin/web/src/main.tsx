// Spin's pages: the waiting page at /, the public queue status at /status, the queue dashboard for
// admins at /dashboard; one error boundary and one place for failures shown as toasts.
import { render } from 'preact';
import { useErrorBoundary, useState } from 'preact/hooks';
import { report } from './api.js';
import { Broken, problemOf, Toast, type Fail, type Problem } from './ui.js';
import { WaitingPage } from './waiting.js';
import './style.css';

function App() {
  const [problem, setProblem] = useState<Problem | null>(null);
  const broken: unknown = useErrorBoundary((error: unknown) => void report(problemOf(error)))[0];
  if (broken !== undefined) return <Broken />;
  const fail: Fail = (error, retry) => setProblem(problemOf(error, retry));
  return (
    <main>
      <WaitingPage fail={fail} />
      {problem !== null && <Toast problem={problem} close={() => setProblem(null)} />}
    </main>
  );
}

// What no handler caught is reported too (the page goes on).
window.addEventListener('error', (event) => void report(problemOf(event.error ?? new Error(event.message))));
window.addEventListener('unhandledrejection', (event) => void report(problemOf(event.reason)));

render(<App />, document.getElementById('app')!);
