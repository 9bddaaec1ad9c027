import { setTimeout as sleep } from 'node:timers/promises';
import type { Instance } from './instance.js';
import type { SuperviseOptions } from './options.js';
import type { ClusterProxy } from './proxy.js';
import { resetHealth, type Slot } from './slot.js';

/** The result of a rolling reload. */
export interface ReloadResult {
  ok: boolean;
  at: string;
  durationMs: number;
  detail: string;
  instances: string[];
}

/** What a reload needs of the supervisor. */
export interface ReloadContext {
  readonly options: SuperviseOptions;
  readonly slots: readonly Slot[];
  proxy(): ClusterProxy | undefined;
  /** Drains an instance (out of the proxy, or off the shared socket) and stops it. */
  retire(instance: Instance, reason: string): Promise<void>;
  /**
   * Spawns a new instance for `slot` (not yet in the slot); throws when it cannot start. On the
   * shared socket it takes public connections only once admitted.
   */
  spawn(slot: Slot): Promise<Instance>;
  /** Hands the instance's exit to the supervisor's exit handling. */
  watchExit(slot: Slot, instance: Instance): void;
  /** Starts an instance in the slot and waits until it is ready; false when it did not become ready. */
  launch(slot: Slot, reason: string): Promise<boolean>;
  stopping(): boolean;
}

/**
 * Cluster mode, and direct mode on the shared socket: a new instance per slot must become ready
 * and pass `reloadProbes` liveness probes in a row (probed on its private port); only then does it
 * take traffic (behind the proxy: added to the rotation; on the shared socket: admitted to accept)
 * and is the old one drained and stopped. If any new instance fails (or the supervisor is stopping), every new one is drained and
 * stopped and the old ones keep serving: `ok: false` with the reasons and last output in `detail`.
 */
export async function rollingReload(ctx: ReloadContext, started: number): Promise<ReloadResult> {
  const { options } = ctx;
  const fresh: { slot: Slot; instance: Instance }[] = [];
  const failures: string[] = [];
  await Promise.all(
    ctx.slots.map(async (slot) => {
      let instance: Instance;
      try {
        instance = await ctx.spawn(slot);
      } catch (error) {
        failures.push(`slot ${slot.index}: ${(error as Error).message}`);
        return;
      }
      fresh.push({ slot, instance });
      ctx.watchExit(slot, instance);
      try {
        await instance.waitReady(options.readyPath, options.startTimeoutMs);
        for (let passed = 0; passed < options.reloadProbes;) {
          await sleep(Math.min(options.probeIntervalMs, 250));
          const status = await instance.probe(options.livePath, options.probeTimeoutMs);
          if (status === undefined || status >= 500 || instance.state !== 'ready')
            throw new Error(
              `liveness probe ${passed + 1} of ${options.reloadProbes} failed (${status ?? 'no answer'})`,
            );
          passed += 1;
        }
      } catch (error) {
        const lines = slot.ring.lines(5).join(' | ');
        failures.push(
          `instance ${instance.id}: ${(error as Error).message}${lines === '' ? '' : ` (last output: ${lines})`}`,
        );
      }
    }),
  );
  if (failures.length > 0 || ctx.stopping()) {
    // Never admitted, so no public connection reached them: drained (probes) and stopped.
    await Promise.all(fresh.map(({ instance }) => ctx.retire(instance, 'reload-failed')));
    return {
      ok: false,
      at: new Date().toISOString(),
      durationMs: Date.now() - started,
      detail: failures.join('; ') || 'stopping',
      instances: ctx.slots.map((s) => s.instance?.id ?? '-'),
    };
  }
  const old: Instance[] = [];
  for (const { slot, instance } of fresh) {
    const previous = slot.instance;
    slot.instance = instance;
    slot.state = 'running';
    slot.policy.reset();
    clearTimeout(slot.timer);
    resetHealth(slot, options);
    ctx.proxy()?.add({ id: instance.id, port: instance.port });
    instance.admit();
    if (previous !== undefined && previous.state !== 'exited') old.push(previous);
  }
  await Promise.all(
    old.map(async (instance) => {
      instance.stopReason = 'reload';
      await ctx.retire(instance, 'reload');
    }),
  );
  return {
    ok: true,
    at: new Date().toISOString(),
    durationMs: Date.now() - started,
    detail: `${fresh.length} new instance(s) passed ${options.reloadProbes} probes; ${old.length} old drained and stopped`,
    instances: fresh.map((f) => f.instance.id),
  };
}

/**
 * Direct mode with `--balance proxy` cannot run two instances on one port: the app is stopped,
 * then started again (a short gap). `ok: false` when the new one did not become ready, with its
 * last output in `detail`.
 */
export async function restartDirect(ctx: ReloadContext, started: number): Promise<ReloadResult> {
  const slot = ctx.slots[0];
  if (slot === undefined) throw new Error('no slot');
  const previous = slot.instance;
  clearTimeout(slot.timer);
  if (previous !== undefined && previous.state !== 'exited') {
    slot.instance = undefined;
    await previous.stop('reload', ctx.options.stopTimeoutMs);
  }
  slot.policy.reset();
  slot.state = 'starting';
  const ok = await ctx.launch(slot, 'reload');
  return {
    ok,
    at: new Date().toISOString(),
    durationMs: Date.now() - started,
    detail: ok
      ? 'restarted (direct mode has one process on the port; use --instances for reloads without downtime)'
      : `the new instance did not become ready (${slot.lastExit?.lastLines.slice(-3).join(' | ') ?? 'no output'})`,
    instances: [slot.instance?.id ?? '-'],
  };
}
