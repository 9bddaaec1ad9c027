// Errors: the error groups (message, events, users affected, the last 24 h, first and last seen,
// release, state), searched and filtered by state, a page at a time; resolve, ignore, re-open. A
// group's page (/errors/<fingerprint>) shows its samples: stack, context, request, breadcrumbs.
import { useState } from 'preact/hooks';
import { api, withQuery } from '../api.js';
import { useLive } from '../live.js';
import { setQuery, type Route } from '../router.js';
import { useCanOperate } from '../session.js';
import {
  Ago,
  Badge,
  ConfirmDialog,
  Link,
  Loading,
  PageHeader,
  SearchBox,
  useLoad,
  type ConfirmRequest,
} from '../ui.js';
import { Columns, Pager } from '../lists.js';
import { Sparkline } from '../sparkline.js';
import { ErrorGroupPage } from './error-group.js';
import { clip, StateButtons, STATE_TONE, type Group } from './error-state.js';

interface GroupPage {
  groups: Group[];
  total: number;
  next: string | null;
}

const PAGE_SIZE = 50;

export function ErrorsPage(props: { route: Route }) {
  const fingerprint = props.route.path.split('/')[2];
  return fingerprint === undefined || fingerprint === '' ? (
    <GroupList route={props.route} />
  ) : (
    <ErrorGroupPage fingerprint={decodeURIComponent(fingerprint)} />
  );
}

function GroupList(props: { route: Route }) {
  const { query } = props.route;
  const state = query.get('state') ?? 'open';
  const q = query.get('q') ?? '';
  const after = query.get('after') ?? '';
  const path = withQuery('/errors', { state: state === 'all' ? '' : state, q, after, limit: PAGE_SIZE });
  const loaded = useLoad((signal) => api<GroupPage>('GET', path, undefined, signal), path);
  useLive(['errors'], () => {
    if (after === '') loaded.reload();
  });
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const operate = useCanOperate();
  return (
    <section>
      <PageHeader title="Errors">
        <SearchBox
          label="Search errors"
          value={q}
          onChange={(value) => setQuery({ q: value, after: null })}
        />
        <label>
          State{' '}
          <select
            value={state}
            onChange={(e) => setQuery({ state: (e.target as HTMLSelectElement).value, after: null })}
          >
            <option value="open">open</option>
            <option value="resolved">resolved</option>
            <option value="ignored">ignored</option>
            <option value="all">all</option>
          </select>
        </label>
      </PageHeader>
      <Loading loaded={loaded}>
        {(page) => (
          <>
            <p class="muted">
              {page.total.toLocaleString()} {state === 'all' ? '' : `${state} `}
              {page.total === 1 ? 'group' : 'groups'}
              {q !== '' && <> matching “{q}”</>}
            </p>
            {page.groups.length > 0 && (
              <table>
                <Columns
                  names={[
                    'Error',
                    'Events',
                    'Users',
                    'Last 24 h',
                    'First seen',
                    'Last seen',
                    'Release',
                    'State',
                  ]}
                  actions={operate}
                />
                <tbody>
                  {page.groups.map((group) => (
                    <tr key={group.fingerprint}>
                      <td class="error-cell">
                        <Link to={`/errors/${group.fingerprint}`}>
                          <strong>{group.type}</strong>: {clip(group.message, 160)}
                        </Link>
                        {group.culprit !== '' && <div class="muted small">{group.culprit}</div>}
                      </td>
                      <td>{group.count.toLocaleString()}</td>
                      <td>{group.users.toLocaleString()}</td>
                      <td>
                        <Sparkline counts={group.hourly} label="events in the last 24 hours" />
                      </td>
                      <td>
                        <Ago at={group.firstSeen} />
                      </td>
                      <td>
                        <Ago at={group.lastSeen} />
                      </td>
                      <td>
                        <code>{group.lastRelease}</code>
                      </td>
                      <td>
                        <Badge tone={STATE_TONE[group.state]}>{group.state}</Badge>
                        {group.regressions > 0 && <Badge tone="warn">regressed</Badge>}
                      </td>
                      {operate && (
                        <td class="row-actions">
                          <StateButtons group={group} onAsk={setConfirm} onDone={loaded.reload} />
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <Pager
              label="Error pages"
              first={after !== ''}
              next={page.next}
              go={(cursor) => setQuery({ after: cursor })}
            />
          </>
        )}
      </Loading>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </section>
  );
}
