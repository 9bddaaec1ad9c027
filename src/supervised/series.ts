import type { MetricsHistory } from '../metrics/history.js';
import { requestSupervisor } from './control-client.js';

interface SlotView {
  state?: string;
  restartsInWindow?: number;
}

/**
 * Under `bulwark supervise`, the app's metrics history also samples its supervisor (read over the
 * control socket, once per sample): `supervisor.restarts_in_window` (restarts of every slot within
 * the supervisor's restart window) and `supervisor.parked_slots`, so alert rules can use them (the
 * default rules `bulwark.restarts` and `bulwark.parked` do). Nothing is registered when the
 * process is not supervised.
 */
export function registerSupervisorSeries(
  history: MetricsHistory,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  const stateDir = env['BULWARK_SUPERVISOR_STATE_DIR'];
  if (stateDir === undefined || stateDir === '') return false;
  let cached: { at: number; slots: Promise<SlotView[] | undefined> } | undefined;
  const slots = (): Promise<SlotView[] | undefined> => {
    const now = Date.now();
    if (cached === undefined || now - cached.at > 1_000)
      cached = {
        at: now,
        slots: requestSupervisor(stateDir, 'GET', '/status', 1_000).then(
          ({ body }) => body['instances'] as SlotView[] | undefined,
          () => undefined,
        ),
      };
    return cached.slots;
  };
  history.register('supervisor.restarts_in_window', async () =>
    (await slots())?.reduce((sum, slot) => sum + (slot.restartsInWindow ?? 0), 0),
  );
  history.register(
    'supervisor.parked_slots',
    async () => (await slots())?.filter((slot) => slot.state === 'parked').length,
  );
  return true;
}
