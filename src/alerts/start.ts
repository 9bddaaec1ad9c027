import type { Logger } from 'pino';
import type { FlagActor, FlagService } from '../flags/service.js';
import type { MetricsHistory } from '../metrics/history.js';
import type { JobQueue } from '../queue/types.js';
import type { Store } from '../store/types.js';
import { ErrorStore } from '../tracker/store.js';
import { defaultRules, historyReader, type AlertsConfig } from './config.js';
import { anomalyJudge } from './anomaly.js';
import { AlertEngine } from './engine.js';
import { scheduleReports } from './reports.js';

/** Alerting from its configuration: default rules (unless turned off) replaced by id by the configured ones. */
export async function startAlerts(
  config: AlertsConfig,
  deps: {
    store: Store;
    logger: Logger;
    serviceId: string;
    instanceId: string;
    flags: FlagService;
    queues: JobQueue;
    history: MetricsHistory | undefined;
  },
): Promise<AlertEngine> {
  const rules = new Map((config.defaultRules === false ? [] : defaultRules()).map((rule) => [rule.id, rule]));
  for (const rule of config.rules ?? []) rules.set(rule.id, rule);
  const everyone = config.receivers.map((r) => r.name);
  const history = deps.history;
  const engine = new AlertEngine({
    store: deps.store,
    logger: deps.logger,
    serviceId: deps.serviceId,
    instanceId: deps.instanceId,
    rules: [...rules.values()],
    receivers: config.receivers,
    routes: (rule) => config.routes?.[rule.id] ?? everyone,
    read:
      history === undefined
        ? () => Promise.reject(new Error('the metrics history is off: alert rules have nothing to read'))
        : historyReader(history),
    ...(history === undefined ? {} : { judge: anomalyJudge(history) }),
    act: async (rule) => {
      const reason = `alert ${rule.id}: ${rule.summary}`;
      if (rule.action?.type === 'flag.kill') {
        const who: FlagActor = { actor: 'alerts', reason };
        await deps.flags.kill(rule.action.flag, who);
      } else if (rule.action?.type === 'queue.pause') await deps.queues.pause(rule.action.queue);
      else deps.logger.warn({ rule: rule.id }, `alert action: ${reason}`);
      await deps.store.audit.append({
        actor: 'alerts',
        action: 'alerts.action',
        target: `alert:${rule.id}`,
        detail: { action: rule.action, reason },
      });
    },
    escalation: (rule) => [...(config.escalation?.['*'] ?? []), ...(config.escalation?.[rule.id] ?? [])],
    ...(config.inhibit === undefined ? {} : { inhibit: config.inhibit }),
    ...(config.group === undefined
      ? {}
      : {
          group: {
            by: config.group.by,
            waitMs: config.group.waitMs ?? 30_000,
            intervalMs: config.group.intervalMs ?? 300_000,
          },
        }),
    ...(config.windows === undefined ? {} : { windows: config.windows }),
    ...(config.repeatIntervalMs === undefined ? {} : { repeatIntervalMs: config.repeatIntervalMs }),
    ...(config.outboxRetentionMs === undefined ? {} : { outboxRetentionMs: config.outboxRetentionMs }),
    ...(config.evaluateEveryMs === undefined ? {} : { evaluateEveryMs: config.evaluateEveryMs }),
    ...(config.sendEveryMs === undefined ? {} : { sendEveryMs: config.sendEveryMs }),
  });
  engine.start();
  if (config.reports !== undefined)
    await scheduleReports(deps.queues, {
      store: deps.store,
      logger: deps.logger,
      serviceId: deps.serviceId,
      errors: new ErrorStore(deps.store.db),
      ...(history === undefined ? {} : { history }),
      receivers: config.reports.receivers,
      ...(config.reports.daily === undefined ? {} : { daily: config.reports.daily }),
      ...(config.reports.weekly === undefined ? {} : { weekly: config.reports.weekly }),
      ...(config.reports.tz === undefined ? {} : { tz: config.reports.tz }),
    });
  return engine;
}
