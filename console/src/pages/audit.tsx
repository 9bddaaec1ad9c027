// The audit log: who changed what, newest first, filtered by actor, action (a prefix: `flag.` for
// every flag change) and target, paged back by id; filters and page in the URL.
import { api, withQuery } from '../api.js';
import { useLive } from '../live.js';
import { setQuery, type Route } from '../router.js';
import { Ago, Loading, PageHeader, SearchBox, useLoad } from '../ui.js';
import { Diff } from './diff.js';

interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  detail: Record<string, unknown> | null;
}

const PAGE_SIZE = 50;

export function AuditPage(props: { route: Route }) {
  const { query } = props.route;
  const target = query.get('target') ?? '';
  const actor = query.get('actor') ?? '';
  const action = query.get('action') ?? '';
  const before = query.get('before') ?? '';
  const refused = query.get('refused') ?? 'exclude';
  const path = withQuery('/audit', { target, actor, action, before, refused, limit: PAGE_SIZE });
  const loaded = useLoad((signal) => api<AuditRow[]>('GET', path, undefined, signal), path);
  // New rows matter on the first page only; an older page stays as it is.
  useLive(['audit'], () => {
    if (before === '') loaded.reload();
  });
  const filter = (changes: Record<string, string>) => setQuery({ ...changes, before: null });
  return (
    <section>
      <PageHeader title="Audit log">
        <SearchBox
          label="Actor (exact, e.g. key:ops)"
          value={actor}
          onChange={(value) => filter({ actor: value })}
        />
        <SearchBox
          label="Action (prefix, e.g. flag.)"
          value={action}
          onChange={(value) => filter({ action: value })}
        />
        <SearchBox
          label="Target (exact, e.g. flag:checkout)"
          value={target}
          onChange={(value) => filter({ target: value })}
        />
        <label>
          Refused requests{' '}
          <select
            value={refused}
            onChange={(e) => filter({ refused: (e.target as HTMLSelectElement).value })}
          >
            <option value="exclude">hide</option>
            <option value="include">include</option>
            <option value="only">only</option>
          </select>
        </label>
      </PageHeader>
      <Loading loaded={loaded}>
        {(rows) => (
          <>
            {rows.length === 0 ? (
              <p class="muted">Nothing recorded with these filters.</p>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Actor</th>
                    <th scope="col">Action</th>
                    <th scope="col">Target</th>
                    <th scope="col">Change</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((row) => (
                    <tr key={row.id}>
                      <td>
                        <Ago at={row.at} />
                      </td>
                      <td>
                        <button type="button" class="link" onClick={() => filter({ actor: row.actor })}>
                          {row.actor}
                        </button>
                      </td>
                      <td>{row.action}</td>
                      <td>
                        <button type="button" class="link" onClick={() => filter({ target: row.target })}>
                          {row.target}
                        </button>
                      </td>
                      <td>
                        {row.detail && ('before' in row.detail || 'after' in row.detail) ? (
                          <Diff before={row.detail['before']} after={row.detail['after']} />
                        ) : (
                          <code class="small">{JSON.stringify(row.detail ?? null).slice(0, 200)}</code>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <nav class="pager" aria-label="Pages">
              {before !== '' && (
                <button type="button" onClick={() => setQuery({ before: null })}>
                  Newest
                </button>
              )}
              {rows.length === PAGE_SIZE && (
                <button type="button" onClick={() => setQuery({ before: rows.at(-1)!.id })}>
                  Older
                </button>
              )}
            </nav>
          </>
        )}
      </Loading>
    </section>
  );
}
