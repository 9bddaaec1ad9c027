// What Redis did during a benchmark run, read over a connection of its own: INFO commandstats
// (commands run inside scripts are counted too) and DBSIZE, sampled on an interval. The sampler's
// own INFO and DBSIZE are left out of the counts. A sample Redis does not answer in time (down,
// paused) is skipped; a restart starts its counts from zero, and a window spanning one is not read.
import { redisClient } from '../test/helpers/redis.js';

interface RedisSample {
  /** ms on the caller's clock, when the answer arrived. */
  at: number;
  /** Calls per command since Redis started. */
  calls: Map<string, number>;
  /** The sum of `calls`. */
  total: number;
  keys: number;
}

/** Redis's work over a window, per response the app gave in it. */
export interface RedisWindow {
  commands: number;
  gets: number;
  sets: number;
  /** Keys in Redis at the window's first sample. */
  keys: number;
}

const OWN = new Set(['info', 'dbsize']);

function parseCommandStats(info: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    if (!OWN.has(match[1]!)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

const total = (calls: Map<string, number>) => [...calls.values()].reduce((a, b) => a + b, 0);

/** Samples Redis every `everyMs` until `stop()`; `now` is the caller's clock (ms). */
export async function sampleRedis(url: string, everyMs: number, now: () => number) {
  const client = redisClient(url, { commandTimeout: everyMs });
  await client.connect().catch(() => undefined);
  const samples: RedisSample[] = [];
  let busy = false;
  const take = async () => {
    if (busy) return;
    busy = true;
    try {
      const [info, keys] = await Promise.all([client.info('commandstats'), client.dbsize()]);
      const calls = parseCommandStats(info);
      samples.push({ at: now(), calls, total: total(calls), keys });
    } catch {
      // Down or paused: no sample.
    } finally {
      busy = false;
    }
  };
  await take();
  const timer = setInterval(() => void take(), everyMs);
  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      await take();
      client.disconnect();
    },
    /**
     * Commands, GETs and SETs per response between the first sample at or after `from` and the
     * last at or before `to`, with `times` the responses' arrival times (ascending, the same clock);
     * undefined when fewer than `minMs` lie between them or Redis restarted in between.
     */
    window(times: number[], from: number, to: number, minMs = 500): RedisWindow | undefined {
      const inside = samples.filter((s) => s.at >= from && s.at <= to);
      const first = inside[0];
      const last = inside.at(-1);
      if (first === undefined || last === undefined || last.at - first.at < minMs) return undefined;
      for (let i = 1; i < inside.length; i++) if (inside[i]!.total < inside[i - 1]!.total) return undefined;
      const responses = times.filter((t) => t >= first.at && t < last.at).length;
      if (responses === 0) return undefined;
      const delta = (name: string) => (last.calls.get(name) ?? 0) - (first.calls.get(name) ?? 0);
      return {
        commands: (last.total - first.total) / responses,
        gets: delta('get') / responses,
        sets: delta('set') / responses,
        keys: first.keys,
      };
    },
  };
}
