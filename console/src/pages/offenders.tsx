// Rate-limit offenders: the keys the rate limiter refused most often (a bounded list kept by the
// limiter with the space-saving algorithm, so a count may be high by at most its error bound; API
// keys shown hashed), by policy.
import { api, withQuery } from '../api.js';
import { setQuery, type Route } from '../router.js';
import { Loading, PageHeader, SearchBox, useLoad } from '../ui.js';

interface Offender {
  policy: string;
  key: string;
  count: number;
  overcount: number;
}

export function OffendersPage(props: { route: Route }) {
  const policy = props.route.query.get('policy') ?? '';
  const path = withQuery('/ratelimit/offenders', { policy, limit: 100 });
  const loaded = useLoad((signal) => api<Offender[]>('GET', path, undefined, signal), path);
  return (
    <section>
      <PageHeader title="Rate-limit offenders">
        <SearchBox label="Policy" value={policy} onChange={(value) => setQuery({ policy: value })} />
        <button type="button" onClick={loaded.reload}>
          Refresh
        </button>
      </PageHeader>
      <Loading loaded={loaded}>
        {(list) =>
          list.length === 0 ? (
            <p class="muted">
              Nobody was refused{policy !== '' && <> by {policy}</>} since this instance started.
            </p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Policy</th>
                  <th scope="col">Key</th>
                  <th scope="col">Refused</th>
                  <th scope="col">Count may be high by</th>
                </tr>
              </thead>
              <tbody>
                {list.map((o) => (
                  <tr key={`${o.policy}|${o.key}`}>
                    <td>{o.policy}</td>
                    <td>
                      <code>{o.key}</code>
                    </td>
                    <td>{o.count.toLocaleString()}</td>
                    <td>{o.overcount.toLocaleString()}</td>
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
