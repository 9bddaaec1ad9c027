import type { Logger } from 'pino';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import type { Store } from '../store/types.js';
import type { FlagActor, FlagService } from './service.js';

/** A progressive rollout that advances only while its guard metrics hold. Times in milliseconds. */
export interface RolloutPlan {
  /** Percentages in increasing order, e.g. `[10, 50, 100]`. */
  steps: number[];
  /** Least time at each step before advancing. */
  stepMs: number;
  /** Outcomes needed in each arm (treatment and control) at the current step before deciding. */
  minSamples: number;
  /** Treatment's error rate may exceed control's by at most this much (absolute, e.g. 0.01). */
  maxErrorRateIncrease: number;
  /** Treatment's mean latency may be at most this multiple of control's (e.g. 1.2). */
  maxLatencyRatio: number;
}

/** What was observed in one arm of the current step. */
export interface ArmStats {
  samples: number;
  errors: number;
  latencyMsSum: number;
}

/** The outcome of one evaluation of the guard. */
export type GuardDecision =
  | { action: 'hold'; why: string }
  | { action: 'advance'; to: number; why: string }
  | { action: 'complete'; why: string }
  | { action: 'rollback'; why: string };

/** The stored state of a guarded rollout. */
export interface RolloutState {
  flag: string;
  plan: RolloutPlan;
  /** Index into `plan.steps`. */
  step: number;
  stepStartedAt: number;
  status: 'running' | 'completed' | 'rolled-back' | 'aborted';
  /** Why it last changed (the guard's reason on a rollback). */
  why: string;
  updatedAt: number;
}

const STATES = 'bulwark.flags.rollouts';
const STATS = 'bulwark.flags.rollout-stats';

const rate = (a: ArmStats) => (a.samples === 0 ? 0 : a.errors / a.samples);
const mean = (a: ArmStats) => (a.samples === 0 ? 0 : a.latencyMsSum / a.samples);
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/**
 * The guard, as a pure function: no data (fewer than `minSamples` in either arm) means hold, never
 * advance; a regression (error rate or mean latency of the treatment worse than allowed against the
 * control) means roll back, even before `stepMs` has passed; otherwise advance once `stepMs` has
 * passed at this step.
 */
export function decide(
  state: RolloutState,
  treatment: ArmStats,
  control: ArmStats,
  now: number,
): GuardDecision {
  const { plan } = state;
  if (treatment.samples < plan.minSamples || control.samples < plan.minSamples)
    return {
      action: 'hold',
      why: `not enough data: ${treatment.samples} treatment and ${control.samples} control outcomes, ${plan.minSamples} needed in each`,
    };
  const errorIncrease = rate(treatment) - rate(control);
  if (errorIncrease > plan.maxErrorRateIncrease)
    return {
      action: 'rollback',
      why: `error rate ${pct(rate(treatment))} against ${pct(rate(control))} in control (n=${treatment.samples}/${control.samples}): more than ${pct(plan.maxErrorRateIncrease)} worse`,
    };
  const controlLatency = mean(control);
  if (controlLatency > 0 && mean(treatment) > controlLatency * plan.maxLatencyRatio)
    return {
      action: 'rollback',
      why: `mean latency ${mean(treatment).toFixed(1)} ms against ${controlLatency.toFixed(1)} ms in control: more than ${plan.maxLatencyRatio}×`,
    };
  if (now - state.stepStartedAt < plan.stepMs)
    return {
      action: 'hold',
      why: `healthy; ${Math.ceil((plan.stepMs - (now - state.stepStartedAt)) / 1000)} s left at this step`,
    };
  const next = state.step + 1;
  if (next >= plan.steps.length) return { action: 'complete', why: 'healthy at the last step' };
  return {
    action: 'advance',
    to: next,
    why: `healthy for ${plan.stepMs / 1000} s at ${plan.steps[state.step]}%`,
  };
}

/** A rollout as people follow it: its state, the outcomes of each arm at its step, the guard's verdict. */
export interface RolloutProgress {
  state: RolloutState;
  /** Outcomes at the current step, of every instance (as written to the store at their last tick). */
  treatment: ArmStats;
  control: ArmStats;
  /** What the guard would decide now (running rollouts only; null once it stopped). */
  verdict: GuardDecision | null;
}

/** Options of {@link GuardedRollouts}. */
export interface GuardedRolloutsOptions {
  flags: FlagService;
  store: Store;
  /** Names this instance's outcome counts in the store. */
  instanceId: string;
  now?: () => number;
  logger?: Logger;
}

/**
 * Guarded progressive rollouts over {@link FlagService} rollouts. Every instance records the
 * outcomes of requests by the variant they were served (`observe`); `tick()` (every few seconds)
 * writes this instance's running totals to the store and evaluates the guard on the totals of all
 * instances. A transition is a compare-and-set on the rollout's state, so when several instances
 * decide at once exactly one applies it. Every transition is audited with the guard's reason.
 */
export class GuardedRollouts {
  readonly #o: GuardedRolloutsOptions;
  readonly #now: () => number;
  /** This instance's totals: flag → step → arm. */
  readonly #local = new Map<string, { step: number; treatment: ArmStats; control: ArmStats }>();
  /** The step of each running rollout, as last read from the store. */
  readonly #steps = new Map<string, number>();

  #timer: NodeJS.Timeout | undefined;

  constructor(opts: GuardedRolloutsOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Runs `tick()` every `intervalMs` (failures are logged and retried at the next tick). */
  startTicking(intervalMs = 5000): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => {
      this.tick().catch((error: unknown) =>
        this.#o.logger?.warn({ err: error }, 'guarded rollout tick failed'),
      );
    }, intervalMs);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** Starts a guarded rollout of a flag at `plan.steps[0]`; replaces any earlier one. */
  async start(key: string, plan: RolloutPlan, who: FlagActor): Promise<RolloutState> {
    checkPlan(key, plan);
    await this.#o.flags.rollout(key, plan.steps[0] ?? 0, who);
    const state: RolloutState = {
      flag: key,
      plan,
      step: 0,
      stepStartedAt: this.#now(),
      status: 'running',
      why: `started by ${who.actor}${who.reason === undefined ? '' : `: ${who.reason}`}`,
      updatedAt: this.#now(),
    };
    await this.#o.store.kv.put(STATES, key, state);
    await this.#audit(key, 'flag.guard.start', who, { plan });
    return state;
  }

  /** Stops a running rollout where it is (the percentage stays). */
  async abort(key: string, who: FlagActor): Promise<RolloutState> {
    const entry = await this.#o.store.kv.get<RolloutState>(STATES, key);
    if (entry?.value.status !== 'running')
      throw bulwarkError('BWK_ERR_FLAG_NO_GUARDED_ROLLOUT', { key, action: 'abort' });
    const state: RolloutState = {
      ...entry.value,
      status: 'aborted',
      why: `aborted by ${who.actor}${who.reason === undefined ? '' : `: ${who.reason}`}`,
      updatedAt: this.#now(),
    };
    // A compare-and-set: a guard decision applied meanwhile is not overwritten (409, read again).
    await this.#o.store.kv.put(STATES, key, state, { ifVersion: entry.version });
    const at = entry.value.plan.steps[entry.value.step];
    await this.#audit(key, 'flag.guard.abort', who, { step: entry.value.step, percentage: at ?? null });
    return state;
  }

  /** One audit record in the flag's history (its target), like the flag service's own. */
  async #audit(key: string, action: string, who: FlagActor, detail: object): Promise<void> {
    await this.#o.store.audit.append({
      actor: who.actor,
      action,
      target: `flag:${key}`,
      detail: { ...detail, reason: who.reason ?? null },
    });
  }

  async status(key: string): Promise<RolloutState | undefined> {
    return (await this.#o.store.kv.get<RolloutState>(STATES, key))?.value;
  }

  /** The state of `key`'s rollout with its arms' outcomes at the current step and the guard's verdict. */
  async progress(key: string): Promise<RolloutProgress | undefined> {
    const state = await this.status(key);
    if (state === undefined) return undefined;
    const { treatment, control } = await this.#totals(state);
    const verdict = state.status === 'running' ? decide(state, treatment, control, this.#now()) : null;
    return { state, treatment, control, verdict };
  }

  /**
   * Records one outcome for a flag's rollout: which variant the request was served, whether it
   * failed, how long it took. Cheap (memory only); outcomes of flags with no running rollout, or of
   * variants outside it, are ignored at the next tick.
   */
  observe(key: string, variant: string | undefined, outcome: { error: boolean; latencyMs: number }): void {
    const flag = this.#o.flags.get(key);
    const rollout = flag?.rollout;
    if (rollout === undefined || variant === undefined) return;
    const arm =
      variant === rollout.variant ? 'treatment' : variant === rollout.otherwise ? 'control' : undefined;
    if (arm === undefined) return;
    let local = this.#local.get(key);
    if (local === undefined) {
      local = { step: this.#steps.get(key) ?? 0, treatment: empty(), control: empty() };
      this.#local.set(key, local);
    }
    const stats = local[arm];
    stats.samples += 1;
    if (outcome.error) stats.errors += 1;
    stats.latencyMsSum += outcome.latencyMs;
  }

  /** Flushes this instance's totals and applies the guard to every running rollout. */
  async tick(): Promise<void> {
    for (const entry of await this.#o.store.kv.list<RolloutState>(STATES)) {
      const state = entry.value;
      if (state.status !== 'running') continue;
      // Someone set the percentage by hand (not this step's, nor the one before it, which is still
      // in place for a moment while another instance applies an advance): the operator took over.
      const percentage = this.#o.flags.get(state.flag)?.rollout?.percentage;
      const expected = [state.plan.steps[state.step], state.plan.steps[state.step - 1]];
      if (!expected.includes(percentage)) {
        const why = `the rollout was changed by hand to ${String(percentage ?? 'none')}%: the guard stopped`;
        await this.#o.store.kv
          .put(
            STATES,
            state.flag,
            { ...state, status: 'aborted', why, updatedAt: this.#now() },
            { ifVersion: entry.version },
          )
          .catch((error: unknown) => {
            if (!isBulwarkError(error, 'BWK_ERR_STORE_CONFLICT')) throw error;
          });
        this.#o.logger?.warn({ flag: state.flag, percentage }, 'guarded rollout stopped: changed by hand');
        continue;
      }
      this.#steps.set(state.flag, state.step);
      const local = this.#local.get(state.flag);
      if (local !== undefined && local.step !== state.step) {
        // The step moved (here or elsewhere): outcomes from before belong to the old percentage.
        this.#local.set(state.flag, { step: state.step, treatment: empty(), control: empty() });
      } else if (local !== undefined) {
        await this.#o.store.kv.put(STATS, `${state.flag}/${state.step}/${this.#o.instanceId}`, local);
      }
      const totals = await this.#totals(state);
      const decision = decide(state, totals.treatment, totals.control, this.#now());
      if (decision.action !== 'hold') await this.#apply(entry.version, state, decision);
    }
  }

  /** Every instance's outcomes at the rollout's current step, summed. */
  async #totals(state: RolloutState): Promise<{ treatment: ArmStats; control: ArmStats }> {
    const totals = { treatment: empty(), control: empty() };
    for (const row of await this.#o.store.kv.list<{ treatment: ArmStats; control: ArmStats }>(STATS, {
      prefix: `${state.flag}/${state.step}/`,
    })) {
      add(totals.treatment, row.value.treatment);
      add(totals.control, row.value.control);
    }
    return totals;
  }

  async #apply(
    version: number,
    state: RolloutState,
    decision: Exclude<GuardDecision, { action: 'hold' }>,
  ): Promise<void> {
    const now = this.#now();
    // At the last step there is no control group left when it is 100 %: the rollout is done.
    const last =
      decision.action === 'advance' &&
      decision.to === state.plan.steps.length - 1 &&
      state.plan.steps[decision.to] === 100;
    const next: RolloutState =
      decision.action === 'advance'
        ? {
            ...state,
            step: decision.to,
            stepStartedAt: now,
            why: decision.why,
            updatedAt: now,
            ...(last ? { status: 'completed' as const } : {}),
          }
        : {
            ...state,
            status: decision.action === 'complete' ? 'completed' : 'rolled-back',
            why: decision.why,
            updatedAt: now,
          };
    try {
      await this.#o.store.kv.put(STATES, state.flag, next, { ifVersion: version });
    } catch (error) {
      if (isBulwarkError(error, 'BWK_ERR_STORE_CONFLICT')) return; // another instance decided first
      throw error;
    }
    const who = { actor: 'guarded-rollout', reason: decision.why };
    if (decision.action === 'advance')
      await this.#o.flags.rollout(state.flag, state.plan.steps[decision.to] ?? 100, who);
    if (decision.action === 'rollback') await this.#o.flags.rollout(state.flag, 0, who);
    const log =
      decision.action === 'rollback'
        ? this.#o.logger?.warn.bind(this.#o.logger)
        : this.#o.logger?.info.bind(this.#o.logger);
    log?.(
      { flag: state.flag, action: decision.action, why: decision.why },
      `guarded rollout: ${decision.action}`,
    );
  }
}

function empty(): ArmStats {
  return { samples: 0, errors: 0, latencyMsSum: 0 };
}

function add(into: ArmStats, from: ArmStats): void {
  into.samples += from.samples;
  into.errors += from.errors;
  into.latencyMsSum += from.latencyMsSum;
}

function checkPlan(key: string, plan: RolloutPlan): void {
  const bad = (detail: string) => bulwarkError('BWK_ERR_FLAG_INVALID', { key, detail });
  if (!Array.isArray(plan.steps) || plan.steps.length === 0)
    throw bad('plan.steps must list at least one percentage');
  plan.steps.forEach((p, i) => {
    if (typeof p !== 'number' || !(p > 0 && p <= 100))
      throw bad(`plan.steps[${i}] must be a percentage above 0, at most 100`);
    if (i > 0 && p <= (plan.steps[i - 1] ?? 0))
      throw bad(`plan.steps[${i}] must be larger than the step before`);
  });
  if (!(plan.stepMs >= 0)) throw bad('plan.stepMs must be ≥ 0');
  if (!Number.isInteger(plan.minSamples) || plan.minSamples < 1)
    throw bad('plan.minSamples must be a positive integer');
  if (!(plan.maxErrorRateIncrease >= 0)) throw bad('plan.maxErrorRateIncrease must be ≥ 0');
  if (!(plan.maxLatencyRatio >= 1)) throw bad('plan.maxLatencyRatio must be ≥ 1');
}
