// One job of a queue (/queues/<queue>/<id>): its state, attempts, times, options, all of its data and
// its last error; redrive, promote, remove. The actions are shared with the queue's job list.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useLive } from '../live.js';
import { navigate } from '../router.js';
import { useCanOperate } from '../session.js';
import {
  Ago,
  Badge,
  ConfirmDialog,
  Link,
  Loading,
  PageHeader,
  toast,
  toastError,
  useLoad,
  type ConfirmRequest,
  type Tone,
} from '../ui.js';

/** The states a job is reported in, in the order operators read them. */
export const JOB_STATES = ['waiting', 'delayed', 'retrying', 'active', 'dead'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** A long text cut short by the server: its start and the size of the whole. */
export interface Preview {
  text: string;
  bytes: number;
  truncated: boolean;
}

interface JobFields {
  queue: string;
  id: string;
  state: JobState;
  attempts: number;
  maxAttempts: number;
  priority: number;
  createdAt: number;
  runAt: number;
}

/** A job as a page of a list has it. */
export interface JobPreview extends JobFields {
  data: Preview;
  lastError: Preview | null;
}

interface JobDetail extends JobFields {
  data: unknown;
  lastError: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  options: { backoff?: unknown; timeout?: number };
}

const STATE_TONE: Record<JobState, Tone> = {
  waiting: 'muted',
  delayed: 'muted',
  retrying: 'warn',
  active: 'ok',
  dead: 'bad',
};

/** The console path of `queue`'s jobs in `state`. */
export function queuePath(queue: string, state: JobState): string {
  return `/queues/${encodeURIComponent(queue)}?state=${state}`;
}

/** The console path of one job. */
export function jobPath(queue: string, id: string): string {
  return `/queues/${encodeURIComponent(queue)}/${encodeURIComponent(id)}`;
}

function apiPath(queue: string, id: string): string {
  return `/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(id)}`;
}

/**
 * What an operator can do to a job in its state: redrive a dead one, promote a delayed or retrying
 * one, remove any that is not running (typed confirmation: the job's id).
 */
export function JobActions(props: {
  job: Pick<JobFields, 'queue' | 'id' | 'state'>;
  onAsk: (request: ConfirmRequest) => void;
  onDone: () => void;
  onRemoved?: () => void;
}) {
  const { queue, id, state } = props.job;
  const act = (run: () => Promise<string>) => () => {
    run().then((message) => {
      toast(message);
      props.onDone();
    }, toastError);
  };
  const redrive = act(async () => {
    const { redriven } = await api<{ redriven: string[] }>(
      'POST',
      `/queues/${encodeURIComponent(queue)}/redrive`,
      { ids: [id] },
    );
    return redriven.length === 1 ? `Job ${id} redriven` : `Job ${id} is no longer dead`;
  });
  const promote = act(async () => {
    await api('POST', `${apiPath(queue, id)}/promote`);
    return `Job ${id} is due now`;
  });
  const remove = () =>
    props.onAsk({
      title: `Remove job ${id}?`,
      body: (
        <p>The job is deleted from {queue} with its data: it will not run, and it cannot be brought back.</p>
      ),
      typed: id,
      action: 'Remove job',
      run: async () => {
        await api('DELETE', apiPath(queue, id));
        toast(`Job ${id} removed`);
        (props.onRemoved ?? props.onDone)();
      },
    });
  return (
    <div class="queue-actions">
      {state === 'dead' && (
        <button type="button" onClick={redrive}>
          Redrive
        </button>
      )}
      {(state === 'delayed' || state === 'retrying') && (
        <button type="button" onClick={promote}>
          Promote
        </button>
      )}
      {state !== 'active' && (
        <button type="button" class="danger" onClick={remove}>
          Remove
        </button>
      )}
    </div>
  );
}

export function JobPage(props: { queue: string; id: string }) {
  const { queue, id } = props;
  const path = apiPath(queue, id);
  const loaded = useLoad((signal) => api<JobDetail>('GET', path, undefined, signal), path);
  useLive(['queues'], loaded.reload);
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const operate = useCanOperate();
  const gone = loaded.error?.status === 404;
  return (
    <section>
      <PageHeader title={`Job ${id}`}>
        <Link to={queuePath(queue, loaded.data?.state ?? 'waiting')}>Queue {queue}</Link>
      </PageHeader>
      {gone ? (
        <p class="notice">
          There is no job {id} in {queue} now: it completed (completed jobs are not kept) or was removed.
        </p>
      ) : (
        <Loading loaded={loaded}>
          {(job) => (
            <>
              <dl class="facts">
                <dt>State</dt>
                <dd>
                  <Badge tone={STATE_TONE[job.state]}>{job.state}</Badge>
                </dd>
                <dt>Attempts</dt>
                <dd>
                  {job.attempts} of {job.maxAttempts}
                </dd>
                <dt>Priority</dt>
                <dd>{job.priority}</dd>
                <dt>Added</dt>
                <dd>
                  <Ago at={job.createdAt} />
                </dd>
                <dt>{job.state === 'delayed' || job.state === 'retrying' ? 'Runs' : 'Due'}</dt>
                <dd>
                  <Ago at={job.runAt} />
                </dd>
                <dt>Last started</dt>
                <dd>
                  <Ago at={job.startedAt} />
                </dd>
                {job.finishedAt !== null && (
                  <>
                    <dt>Died</dt>
                    <dd>
                      <Ago at={job.finishedAt} />
                    </dd>
                  </>
                )}
                <dt>Options</dt>
                <dd>
                  <code>
                    {Object.keys(job.options).length === 0 ? 'defaults' : JSON.stringify(job.options)}
                  </code>
                </dd>
              </dl>
              {operate && (
                <div class="actions start">
                  <JobActions
                    job={job}
                    onAsk={setConfirm}
                    onDone={loaded.reload}
                    onRemoved={() => navigate(queuePath(queue, job.state))}
                  />
                </div>
              )}
              <h2>Last error</h2>
              {job.lastError === null ? (
                <p class="muted">None.</p>
              ) : (
                <pre class="value" tabIndex={0} aria-label="Last error">
                  {job.lastError}
                </pre>
              )}
              <h2>Data</h2>
              {/* Focusable: a long payload scrolls, and a keyboard must reach it. */}
              <pre class="json" tabIndex={0} aria-label="Data">
                {JSON.stringify(job.data, null, 2)}
              </pre>
            </>
          )}
        </Loading>
      )}
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </section>
  );
}
