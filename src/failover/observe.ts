import type { Logger } from 'pino';
import type { HealthRegistry } from '../health/index.js';
import type { Metrics } from '../metrics/index.js';
import type { Failover } from './engine.js';

/**
 * Makes a failover visible: the gauge `bulwark_dependency_mode{dependency}` and the counter
 * `bulwark_dependency_switches_total`, a non-critical health check `<name>:mode` that is `warn`
 * while on the fallback (refreshed at once on every switch), and one log line per switch
 * (`warn` towards the fallback, `info` back to the primary).
 */
export function observeFailover(
  failover: Failover,
  deps: { metrics: Metrics; health: HealthRegistry; logger: Logger },
): void {
  const { metrics, health, logger } = deps;
  const check = `${failover.name}:mode`;
  metrics.setDependencyMode(failover.name, failover.mode);
  health.register({
    name: check,
    componentType: 'component',
    critical: false,
    intervalMs: 1000,
    check: () =>
      failover.mode === 'primary'
        ? { status: 'pass', observedValue: 'primary' }
        : {
            status: 'warn',
            observedValue: 'fallback',
            output: `serving from the fallback (${failover.reason})`,
          },
  });
  failover.onChange((change) => {
    metrics.setDependencyMode(change.dependency, change.to);
    if (change.from !== change.to) metrics.countDependencySwitch(change.dependency, change.to, change.reason);
    const line = {
      dependency: change.dependency,
      from: change.from,
      to: change.to,
      reason: change.reason,
      requiredStreakMs: change.requiredStreakMs,
    };
    if (change.to === 'fallback')
      logger.warn(line, `${change.dependency} degraded: serving from the fallback`);
    else logger.info(line, `${change.dependency} recovered: back on the primary`);
    void health.runNow(check);
  });
}
