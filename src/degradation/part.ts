import type { AlertEngine } from '../alerts/engine.js';
import type { FlagService } from '../flags/service.js';
import type { Leaks } from '../leaks/part.js';
import type { Part } from '../parts/index.js';
import type { Protection } from '../protection/index.js';
import type { JobQueue } from '../queue/types.js';
import type { Store } from '../store/types.js';
import type { SupervisorClient } from '../supervised/client.js';
import { validateDegradation, type DegradationController, type DegradationOptions } from './controller.js';

export type {
  DegradationController,
  DegradationLevel,
  DegradationOptions,
  DegradationStep,
} from './controller.js';

const ACTOR = { actor: 'bulwark.degradation' };
const stopPolls = new WeakMap<object, () => void>();

/**
 * The degradation controller (`bulwark.parts.get('degradation')`, docs/protection.md#degradation):
 * with the `degradation` option, its levels' flags are tool flags (on by default) that it turns off
 * one level at a time while load is shed, the supervisor asks for medium recovery or the app's own
 * `pressure` says so. Off (undefined) without the option.
 */
export function degradationPart(options: DegradationOptions | undefined): Part<
  'degradation',
  DegradationController | undefined,
  {
    flags: FlagService;
    protection: Protection;
    supervisor: SupervisorClient | undefined;
    queues: JobQueue;
    store: Store;
    leaks: Leaks | undefined;
    alerts: AlertEngine | undefined;
  }
> {
  // Checked before anything starts: a bad level stops createBulwark(), naming the field.
  if (options !== undefined) validateDegradation(options);
  return {
    name: 'degradation',
    needs: ['flags', 'protection', 'supervisor', 'queues', 'store', 'leaks', 'alerts'],
    checks: ['degradation:level'],
    flags: () =>
      (options?.levels ?? []).flatMap((level, i) =>
        level.flags.map((key) => ({
          key,
          description: `Turned off by degradation level ${i + 1} (${level.name}) while the service is under pressure.`,
        })),
      ),
    async start({ flags, protection, supervisor, queues, store, leaks, alerts }, { logger, health }) {
      if (options === undefined) return undefined;
      const { DegradationController } = await import('./controller.js');
      const shed = () => protection.shedder.shedTotal;
      let last = { at: Date.now(), shed: shed() };
      // Anomaly rules firing, read every 10 s (a store read) rather than at every check.
      let anomalies: string[] = [];
      const readAnomalies = async () => {
        const rules = (await alerts?.rules().catch(() => undefined)) ?? [];
        anomalies = rules
          .filter((view) => view.rule.kind === 'anomaly' && view.status.state === 'firing')
          .map((view) => view.rule.id);
      };
      const poll = alerts === undefined ? undefined : setInterval(() => void readAnomalies(), 10_000);
      poll?.unref();
      const controller = new DegradationController({
        options,
        logger,
        sources: [
          () => (protection.shedding ? 'load is being shed' : undefined),
          () => (supervisor?.level === 'medium' ? 'the supervisor asked for medium recovery' : undefined),
          () => {
            const growing = leaks?.detector.report().signals.filter((signal) => signal.suspected) ?? [];
            return growing.length === 0
              ? undefined
              : `a leak is suspected (${growing.map((signal) => signal.signal).join(', ')})`;
          },
          () => (anomalies.length === 0 ? undefined : `anomaly alerts firing (${anomalies.join(', ')})`),
        ],
        flags: {
          isEnabled: (key) => flags.isEnabled(key, {}, true),
          kill: (key, reason) => flags.kill(key, { ...ACTOR, reason }),
          revive: (key, reason) => flags.revive(key, { ...ACTOR, reason }),
          holdJobs: (held) => queues.holdLocal(held, 'degradation'),
          audit: (step) =>
            store.audit.append({
              actor: ACTOR.actor,
              action: `degradation.${step.direction}`,
              target: 'degradation',
              detail: step,
            }),
        },
        measure: () => {
          const now = { at: Date.now(), shed: shed() };
          const memory = process.memoryUsage();
          const measured = {
            at: now.at,
            shedPerSecond: Math.round(((now.shed - last.shed) * 1000) / Math.max(1, now.at - last.at)),
            limit: Math.round(protection.shedder.adaptive.limit),
            rssBytes: memory.rss,
            heapUsedBytes: memory.heapUsed,
          };
          last = now;
          return measured;
        },
      });
      health.register({
        name: 'degradation:level',
        componentType: 'component',
        critical: false,
        check: () => {
          if (controller.level === 0) return { status: 'pass', observedValue: 0 };
          const level = controller.levels[controller.level - 1];
          return {
            status: 'warn',
            observedValue: controller.level,
            output: `Degraded to level ${controller.level} (${level?.name ?? '?'})${level?.description === undefined ? '' : `: ${level.description}`}`,
          };
        },
      });
      stopPolls.set(controller, () => clearInterval(poll));
      controller.start();
      return controller;
    },
    close: (controller) => {
      if (controller === undefined) return;
      stopPolls.get(controller)?.();
      controller.close();
    },
  };
}
