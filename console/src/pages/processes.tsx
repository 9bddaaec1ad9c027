// Processes: the supervisor's slots (state, pid, uptime, restarts, RSS and CPU), its crash records
// (reason, exit, the app's last lines, the report), graded recovery steps, and a zero-downtime
// reload (operators, with a confirmation).
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import type { Route } from '../router.js';
import { useCanOperate } from '../session.js';
import {
  Ago,
  Badge,
  ConfirmDialog,
  duration,
  Loading,
  PageHeader,
  toast,
  useLoad,
  type ConfirmRequest,
  type Tone,
} from '../ui.js';

interface Slot {
  slot: number;
  state: string;
  id?: string;
  pid?: number;
  uptimeMs?: number;
  restarts: number;
  restartsInWindow: number;
  rss?: number;
  cpu?: number;
  heartbeat: boolean;
}

interface Crash {
  at: string;
  slot: number;
  instanceId: string;
  pid?: number;
  reason: string;
  exitCode: number | null;
  signal: string | null;
  uptimeMs: number;
  rssAtDeath?: number;
  reportPath?: string;
  lastLines: string[];
}

interface Recovery {
  at: string;
  slot: number;
  resource: string;
  step: string;
  before: number;
  after?: number;
  helped?: boolean;
  actions?: string[];
}

interface Status {
  state: string;
  mode: string;
  port?: number;
  startedAt: string;
  uptimeMs: number;
  instances: Slot[];
  crashes: Crash[];
  recoveries: Recovery[];
  lastReload?: { at?: string; ok?: boolean; detail?: string } | null;
}

interface SupervisorView {
  supervised: boolean;
  live?: boolean;
  status?: Status;
}

const STATE_TONE: Record<string, Tone> = {
  running: 'ok',
  starting: 'warn',
  reloading: 'warn',
  backoff: 'warn',
  stopping: 'muted',
  parked: 'bad',
  stopped: 'muted',
};

const MiB = (bytes: number | undefined) =>
  bytes === undefined ? '—' : `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/**
 * Refreshes the page every 2 s until the supervisor reports a reload that ended after `startedAt`
 * (for at most 2 minutes), then toasts its outcome.
 */
function watchReload(startedAt: string, refresh: () => void): void {
  const deadline = Date.now() + 120_000;
  const check = () => {
    api<SupervisorView>('GET', '/supervisor').then(
      (view) => {
        const last = view.status?.lastReload;
        if (last?.at !== undefined && last.at >= startedAt) {
          refresh();
          if (last.ok === false)
            toast(`Reload rolled back: ${last.detail ?? 'a new instance failed'}`, 'error');
          else toast('Reload finished');
        } else if (Date.now() < deadline) setTimeout(check, 2_000);
      },
      // This instance may be the one replaced: ask again.
      () => {
        if (Date.now() < deadline) setTimeout(check, 2_000);
      },
    );
  };
  setTimeout(check, 2_000);
}

export function ProcessesPage(_props: { route: Route }) {
  const loaded = useLoad(
    (signal) => api<SupervisorView>('GET', '/supervisor', undefined, signal),
    'supervisor',
  );
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const operate = useCanOperate();
  const reload = () =>
    setConfirm({
      title: 'Reload every instance?',
      body: (
        <p>
          New instances start and must pass their probes before the old ones stop; a failing new version is
          stopped and the old ones keep serving.
        </p>
      ),
      action: 'Reload',
      reason: true,
      run: async (reason) => {
        const { at } = await api<{ at: string }>(
          'POST',
          '/supervisor/reload',
          reason === undefined ? {} : { reason },
        );
        toast('Reload started: new instances must pass their probes before the old ones stop.');
        watchReload(at, loaded.reload);
      },
    });
  return (
    <section>
      <PageHeader title="Processes">
        <button type="button" onClick={loaded.reload}>
          Refresh
        </button>
        {operate && loaded.data?.supervised === true && loaded.data.live === true && (
          <button type="button" onClick={reload}>
            Reload
          </button>
        )}
      </PageHeader>
      <Loading loaded={loaded}>
        {(view) =>
          !view.supervised ? (
            <p class="muted">
              This process does not run under <code>bulwark supervise</code>, so there are no supervised
              processes to show.
              <code> npm start</code> runs the app under the supervisor.
            </p>
          ) : view.status === undefined ? (
            <p class="muted">The supervisor does not answer and has written no state yet.</p>
          ) : (
            <StatusView status={view.status} live={view.live === true} />
          )
        }
      </Loading>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </section>
  );
}

function StatusView(props: { status: Status; live: boolean }) {
  const { status } = props;
  return (
    <>
      {!props.live && (
        <p class="notice error" role="status">
          The supervisor does not answer: this is its last saved state.
        </p>
      )}
      <p>
        Supervisor <Badge tone={STATE_TONE[status.state] ?? 'muted'}>{status.state}</Badge> in {status.mode}{' '}
        mode
        {status.port !== undefined && <> on port {status.port}</>}, up {duration(status.uptimeMs)}
        {status.lastReload?.at && (
          <>
            ; last reload <Ago at={status.lastReload.at} />{' '}
            {status.lastReload.ok === false ? <Badge tone="bad">failed</Badge> : <Badge tone="ok">ok</Badge>}
          </>
        )}
      </p>
      <h2>Instances</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Slot</th>
            <th scope="col">State</th>
            <th scope="col">PID</th>
            <th scope="col">Uptime</th>
            <th scope="col">Restarts (in window)</th>
            <th scope="col">RSS</th>
            <th scope="col">CPU</th>
          </tr>
        </thead>
        <tbody>
          {status.instances.map((slot) => (
            <tr key={slot.slot}>
              <td>{slot.slot}</td>
              <td>
                <Badge tone={STATE_TONE[slot.state] ?? 'muted'}>{slot.state}</Badge>
              </td>
              <td>{slot.pid ?? '—'}</td>
              <td>{slot.uptimeMs === undefined ? '—' : duration(slot.uptimeMs)}</td>
              <td>
                {slot.restarts} ({slot.restartsInWindow})
              </td>
              <td>{MiB(slot.rss)}</td>
              <td>{slot.cpu === undefined ? '—' : `${slot.cpu.toFixed(0)}%`}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Crashes</h2>
      {status.crashes.length === 0 ? (
        <p class="muted">No instance ended without being asked to.</p>
      ) : (
        <ol class="history">
          {[...status.crashes].reverse().map((crash) => (
            <li key={`${crash.at}-${crash.instanceId}`}>
              <p>
                <strong>{crash.reason}</strong> — slot {crash.slot}, pid {crash.pid ?? '?'}, exit{' '}
                {crash.exitCode ?? crash.signal ?? '?'}, after {duration(crash.uptimeMs)}, RSS{' '}
                {MiB(crash.rssAtDeath)} <Ago at={crash.at} />
                {crash.reportPath && (
                  <>
                    {' '}
                    · report <code>{crash.reportPath}</code>
                  </>
                )}
              </p>
              <details>
                <summary>The app's last {crash.lastLines.length} lines</summary>
                <pre class="json">{crash.lastLines.join('\n')}</pre>
              </details>
            </li>
          ))}
        </ol>
      )}
      <h2>Recovery steps</h2>
      {status.recoveries.length === 0 ? (
        <p class="muted">No graded recovery step was needed.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Slot</th>
              <th scope="col">Resource</th>
              <th scope="col">Step</th>
              <th scope="col">Before → after</th>
              <th scope="col">Helped</th>
            </tr>
          </thead>
          <tbody>
            {[...status.recoveries].reverse().map((r) => (
              <tr key={`${r.at}-${r.slot}-${r.step}`}>
                <td>
                  <Ago at={r.at} />
                </td>
                <td>{r.slot}</td>
                <td>{r.resource}</td>
                <td>{r.step}</td>
                <td>
                  {r.resource === 'memory' ? MiB(r.before) : r.before} →{' '}
                  {r.after === undefined ? '…' : r.resource === 'memory' ? MiB(r.after) : r.after}
                </td>
                <td>{r.helped === undefined ? '…' : r.helped ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
