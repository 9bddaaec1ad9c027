// Spin's waiting page: sign up (name, gender, whom you seek), join the queue, and see where you
// stand: your place, the wait as a range with how sure it is and why, live (the user's event
// stream); a match found → like or pass → the outcome; your matches.
import { useEffect, useState } from 'preact/hooks';
import {
  api,
  ApiError,
  duration,
  GENDERS,
  type Gender,
  type Match,
  type Me,
  type QueueStatus,
  type Status,
} from './api.js';
import { follow } from './live.js';
import { keptKey, send } from './outbox.js';
import type { Fail } from './ui.js';

const TOKEN = 'spin.token';
/** How the pages name the people of each gender. */
export const PEOPLE: Record<Gender, string> = { woman: 'women', man: 'men', nonbinary: 'nonbinary people' };

function SignUp({ onSigned, fail }: { onSigned: (token: string) => void; fail: Fail }) {
  const [name, setName] = useState('');
  const [gender, setGender] = useState<Gender>('woman');
  const [seeking, setSeeking] = useState<Gender[]>(['man']);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    try {
      const { token } = await api<{ token: string }>('POST', '/api/users', {
        body: { displayName: name, gender, seeking },
      });
      onSigned(token);
    } catch (error) {
      fail(error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(e) => void submit(e)} aria-busy={busy}>
      <h2>Who are you?</h2>
      <label>
        Your name
        <input required maxLength={40} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <fieldset>
        <legend>You are</legend>
        {GENDERS.map((g) => (
          <label key={g}>
            <input type="radio" name="gender" checked={gender === g} onChange={() => setGender(g)} /> {g}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>You seek</legend>
        {GENDERS.map((g) => (
          <label key={g}>
            <input
              type="checkbox"
              checked={seeking.includes(g)}
              onChange={(e) =>
                setSeeking(e.currentTarget.checked ? [...seeking, g] : seeking.filter((s) => s !== g))
              }
            />{' '}
            {g}
          </label>
        ))}
      </fieldset>
      <button type="submit" disabled={busy || seeking.length === 0 || name.trim() === ''}>
        Sign up
      </button>
    </form>
  );
}

function Estimate({ status }: { status: Extract<Status, { waiting: true }> }) {
  const e = status.estimate;
  return (
    <section aria-label="Your wait" class="card">
      <p class="place">You are number {status.position} in your line</p>
      {e.estimateKnown && e.p10Ms !== null && e.p90Ms !== null ? (
        <p class="range">
          Likely {duration(e.p10Ms)} to {duration(e.p90Ms)}
          {e.p50Ms !== null ? `, most likely about ${duration(e.p50Ms)}` : ''}
        </p>
      ) : (
        <p class="range">No estimate yet</p>
      )}
      <p class="sure">
        {e.estimateKnown ? `Based on ${e.sampleSize} recent matches.` : 'Too few recent matches to tell.'}
      </p>
      <p class="why">{e.sentence}</p>
      <p>You have waited {duration(status.waitedMs)}.</p>
    </section>
  );
}

/**
 * "Why am I waiting?": the answers with this moment's numbers (the estimate's reason, who waits now
 * and how long people of each gender waited over the last day), read when opened.
 */
function Why({ status }: { status: Extract<Status, { waiting: true }> }) {
  const [queue, setQueue] = useState<QueueStatus | null>(null);
  const e = status.estimate;
  const load = () => {
    if (queue === null) api<QueueStatus>('GET', '/api/queue-status').then(setQueue, () => undefined);
  };
  return (
    <details class="card" onToggle={load}>
      <summary>Why am I waiting?</summary>
      <p>
        People are paired first come, first served, each with the person who has waited longest among those
        they are compatible with (each seeks the other's gender). {e.sentence}
      </p>
      {queue !== null && (
        <p>
          {queue.waiting.total < 5
            ? 'Right now only a few people wait. '
            : `Right now about ${queue.waiting.total} people wait: ${GENDERS.map((g) => `${queue.waiting.byGender[g]} ${PEOPLE[g]}`).join(', ')} (rounded). `}
          When one side outnumbers the other, the larger side waits longer.
          {GENDERS.map((g) => {
            const w = queue.last24h.waits[g];
            return w === null
              ? ''
              : ` Over the last day, ${PEOPLE[g]} waited ${duration(w.avgMs)} on average (9 in 10 within ${duration(w.p90Ms)}).`;
          })}
        </p>
      )}
      <p>
        {e.estimateKnown
          ? `How sure: the range is where about 8 in 10 waits like yours end, from ${e.sampleSize} recent matches.`
          : 'Why no estimate: too few people like you were matched lately to say how long it takes; the sentence above says what is known.'}
      </p>
    </details>
  );
}

/** Which e-mails you get (matched; your wait changed much) and where to: PATCH /api/me. */
function Notices({
  token,
  me,
  onSaved,
  fail,
}: {
  token: string;
  me: Me;
  onSaved: (me: Me) => void;
  fail: Fail;
}) {
  const [email, setEmail] = useState(me.email ?? '');
  const [match, setMatch] = useState(me.notify.match);
  const [waitChange, setWaitChange] = useState(me.notify.waitChange);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const wanted = match || waitChange;
  const save = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setSaved(false);
    try {
      const body = { email: email.trim() === '' ? null : email.trim(), notify: { match, waitChange } };
      onSaved(await api<Me>('PATCH', '/api/me', { token, body }));
      setSaved(true);
    } catch (error) {
      fail(error, () => void save(event));
    } finally {
      setBusy(false);
    }
  };
  return (
    <details class="card">
      <summary>
        E-mail notices{me.email !== null && (me.notify.match || me.notify.waitChange) ? ': on' : ': off'}
      </summary>
      <form onSubmit={(e) => void save(e)} aria-busy={busy}>
        <label>
          <input type="checkbox" checked={match} onChange={(e) => setMatch(e.currentTarget.checked)} /> When I
          am matched
        </label>
        <label>
          <input
            type="checkbox"
            checked={waitChange}
            onChange={(e) => setWaitChange(e.currentTarget.checked)}
          />{' '}
          When my wait changes much
        </label>
        <label>
          Your e-mail
          <input
            type="email"
            maxLength={200}
            required={wanted}
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={busy}>
          Save
        </button>{' '}
        {saved && <span role="status">Saved.</span>}
      </form>
    </details>
  );
}

/** Your matches, newest first: with whom, when, and how it went. */
function History({ token, refresh }: { token: string; refresh: unknown }) {
  const [matches, setMatches] = useState<Match[] | null>(null);
  useEffect(() => {
    api<{ matches: Match[] }>('GET', '/api/matches?limit=10', { token }).then(
      ({ matches }) => setMatches(matches),
      () => undefined,
    );
  }, [token, refresh]);
  if (matches === null || matches.length === 0) return null;
  const outcome = {
    pending: 'waiting for votes',
    success: 'you both liked each other',
    declined: 'not this time',
  };
  return (
    <section aria-label="Your matches" class="card">
      <h2>Your matches</h2>
      <ul>
        {matches.map((m) => (
          <li key={m.id}>
            {m.partner.displayName}, {new Date(m.matchedAt).toLocaleString()}: {outcome[m.outcome]}
          </li>
        ))}
      </ul>
    </section>
  );
}

function MatchCard({ token, match, fail }: { token: string; match: Match; fail: Fail }) {
  const [shown, setShown] = useState(match);
  const [busy, setBusy] = useState(false);
  useEffect(() => setShown(match), [match]);
  const vote = async (choice: 'like' | 'pass') => {
    setBusy(true);
    try {
      setShown(
        await send<Match>({
          key: `vote-${match.id}`,
          method: 'POST',
          path: `/api/matches/${encodeURIComponent(match.id)}/vote`,
          token,
          body: { vote: choice },
          label: `Your ${choice}`,
        }),
      );
    } catch (error) {
      fail(error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-label="Your match" class="card">
      <p class="place">You have a match: {shown.partner.displayName}</p>
      {shown.outcome === 'success' && <p>You both liked each other.</p>}
      {shown.outcome === 'declined' && <p>Not this time: one of you passed.</p>}
      {shown.outcome === 'pending' && shown.myVote !== null && (
        <p>You said {shown.myVote}; waiting for them.</p>
      )}
      {shown.myVote === null && (
        <p>
          <button disabled={busy} onClick={() => void vote('like')}>
            Like
          </button>{' '}
          <button disabled={busy} onClick={() => void vote('pass')}>
            Pass
          </button>
        </p>
      )}
    </section>
  );
}

function Queue({ token, fail, signOut }: { token: string; fail: Fail; signOut: () => void }) {
  const [me, setMe] = useState<Me | null>(null);
  const [status, setStatus] = useState<Status | null>(null);
  const [match, setMatch] = useState<Match | null>(null);
  const [connected, setConnected] = useState(true);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const unauthorized = (error: unknown) => {
      if (error instanceof ApiError && error.code === 'SPIN_UNAUTHORIZED') signOut();
      else fail(error);
    };
    const latestMatch = () =>
      api<{ matches: Match[] }>('GET', '/api/matches?limit=1', { token }).then(
        ({ matches }) => setMatch(matches[0] ?? null),
        unauthorized,
      );
    api<Me>('GET', '/api/me', { token }).then(setMe, unauthorized);
    void latestMatch();
    const live = follow(token, {
      onEvent(type, data) {
        if (type === 'status') setStatus(data as Status);
        else if (type === 'match' || type === 'outcome') void latestMatch();
      },
      onState: setConnected,
      onUnauthorized: signOut,
    });
    return () => live.stop();
  }, [token]);
  const act = async (work: () => Promise<Status>, again: () => void) => {
    setBusy(true);
    try {
      setStatus(await work());
    } catch (error) {
      fail(error, again);
    } finally {
      setBusy(false);
    }
  };
  // One key per join the person asks for: the automatic retries, "Try again" and a join kept while
  // offline (outbox.ts; a click after a reload finds it kept) reuse it, so a join that reached the
  // server before its answer was lost is not made twice.
  const join = (key = keptKey('/api/queue/join', token) ?? crypto.randomUUID()): void =>
    void act(
      () => send<Status>({ key, method: 'POST', path: '/api/queue/join', token, label: 'Your join' }),
      () => join(key),
    );
  const leave = (): void =>
    void act(async () => (await api('DELETE', '/api/queue', { token }), { waiting: false }), leave);
  return (
    <div aria-busy={status === null || busy}>
      {me !== null && (
        <p>
          Hello {me.displayName} ({me.gender}, seeking {me.seeking.join(' or ')})
        </p>
      )}
      {!connected && <p role="status">Reconnecting to Spin…</p>}
      {match !== null && <MatchCard token={token} match={match} fail={fail} />}
      {status?.waiting === true && <Estimate status={status} />}
      {status?.waiting === true && <Why status={status} />}
      {status?.waiting === false && <p>You are not in the queue.</p>}
      {status?.waiting === false ? (
        <button disabled={busy} onClick={() => join()}>
          Join the queue
        </button>
      ) : (
        status !== null && (
          <button disabled={busy} onClick={leave}>
            Leave the queue
          </button>
        )
      )}
      {me !== null && <Notices token={token} me={me} onSaved={setMe} fail={fail} />}
      <History token={token} refresh={match} />
    </div>
  );
}

/** The waiting page: sign up once (the token kept in this browser), then the queue. */
export function WaitingPage({ fail }: { fail: Fail }) {
  const [token, setToken] = useState(localStorage.getItem(TOKEN));
  const signOut = () => {
    localStorage.removeItem(TOKEN);
    setToken(null);
  };
  return (
    <>
      <h1>Spin</h1>
      {token === null ? (
        <SignUp
          onSigned={(t) => {
            localStorage.setItem(TOKEN, t);
            setToken(t);
          }}
          fail={fail}
        />
      ) : (
        <Queue token={token} fail={fail} signOut={signOut} />
      )}
    </>
  );
}
