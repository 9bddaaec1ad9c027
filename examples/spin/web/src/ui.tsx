// What the pages share: a failure as people can act on it (a toast with the message and its code,
// Try again, Report a problem, Dismiss) and the page that broke while drawing.
import { useState } from 'preact/hooks';
import { ApiError, report } from './api.js';

export interface Problem {
  message: string;
  code: string;
  stack?: string;
  /** Does what failed again (a button on the message), when that is safe. */
  retry?: () => void;
}

export type Fail = (error: unknown, retry?: () => void) => void;

export function problemOf(error: unknown, retry?: () => void): Problem {
  const base =
    error instanceof ApiError
      ? { message: error.message, code: error.code }
      : {
          message: 'Something went wrong on this page.',
          code: 'PAGE',
          ...(error instanceof Error && error.stack !== undefined ? { stack: error.stack } : {}),
        };
  return retry === undefined ? base : { ...base, retry };
}

/** A failure as people can act on it: what happened, its code, try again, report it, dismiss. */
export function Toast({ problem, close }: { problem: Problem; close: () => void }) {
  const [reported, setReported] = useState<boolean | null>(null);
  return (
    <div role="alert" class="toast">
      <p>
        {problem.message} <code>{problem.code}</code>
      </p>
      {problem.retry !== undefined && (
        <button
          onClick={() => {
            close();
            problem.retry?.();
          }}
        >
          Try again
        </button>
      )}{' '}
      {reported === null ? (
        <button onClick={() => void report(problem).then(setReported)}>Report a problem</button>
      ) : (
        <span>{reported ? 'Reported: thank you.' : 'Could not send the report.'}</span>
      )}{' '}
      <button onClick={close}>Dismiss</button>
    </div>
  );
}

/** A page that broke while drawing: say so, report it, offer a reload. */
export function Broken() {
  return (
    <section role="alert" class="card">
      <p>Something broke on this page. It was reported.</p>
      <button onClick={() => location.reload()}>Reload</button>
    </section>
  );
}
