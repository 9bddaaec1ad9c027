// Sign in with an admin key, or with the one-time link the reference app prints on its first start
// (`/admin/login#token=…`: a fragment, so the token is never in a request line or a server log).
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, type Session } from '../api.js';
import { ErrorNotice } from '../ui.js';

export function LoginPage(props: { onSignedIn: (session: Session) => void }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();

  const signIn = async (body: { key: string } | { token: string }) => {
    setBusy(true);
    setError(undefined);
    try {
      props.onSignedIn(await api<Session>('POST', '/session', body));
    } catch (failure) {
      setError(failure instanceof ApiError ? failure : new ApiError('CONSOLE_ERROR', String(failure), 0));
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    document.title = 'Sign in · Bulwark console';
    const token = new URLSearchParams(window.location.hash.slice(1)).get('token');
    if (token === null) return;
    // Out of the address bar and the history at once: the token works only once anyway.
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
    void signIn({ token });
  }, []);

  return (
    <main class="login">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (key.trim() !== '') void signIn({ key: key.trim() });
        }}
      >
        <h1>Bulwark console</h1>
        <p class="muted">Sign in with an admin key.</p>
        <label>
          Admin key
          <input
            type="password"
            name="key"
            autocomplete="current-password"
            value={key}
            onInput={(e) => setKey((e.target as HTMLInputElement).value)}
            required
            autoFocus
          />
        </label>
        {error && <ErrorNotice error={error} />}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="muted small">
          No key? Create one on the server with <code>bulwark keys create --name you --role operator</code>,
          or use the key in <code>BULWARK_ADMIN_KEY</code>.
        </p>
      </form>
    </main>
  );
}
