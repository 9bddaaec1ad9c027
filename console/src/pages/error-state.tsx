// What the Errors pages share: an error group as the admin API answers it, its state's colour, and
// the buttons that resolve, ignore or re-open it.
import { api } from '../api.js';
import { toast, type ConfirmRequest, type Tone } from '../ui.js';

/** An error group as the admin API answers it. */
export interface Group {
  fingerprint: string;
  type: string;
  message: string;
  culprit: string;
  source: 'server' | 'browser';
  state: 'open' | 'resolved' | 'ignored';
  count: number;
  users: number;
  firstSeen: number;
  lastSeen: number;
  firstRelease: string;
  lastRelease: string;
  resolvedAt?: number;
  regressions: number;
  hourly: number[];
}

export const STATE_TONE: Record<Group['state'], Tone> = { open: 'bad', resolved: 'ok', ignored: 'muted' };

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

const CHANGES = {
  resolved: {
    verb: 'Resolve',
    done: 'resolved',
    what: 'It re-opens by itself if the error happens again (counted as a regression).',
  },
  ignored: { verb: 'Ignore', done: 'ignored', what: 'It keeps counting but stays out of the open list.' },
  open: { verb: 'Re-open', done: 're-opened', what: 'It shows in the open list again.' },
} as const;

/** Resolve and ignore an open group; re-open a resolved or ignored one (each asks for a reason). */
export function StateButtons(props: {
  group: Group;
  onAsk: (request: ConfirmRequest) => void;
  onDone: () => void;
}) {
  const { group } = props;
  const ask = (state: Group['state']) => {
    const change = CHANGES[state];
    props.onAsk({
      title: `${change.verb} ${group.type}: ${clip(group.message, 60)}?`,
      body: <p>{change.what}</p>,
      action: change.verb,
      reason: true,
      run: async (reason) => {
        await api('PUT', `/errors/${group.fingerprint}/state`, {
          state,
          ...(reason === undefined ? {} : { reason }),
        });
        toast(`Error group ${change.done}`);
        props.onDone();
      },
    });
  };
  return group.state === 'open' ? (
    <>
      <button type="button" onClick={() => ask('resolved')}>
        Resolve
      </button>
      <button type="button" onClick={() => ask('ignored')}>
        Ignore
      </button>
    </>
  ) : (
    <button type="button" onClick={() => ask('open')}>
      Re-open
    </button>
  );
}
