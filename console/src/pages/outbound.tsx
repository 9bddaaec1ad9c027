// Outbound calls on the Dependencies page: each upstream of bulwark.http and each name given to
// bulwark.protect, with its circuit breaker's state, its kill switch, its calls by outcome, its
// retries, the adaptive throttle's rejection probability and its last failure. Breaker transitions
// send no live event: the section reads the list again every few seconds.
import { useEffect } from 'preact/hooks';
import { api } from '../api.js';
import { Ago, Badge, Loading, useLoad, type Tone } from '../ui.js';

interface Upstream {
  name: string;
  origin: string | null;
  breaker: 'closed' | 'half-open' | 'open';
  killed: boolean;
  calls: Record<'success' | 'failure' | 'deadline' | 'open' | 'throttled' | 'killed', number>;
  retries: number;
  throttle: { requests: number; accepts: number; rejectProbability: number } | null;
  retryBudget: number;
  lastFailure: { at: number; code: string; message: string } | null;
}

/** How often the section reads the upstreams again. */
const REFRESH_MS = 3000;

const BREAKER_TONE: Record<Upstream['breaker'], Tone> = { closed: 'ok', 'half-open': 'warn', open: 'bad' };

/** The outbound upstreams of this instance, as a table (or a line saying there is none). */
export function OutboundSection() {
  const loaded = useLoad((signal) => api<Upstream[]>('GET', '/outbound', undefined, signal), 'outbound');
  useEffect(() => {
    const timer = setInterval(loaded.reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [loaded.reload]);
  return (
    <Loading loaded={loaded}>
      {(list) =>
        list.length === 0 ? (
          <p class="muted">
            No outbound upstream: configure them with the <code>outbound</code> option of createBulwark
            (bulwark.http, bulwark.protect).
          </p>
        ) : (
          <table aria-label="Outbound upstreams of this instance">
            <thead>
              <tr>
                <th scope="col">Upstream</th>
                <th scope="col">Circuit breaker</th>
                <th scope="col">Calls</th>
                <th scope="col">Refused here</th>
                <th scope="col">Retries</th>
                <th scope="col">Throttle</th>
                <th scope="col">Last failure</th>
              </tr>
            </thead>
            <tbody>
              {list.map((upstream) => (
                <tr key={upstream.name}>
                  <td>
                    {upstream.name}
                    {upstream.origin !== null && (
                      <>
                        {' '}
                        <code class="muted">{upstream.origin}</code>
                      </>
                    )}
                  </td>
                  <td>
                    <Badge tone={BREAKER_TONE[upstream.breaker]}>{upstream.breaker}</Badge>
                    {upstream.killed && <Badge tone="bad">killed</Badge>}
                  </td>
                  <td>
                    {upstream.calls.success} ok, {upstream.calls.failure} failed, {upstream.calls.deadline}{' '}
                    late
                  </td>
                  <td>
                    {upstream.calls.open} open, {upstream.calls.throttled} throttled, {upstream.calls.killed}{' '}
                    killed
                  </td>
                  <td>{upstream.retries}</td>
                  <td>
                    {upstream.throttle === null
                      ? 'off'
                      : `${(upstream.throttle.rejectProbability * 100).toFixed(0)}% rejected`}
                  </td>
                  <td>
                    {upstream.lastFailure === null ? (
                      <span class="muted">none</span>
                    ) : (
                      <span title={upstream.lastFailure.message}>
                        <code>{upstream.lastFailure.code}</code> <Ago at={upstream.lastFailure.at} />
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      }
    </Loading>
  );
}
