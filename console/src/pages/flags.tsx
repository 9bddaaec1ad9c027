// Flags: search, type, state, rollout and last change; kill (typed confirmation) and revive, the
// rollout percentage, a guarded rollout's progress and guard metrics, and per flag its definition,
// an evaluation and its audit history as diffs.
import { useState } from 'preact/hooks';
import { api, withQuery } from '../api.js';
import { useLive } from '../live.js';
import { setQuery, type Route } from '../router.js';
import { useCanOperate } from '../session.js';
import {
  Ago,
  Badge,
  ConfirmDialog,
  ErrorNotice,
  Link,
  Loading,
  PageHeader,
  SearchBox,
  toast,
  toastError,
  useLoad,
  type ConfirmRequest,
} from '../ui.js';
import { Diff } from './diff.js';
import { GuardedRollout } from './guarded-rollout.js';

interface Flag {
  key: string;
  type: string;
  description?: string;
  enabled: boolean;
  variants: Record<string, unknown>;
  defaultVariant: string;
  offVariant?: string;
  rules?: unknown[];
  rollout?: { variant: string; otherwise: string; percentage: number };
  version: number;
  updatedAt?: number | null;
}

interface FlagList {
  flags: Flag[];
  total?: number;
  next?: string | null;
}

interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  detail: { before?: unknown; after?: unknown; reason?: string | null } | null;
}

const PAGE_SIZE = 50;

export function FlagsPage(props: { route: Route }) {
  const key = props.route.path.split('/')[2];
  return key === undefined || key === '' ? (
    <FlagList route={props.route} />
  ) : (
    <FlagDetail flagKey={decodeURIComponent(key)} />
  );
}

function FlagList(props: { route: Route }) {
  const q = props.route.query.get('q') ?? '';
  const after = props.route.query.get('after') ?? '';
  const state = props.route.query.get('state') ?? '';
  const path = withQuery('/flags', { q, after, state, limit: PAGE_SIZE });
  const loaded = useLoad((signal) => api<FlagList>('GET', path, undefined, signal), path);
  useLive(['flags'], loaded.reload);
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const operate = useCanOperate();

  return (
    <section>
      <PageHeader title="Flags">
        <SearchBox label="Search flags" value={q} onChange={(value) => setQuery({ q: value, after: null })} />
        <label>
          State{' '}
          <select
            value={state}
            onChange={(e) => setQuery({ state: (e.target as HTMLSelectElement).value, after: null })}
          >
            <option value="">all</option>
            <option value="on">on</option>
            <option value="killed">killed</option>
          </select>
        </label>
      </PageHeader>
      <Loading loaded={loaded}>
        {(data) => (
          <>
            <p class="muted">
              {data.total === undefined
                ? `${data.flags.length} flags`
                : `${data.total.toLocaleString()} flags`}
              {q !== '' && <> matching “{q}”</>}
            </p>
            <table>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Type</th>
                  <th scope="col">State</th>
                  <th scope="col">Rollout</th>
                  <th scope="col">Rules</th>
                  <th scope="col">Last change</th>
                  {operate && <th scope="col">Actions</th>}
                </tr>
              </thead>
              <tbody>
                {data.flags.map((flag) => (
                  <tr key={flag.key}>
                    <td>
                      <Link to={`/flags/${encodeURIComponent(flag.key)}`}>{flag.key}</Link>
                      {flag.description && <div class="muted small">{flag.description}</div>}
                    </td>
                    <td>{flag.type}</td>
                    <td>{flag.enabled ? <Badge tone="ok">on</Badge> : <Badge tone="bad">killed</Badge>}</td>
                    <td>{flag.rollout ? `${flag.rollout.percentage}% ${flag.rollout.variant}` : '—'}</td>
                    <td>{flag.rules?.length ?? 0}</td>
                    <td>
                      {flag.updatedAt ? <Ago at={flag.updatedAt} /> : <span class="muted">never stored</span>}
                    </td>
                    {operate && (
                      <td>
                        <KillButton flag={flag} onAsk={setConfirm} onDone={loaded.reload} />
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
            {(after !== '' || (data.next ?? null) !== null) && (
              <nav class="pager" aria-label="Pages">
                {after !== '' && (
                  <button type="button" onClick={() => setQuery({ after: null })}>
                    First page
                  </button>
                )}
                {data.next && (
                  <button type="button" onClick={() => setQuery({ after: data.next })}>
                    Next page
                  </button>
                )}
              </nav>
            )}
          </>
        )}
      </Loading>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </section>
  );
}

/** Kill (typed confirmation: the flag's key) or revive a flag. */
function KillButton(props: { flag: Flag; onAsk: (request: ConfirmRequest) => void; onDone?: () => void }) {
  const { flag } = props;
  const kill = () =>
    props.onAsk({
      title: `Kill ${flag.key}?`,
      body: (
        <p>
          Every instance serves <code>{flag.offVariant ?? flag.defaultVariant}</code> to everyone at once,
          ignoring rules and rollouts, until the flag is revived.
        </p>
      ),
      typed: flag.key,
      action: 'Kill flag',
      reason: true,
      run: async (reason) => {
        await api(
          'POST',
          `/flags/${encodeURIComponent(flag.key)}/kill`,
          reason === undefined ? {} : { reason },
        );
        toast(`${flag.key} killed`);
        props.onDone?.();
      },
    });
  const revive = () =>
    props.onAsk({
      title: `Revive ${flag.key}?`,
      body: <p>Rules and rollouts apply again on every instance.</p>,
      action: 'Revive flag',
      reason: true,
      run: async (reason) => {
        await api(
          'POST',
          `/flags/${encodeURIComponent(flag.key)}/revive`,
          reason === undefined ? {} : { reason },
        );
        toast(`${flag.key} revived`);
        props.onDone?.();
      },
    });
  return flag.enabled ? (
    <button type="button" class="danger" onClick={kill}>
      Kill
    </button>
  ) : (
    <button type="button" onClick={revive}>
      Revive
    </button>
  );
}

function FlagDetail(props: { flagKey: string }) {
  const path = `/flags/${encodeURIComponent(props.flagKey)}`;
  const loaded = useLoad(
    (signal) => api<{ flag: Flag; version: number }>('GET', path, undefined, signal),
    path,
  );
  const history = useLoad(
    (signal) => api<AuditEntry[]>('GET', `${path}/history?limit=50`, undefined, signal),
    `${path}/history`,
  );
  useLive(['flags'], () => {
    loaded.reload();
    history.reload();
  });
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const operate = useCanOperate();
  const refresh = () => {
    loaded.reload();
    history.reload();
  };
  return (
    <section>
      <PageHeader title={`Flag ${props.flagKey}`}>
        <Link to="/flags">All flags</Link>
      </PageHeader>
      <Loading loaded={loaded}>
        {({ flag, version }) => (
          <>
            <dl class="facts">
              <dt>State</dt>
              <dd>{flag.enabled ? <Badge tone="ok">on</Badge> : <Badge tone="bad">killed</Badge>}</dd>
              <dt>Type</dt>
              <dd>{flag.type}</dd>
              <dt>Default variant</dt>
              <dd>
                <code>{flag.defaultVariant}</code>
              </dd>
              <dt>Rollout</dt>
              <dd>
                {flag.rollout
                  ? `${flag.rollout.percentage}% get ${flag.rollout.variant}, others ${flag.rollout.otherwise}`
                  : 'none'}
              </dd>
              <dt>Version</dt>
              <dd>{version}</dd>
            </dl>
            {operate && (
              <div class="actions">
                <KillButton flag={flag} onAsk={setConfirm} onDone={refresh} />
                {/* Keyed by the percentage: a change made elsewhere (a guarded rollout) resets the field. */}
                <RolloutForm
                  key={flag.rollout?.percentage ?? 0}
                  flag={flag}
                  onAsk={setConfirm}
                  onDone={refresh}
                />
              </div>
            )}
            <GuardedRollout
              flagKey={flag.key}
              variants={
                flag.rollout === undefined
                  ? undefined
                  : { treatment: flag.rollout.variant, control: flag.rollout.otherwise }
              }
              operate={operate}
              onAsk={setConfirm}
              onDone={refresh}
            />
            <h2>Definition</h2>
            <pre class="json">{JSON.stringify(flag, null, 2)}</pre>
            <Evaluate flagKey={flag.key} />
          </>
        )}
      </Loading>
      <h2>History</h2>
      <Loading loaded={history}>
        {(entries) =>
          entries.length === 0 ? (
            <p class="muted">No recorded change.</p>
          ) : (
            <ol class="history">
              {entries.map((entry) => (
                <li key={entry.id}>
                  <p>
                    <strong>{entry.action}</strong> by <code>{entry.actor}</code> <Ago at={entry.at} />
                    {entry.detail?.reason && <> — “{entry.detail.reason}”</>}
                  </p>
                  <Diff before={entry.detail?.before} after={entry.detail?.after} />
                </li>
              ))}
            </ol>
          )
        }
      </Loading>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </section>
  );
}

function RolloutForm(props: { flag: Flag; onAsk: (request: ConfirmRequest) => void; onDone: () => void }) {
  const [percentage, setPercentage] = useState(String(props.flag.rollout?.percentage ?? 0));
  const submit = (event: Event) => {
    event.preventDefault();
    const value = Number(percentage);
    if (!Number.isFinite(value) || value < 0 || value > 100) {
      toast('The rollout must be a number from 0 to 100.', 'error');
      return;
    }
    props.onAsk({
      title: `Roll ${props.flag.key} out to ${value}%?`,
      body: (
        <p>
          Raising the percentage never removes anyone already in; lowering it removes the most recent first.
        </p>
      ),
      action: 'Set rollout',
      reason: true,
      run: async (reason) => {
        await api('PUT', `/flags/${encodeURIComponent(props.flag.key)}/rollout`, {
          percentage: value,
          ...(reason === undefined ? {} : { reason }),
        });
        toast(`${props.flag.key} at ${value}%`);
        props.onDone();
      },
    });
  };
  return (
    <form class="inline" onSubmit={submit}>
      <label>
        Rollout %{' '}
        <input
          type="number"
          min={0}
          max={100}
          step="any"
          value={percentage}
          onInput={(e) => setPercentage((e.target as HTMLInputElement).value)}
        />
      </label>
      <button type="submit">Set rollout</button>
    </form>
  );
}

function Evaluate(props: { flagKey: string }) {
  const [context, setContext] = useState('{"targetingKey": "user-1"}');
  const [result, setResult] = useState<unknown>();
  const [error, setError] = useState<Error | undefined>();
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      const parsed: unknown = JSON.parse(context);
      setResult(
        await api('POST', `/flags/${encodeURIComponent(props.flagKey)}/evaluate`, { context: parsed }),
      );
    } catch (failure) {
      setResult(undefined);
      if (failure instanceof SyntaxError) toast(`The context is not JSON: ${failure.message}`, 'error');
      else toastError(failure);
      setError(failure as Error);
    }
  };
  return (
    <form class="evaluate" onSubmit={(event) => void submit(event)}>
      <h2>Evaluate</h2>
      <label>
        Context (JSON)
        <textarea
          rows={3}
          value={context}
          onInput={(e) => setContext((e.target as HTMLTextAreaElement).value)}
        />
      </label>
      <button type="submit">Evaluate</button>
      {result !== undefined && <pre class="json">{JSON.stringify(result, null, 2)}</pre>}
      {error && 'code' in error && <ErrorNotice error={error as never} />}
    </form>
  );
}
