// A flag's guarded rollout on its page: where the schedule stands (each step, the current one
// marked), the outcomes of each arm at this step against the guard's limits, the guard's verdict
// now and why; an operator starts one (a plan form) or aborts it (a confirmation).
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Ago, Badge, duration, Loading, toast, useLoad, type ConfirmRequest, type Tone } from '../ui.js';

interface Plan {
  steps: number[];
  stepMs: number;
  minSamples: number;
  maxErrorRateIncrease: number;
  maxLatencyRatio: number;
}

interface Arm {
  samples: number;
  errors: number;
  latencyMsSum: number;
}

interface Progress {
  state: {
    plan: Plan;
    step: number;
    stepStartedAt: number;
    status: 'running' | 'completed' | 'rolled-back' | 'aborted';
    why: string;
    updatedAt: number;
  };
  treatment: Arm;
  control: Arm;
  verdict: { action: 'hold' | 'advance' | 'complete' | 'rollback'; why: string } | null;
}

/** The guard ticks every 5 s on every instance; while a rollout runs the page reads it as often. */
const REFRESH_MS = 5000;

const STATUS_TONE: Record<Progress['state']['status'], Tone> = {
  running: 'ok',
  completed: 'ok',
  'rolled-back': 'bad',
  aborted: 'warn',
};

const VERDICT_TONE: Record<NonNullable<Progress['verdict']>['action'], Tone> = {
  hold: 'muted',
  advance: 'ok',
  complete: 'ok',
  rollback: 'bad',
};

const percent = (x: number) => `${(x * 100).toFixed(2)}%`;
const errorRate = (arm: Arm) => (arm.samples === 0 ? '—' : percent(arm.errors / arm.samples));
const meanLatency = (arm: Arm) =>
  arm.samples === 0 ? '—' : `${(arm.latencyMsSum / arm.samples).toFixed(1)} ms`;

export function GuardedRollout(props: {
  flagKey: string;
  variants: { treatment: string; control: string } | undefined;
  operate: boolean;
  onAsk: (request: ConfirmRequest) => void;
  onDone: () => void;
}) {
  const path = `/flags/${encodeURIComponent(props.flagKey)}/guarded-rollout`;
  const loaded = useLoad((signal) => api<{ rollout: Progress | null }>('GET', path, undefined, signal), path);
  const running = loaded.data?.rollout?.state.status === 'running';
  useEffect(() => {
    if (!running) return undefined;
    const timer = setInterval(loaded.reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [running, loaded.reload]);
  const done = () => {
    loaded.reload();
    props.onDone();
  };
  const abort = () =>
    props.onAsk({
      title: `Stop the guarded rollout of ${props.flagKey}?`,
      body: <p>The percentage stays where it is; the guard no longer advances or rolls it back.</p>,
      action: 'Stop rollout',
      reason: true,
      run: async (reason) => {
        await api('POST', `${path}/abort`, reason === undefined ? {} : { reason });
        toast(`The guarded rollout of ${props.flagKey} stopped`);
        done();
      },
    });
  return (
    <section aria-labelledby="guarded-title">
      <h2 id="guarded-title">Guarded rollout</h2>
      <Loading loaded={loaded}>
        {({ rollout }) => (
          <>
            {rollout === null ? (
              <p class="muted">
                None yet: a guarded rollout raises the percentage step by step while the flag’s users do no
                worse than the rest, and rolls it back to 0% when they do.
              </p>
            ) : (
              <ProgressView rollout={rollout} variants={props.variants} />
            )}
            {props.operate &&
              (running ? (
                <button type="button" class="danger" onClick={abort}>
                  Stop rollout
                </button>
              ) : (
                <StartForm flagKey={props.flagKey} path={path} onAsk={props.onAsk} onDone={done} />
              ))}
          </>
        )}
      </Loading>
    </section>
  );
}

function ProgressView(props: {
  rollout: Progress;
  variants: { treatment: string; control: string } | undefined;
}) {
  const { state, treatment, control, verdict } = props.rollout;
  const { plan } = state;
  return (
    <>
      <p>
        <Badge tone={STATUS_TONE[state.status]}>{state.status}</Badge> {state.why}{' '}
        <Ago at={state.updatedAt} />
      </p>
      <ol class="steps" aria-label="Rollout steps">
        {plan.steps.map((step, i) => (
          <li
            key={step}
            class={i < state.step ? 'past' : i === state.step ? 'current' : undefined}
            aria-current={i === state.step ? 'step' : undefined}
          >
            {step}%
          </li>
        ))}
      </ol>
      <p class="muted small">
        At this step since <Ago at={state.stepStartedAt} />; at least {duration(plan.stepMs)} a step and{' '}
        {plan.minSamples.toLocaleString()} outcomes in each arm before deciding.
      </p>
      <table aria-label="Guard metrics at this step">
        <thead>
          <tr>
            <th scope="col">Arm</th>
            <th scope="col">Outcomes</th>
            <th scope="col">Errors</th>
            <th scope="col">Error rate</th>
            <th scope="col">Mean latency</th>
          </tr>
        </thead>
        <tbody>
          {(
            [
              ['Treatment', props.variants?.treatment, treatment],
              ['Control', props.variants?.control, control],
            ] as const
          ).map(([name, variant, arm]) => (
            <tr key={name}>
              <th scope="row">
                {name} {variant !== undefined && <code>{variant}</code>}
              </th>
              <td>{arm.samples.toLocaleString()}</td>
              <td>{arm.errors.toLocaleString()}</td>
              <td>{errorRate(arm)}</td>
              <td>{meanLatency(arm)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted small">
        Rolled back when the treatment’s error rate is more than {percent(plan.maxErrorRateIncrease)} above
        the control’s, or its mean latency more than {plan.maxLatencyRatio}× the control’s.
      </p>
      {verdict !== null && (
        <p>
          Guard now: <Badge tone={VERDICT_TONE[verdict.action]}>{verdict.action}</Badge> {verdict.why}
        </p>
      )}
    </>
  );
}

/** The plan of a new guarded rollout, with the defaults a careful launch would use. */
function StartForm(props: {
  flagKey: string;
  path: string;
  onAsk: (request: ConfirmRequest) => void;
  onDone: () => void;
}) {
  const [steps, setSteps] = useState('10, 50, 100');
  const [minutes, setMinutes] = useState('10');
  const [minSamples, setMinSamples] = useState('500');
  const [errorIncrease, setErrorIncrease] = useState('1');
  const [latencyRatio, setLatencyRatio] = useState('1.2');
  const submit = (event: Event) => {
    event.preventDefault();
    const plan: Plan = {
      steps: steps
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map(Number),
      stepMs: Math.round(Number(minutes) * 60_000),
      minSamples: Number(minSamples),
      maxErrorRateIncrease: Number(errorIncrease) / 100,
      maxLatencyRatio: Number(latencyRatio),
    };
    if (plan.steps.length === 0 || plan.steps.some((p) => !Number.isFinite(p))) {
      toast('Steps must be percentages separated by commas, e.g. 10, 50, 100.', 'error');
      return;
    }
    props.onAsk({
      title: `Start a guarded rollout of ${props.flagKey}?`,
      body: (
        <p>
          {props.flagKey} goes to {plan.steps[0]}% at once, then {plan.steps.slice(1).join('%, ')}
          {plan.steps.length > 1 ? '%' : ''} while healthy; any regression sets it to 0%.
        </p>
      ),
      action: 'Start rollout',
      reason: true,
      run: async (reason) => {
        await api('PUT', props.path, { plan, ...(reason === undefined ? {} : { reason }) });
        toast(`Guarded rollout of ${props.flagKey} started at ${plan.steps[0]}%`);
        props.onDone();
      },
    });
  };
  const field = (label: string, value: string, set: (v: string) => void, attrs: Record<string, string>) => (
    <label>
      {label} <input value={value} onInput={(e) => set((e.target as HTMLInputElement).value)} {...attrs} />
    </label>
  );
  return (
    <form class="inline" onSubmit={submit} aria-label="Start a guarded rollout">
      {field('Steps %', steps, setSteps, { inputMode: 'decimal' })}
      {field('Minutes per step', minutes, setMinutes, { type: 'number', min: '0', step: 'any' })}
      {field('Outcomes per arm', minSamples, setMinSamples, { type: 'number', min: '1', step: '1' })}
      {field('Max error increase %', errorIncrease, setErrorIncrease, {
        type: 'number',
        min: '0',
        max: '100',
        step: 'any',
      })}
      {field('Max latency ratio', latencyRatio, setLatencyRatio, { type: 'number', min: '1', step: 'any' })}
      <button type="submit">Start guarded rollout</button>
    </form>
  );
}
