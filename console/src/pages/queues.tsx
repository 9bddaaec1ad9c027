// Queues: every queue with its counts per state (each a link to its jobs), paused or not, the oldest
// waiting job's age and the recent wait and run times; pause and resume. One queue's jobs of one
// state, a page at a time, data and error cut short with "show all"; redrive (one, or all with a
// typed confirmation), promote, remove (typed confirmation). The job detail is in queue-job.tsx.
import { useState } from 'preact/hooks';
import { api, withQuery } from '../api.js';
import { useLive } from '../live.js';
import { setQuery, type Route } from '../router.js';
import { useCanOperate } from '../session.js';
import {
  Ago,
  Badge,
  ConfirmDialog,
  duration,
  Link,
  Loading,
  PageHeader,
  toast,
  toastError,
  useLoad,
  type ConfirmRequest,
} from '../ui.js';
import {
  JOB_STATES,
  JobActions,
  JobPage,
  jobPath,
  queuePath,
  type JobPreview,
  type JobState,
  type Preview,
} from './queue-job.js';

interface Durations {
  count: number;
  p50: number | null;
  p95: number | null;
}

interface Queue {
  queue: string;
  paused: boolean;
  counts: Record<JobState, number>;
  oldestWaitingMs: number | null;
  wait: Durations;
  run: Durations;
}

const JOBS_PER_PAGE = 50;

export function QueuesPage(props: { route: Route }) {
  const [, , name, id] = props.route.path.split('/');
  if (name === undefined || name === '') return <QueueList route={props.route} />;
  const queue = decodeURIComponent(name);
  if (id !== undefined && id !== '') return <JobPage queue={queue} id={decodeURIComponent(id)} />;
  return <QueueJobs queue={queue} route={props.route} />;
}

function QueueList(props: { route: Route }) {
  const after = props.route.query.get('after') ?? '';
  const path = withQuery('/queues', { after });
  const loaded = useLoad(
    (signal) =>
      api<{ queues: Queue[]; next: string | null; windowMs: number }>('GET', path, undefined, signal),
    path,
  );
  useLive(['queues'], loaded.reload);
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const operate = useCanOperate();
  return (
    <section>
      <PageHeader title="Queues" />
      <Loading loaded={loaded}>
        {(data) =>
          data.queues.length === 0 ? (
            <p class="muted">No queue has jobs, a worker here, or is paused.</p>
          ) : (
            <>
              <table class="queues">
                <caption class="muted small">
                  Wait (due → started) and run (started → finished) times: p50 / p95 of this instance's
                  workers over the last {duration(data.windowMs)}.
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Queue</th>
                    {JOB_STATES.map((state) => (
                      <th scope="col" key={state} class="num">
                        {state}
                      </th>
                    ))}
                    <th scope="col">Oldest waiting</th>
                    <th scope="col">Wait p50 / p95</th>
                    <th scope="col">Run p50 / p95</th>
                    {operate && <th scope="col">Actions</th>}
                  </tr>
                </thead>
                <tbody>
                  {data.queues.map((q) => (
                    <tr key={q.queue}>
                      <th scope="row">
                        <Link to={queuePath(q.queue, 'waiting')}>{q.queue}</Link>{' '}
                        {q.paused && <Badge tone="warn">paused</Badge>}
                      </th>
                      {JOB_STATES.map((state) => (
                        <td key={state} class="num">
                          <CountLink queue={q.queue} state={state} count={q.counts[state]} />
                        </td>
                      ))}
                      <td>{q.oldestWaitingMs === null ? '—' : duration(q.oldestWaitingMs)}</td>
                      <td>
                        <Percentiles durations={q.wait} />
                      </td>
                      <td>
                        <Percentiles durations={q.run} />
                      </td>
                      {operate && (
                        <td>
                          <PauseButton
                            queue={q.queue}
                            paused={q.paused}
                            onAsk={setConfirm}
                            onDone={loaded.reload}
                          />
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
              <Pager first={after !== ''} next={data.next} />
            </>
          )
        }
      </Loading>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </section>
  );
}

/** A count of jobs in one state, linking to them (a dead job is worth a glance: in red). */
function CountLink(props: { queue: string; state: JobState; count: number }) {
  const { queue, state, count } = props;
  return (
    <Link to={queuePath(queue, state)} class={state === 'dead' && count > 0 ? 'count-dead' : undefined}>
      {count.toLocaleString()}
      <span class="sr-only">
        {' '}
        {state} in {queue}
      </span>
    </Link>
  );
}

function Percentiles(props: { durations: Durations }) {
  const { count, p50, p95 } = props.durations;
  if (count === 0 || p50 === null || p95 === null) return <span class="muted">—</span>;
  return (
    <span title={`${count} in the window`}>
      {duration(p50)} / {duration(p95)}
    </span>
  );
}

/** Pause (stops every instance starting its jobs; running ones finish) or resume a queue. */
function PauseButton(props: {
  queue: string;
  paused: boolean;
  onAsk: (request: ConfirmRequest) => void;
  onDone: () => void;
}) {
  const { queue, paused } = props;
  const ask = () =>
    props.onAsk({
      title: paused ? `Resume ${queue}?` : `Pause ${queue}?`,
      body: paused ? (
        <p>Every instance starts its jobs again.</p>
      ) : (
        <p>No instance starts a job of {queue} until it is resumed; jobs already running finish.</p>
      ),
      action: paused ? 'Resume queue' : 'Pause queue',
      reason: true,
      run: async (reason) => {
        await api('PUT', `/queues/${encodeURIComponent(queue)}/paused`, {
          paused: !paused,
          ...(reason === undefined ? {} : { reason }),
        });
        toast(paused ? `${queue} resumed` : `${queue} paused`);
        props.onDone();
      },
    });
  return (
    <button type="button" onClick={ask}>
      {paused ? 'Resume' : 'Pause'}
    </button>
  );
}

function Pager(props: { first: boolean; next: string | null }) {
  if (!props.first && props.next === null) return null;
  return (
    <nav class="pager" aria-label="Pages">
      {props.first && (
        <button type="button" onClick={() => setQuery({ after: null })}>
          First page
        </button>
      )}
      {props.next !== null && (
        <button type="button" onClick={() => setQuery({ after: props.next })}>
          Next page
        </button>
      )}
    </nav>
  );
}

function QueueJobs(props: { queue: string; route: Route }) {
  const { queue } = props;
  const requested = props.route.query.get('state') ?? 'waiting';
  const state: JobState = (JOB_STATES as readonly string[]).includes(requested)
    ? (requested as JobState)
    : 'waiting';
  const after = props.route.query.get('after') ?? '';
  const base = `/queues/${encodeURIComponent(queue)}`;
  const info = useLoad((signal) => api<Queue>('GET', base, undefined, signal), base);
  const path = withQuery(`${base}/jobs`, { state, after, limit: JOBS_PER_PAGE });
  const jobs = useLoad(
    (signal) => api<{ jobs: JobPreview[]; next: string | null }>('GET', path, undefined, signal),
    path,
  );
  const refresh = () => {
    info.reload();
    jobs.reload();
  };
  useLive(['queues'], refresh);
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const operate = useCanOperate();
  const redriveAll = (dead: number) =>
    setConfirm({
      title: `Redrive every dead job of ${queue}?`,
      body: (
        <p>
          All {dead.toLocaleString()} dead jobs run again, each with fresh attempts, on every instance with a
          worker for {queue}.
        </p>
      ),
      typed: queue,
      action: 'Redrive all',
      run: async () => {
        const { redriven } = await api<{ redriven: string[] }>('POST', `${base}/redrive`, {});
        toast(`${redriven.length.toLocaleString()} jobs of ${queue} redriven`);
        refresh();
      },
    });
  return (
    <section>
      <PageHeader title={`Queue ${queue}`}>
        <Link to="/queues">All queues</Link>
      </PageHeader>
      <Loading loaded={info}>
        {(q) => (
          <>
            <dl class="facts">
              <dt>State</dt>
              <dd>{q.paused ? <Badge tone="warn">paused</Badge> : <Badge tone="ok">running</Badge>}</dd>
              <dt>Oldest waiting</dt>
              <dd>{q.oldestWaitingMs === null ? 'none waiting' : duration(q.oldestWaitingMs)}</dd>
              <dt>Wait p50 / p95</dt>
              <dd>
                <Percentiles durations={q.wait} />
              </dd>
              <dt>Run p50 / p95</dt>
              <dd>
                <Percentiles durations={q.run} />
              </dd>
            </dl>
            {operate && (
              <div class="actions start">
                <PauseButton queue={queue} paused={q.paused} onAsk={setConfirm} onDone={refresh} />
                {state === 'dead' && q.counts.dead > 0 && (
                  <button type="button" class="danger" onClick={() => redriveAll(q.counts.dead)}>
                    Redrive all
                  </button>
                )}
              </div>
            )}
            <nav class="tabs" aria-label="Job states">
              {JOB_STATES.map((s) => (
                <Link key={s} to={queuePath(queue, s)} current={s === state}>
                  {s} ({q.counts[s].toLocaleString()})
                </Link>
              ))}
            </nav>
          </>
        )}
      </Loading>
      <h2>
        {state[0]?.toUpperCase()}
        {state.slice(1)} jobs
      </h2>
      <Loading loaded={jobs}>
        {(page) =>
          page.jobs.length === 0 ? (
            <p class="muted">
              No {state} job{after !== '' && ' on this page'}.
            </p>
          ) : (
            <>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Job</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Priority</th>
                    <th scope="col">Added</th>
                    <th scope="col">{state === 'waiting' || state === 'dead' ? 'Due' : 'Runs'}</th>
                    <th scope="col">Data</th>
                    <th scope="col">Last error</th>
                    {operate && <th scope="col">Actions</th>}
                  </tr>
                </thead>
                <tbody>
                  {page.jobs.map((job) => (
                    <tr key={job.id}>
                      <th scope="row">
                        <Link to={jobPath(queue, job.id)}>{job.id}</Link>
                      </th>
                      <td>
                        {job.attempts} / {job.maxAttempts}
                      </td>
                      <td>{job.priority}</td>
                      <td>
                        <Ago at={job.createdAt} />
                      </td>
                      <td>
                        <Ago at={job.runAt} />
                      </td>
                      <td>
                        <PreviewCell queue={queue} id={job.id} preview={job.data} part="data" />
                      </td>
                      <td>
                        {job.lastError === null ? (
                          <span class="muted">—</span>
                        ) : (
                          <PreviewCell queue={queue} id={job.id} preview={job.lastError} part="error" />
                        )}
                      </td>
                      {operate && (
                        <td>
                          <JobActions job={job} onAsk={setConfirm} onDone={refresh} />
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
              <Pager first={after !== ''} next={page.next} />
            </>
          )
        }
      </Loading>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </section>
  );
}

/**
 * A job's data or error as the list has it (its first KB), with a button that loads the whole job
 * and shows all of it in place.
 */
function PreviewCell(props: { queue: string; id: string; preview: Preview; part: 'data' | 'error' }) {
  const { preview } = props;
  const [whole, setWhole] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const showAll = async () => {
    setBusy(true);
    try {
      const job = await api<{ data: unknown; lastError: string | null }>(
        'GET',
        `/queues/${encodeURIComponent(props.queue)}/jobs/${encodeURIComponent(props.id)}`,
      );
      setWhole(props.part === 'data' ? JSON.stringify(job.data, null, 2) : (job.lastError ?? ''));
    } catch (error) {
      toastError(error);
    } finally {
      setBusy(false);
    }
  };
  if (whole !== undefined)
    return (
      <div>
        {/* Focusable: a long value scrolls, and a keyboard must reach it. */}
        <pre
          class="value"
          tabIndex={0}
          aria-label={`${props.part === 'data' ? 'Data' : 'Last error'} of job ${props.id}`}
        >
          {whole}
        </pre>
        <button type="button" class="link" onClick={() => setWhole(undefined)}>
          Show less
        </button>
      </div>
    );
  return (
    <div>
      <code class="preview">
        {preview.text}
        {preview.truncated && '…'}
      </code>
      {preview.truncated && (
        <button type="button" class="link" disabled={busy} onClick={() => void showAll()}>
          Show all ({preview.bytes.toLocaleString()} bytes)
        </button>
      )}
    </div>
  );
}
