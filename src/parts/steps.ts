// A part that starts something big once, late in the process's life (a worker thread), says so here,
// and leak detection watches the signals that step moves afresh from then: a one-time step inside its
// window would read as growth. A diagnostics channel, so the part knows nothing of who listens.
import { channel } from 'node:diagnostics_channel';

/** A deliberate, one-time step in the process's resources. */
export interface ResourceStep {
  /** What stepped, for the log: `the store's WAL checkpoint worker started`. */
  readonly what: string;
  /** The leak signals it moves (`rss`, `fds`, `handles`, ...). */
  readonly signals: readonly string[];
}

/** The channel resource steps are published on (`bulwark:resource-step`). */
export const resourceSteps = channel('bulwark:resource-step');

/** Publishes `step` to whoever watches (nothing happens with no subscriber). */
export function announceResourceStep(step: ResourceStep): void {
  if (resourceSteps.hasSubscribers) resourceSteps.publish(step);
}
