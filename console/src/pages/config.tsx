// Config: the service's active config (secrets redacted), its revisions (who, when, why and what
// changed), the diff between any two, validating a pasted config without writing it, and rolling
// back to a revision (typed confirmation: its number). Reloads when the revision changes.
import { useState } from 'preact/hooks';
import { api, withQuery, type ApiError } from '../api.js';
import { useLive } from '../live.js';
import { setQuery, type Route } from '../router.js';
import { useCanOperate } from '../session.js';
import {
  Ago,
  Badge,
  ConfirmDialog,
  ErrorNotice,
  Loading,
  PageHeader,
  toast,
  useLoad,
  type ConfirmRequest,
} from '../ui.js';
import { DiffTable, type Change } from './diff.js';

interface ActiveConfig {
  revision: number;
  file: string;
  config: Record<string, unknown>;
}

interface Revision {
  revision: number;
  at: string;
  author: string;
  reason: string;
  diff: Change[];
  diffTotal: number;
}

interface RevisionPage {
  revisions: Revision[];
  next: number | null;
}

const PAGE_SIZE = 20;

export function ConfigPage(props: { route: Route }) {
  const active = useLoad((signal) => api<ActiveConfig>('GET', '/config', undefined, signal), 'config');
  // The routes exist only when the service has a config (createBulwark({ config })).
  if (active.error?.code === 'BWK_ERR_HTTP_NOT_FOUND')
    return (
      <section>
        <PageHeader title="Config" />
        <p class="muted">
          This service has no config managed by Bulwark: give <code>createBulwark()</code> a{' '}
          <code>config</code> option (its schema and file) to see, validate and roll it back here.
        </p>
      </section>
    );
  return (
    <section>
      <PageHeader title="Config" />
      <Loading loaded={active}>
        {(data) => <ConfigView route={props.route} active={data} reloadActive={active.reload} />}
      </Loading>
    </section>
  );
}

function ConfigView(props: { route: Route; active: ActiveConfig; reloadActive: () => void }) {
  const { query } = props.route;
  const before = query.get('before') ?? '';
  const shown = Number(query.get('revision'));
  const path = withQuery('/config/revisions', { before, limit: PAGE_SIZE });
  const revisions = useLoad((signal) => api<RevisionPage>('GET', path, undefined, signal), path);
  const reload = () => {
    props.reloadActive();
    revisions.reload();
  };
  useLive(['config'], reload);
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const operate = useCanOperate();
  const { revision: current, file, config } = props.active;

  const rollback = (revision: Revision) =>
    setConfirm({
      title: `Roll back to revision ${revision.revision}?`,
      body: (
        <p>
          The content of revision {revision.revision} ({revision.reason}) is written again as a new revision,
          validated first; every instance watching the file reloads it.
        </p>
      ),
      typed: String(revision.revision),
      action: 'Roll back',
      reason: true,
      run: async (reason) => {
        const result = await api<{ revision: number }>('POST', '/config/rollback', {
          revision: revision.revision,
          ifRevision: current,
          ...(reason === undefined ? {} : { reason }),
        });
        toast(`Rolled back to revision ${revision.revision}: the config is at revision ${result.revision}`);
        reload();
      },
    });

  return (
    <>
      <dl class="facts">
        <dt>Revision</dt>
        <dd>{current === 0 ? 'none yet (defaults and environment)' : current}</dd>
        <dt>File</dt>
        <dd>
          <code>{file}</code>
        </dd>
      </dl>
      <h2>Active config</h2>
      <p class="muted small">Defaults, the file and the environment merged; secrets show as [redacted].</p>
      <pre class="json">{JSON.stringify(config, null, 2)}</pre>
      {Number.isInteger(shown) && shown > 0 && <RevisionDetail revision={shown} />}
      <h2>Revisions</h2>
      <Loading loaded={revisions}>
        {(page) =>
          page.revisions.length === 0 ? (
            <p class="muted">No revision yet: the file was never written.</p>
          ) : (
            <>
              <table class="revisions">
                <thead>
                  <tr>
                    <th scope="col">Revision</th>
                    <th scope="col">When</th>
                    <th scope="col">Who</th>
                    <th scope="col">Why</th>
                    <th scope="col">Changes</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {page.revisions.map((revision) => (
                    <tr key={revision.revision}>
                      <td>
                        {revision.revision} {revision.revision === current && <Badge tone="ok">active</Badge>}
                      </td>
                      <td>
                        <Ago at={revision.at} />
                      </td>
                      <td>
                        <code>{revision.author}</code>
                      </td>
                      <td>{revision.reason}</td>
                      <td>
                        {revision.diffTotal === 0 ? (
                          <span class="muted">no change</span>
                        ) : (
                          <DiffTable rows={revision.diff} />
                        )}
                        {revision.diffTotal > revision.diff.length && (
                          <button
                            type="button"
                            class="link"
                            onClick={() => setQuery({ revision: revision.revision })}
                          >
                            All {revision.diffTotal} changes
                          </button>
                        )}
                      </td>
                      <td class="actions-cell">
                        {revision.revision !== current && (
                          <>
                            <button
                              type="button"
                              onClick={() => setQuery({ from: revision.revision, to: current })}
                            >
                              Compare with active
                            </button>
                            {operate && (
                              <button type="button" class="danger" onClick={() => rollback(revision)}>
                                Roll back to {revision.revision}
                              </button>
                            )}
                          </>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {(before !== '' || page.next !== null) && (
                <nav class="pager" aria-label="Revision pages">
                  {before !== '' && (
                    <button type="button" onClick={() => setQuery({ before: null })}>
                      Newest
                    </button>
                  )}
                  {page.next !== null && (
                    <button type="button" onClick={() => setQuery({ before: page.next })}>
                      Older revisions
                    </button>
                  )}
                </nav>
              )}
            </>
          )
        }
      </Loading>
      <Compare route={props.route} current={current} />
      <Validate initial={config} />
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </>
  );
}

/** One revision with its whole diff (`?revision=` in the URL: where annotations link). */
function RevisionDetail(props: { revision: number }) {
  const path = `/config/revisions/${props.revision}`;
  const loaded = useLoad((signal) => api<Revision>('GET', path, undefined, signal), path);
  return (
    <section class="revision-detail" aria-labelledby="revision-title">
      <h2 id="revision-title">Revision {props.revision}</h2>
      <Loading loaded={loaded}>
        {(revision) => (
          <>
            <p>
              <code>{revision.author}</code> <Ago at={revision.at} />: {revision.reason}
            </p>
            {revision.diff.length === 0 ? (
              <p class="muted">No change.</p>
            ) : (
              <DiffTable rows={revision.diff} />
            )}
          </>
        )}
      </Loading>
      <button type="button" onClick={() => setQuery({ revision: null })}>
        Close
      </button>
    </section>
  );
}

/** Two revision numbers (in the URL: `from`, `to`) and the diff between them. */
function Compare(props: { route: Route; current: number }) {
  const from = props.route.query.get('from') ?? '';
  const to = props.route.query.get('to') ?? '';
  const [a, setA] = useState(from);
  const [b, setB] = useState(to || String(props.current));
  const submit = (event: Event) => {
    event.preventDefault();
    setQuery({ from: a, to: b });
  };
  return (
    <section aria-labelledby="compare-title">
      <h2 id="compare-title">Compare two revisions</h2>
      <form class="inline" onSubmit={submit}>
        <label>
          From revision{' '}
          <input
            type="number"
            min={1}
            required
            value={a}
            onInput={(e) => setA((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          To revision{' '}
          <input
            type="number"
            min={1}
            required
            value={b}
            onInput={(e) => setB((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit">Compare</button>
      </form>
      {from !== '' && to !== '' && <DiffOf from={from} to={to} />}
    </section>
  );
}

function DiffOf(props: { from: string; to: string }) {
  const path = withQuery('/config/diff', { from: props.from, to: props.to });
  const loaded = useLoad((signal) => api<{ diff: Change[] }>('GET', path, undefined, signal), path);
  return (
    <Loading loaded={loaded}>
      {({ diff }) =>
        diff.length === 0 ? (
          <p class="muted">
            Revisions {props.from} and {props.to} hold the same config.
          </p>
        ) : (
          <>
            <p class="muted small">
              From revision {props.from} to revision {props.to}:
            </p>
            <DiffTable rows={diff} />
          </>
        )
      }
    </Loading>
  );
}

/** A pasted config checked as the file's whole content, written nowhere. */
function Validate(props: { initial: Record<string, unknown> }) {
  const [text, setText] = useState<string | undefined>();
  const [result, setResult] = useState<{ diff: Change[] } | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const [syntax, setSyntax] = useState<string | undefined>();
  const value = text ?? JSON.stringify(props.initial, null, 2);
  const submit = async (event: Event) => {
    event.preventDefault();
    setResult(undefined);
    setError(undefined);
    setSyntax(undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (failure) {
      setSyntax(`Not JSON: ${(failure as Error).message}`);
      return;
    }
    try {
      setResult(await api<{ diff: Change[] }>('POST', '/config/validate', parsed));
    } catch (failure) {
      setError(failure as ApiError);
    }
  };
  return (
    <form class="validate" onSubmit={(event) => void submit(event)} aria-labelledby="validate-title">
      <h2 id="validate-title">Validate a config</h2>
      <p class="muted small">
        Checked as the file’s whole content would be (schema defaults, this, then the environment) and written
        nowhere. Secrets show as [redacted]: type the real value, or leave the field out.
      </p>
      <label>
        Config (JSON)
        <textarea
          rows={10}
          spellcheck={false}
          value={value}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        />
      </label>
      <button type="submit">Validate</button>
      {syntax && (
        <p class="notice error" role="alert">
          {syntax}
        </p>
      )}
      {error && <ErrorNotice error={error} />}
      {result && (
        <div role="status">
          <p>
            <Badge tone="ok">valid</Badge>{' '}
            {result.diff.length === 0
              ? 'and the same as the active file.'
              : `Writing it would change ${result.diff.length} field${result.diff.length === 1 ? '' : 's'}:`}
          </p>
          <DiffTable rows={result.diff} />
        </div>
      )}
    </form>
  );
}
