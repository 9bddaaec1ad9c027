import path from 'node:path';
import pidusage from 'pidusage';
import type { Logger } from 'pino';
import { captureHangReport } from './diagnostics.js';
import type { Instance } from './instance.js';
import type { SupervisorMetrics } from './metrics.js';
import type { SuperviseOptions } from './options.js';
import type { PressureEvent } from './pressure.js';
import type { AppMessage } from '../supervised/protocol.js';
import type { ClusterProxy } from './proxy.js';
import type { SupervisorRecords } from './records.js';
import type { Slot } from './slot.js';

/** What {@link LivenessMonitor} needs of the supervisor. */
export interface LivenessContext {
  readonly options: SuperviseOptions;
  readonly logger: Logger;
  /** Watched as they are at each check (the supervisor replaces instances in them). */
  readonly slots: readonly Slot[];
  readonly records: SupervisorRecords;
  readonly metrics: SupervisorMetrics;
  /** Secret values of the app's environment, scrubbed from hang reports. */
  readonly secrets: readonly string[];
  /** The proxy in cluster mode (none in direct mode, nor before the supervisor started). */
  proxy(): ClusterProxy | undefined;
}

type Resource = 'memory' | 'cpu';

/**
 * Watches the ready instance of every slot: heartbeats (a blocked event loop), HTTP liveness
 * probes, and resource samples fed to the slot's pressure ladders. A hung or unresponsive instance
 * is taken out of the proxy, a diagnostic report is captured if the app offers one, then its process
 * group is killed; a `hard` recovery drains it and stops it gracefully. Either way the restart
 * follows from the supervisor's exit handling. Nothing here throws: failures are logged.
 */
export class LivenessMonitor {
  readonly #ctx: LivenessContext;
  readonly #timers: NodeJS.Timeout[] = [];

  constructor(ctx: LivenessContext) {
    this.#ctx = ctx;
  }

  /** Starts the checks (heartbeats every 100 ms, probes and samples at their intervals); unref'd. */
  start(): void {
    const { options } = this.#ctx;
    this.#timers.push(setInterval(() => this.#checkHeartbeats(), 100));
    this.#timers.push(setInterval(() => void this.#probeLiveness(), options.probeIntervalMs));
    this.#timers.push(setInterval(() => void this.#sample(), options.sampleMs));
    for (const timer of this.#timers) timer.unref();
  }

  /** Stops the checks (one under way finishes). */
  stop(): void {
    for (const timer of this.#timers) clearInterval(timer);
  }

  /** Completes the recovery record with what the app reported doing. */
  onAppMessage(slot: Slot, instance: Instance, message: AppMessage): void {
    if (message.type !== 'bulwark:recovered') return;
    const { records } = this.#ctx;
    const record = records.latestRecovery((r) => r.instanceId === instance.id && r.step === message.level);
    if (record !== undefined) record.actions = message.actions;
    records.event('app-recovered', slot, { level: message.level, actions: message.actions });
    records.persist();
  }

  /** An app that speaks IPC and stopped sending heartbeats has a blocked event loop. */
  #checkHeartbeats(): void {
    const now = Date.now();
    for (const slot of this.#ctx.slots) {
      const instance = slot.instance;
      if (instance === undefined || instance.state !== 'ready' || !instance.ipc || slot.hanging) continue;
      const silentMs = now - instance.lastHeartbeat;
      if (silentMs > this.#ctx.options.heartbeatTimeoutMs)
        void this.#hung(slot, instance, 'hung', { silentMs });
    }
  }

  /**
   * HTTP liveness. Failing probes with heartbeats still arriving mean slow requests, not a hang:
   * logged once, no restart. Without heartbeats (an app that does not speak IPC), `probeFailures`
   * failures in a row make it unresponsive.
   */
  async #probeLiveness(): Promise<void> {
    const { options, logger, records } = this.#ctx;
    await Promise.all(
      this.#ctx.slots.map(async (slot) => {
        const instance = slot.instance;
        if (instance === undefined || instance.state !== 'ready' || slot.hanging || slot.probing) return;
        slot.probing = true;
        const status = await instance
          .probe(options.livePath, options.probeTimeoutMs)
          .finally(() => (slot.probing = false));
        if (slot.instance !== instance || instance.state !== 'ready') return;
        if (status !== undefined && status < 500) {
          if (slot.probeWarned) records.event('probe-recovered', slot);
          slot.probeFailures = 0;
          slot.probeWarned = false;
          return;
        }
        slot.probeFailures += 1;
        if (slot.probeFailures < options.probeFailures) return;
        const heartbeatAge = Date.now() - instance.lastHeartbeat;
        if (instance.ipc && heartbeatAge <= options.heartbeatTimeoutMs) {
          if (!slot.probeWarned) {
            slot.probeWarned = true;
            logger.warn(
              { slot: slot.index, failures: slot.probeFailures, heartbeatAgeMs: heartbeatAge },
              'liveness probe failing but the event loop is alive (slow requests?): not restarting',
            );
            records.event('probe-failing', slot, { failures: slot.probeFailures, status });
          }
          return;
        }
        await this.#hung(slot, instance, 'unresponsive', { failures: slot.probeFailures, status });
      }),
    );
  }

  /** Out of rotation, a diagnostic report if the app offers one, then SIGKILL to the app's processes. */
  async #hung(
    slot: Slot,
    instance: Instance,
    reason: string,
    detail: Record<string, unknown>,
  ): Promise<void> {
    if (slot.hanging) return;
    slot.hanging = true;
    const { options, logger, records } = this.#ctx;
    this.#ctx.proxy()?.hung(instance.id);
    logger.error(
      { slot: slot.index, pid: instance.pid, ...detail },
      `app ${reason}: capturing a report, then restarting`,
    );
    records.event(reason, slot, { pid: instance.pid, ...detail });
    const channel = instance.reportChannel;
    if (instance.reports && channel !== undefined && instance.pid !== undefined) {
      try {
        instance.reportPath = await captureHangReport({
          channel,
          pid: instance.pid,
          dir: path.join(options.stateDir, 'reports'),
          secrets: this.#ctx.secrets,
          timeoutMs: 3_000,
        });
        records.event('report', slot, { path: instance.reportPath });
      } catch (error) {
        logger.warn({ err: error, slot: slot.index }, 'could not capture a diagnostic report');
      }
    }
    await instance.kill(reason);
  }

  /** Samples RSS and CPU; CPU is judged as the mean over a full `cpuWindowMs`. */
  async #sample(): Promise<void> {
    const { options } = this.#ctx;
    await Promise.all(
      this.#ctx.slots.map(async (slot) => {
        const instance = slot.instance;
        const pid = instance?.pid;
        if (instance === undefined || pid === undefined || instance.state !== 'ready') return;
        let usage: { memory: number; cpu: number };
        try {
          usage = await pidusage(pid);
        } catch {
          return; // exited meanwhile
        }
        // Exited but not reaped yet (a zombie reads as 0 bytes): keep the last real sample, which is
        // what the crash record reports as the RSS at death.
        if (usage.memory === 0) return;
        const now = Date.now();
        instance.sample = { at: now, rss: usage.memory, cpu: usage.cpu };
        if (slot.instance !== instance || slot.hanging) return;
        if (slot.memory !== undefined)
          this.#onPressure(slot, instance, 'memory', slot.memory.observe(now, usage.memory));
        if (slot.cpu !== undefined) {
          slot.cpuSamples.push({ at: now, cpu: usage.cpu });
          while ((slot.cpuSamples[0]?.at ?? now) < now - options.cpuWindowMs) slot.cpuSamples.shift();
          // Judge sustained use only: a full window of samples.
          const first = slot.cpuSamples[0]?.at ?? now;
          if (now - first >= options.cpuWindowMs - options.sampleMs * 1.5) {
            const mean = slot.cpuSamples.reduce((sum, s) => sum + s.cpu, 0) / slot.cpuSamples.length;
            this.#onPressure(slot, instance, 'cpu', slot.cpu.observe(now, mean));
          }
        }
      }),
    );
  }

  /** Carries out what a pressure ladder asked for: records, logs, IPC requests, a hard recovery. */
  #onPressure(slot: Slot, instance: Instance, resource: Resource, events: PressureEvent[]): void {
    const { options, logger, records, metrics } = this.#ctx;
    const limit =
      resource === 'memory' ? (options.maxMemoryMb ?? 0) * 1024 * 1024 : (options.maxCpuPercent ?? 0);
    const show = (value: number) =>
      resource === 'memory' ? `${Math.round(value / 1048576)} MiB` : `${Math.round(value)}%`;
    for (const event of events) {
      const base = { at: new Date().toISOString(), slot: slot.index, instanceId: instance.id, resource };
      if (event.kind === 'warn') {
        logger.warn(
          { slot: slot.index, resource, value: event.value },
          `${resource} at ${show(event.value)}: above the warning level`,
        );
        records.recovery({ ...base, step: 'warn', before: event.value });
        records.event('pressure-warn', slot, { resource, value: event.value });
      } else if (event.kind === 'clear') {
        instance.send({ type: 'bulwark:recover', level: 'normal', resource, value: event.value, limit });
        records.event('pressure-clear', slot, { resource, value: event.value });
      } else if (event.kind === 'judged') {
        const record = records.latestRecovery(
          (r) => r.instanceId === instance.id && r.resource === resource && r.step === event.step,
        );
        if (record !== undefined) {
          record.after = event.after;
          record.helped = event.helped;
        }
        metrics.recoveryOutcomes.inc({
          resource,
          step: event.step,
          outcome: event.helped ? 'helped' : 'escalated',
        });
        records.event('recovery-judged', slot, {
          resource,
          step: event.step,
          before: event.before,
          after: event.after,
          helped: event.helped,
        });
        if (event.helped)
          instance.send({ type: 'bulwark:recover', level: 'normal', resource, value: event.after, limit });
      } else {
        metrics.recoverySteps.inc({ resource, step: event.step });
        records.recovery({ ...base, step: event.step, before: event.value });
        logger.warn(
          { slot: slot.index, resource, step: event.step, value: event.value },
          `${resource} at ${show(event.value)} (limit ${show(limit)}): ${event.step} recovery`,
        );
        records.event('recovery', slot, { resource, step: event.step, value: event.value });
        if (event.step === 'hard') void this.#hardRecovery(instance, resource);
        else
          instance.send({ type: 'bulwark:recover', level: event.step, resource, value: event.value, limit });
      }
    }
  }

  /**
   * Hard: out of the proxy's rotation or off the shared socket, drained, stopped gracefully; the
   * restart follows as for any exit.
   */
  async #hardRecovery(instance: Instance, resource: Resource): Promise<void> {
    // Named before the drain: a plain app drained off the shared socket may exit on its own.
    instance.stopReason ??= resource;
    await this.#ctx.proxy()?.drain(instance.id, this.#ctx.options.stopTimeoutMs);
    await instance.drain(this.#ctx.options.stopTimeoutMs);
    await instance.stop(resource, this.#ctx.options.stopTimeoutMs);
  }
}
