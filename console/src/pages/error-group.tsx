// One error group (/errors/<fingerprint>): its facts, the last 24 hours, resolve / ignore /
// re-open, and its samples with stack, request, user, tags and breadcrumbs. The API cuts long
// stacks and trails; "Show all" fetches the sample whole.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useLive } from '../live.js';
import { useCanOperate } from '../session.js';
import {
  Ago,
  Badge,
  ConfirmDialog,
  Link,
  Loading,
  PageHeader,
  toastError,
  useLoad,
  type ConfirmRequest,
} from '../ui.js';
import { Columns, Pairs } from '../lists.js';
import { Sparkline } from '../sparkline.js';
import { StateButtons, STATE_TONE, type Group } from './error-state.js';

interface Breadcrumb {
  at: number;
  category: string;
  message: string;
  level?: string;
  data?: Record<string, unknown>;
}

interface Sample {
  id: number;
  at: number;
  release: string;
  type: string;
  message: string;
  stack?: string;
  level: string;
  handled: boolean;
  source: string;
  request?: { method?: string; route?: string; status?: number; requestId?: string };
  user?: Record<string, unknown>;
  tags?: Record<string, string>;
  breadcrumbs?: Breadcrumb[];
  url?: string;
  /** What the API cut, with each field's whole length. */
  truncated?: Record<string, number>;
}

const SAMPLES = 10;

export function ErrorGroupPage(props: { fingerprint: string }) {
  const path = `/errors/${encodeURIComponent(props.fingerprint)}`;
  const loaded = useLoad(
    (signal) =>
      api<{ group: Group; samples: Sample[] }>('GET', `${path}?samples=${SAMPLES}`, undefined, signal),
    path,
  );
  useLive(['errors'], loaded.reload);
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const operate = useCanOperate();
  return (
    <section>
      <PageHeader title="Error group">
        <Link to="/errors">All errors</Link>
      </PageHeader>
      <Loading loaded={loaded}>
        {({ group, samples }) => (
          <>
            <h2 class="error-title">
              {group.type}: <span class="message">{group.message}</span>
            </h2>
            <dl class="facts">
              <dt>State</dt>
              <dd>
                <Badge tone={STATE_TONE[group.state]}>{group.state}</Badge>
                {group.resolvedAt !== undefined && (
                  <>
                    since <Ago at={group.resolvedAt} />
                  </>
                )}
              </dd>
              <dt>Events</dt>
              <dd>{group.count.toLocaleString()}</dd>
              <dt>Users affected</dt>
              <dd>{group.users.toLocaleString()}</dd>
              <dt>First seen</dt>
              <dd>
                <Ago at={group.firstSeen} /> in <code>{group.firstRelease}</code>
              </dd>
              <dt>Last seen</dt>
              <dd>
                <Ago at={group.lastSeen} /> in <code>{group.lastRelease}</code>
              </dd>
              <dt>Regressions</dt>
              <dd>{group.regressions}</dd>
              <dt>Culprit</dt>
              <dd>
                {group.culprit === '' ? (
                  <span class="muted">no frame of the app</span>
                ) : (
                  <code>{group.culprit}</code>
                )}
              </dd>
              <dt>Source</dt>
              <dd>{group.source}</dd>
              <dt>Fingerprint</dt>
              <dd>
                <code>{group.fingerprint}</code>
              </dd>
            </dl>
            <figure class="spark-figure">
              <figcaption>Last 24 hours</figcaption>
              <Sparkline counts={group.hourly} label="events in the last 24 hours" large />
            </figure>
            {operate && (
              <div class="actions start">
                <StateButtons group={group} onAsk={setConfirm} onDone={loaded.reload} />
              </div>
            )}
            <h2>Samples</h2>
            {samples.length === 0 ? (
              <p class="muted">No sample kept (sampling may be turned down: flag bulwark.errors.sample).</p>
            ) : (
              samples.map((sample, i) => (
                <SampleView key={sample.id} fingerprint={group.fingerprint} sample={sample} open={i === 0} />
              ))
            )}
          </>
        )}
      </Loading>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </section>
  );
}

/** One sample, the newest open and the others folded (a page of long stacks otherwise). */
function SampleView(props: { fingerprint: string; sample: Sample; open: boolean }) {
  const [whole, setWhole] = useState<Sample | undefined>();
  const sample = whole ?? props.sample;
  const cut = whole === undefined ? props.sample.truncated : undefined;
  const showAll = () =>
    api<Sample>('GET', `/errors/${props.fingerprint}/samples/${props.sample.id}`).then(setWhole, toastError);
  const more = (field: string) =>
    cut?.[field] === undefined ? null : (
      <button type="button" class="link" onClick={() => void showAll()}>
        Show all ({cut[field]?.toLocaleString()} {field === 'breadcrumbs' ? 'breadcrumbs' : 'characters'})
      </button>
    );
  return (
    <article class="sample" aria-label={`Sample of ${new Date(sample.at).toISOString()}`}>
      <details open={props.open}>
        <summary>
          <h3>
            <Ago at={sample.at} /> · <code>{sample.release}</code> · {sample.level}
            {!sample.handled && <Badge tone="bad">unhandled</Badge>}
          </h3>
        </summary>
        <p class="message">
          {sample.message}
          {more('message')}
        </p>
        {sample.stack !== undefined && (
          <>
            <pre class="stack" tabIndex={0} aria-label="Stack trace">
              {sample.stack}
            </pre>
            {more('stack')}
          </>
        )}
        <dl class="facts">
          {sample.request && (
            <>
              <dt>Request</dt>
              <dd>
                <code>
                  {sample.request.method ?? '?'} {sample.request.route ?? '?'}
                </code>{' '}
                → {sample.request.status ?? '?'}
                {sample.request.requestId && (
                  <span class="muted small"> (request {sample.request.requestId})</span>
                )}
              </dd>
            </>
          )}
          {sample.url && (
            <>
              <dt>Page</dt>
              <dd>
                <code>{sample.url}</code>
              </dd>
            </>
          )}
          {sample.user && (
            <>
              <dt>User</dt>
              <dd>
                <Pairs values={sample.user} />
              </dd>
            </>
          )}
          {sample.tags && (
            <>
              <dt>Tags</dt>
              <dd>
                <Pairs values={sample.tags} />
              </dd>
            </>
          )}
        </dl>
        {sample.breadcrumbs && sample.breadcrumbs.length > 0 && (
          <>
            <table class="breadcrumbs" aria-label="Breadcrumbs">
              <caption>Breadcrumbs (oldest first)</caption>
              <Columns names={['When', 'Category', 'Message', 'Data']} />
              <tbody>
                {sample.breadcrumbs.map((crumb, i) => (
                  <tr key={i}>
                    <td>
                      <Ago at={crumb.at} />
                    </td>
                    <td>
                      {crumb.category}
                      {crumb.level !== undefined && crumb.level !== 'info' && <> ({crumb.level})</>}
                    </td>
                    <td>{crumb.message}</td>
                    <td>{crumb.data && <Pairs values={crumb.data} />}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {more('breadcrumbs')}
          </>
        )}
      </details>
    </article>
  );
}
