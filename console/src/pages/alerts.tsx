// Alerts: rules firing and pending (or any state), each with its labels, since and value, its
// acknowledgement and the silence covering it; acknowledge one, silence one (matchers prefilled
// from its labels), the silences with expiry, the outbox a page at a time and a test notification.
// Filters and pages in the URL.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, withQuery } from '../api.js';
import { useLive } from '../live.js';
import { setQuery, type Route } from '../router.js';
import { useCanOperate } from '../session.js';
import {
  Ago,
  Badge,
  ConfirmDialog,
  Loading,
  PageHeader,
  SearchBox,
  toast,
  toastError,
  Truncated,
  useLoad,
  type ConfirmRequest,
  type Tone,
} from '../ui.js';
import { Columns, Pager, Pairs } from '../lists.js';

interface Ack {
  by: string;
  at: number;
  comment: string;
}

interface Rule {
  id: string;
  severity: 'critical' | 'warning' | 'info';
  summary: string;
  series: string;
  labels: Record<string, string>;
  state: 'inactive' | 'pending' | 'firing' | 'nodata' | 'error';
  since: number;
  value?: number;
  transitions: number;
  ack?: Ack;
  silence?: { id: string; endsAt: number; createdBy: string };
}

interface RulePage {
  /** False when the app has no alerting configuration (then no rule, and no other alert route). */
  configured: boolean;
  rules: Rule[];
  total: number;
  next: string | null;
}

interface Silence {
  id: string;
  matchers: Record<string, string>;
  startsAt: number;
  endsAt: number;
  createdBy: string;
  comment: string;
}

interface Notification {
  id: number;
  key: string;
  receiver: string;
  state: 'pending' | 'sent' | 'dead' | 'silenced' | 'inhibited';
  attempts: number;
  nextAt: number;
  lastError?: string;
  createdAt: number;
  sentAt?: number;
  rule?: string;
  status?: string;
  summary?: string;
  payloadChars: number;
}

const PAGE_SIZE = 50;
const FILTERS = [
  ['active', 'firing & pending'],
  ['firing', 'firing'],
  ['pending', 'pending'],
  ['nodata', 'no data'],
  ['error', 'failing to evaluate'],
  ['all', 'all rules'],
] as const;
const STATE_TONE: Record<Rule['state'], Tone> = {
  firing: 'bad',
  pending: 'warn',
  error: 'bad',
  nodata: 'muted',
  inactive: 'ok',
};
const SEVERITY_TONE: Record<Rule['severity'], Tone> = { critical: 'bad', warning: 'warn', info: 'muted' };
const OUTBOX_TONE: Record<Notification['state'], Tone> = {
  pending: 'warn',
  sent: 'ok',
  dead: 'bad',
  silenced: 'muted',
  inhibited: 'muted',
};

export function AlertsPage(props: { route: Route }) {
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>();
  const [changed, setChanged] = useState(0);
  const [configured, setConfigured] = useState<boolean | undefined>();
  const refresh = () => setChanged((n) => n + 1);
  const state = props.route.query.get('state') ?? 'active';
  const q = props.route.query.get('q') ?? '';
  return (
    <section>
      <PageHeader title="Alerts">
        <SearchBox label="Search rules" value={q} onChange={(value) => setQuery({ q: value, after: null })} />
        <label>
          State{' '}
          <select
            value={state}
            onChange={(e) => setQuery({ state: (e.target as HTMLSelectElement).value, after: null })}
          >
            {FILTERS.map(([value, name]) => (
              <option key={value} value={value}>
                {name}
              </option>
            ))}
          </select>
        </label>
      </PageHeader>
      <Rules
        route={props.route}
        changed={changed}
        onAsk={setConfirm}
        onSilence={(rule) => setConfirm(silenceRequest(rule, refresh))}
        onDone={refresh}
        onConfigured={setConfigured}
      />
      {configured === true && (
        <>
          <Silences changed={changed} onAsk={setConfirm} onDone={refresh} />
          <Outbox route={props.route} changed={changed} />
          <TestNotification />
        </>
      )}
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </section>
  );
}

function Rules(props: {
  route: Route;
  changed: number;
  onAsk: (request: ConfirmRequest) => void;
  onSilence: (rule: Rule) => void;
  onDone: () => void;
  /** Told whether alerting is configured, once the first page is in. */
  onConfigured: (configured: boolean) => void;
}) {
  const { query } = props.route;
  const state = query.get('state') ?? 'active';
  const q = query.get('q') ?? '';
  const after = query.get('after') ?? '';
  const path = withQuery('/alerts', { state, q, after, limit: PAGE_SIZE });
  const loaded = useLoad(
    (signal) => api<RulePage>('GET', path, undefined, signal),
    `${path}#${props.changed}`,
  );
  useLive(['alerts'], loaded.reload);
  const configured = loaded.data?.configured;
  useEffect(() => {
    if (configured !== undefined) props.onConfigured(configured);
  }, [configured]);
  const operate = useCanOperate();
  const ack = (rule: Rule) =>
    props.onAsk({
      title: `Acknowledge ${rule.id}?`,
      body: (
        <p>
          No repeats and no escalation for this firing; it ends when the alert resolves (a new firing is not
          acknowledged).
        </p>
      ),
      action: 'Acknowledge',
      reason: true,
      run: async (reason) => {
        await api('POST', `/alerts/${encodeURIComponent(rule.id)}/ack`, { comment: reason ?? '' });
        toast(`${rule.id} acknowledged`);
        props.onDone();
      },
    });
  const filterName = FILTERS.find(([value]) => value === state)?.[1] ?? state;
  return (
    <>
      <Loading loaded={loaded}>
        {(page) =>
          !page.configured ? (
            <p class="muted">
              Alerting is not configured: give <code>createBulwark()</code> an <code>alerts</code> option or
              set <code>BULWARK_ALERTS_FILE</code> (see docs/alerting.md).
            </p>
          ) : (
            <>
              <p class="muted">
                {page.total.toLocaleString()} {page.total === 1 ? 'rule' : 'rules'}: {filterName}
                {q !== '' && <> matching “{q}”</>}
              </p>
              {page.rules.length > 0 && (
                <table aria-label="Alert rules">
                  <Columns
                    names={['Rule', 'Severity', 'State', 'Labels', 'Since', 'Value']}
                    actions={operate}
                  />
                  <tbody>
                    {page.rules.map((rule) => (
                      <tr key={rule.id}>
                        <td>
                          <code>{rule.id}</code>
                          <div class="small">{rule.summary}</div>
                          <div class="muted small">{rule.series}</div>
                        </td>
                        <td>
                          <Badge tone={SEVERITY_TONE[rule.severity]}>{rule.severity}</Badge>
                        </td>
                        <td>
                          <Badge tone={STATE_TONE[rule.state]}>{rule.state}</Badge>
                          {rule.ack && (
                            <div class="small">
                              acknowledged by <code>{rule.ack.by}</code> <Ago at={rule.ack.at} />
                              {rule.ack.comment !== '' && <> — “{rule.ack.comment}”</>}
                            </div>
                          )}
                          {rule.silence && (
                            <div class="small">
                              <Badge tone="muted">silenced</Badge> until <Ago at={rule.silence.endsAt} /> by{' '}
                              <code>{rule.silence.createdBy}</code>
                            </div>
                          )}
                        </td>
                        <td>
                          <Pairs values={rule.labels} />
                        </td>
                        <td>
                          <Ago at={rule.since} />
                        </td>
                        <td>
                          {rule.value === undefined ? <span class="muted">—</span> : formatValue(rule.value)}
                        </td>
                        {operate && (
                          <td class="row-actions">
                            {rule.state === 'firing' && rule.ack === undefined && (
                              <button type="button" onClick={() => ack(rule)}>
                                Acknowledge
                              </button>
                            )}
                            {rule.silence === undefined && (
                              <button type="button" onClick={() => props.onSilence(rule)}>
                                Silence
                              </button>
                            )}
                          </td>
                        )}
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              <Pager
                label="Rule pages"
                first={after !== ''}
                next={page.next}
                go={(cursor) => setQuery({ after: cursor })}
              />
            </>
          )
        }
      </Loading>
    </>
  );
}

function formatValue(value: number): string {
  return Math.abs(value) >= 1_000 || Number.isInteger(value)
    ? Math.round(value).toLocaleString()
    : value.toPrecision(3);
}

function Silences(props: { changed: number; onAsk: (request: ConfirmRequest) => void; onDone: () => void }) {
  const [after, setAfter] = useState(0);
  const path = withQuery('/alerts/silences', { after, limit: PAGE_SIZE });
  const loaded = useLoad(
    (signal) =>
      api<{ silences: Silence[]; total: number; next: number | null }>('GET', path, undefined, signal),
    `${path}#${props.changed}`,
  );
  useLive(['alerts'], loaded.reload);
  const operate = useCanOperate();
  const expire = (silence: Silence) =>
    props.onAsk({
      title: 'Expire this silence?',
      body: (
        <p>
          Alerts matching <Pairs values={silence.matchers} /> are notified again from now on.
        </p>
      ),
      action: 'Expire silence',
      run: async () => {
        await api('DELETE', `/alerts/silences/${encodeURIComponent(silence.id)}`);
        toast('Silence expired');
        props.onDone();
      },
    });
  return (
    <>
      <h2>Silences</h2>
      <Loading loaded={loaded}>
        {(page) =>
          page.total === 0 ? (
            <p class="muted">No silence is active or planned.</p>
          ) : (
            <>
              <table aria-label="Silences">
                <Columns names={['Matchers', 'Starts', 'Ends', 'By', 'Comment']} actions={operate} />
                <tbody>
                  {page.silences.map((silence) => (
                    <tr key={silence.id}>
                      <td>
                        <Pairs values={silence.matchers} />
                      </td>
                      <td>
                        <Ago at={silence.startsAt} />
                      </td>
                      <td>
                        <Ago at={silence.endsAt} />
                      </td>
                      <td>
                        <code>{silence.createdBy}</code>
                      </td>
                      <td>{silence.comment}</td>
                      {operate && (
                        <td>
                          <button type="button" onClick={() => expire(silence)}>
                            Expire
                          </button>
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
              <Pager
                label="Silence pages"
                first={after > 0}
                next={page.next === null ? null : String(page.next)}
                go={(cursor) => setAfter(cursor === null ? 0 : Number(cursor))}
              />
            </>
          )
        }
      </Loading>
    </>
  );
}

function Outbox(props: { route: Route; changed: number }) {
  const { query } = props.route;
  const state = query.get('outbox') ?? '';
  const before = query.get('before') ?? '';
  const path = withQuery('/alerts/outbox', { state, before, limit: PAGE_SIZE });
  const loaded = useLoad(
    (signal) => api<{ notifications: Notification[]; next: string | null }>('GET', path, undefined, signal),
    `${path}#${props.changed}`,
  );
  useLive(['alerts'], () => {
    if (before === '') loaded.reload();
  });
  return (
    <>
      <div class="section-header">
        <h2>Outbox</h2>
        <label>
          Delivery{' '}
          <select
            value={state}
            onChange={(e) => setQuery({ outbox: (e.target as HTMLSelectElement).value, before: null })}
          >
            <option value="">all</option>
            <option value="pending">pending</option>
            <option value="sent">sent</option>
            <option value="dead">dead</option>
            <option value="silenced">silenced</option>
            <option value="inhibited">inhibited</option>
          </select>
        </label>
      </div>
      <Loading loaded={loaded}>
        {(page) =>
          page.notifications.length === 0 ? (
            <p class="muted">No notification{state === '' ? '' : ` ${state}`}.</p>
          ) : (
            <>
              <table aria-label="Outbox">
                <Columns
                  names={['Created', 'Notification', 'Receiver', 'Delivery', 'Attempts', 'Last error']}
                />
                <tbody>
                  {page.notifications.map((n) => (
                    <tr key={n.id}>
                      <td>
                        <Ago at={n.createdAt} />
                      </td>
                      <td>
                        {n.status && <Badge tone={n.status === 'firing' ? 'bad' : 'ok'}>{n.status}</Badge>}
                        {n.summary ?? n.key}
                        <div class="muted small">
                          <code>{n.key}</code>
                        </div>
                        <Payload id={n.id} chars={n.payloadChars} />
                      </td>
                      <td>{n.receiver}</td>
                      <td>
                        <Badge tone={OUTBOX_TONE[n.state]}>{n.state}</Badge>
                        {n.sentAt !== undefined && (
                          <div class="small">
                            sent <Ago at={n.sentAt} />
                          </div>
                        )}
                        {n.state === 'pending' && n.attempts > 0 && (
                          <div class="small">
                            next try <Ago at={n.nextAt} />
                          </div>
                        )}
                      </td>
                      <td>{n.attempts}</td>
                      <td>
                        {n.lastError ? (
                          <Truncated text={n.lastError} max={120} />
                        ) : (
                          <span class="muted">—</span>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <Pager
                label="Outbox pages"
                first={before !== ''}
                next={page.next}
                go={(cursor) => setQuery({ before: cursor })}
              />
            </>
          )
        }
      </Loading>
    </>
  );
}

/** A notification's payload, fetched whole when asked for (the list carries only its length). */
function Payload(props: { id: number; chars: number }) {
  const [payload, setPayload] = useState<string | undefined>();
  const show = () =>
    api<{ payload: string }>('GET', `/alerts/outbox/${props.id}`).then((entry) => {
      let text = entry.payload;
      try {
        text = JSON.stringify(JSON.parse(entry.payload), null, 2);
      } catch {
        // Shown as it is.
      }
      setPayload(text);
    }, toastError);
  if (payload !== undefined)
    return (
      <details open>
        <summary>Payload</summary>
        <pre class="json" tabIndex={0}>
          {payload}
        </pre>
      </details>
    );
  return (
    <button type="button" class="link small" onClick={() => void show()}>
      Show payload ({props.chars.toLocaleString()} characters)
    </button>
  );
}

function TestNotification() {
  const operate = useCanOperate();
  const loaded = useLoad(
    (signal) =>
      api<{ receivers: { name: string; type: string }[] }>('GET', '/alerts/receivers', undefined, signal),
    'receivers',
  );
  const [receiver, setReceiver] = useState('');
  const [busy, setBusy] = useState(false);
  if (!operate) return null;
  const send = async (event: Event) => {
    event.preventDefault();
    const name = receiver || loaded.data?.receivers[0]?.name;
    if (name === undefined) return;
    setBusy(true);
    try {
      const result = await api<{ delivered: boolean; error?: string }>('POST', '/alerts/test', {
        receiver: name,
      });
      if (result.delivered) toast(`Test notification delivered to ${name}`);
      else toast(`Test notification to ${name} failed: ${result.error ?? 'no reason given'}`, 'error');
    } catch (error) {
      toastError(error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <h2>Test notification</h2>
      <Loading loaded={loaded}>
        {({ receivers }) =>
          receivers.length === 0 ? (
            <p class="muted">No receiver is configured.</p>
          ) : (
            <form class="inline" onSubmit={(event) => void send(event)}>
              <label>
                Receiver{' '}
                <select
                  value={receiver || receivers[0]?.name}
                  onChange={(e) => setReceiver((e.target as HTMLSelectElement).value)}
                >
                  {receivers.map((r) => (
                    <option key={r.name} value={r.name}>
                      {r.name} ({r.type})
                    </option>
                  ))}
                </select>
              </label>
              <button type="submit" disabled={busy}>
                Send test notification
              </button>
            </form>
          )
        }
      </Loading>
    </>
  );
}

const DURATIONS = [
  ['30 minutes', 1_800_000],
  ['1 hour', 3_600_000],
  ['2 hours', 7_200_000],
  ['4 hours', 14_400_000],
  ['8 hours', 28_800_000],
  ['1 day', 86_400_000],
  ['3 days', 259_200_000],
  ['7 days', 604_800_000],
] as const;

/** What the silence form holds; written by {@link SilenceFields}, read when the dialog confirms. */
interface SilenceDraft {
  matchers: Record<string, string>;
  included: Record<string, boolean>;
  durationMs: number;
}

/** The confirmation that silences the alerts of `rule`: its labels as matchers, a duration, a comment. */
function silenceRequest(rule: Rule, onDone: () => void): ConfirmRequest {
  const draft: SilenceDraft = {
    matchers: { ...rule.labels },
    included: Object.fromEntries(Object.keys(rule.labels).map((name) => [name, true])),
    durationMs: 7_200_000,
  };
  return {
    title: `Silence ${rule.id}`,
    body: <SilenceFields draft={draft} />,
    action: 'Create silence',
    reason: true,
    run: async (comment) => {
      const matchers = Object.fromEntries(
        Object.entries(draft.matchers).filter(([name]) => draft.included[name] === true),
      );
      if (Object.keys(matchers).length === 0)
        throw new ApiError('CONSOLE_INVALID', 'Keep at least one matcher.', 0);
      if (comment === undefined)
        throw new ApiError('CONSOLE_INVALID', 'Say why in the reason: it is shown with the silence.', 0);
      await api('POST', '/alerts/silences', { matchers, durationMs: draft.durationMs, comment });
      toast(`Silenced for ${DURATIONS.find(([, ms]) => ms === draft.durationMs)?.[0] ?? 'a while'}`);
      onDone();
    },
  };
}

/** The silence form's matchers (each can be left out or edited) and duration. */
function SilenceFields(props: { draft: SilenceDraft }) {
  const { draft } = props;
  const [, redraw] = useState(0);
  const change = (update: () => void) => {
    update();
    redraw((n) => n + 1);
  };
  return (
    <>
      <p>Matching alerts are not notified until the silence ends (they still show here).</p>
      <fieldset>
        <legend>Matchers (every one must hold)</legend>
        {Object.entries(draft.matchers).map(([name, value]) => (
          <div class="matcher" key={name}>
            <label class="check">
              <input
                type="checkbox"
                checked={draft.included[name] === true}
                onChange={(e) =>
                  change(() => (draft.included[name] = (e.target as HTMLInputElement).checked))
                }
              />
              <code>{name}</code>
            </label>
            <input
              aria-label={`Value of ${name}`}
              value={value}
              maxLength={200}
              onInput={(e) => change(() => (draft.matchers[name] = (e.target as HTMLInputElement).value))}
            />
          </div>
        ))}
      </fieldset>
      <label>
        Duration
        <select
          value={draft.durationMs}
          onChange={(e) => change(() => (draft.durationMs = Number((e.target as HTMLSelectElement).value)))}
        >
          {DURATIONS.map(([name, ms]) => (
            <option key={ms} value={ms}>
              {name}
            </option>
          ))}
        </select>
      </label>
    </>
  );
}
