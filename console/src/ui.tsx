// Small shared pieces of the console: links, loading with retry, error notices, toasts, the typed
// confirmation dialog, tables with a pager, badges and times.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';
import { BASE, navigate } from './router.js';

/** A link inside the console: a real `<a href>` (open in a new tab works), navigated in place. */
export function Link(props: { to: string; children: ComponentChildren; class?: string; current?: boolean }) {
  const onClick = (event: MouseEvent) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(props.to);
  };
  return (
    <a
      href={`${BASE}${props.to}`}
      onClick={onClick}
      class={props.class}
      aria-current={props.current ? 'page' : undefined}
    >
      {props.children}
    </a>
  );
}

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  /** Loads again now (keeps showing the current data meanwhile). */
  reload: () => void;
}

const RETRY_DELAYS_MS = [1_000, 2_000, 5_000, 10_000];

/**
 * Loads `load` when `key` changes, cancelling the previous load. A transient failure (no answer,
 * 429, 502–504) is retried by itself with backoff (Retry-After when the server gave one); other
 * failures stay until `reload()`.
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, key: string): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: ApiError | undefined; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    const run = () => {
      setState((s) => ({ ...s, loading: true }));
      loadRef.current(controller.signal).then(
        (data) => {
          if (!controller.signal.aborted) setState({ data, error: undefined, loading: false });
        },
        (error: unknown) => {
          if (controller.signal.aborted) return;
          const failure =
            error instanceof ApiError
              ? error
              : new ApiError('CONSOLE_ERROR', String((error as Error)?.message ?? error), 0);
          setState((s) => ({ ...s, error: failure, loading: false }));
          if (failure.transient && attempt < RETRY_DELAYS_MS.length) {
            const delay =
              failure.retryAfterS !== undefined ? failure.retryAfterS * 1000 : RETRY_DELAYS_MS[attempt]!;
            attempt++;
            timer = setTimeout(run, delay);
          }
        },
      );
    };
    run();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [key, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { ...state, reload };
}

/** An error as people can act on it: what happened, the code, and a retry button. */
export function ErrorNotice(props: { error: ApiError; retry?: () => void }) {
  return (
    <div class="notice error" role="alert">
      <p>
        {props.error.message} <code>{props.error.code}</code>
      </p>
      {props.retry && (
        <button type="button" onClick={props.retry}>
          Retry
        </button>
      )}
    </div>
  );
}

/** The usual frame of a loaded section: a spinner at first, the error with a retry, else the content. */
export function Loading<T>(props: { loaded: Loaded<T>; children: (data: T) => ComponentChildren }) {
  const { data, error, reload } = props.loaded;
  return (
    <>
      {error && <ErrorNotice error={error} retry={reload} />}
      {data === undefined
        ? !error && (
            <p class="muted" aria-busy="true">
              Loading…
            </p>
          )
        : props.children(data)}
    </>
  );
}

// ---- toasts -----------------------------------------------------------------------------------

interface Toast {
  id: number;
  kind: 'ok' | 'error';
  text: string;
  code?: string | undefined;
}
let toasts: Toast[] = [];
let nextToast = 1;
const toastListeners = new Set<(list: Toast[]) => void>();

function publish(list: Toast[]) {
  toasts = list;
  for (const listener of toastListeners) listener(list);
}

/** Shows a short message for a few seconds (errors stay until dismissed). */
export function toast(text: string, kind: 'ok' | 'error' = 'ok', code?: string): void {
  const id = nextToast++;
  publish([...toasts.slice(-4), { id, kind, text, code }]);
  if (kind === 'ok') setTimeout(() => publish(toasts.filter((t) => t.id !== id)), 4_000);
}

/** Shows the failure of an action as an error toast with its code. */
export function toastError(error: unknown): void {
  if (error instanceof ApiError) toast(error.message, 'error', error.code);
  else toast(String((error as Error)?.message ?? error), 'error');
}

export function Toasts() {
  const [list, setList] = useState(toasts);
  useEffect(() => {
    toastListeners.add(setList);
    return () => {
      toastListeners.delete(setList);
    };
  }, []);
  return (
    <div class="toasts" role="status" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} class={`toast ${t.kind}`}>
          <span>
            {t.text} {t.code && <code>{t.code}</code>}
          </span>
          <button
            type="button"
            aria-label="Dismiss"
            onClick={() => publish(toasts.filter((x) => x.id !== t.id))}
          >
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

// ---- confirmation -----------------------------------------------------------------------------

export interface ConfirmRequest {
  title: string;
  /** What will happen, in a sentence. */
  body: ComponentChildren;
  /** The text to type (the target's name) for a dangerous action; none: a plain confirmation. */
  typed?: string;
  action: string;
  /** Asked for an optional reason, recorded in the audit log. */
  reason?: boolean;
  run: (reason: string | undefined) => Promise<unknown>;
}

/**
 * A modal dialog that runs `request.run` only after the user confirms — for a dangerous action,
 * by typing the target's name. Closes on success; shows the failure and stays open otherwise.
 */
export function ConfirmDialog(props: { request: ConfirmRequest | undefined; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [typed, setTyped] = useState('');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const { request } = props;
  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return;
    if (request !== undefined && !dialog.open) {
      setTyped('');
      setReason('');
      setError(undefined);
      dialog.showModal();
    } else if (request === undefined && dialog.open) dialog.close();
  }, [request]);
  const ready = request !== undefined && (request.typed === undefined || typed === request.typed) && !busy;
  const submit = async (event: Event) => {
    event.preventDefault();
    if (!ready || request === undefined) return;
    setBusy(true);
    try {
      await request.run(reason.trim() === '' ? undefined : reason.trim());
      props.onClose();
    } catch (failure) {
      setError(failure instanceof ApiError ? failure : new ApiError('CONSOLE_ERROR', String(failure), 0));
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} onClose={props.onClose} aria-labelledby="confirm-title">
      {request && (
        <form onSubmit={(event) => void submit(event)}>
          <h2 id="confirm-title">{request.title}</h2>
          <div>{request.body}</div>
          {request.typed !== undefined && (
            <label>
              Type <code>{request.typed}</code> to confirm
              <input
                value={typed}
                onInput={(e) => setTyped((e.target as HTMLInputElement).value)}
                autocomplete="off"
                spellcheck={false}
                autoFocus
              />
            </label>
          )}
          {request.reason && (
            <label>
              Reason (recorded in the audit log)
              <input
                value={reason}
                maxLength={500}
                onInput={(e) => setReason((e.target as HTMLInputElement).value)}
              />
            </label>
          )}
          {error && <ErrorNotice error={error} />}
          <div class="actions">
            <button type="button" onClick={props.onClose}>
              Cancel
            </button>
            <button type="submit" class="danger" disabled={!ready}>
              {request.action}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}

// ---- small pieces -----------------------------------------------------------------------------

export type Tone = 'ok' | 'warn' | 'bad' | 'muted';

export function Badge(props: { tone: Tone; children: ComponentChildren }) {
  return <span class={`badge ${props.tone}`}>{props.children}</span>;
}

/** `at` (ms since the epoch, or an ISO string) as "3 min ago", with the exact time on hover. */
export function Ago(props: { at: number | string | null | undefined }) {
  if (props.at === null || props.at === undefined) return <span class="muted">never</span>;
  const ms = typeof props.at === 'number' ? props.at : Date.parse(props.at);
  if (!Number.isFinite(ms)) return <span class="muted">—</span>;
  const exact = new Date(ms).toISOString();
  return (
    <time dateTime={exact} title={exact}>
      {ago(Date.now() - ms)}
    </time>
  );
}

/** A duration in ms as "45 s", "12 min", "3 h", "2 d" ("ago" appended for the past). */
export function ago(ms: number): string {
  return `${duration(Math.abs(ms))}${ms >= 0 ? ' ago' : ' from now'}`;
}

export function duration(ms: number): string {
  const s = ms / 1000;
  if (s < 1) return `${Math.round(ms)} ms`;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** A long value cut to `max` characters, with a button that shows all of it. */
export function Truncated(props: { text: string; max?: number }) {
  const max = props.max ?? 200;
  const [open, setOpen] = useState(false);
  if (props.text.length <= max) return <code class="value">{props.text}</code>;
  return (
    <span>
      <code class="value">{open ? props.text : `${props.text.slice(0, max)}…`}</code>{' '}
      <button type="button" class="link" onClick={() => setOpen(!open)}>
        {open ? 'Show less' : `Show all (${props.text.length.toLocaleString()} characters)`}
      </button>
    </span>
  );
}

/** A page's title row with optional controls on the right. */
export function PageHeader(props: { title: string; children?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${props.title} · Bulwark console`;
  }, [props.title]);
  return (
    <header class="page-header">
      <h1>{props.title}</h1>
      {props.children && <div class="controls">{props.children}</div>}
    </header>
  );
}

/** A search box bound to a query parameter (debounced). */
export function SearchBox(props: { label: string; value: string; onChange: (value: string) => void }) {
  const [text, setText] = useState(props.value);
  useEffect(() => setText(props.value), [props.value]);
  useEffect(() => {
    if (text === props.value) return;
    const timer = setTimeout(() => props.onChange(text), 250);
    return () => clearTimeout(timer);
  }, [text]);
  return (
    <input
      type="search"
      aria-label={props.label}
      placeholder={props.label}
      value={text}
      onInput={(e) => setText((e.target as HTMLInputElement).value)}
    />
  );
}
