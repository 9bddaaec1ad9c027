// The audit log: who did what to which target, newest first, filtered by target, paged.
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
  const target = props.route.query.get('target') ?? '';
  const refused = props.route.query.get('refused') ?? 'exclude';
  const path = withQuery('/audit', { target, refused, limit: PAGE_SIZE });
  const loaded = useLoad((signal) => api<AuditRow[]>('GET', path, undefined, signal), path);
  useLive(['audit'], loaded.reload);
  return (
    <section>
      <PageHeader title="Audit log">
        <SearchBox
          label="Target (exact, e.g. flag:checkout)"
          value={target}
          onChange={(value) => setQuery({ target: value })}
        />
        <label>
          Refused requests{' '}
          <select
            value={refused}
            onChange={(e) => setQuery({ refused: (e.target as HTMLSelectElement).value })}
          >
            <option value="exclude">hide</option>
            <option value="include">include</option>
            <option value="only">only</option>
          </select>
        </label>
      </PageHeader>
      <Loading loaded={loaded}>
        {(rows) =>
          rows.length === 0 ? (
            <p class="muted">Nothing recorded{target !== '' && <> for {target}</>}.</p>
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
                      <code>{row.actor}</code>
                    </td>
                    <td>{row.action}</td>
                    <td>
                      <button type="button" class="link" onClick={() => setQuery({ target: row.target })}>
                        {row.target}
                      </button>
                    </td>
                    <td>
                      {row.detail && ('before' in row.detail || 'after' in row.detail) ? (
                        <Diff before={row.detail['before']} after={row.detail['after']} />
                      ) : (
                        <code class="small">{JSON.stringify(row.detail)?.slice(0, 200)}</code>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loading>
    </section>
  );
}
