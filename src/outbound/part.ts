import type { Part } from '../parts/index.js';
import type { Outbound } from './index.js';
import { validateOutboundOptions } from './options.js';
import type { OutboundOptions } from './types.js';

/** The tool flag that is the kill switch of upstream `name`. */
export const outboundFlag = (name: string): string => `bulwark.outbound.${name}`;

/**
 * Safe outbound calls (`bulwark.http`, `bulwark.protect`): for each upstream of
 * `options.upstreams`, the tool flag `bulwark.outbound.<name>` (off: its kill switch) and the
 * non-critical health check `outbound:<name>` (pass while its breaker is closed, warn while it is
 * half-open or open or the kill switch is on: an upstream never fails readiness).
 *
 * @throws BWK_ERR_OUTBOUND_OPTIONS (when called) naming every bad field of `options`.
 */
export function outboundPart(options: OutboundOptions = {}): Part<'outbound', Outbound> {
  const names = Object.keys(validateOutboundOptions(options).upstreams ?? {});
  return {
    name: 'outbound',
    needs: [],
    checks: names.map((name) => `outbound:${name}`),
    flags: () =>
      names.map((name) => ({
        key: outboundFlag(name),
        description: `Calls to the upstream ${name}. Off: its kill switch, calls fail fast with BWK_ERR_OUTBOUND_KILLED (or use their fallback).`,
      })),
    // The implementation loads when the part starts; undici loads with the first HTTP request.
    async start(_needs, { metrics, health }) {
      const { Outbound } = await import('./index.js');
      const outbound = await Outbound.create(options, metrics.registry);
      for (const name of names)
        health.register({
          name: `outbound:${name}`,
          componentType: 'component',
          critical: false,
          intervalMs: 1_000,
          check: () => {
            const view = outbound.upstreams().find((upstream) => upstream.name === name);
            const state = view?.breaker ?? 'closed';
            if (view?.killed === true)
              return {
                status: 'warn',
                observedValue: state,
                output: `kill switch on: ${outboundFlag(name)} is off`,
              };
            if (state === 'closed') return { status: 'pass', observedValue: state };
            return {
              status: 'warn',
              observedValue: state,
              output: `circuit breaker ${state}${view?.lastFailure == null ? '' : `: ${view.lastFailure.message}`}`,
            };
          },
        });
      return outbound;
    },
    close: (outbound) => outbound.close(),
    follow: (outbound) =>
      Object.fromEntries(
        names.map((name) => [outboundFlag(name), (on: boolean) => outbound.setKilled(name, !on)]),
      ),
  };
}
