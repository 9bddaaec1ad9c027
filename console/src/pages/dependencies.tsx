// Dependencies: the side each degradable dependency is served from, why, its switches and the last
// one, the work waiting to go back to it (cache journal, queue spool), the kill switch (forcing it
// onto its embedded fallback needs a typed confirmation), and the mode of each dependency on every
// live instance (from the instances registry); then the circuit breakers of the outbound calls.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { useLive } from '../live.js';
import type { Route } from '../router.js';
import { useCanOperate } from '../session.js';
import { OutboundSection } from './outbound.js';
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
} from '../ui.js';

interface Dependency {
  name: string;
  mode: 'primary' | 'fallback';
  reason: string;
  forced: boolean;
  switches: number;
  lastSwitchAt: number | null;
  requiredStreakMs: number;
  backlog: { name: string; pending: number | null; error?: string }[];
}

/** While a dependency is on its fallback or has a backlog, how often the page reads it again. */
const BACKLOG_REFRESH_MS = 5000;

interface InstanceRow {
  instanceId: string;
  host: string;
  pid: number;
  alive: boolean;
  lastSeen: number;
  dependencies: Record<string, { mode: 'primary' | 'fallback'; forced: boolean }>;
}

export function DependenciesPage(_props: { route: Route }) {
  const loaded = useLoad(
    (signal) => api<Dependency[]>('GET', '/dependencies', undefined, signal),
    'dependencies',
  );
  const instances = useLoad(
    (signal) => api<{ instances: InstanceRow[] }>('GET', '/instances', undefined, signal),
    'instances',
  );
  useLive(['dependencies'], loaded.reload);
  useLive(['instances', 'dependencies'], instances.reload);
  // A backlog grows and drains without a switch (no live event): read it again while there is one.
  const busy =
    loaded.data?.some((d) => d.mode === 'fallback' || d.backlog.some((b) => b.pending !== 0)) ?? false;
  useEffect(() => {
    if (!busy) return undefined;
    const timer = setInterval(loaded.reload, BACKLOG_REFRESH_MS);
    return () => clearInterval(timer);
  }, [busy, loaded.reload]);
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const operate = useCanOperate();
  const force = (dependency: Dependency, forced: boolean) =>
    setConfirm({
      title: forced ? `Force ${dependency.name} onto its fallback?` : `Release ${dependency.name}?`,
      body: forced ? (
        <p>
          This instance stops using {dependency.name} and serves from the embedded fallback until released;
          /health reports it as degraded.
        </p>
      ) : (
        <p>{dependency.name} goes back to its primary once its probe passes.</p>
      ),
      ...(forced ? { typed: dependency.name } : {}),
      action: forced ? 'Force fallback' : 'Release',
      reason: true,
      run: async (reason) => {
        await api('PUT', `/dependencies/${encodeURIComponent(dependency.name)}/forced`, {
          forced,
          ...(reason === undefined ? {} : { reason }),
        });
        toast(forced ? `${dependency.name} forced onto its fallback` : `${dependency.name} released`);
        loaded.reload();
      },
    });
  return (
    <section>
      <PageHeader title="Dependencies" />
      <Loading loaded={loaded}>
        {(list) =>
          list.length === 0 ? (
            <p class="muted">
              No degradable dependency is configured: without <code>REDIS_URL</code> everything runs on the
              embedded store.
            </p>
          ) : (
            <table aria-label="Dependencies of this instance">
              <thead>
                <tr>
                  <th scope="col">Dependency</th>
                  <th scope="col">Served from</th>
                  <th scope="col">Why</th>
                  <th scope="col">Switches</th>
                  <th scope="col">Last switch</th>
                  <th scope="col">Healthy streak to fail back</th>
                  <th scope="col">Waiting for it</th>
                  {operate && <th scope="col">Kill switch</th>}
                </tr>
              </thead>
              <tbody>
                {list.map((dependency) => (
                  <tr key={dependency.name}>
                    <td>{dependency.name}</td>
                    <td>
                      {dependency.mode === 'primary' ? (
                        <Badge tone="ok">primary</Badge>
                      ) : (
                        <Badge tone="warn">fallback</Badge>
                      )}
                      {dependency.forced && <Badge tone="bad">forced</Badge>}
                    </td>
                    <td>{dependency.reason}</td>
                    <td>{dependency.switches}</td>
                    <td>
                      <Ago at={dependency.lastSwitchAt} />
                    </td>
                    <td>{duration(dependency.requiredStreakMs)}</td>
                    <td>
                      <Backlog list={dependency.backlog} />
                    </td>
                    {operate && (
                      <td>
                        {dependency.forced ? (
                          <button type="button" onClick={() => force(dependency, false)}>
                            Release
                          </button>
                        ) : (
                          <button type="button" class="danger" onClick={() => force(dependency, true)}>
                            Force fallback
                          </button>
                        )}
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loading>
      <h2>Outbound calls</h2>
      <OutboundSection />
      <h2>On every instance</h2>
      <Loading loaded={instances}>
        {({ instances: rows }) => <PerInstance rows={rows.filter((row) => row.alive)} />}
      </Loading>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </section>
  );
}

/** The records kept on the fallback side for a dependency, e.g. "cache journal (default): 120". */
function Backlog(props: { list: Dependency['backlog'] }) {
  if (props.list.length === 0) return <span class="muted">—</span>;
  return (
    <ul class="plain">
      {props.list.map((item) => (
        <li key={item.name}>
          {item.name}:{' '}
          {item.pending === null ? (
            <Badge tone="bad">unreadable{item.error === undefined ? '' : ` (${item.error})`}</Badge>
          ) : item.pending === 0 ? (
            <span class="muted">none</span>
          ) : (
            <Badge tone="warn">{item.pending.toLocaleString()}</Badge>
          )}
        </li>
      ))}
    </ul>
  );
}

/** Which side every live instance serves each dependency from (a cluster, several hosts). */
function PerInstance(props: { rows: InstanceRow[] }) {
  const names = [...new Set(props.rows.flatMap((row) => Object.keys(row.dependencies)))].sort();
  if (props.rows.length === 0) return <p class="muted">No live instance has reported yet (every 10 s).</p>;
  if (names.length === 0) return <p class="muted">No instance has a degradable dependency.</p>;
  return (
    <table aria-label="Dependencies on every instance">
      <thead>
        <tr>
          <th scope="col">Instance</th>
          {names.map((name) => (
            <th scope="col" key={name}>
              {name}
            </th>
          ))}
          <th scope="col">Last seen</th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map((row) => (
          <tr key={row.instanceId}>
            <td>
              <code>{row.host}</code> pid {row.pid}
            </td>
            {names.map((name) => {
              const dependency = row.dependencies[name];
              return (
                <td key={name}>
                  {dependency === undefined ? (
                    <span class="muted">—</span>
                  ) : (
                    <>
                      <Badge tone={dependency.mode === 'primary' ? 'ok' : 'warn'}>{dependency.mode}</Badge>
                      {dependency.forced && <Badge tone="bad">forced</Badge>}
                    </>
                  )}
                </td>
              );
            })}
            <td>
              <Ago at={row.lastSeen} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
