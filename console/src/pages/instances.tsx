// Instances: every Bulwark instance sharing the store (the registry each keeps its row in): id,
// service, host, pid, version, uptime, dependency modes, last seen, and whether it is alive, stopped
// or lost (no heartbeat, never closed). Reloads when an instance appears, stops, dies or switches.
import { api, withQuery } from '../api.js';
import { useLive } from '../live.js';
import { setQuery, type Route } from '../router.js';
import { Ago, Badge, duration, Loading, PageHeader, useLoad } from '../ui.js';

interface Instance {
  instanceId: string;
  serviceId: string;
  host: string;
  pid: number;
  version: string;
  startedAt: number;
  lastSeen: number;
  stoppedAt?: number;
  alive: boolean;
  dependencies: Record<string, { mode: 'primary' | 'fallback'; forced: boolean }>;
  supervisor?: { slot: number; generation: number };
}

interface InstanceList {
  instances: Instance[];
  generatedAt: number;
}

export function InstancesPage(props: { route: Route }) {
  const stopped = props.route.query.get('stopped') === '1';
  const path = withQuery('/instances', { include: stopped ? 'stopped' : undefined });
  const loaded = useLoad((signal) => api<InstanceList>('GET', path, undefined, signal), path);
  useLive(['instances'], loaded.reload);
  return (
    <section>
      <PageHeader title="Instances">
        <label class="check">
          <input
            type="checkbox"
            checked={stopped}
            onChange={(e) => setQuery({ stopped: (e.target as HTMLInputElement).checked ? '1' : null })}
          />
          Show stopped
        </label>
      </PageHeader>
      <Loading loaded={loaded}>
        {({ instances, generatedAt }) => (
          <>
            <p class="muted">
              {instances.length} instance{instances.length === 1 ? '' : 's'},{' '}
              {instances.filter((i) => i.alive).length} alive (a heartbeat every 10 s; alive means seen in the
              last 30 s).
            </p>
            {instances.length === 0 ? (
              <p class="muted">No instance has registered yet.</p>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th scope="col">Instance</th>
                    <th scope="col">Host</th>
                    <th scope="col">PID</th>
                    <th scope="col">Version</th>
                    <th scope="col">Uptime</th>
                    <th scope="col">Dependencies</th>
                    <th scope="col">Last seen</th>
                    <th scope="col">State</th>
                  </tr>
                </thead>
                <tbody>
                  {instances.map((instance) => (
                    <tr key={instance.instanceId}>
                      <td>
                        <code>{instance.instanceId}</code>
                        <div class="muted small">
                          {instance.serviceId}
                          {instance.supervisor &&
                            ` · slot ${instance.supervisor.slot}, generation ${instance.supervisor.generation}`}
                        </div>
                      </td>
                      <td>{instance.host}</td>
                      <td>{instance.pid}</td>
                      <td>
                        <code>{instance.version}</code>
                      </td>
                      <td>{uptime(instance, generatedAt)}</td>
                      <td>
                        <Dependencies of={instance.dependencies} />
                      </td>
                      <td>
                        <Ago at={instance.lastSeen} />
                      </td>
                      <td>
                        <State instance={instance} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </Loading>
    </section>
  );
}

/** How long it has run: until now while alive, until it stopped, or until it was last seen. */
function uptime(instance: Instance, now: number): string {
  if (instance.alive) return duration(now - instance.startedAt);
  if (instance.stoppedAt !== undefined) return `ran ${duration(instance.stoppedAt - instance.startedAt)}`;
  return `${duration(instance.lastSeen - instance.startedAt)} until last seen`;
}

function State(props: { instance: Instance }) {
  const { instance } = props;
  if (instance.alive) return <Badge tone="ok">alive</Badge>;
  if (instance.stoppedAt !== undefined) return <Badge tone="muted">stopped</Badge>;
  return <Badge tone="warn">lost</Badge>;
}

function Dependencies(props: { of: Instance['dependencies'] }) {
  const entries = Object.entries(props.of);
  if (entries.length === 0) return <span class="muted">none</span>;
  return (
    <ul class="plain">
      {entries.map(([name, dependency]) => (
        <li key={name}>
          {name} <Badge tone={dependency.mode === 'primary' ? 'ok' : 'bad'}>{dependency.mode}</Badge>
          {dependency.forced && <Badge tone="warn">forced</Badge>}
        </li>
      ))}
    </ul>
  );
}
