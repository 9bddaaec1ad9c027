// A part is one capability of Bulwark as createBulwark() starts it: what it needs, how it starts and
// closes, the tool flags it follows, the health checks it registers and the tables it owns. Parts
// are started in dependency order; a start that fails closes what already started, in reverse, and
// the original error is thrown.
import type { Migration } from 'kysely';
import type { Logger } from 'pino';
import type { HealthRegistry } from '../health/index.js';
import type { Metrics } from '../metrics/index.js';
import type { Settings } from '../settings/index.js';
import type { MigrationSource, StoreEngine } from '../store/types.js';

/** The settings and the process-wide services that exist before any part. */
export interface PartServices {
  readonly settings: Settings;
  readonly logger: Logger;
  /** The registry every part's metrics go to. */
  readonly metrics: Metrics;
  /** Where every part registers its health checks; started once all parts are. */
  readonly health: HealthRegistry;
  readonly serviceId: string;
  /** Unique per process (`host:pid:random`). */
  readonly instanceId: string;
  /** The service's version. */
  readonly version: string;
  /**
   * Whether this process runs under `bulwark supervise` (`BULWARK_SUPERVISED=1` in the environment
   * the settings were read from): only then does the supervisor part open its link. A second
   * Bulwark in the same process built with another environment (a warm-up's scratch copy, a test)
   * stays off the supervisor's channel.
   */
  readonly supervised?: boolean;
}

/** What every part is given: the services, and the schema history and tool flags of every part. */
export interface PartCore extends PartServices {
  /**
   * The migrations of every part of the application (see {@link partMigrations}), also when only
   * some parts start: what the part that opens the store applies.
   */
  readonly migrations: MigrationSource;
  /**
   * The tool flags every part of the application declares (Bulwark's and those added with
   * `options.parts`): what the flag service holds as defaults.
   */
  readonly toolFlags: readonly ToolFlag[];
}

/**
 * A flag of a tool (one of Bulwark's, or of a part of your own): on by default, off turns the tool
 * off (or forces its fallback).
 */
export interface ToolFlag {
  key: string;
  description: string;
}

/**
 * One capability as Bulwark starts it. `Needs` names the values of other parts it is given, by part
 * name; `start` may return undefined (a part that is off, such as Redis without `REDIS_URL`).
 */
export interface Part<Name extends string = string, Value = unknown, Needs extends object = object> {
  readonly name: Name;
  /** Names of the parts started before this one, whose values `start` receives. */
  readonly needs: readonly (keyof Needs & string)[];
  /** The tool flags this part declares (known before any part starts: the flag service starts with them). */
  flags?(settings: Settings): ToolFlag[];
  /**
   * The names of the health checks `start` may register. When given, a start that registers a
   * check not listed fails (so the list, which the docs are checked against, cannot drift).
   */
  readonly checks?: readonly string[];
  /**
   * The tables this part owns: its store migrations by name, which sort in the order they apply
   * across every part (names are unique across parts). Imported only when the store migrates.
   */
  migrations?(engine: StoreEngine): Promise<Record<string, Migration>>;
  start(needs: Needs, core: PartCore): Value | Promise<Value>;
  /** Releases what `start` opened; runs in the reverse of the start order (not for an undefined value). */
  close?(value: Value, core: PartCore): void | Promise<void>;
  /** How the started value follows its tool flags: key → handler, called when the flag changes. */
  follow?(value: Value): Record<string, (on: boolean) => void>;
}

/** A part of any name, value and needs, as lists of parts hold them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each part's own types are checked where it is defined
export type AnyPart = Part<string, any, any>;

/** Parts started by {@link startParts}: their values by name, and `close()` for all of them. */
export interface StartedParts {
  /** The value of each part, by name (undefined for a part that is off). */
  readonly values: ReadonlyMap<string, unknown>;
  /** The names in start order. */
  readonly order: readonly string[];
  /** Closes every part in the reverse of the start order; a failing close is logged and the rest still close. */
  close(): Promise<void>;
}

/**
 * The parts in an order where each comes after the parts it needs, keeping the given order
 * otherwise.
 *
 * @throws Error naming the part, when a part needs one that is not in the list, a name repeats, or
 *   the needs go round in a circle.
 */
export function orderParts(parts: readonly AnyPart[]): AnyPart[] {
  const byName = new Map<string, AnyPart>();
  for (const part of parts) {
    if (byName.has(part.name)) throw new Error(`part ${part.name} is listed twice`);
    byName.set(part.name, part);
  }
  const ordered: AnyPart[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (part: AnyPart, path: string[]): void => {
    const seen = state.get(part.name);
    if (seen === 'done') return;
    if (seen === 'visiting')
      throw new Error(`parts need each other in a circle: ${[...path, part.name].join(' → ')}`);
    state.set(part.name, 'visiting');
    for (const name of part.needs) {
      const needed = byName.get(name);
      if (needed === undefined)
        throw new Error(`part ${part.name} needs part ${name}, which is not in the list`);
      visit(needed, [...path, part.name]);
    }
    state.set(part.name, 'done');
    ordered.push(part);
  };
  for (const part of parts) visit(part, []);
  return ordered;
}

/**
 * The parts named and every part they need, directly or not, in their given order.
 *
 * @throws Error naming a part that is not in the list.
 */
export function partsFor(parts: readonly AnyPart[], names: readonly string[]): AnyPart[] {
  const byName = new Map(parts.map((part) => [part.name, part]));
  const wanted = new Set<string>();
  const add = (name: string): void => {
    if (wanted.has(name)) return;
    const part = byName.get(name);
    if (part === undefined) throw new Error(`no part named ${name}`);
    wanted.add(name);
    for (const need of part.needs) add(need);
  };
  for (const name of names) add(name);
  return parts.filter((part) => wanted.has(part.name));
}

/**
 * The schema history of `parts`: every part's migrations, read when the store migrates (each part's
 * migration code is imported then, not before). Kysely applies them in name order.
 *
 * @throws Error (when read) naming both parts, when two parts declare a migration of the same name.
 */
export function partMigrations(parts: readonly AnyPart[]): MigrationSource {
  return async (engine) => {
    const declared = await Promise.all(
      parts.map(async (part) => ({ part: part.name, migrations: (await part.migrations?.(engine)) ?? {} })),
    );
    const all: Record<string, Migration> = {};
    const owners = new Map<string, string>();
    for (const { part, migrations } of declared) {
      for (const [name, migration] of Object.entries(migrations)) {
        const owner = owners.get(name);
        if (owner !== undefined)
          throw new Error(`migration ${name} is declared by two parts: ${owner} and ${part}`);
        owners.set(name, part);
        all[name] = migration;
      }
    }
    return all;
  };
}

/**
 * Starts `parts` in dependency order, each given `services` and the migrations and tool flags of
 * every part of `catalogue` (default `parts`: pass the whole application when starting some of its
 * parts, so that the store gets the same schema history and the flag service the same tool flags
 * whichever parts open them). If one fails to start, or
 * registers a health check its `checks` do not list, every part already started is closed in
 * reverse order (their close errors logged) and the start's own error is thrown.
 */
export async function startParts(
  parts: readonly AnyPart[],
  services: PartServices,
  catalogue: readonly AnyPart[] = parts,
): Promise<StartedParts> {
  const core: PartCore = {
    ...services,
    migrations: partMigrations(catalogue),
    toolFlags: catalogue.flatMap((part) => part.flags?.(services.settings) ?? []),
  };
  const values = new Map<string, unknown>();
  const started: AnyPart[] = [];
  const close = async (): Promise<void> => {
    for (const part of started.splice(0).reverse()) {
      try {
        const value = values.get(part.name);
        if (value !== undefined) await part.close?.(value, core);
      } catch (error) {
        core.logger.error({ err: error, part: part.name }, 'a part failed to close');
      }
    }
  };
  for (const part of orderParts(parts)) {
    const needs: Record<string, unknown> = {};
    for (const name of part.needs) needs[name] = values.get(name);
    try {
      const before = new Set(checkNames(core.health));
      values.set(part.name, await part.start(needs, core));
      started.push(part);
      const declared = part.checks;
      const undeclared = checkNames(core.health).filter(
        (name) => !before.has(name) && declared !== undefined && !declared.includes(name),
      );
      if (undeclared.length > 0)
        throw new Error(
          `part ${part.name} registered the health check ${undeclared.join(', ')}, which its checks do not list`,
        );
    } catch (error) {
      await close();
      throw error;
    }
  }
  return { values, order: started.map((part) => part.name), close };
}

/** The names of the checks registered so far. */
function checkNames(health: HealthRegistry): string[] {
  return Object.keys(health.report().checks ?? {});
}
