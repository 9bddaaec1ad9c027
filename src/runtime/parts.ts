// Bulwark's parts, as a list: light to load (each part module holds only its description), so a
// command that needs only the schema history (`bulwark migrate`) loads no more than this.
import type { TObject } from 'typebox';
import { accessPart } from '../access/part.js';
import type { AlertsConfig } from '../alerts/config.js';
import { alertsPart } from '../alerts/part.js';
import { cachePart, type CachePartOptions } from '../cache/part.js';
import { configPart, type ConfigPartOptions } from '../config/part.js';
import { degradationPart, type DegradationOptions } from '../degradation/part.js';
import { flagsPart, rolloutsPart } from '../flags/part.js';
import { historyPart, type HistoryPartOptions } from '../metrics/part.js';
import { instancesPart } from '../instances/part.js';
import { outboundPart } from '../outbound/part.js';
import type { OutboundOptions } from '../outbound/types.js';
import { leaksPart } from '../leaks/part.js';
import type { LeakOptions } from '../leaks/types.js';
import { partMigrations, type AnyPart } from '../parts/index.js';
import { protectionPart, type ProtectionOptions } from '../protection/part.js';
import { queuePart, type QueuePartOptions } from '../queue/part.js';
import { rateLimitPart, type RateLimitPartOptions } from '../ratelimit/part.js';
import { redisPart } from '../redis/part.js';
import { storePart, type StorePartOptions } from '../store/part.js';
import type { MigrationSource } from '../store/types.js';
import { supervisorPart } from '../supervised/part.js';
import { errorsPart } from '../tracker/part.js';

/** The options of `createBulwark()` that configure Bulwark's parts (`BulwarkOptions` has each). */
export interface PartsOptions {
  store?: StorePartOptions | undefined;
  metricsHistory?: HistoryPartOptions | undefined;
  cache?: CachePartOptions | undefined;
  rateLimitPolicies?: RateLimitPartOptions | undefined;
  queues?: QueuePartOptions | undefined;
  config?: ConfigPartOptions<TObject> | undefined;
  protection?: ProtectionOptions | boolean | undefined;
  degradation?: DegradationOptions | undefined;
  outbound?: OutboundOptions | undefined;
  leaks?: LeakOptions | false | undefined;
}

/**
 * Bulwark's own parts for `options`: the store, the metrics history, Redis, the cache, rate limits,
 * queues, flags (with every part's tool flags), leak detection, error tracking, guarded rollouts,
 * the service's config, the supervisor link, alerting, access, load shedding, the degradation
 * controller and outbound calls. Started in dependency order.
 */
export function bulwarkParts(options: PartsOptions, alerts?: AlertsConfig): AnyPart[] {
  const parts: AnyPart[] = [
    storePart(options.store),
    historyPart(options.metricsHistory),
    leaksPart(options.leaks),
    redisPart(),
    cachePart(options.cache),
    rateLimitPart(options.rateLimitPolicies),
    queuePart(options.queues),
    errorsPart(),
    rolloutsPart(),
    configPart(options.config),
    supervisorPart(),
    instancesPart(),
    alertsPart(alerts),
    accessPart(),
    protectionPart(options.protection),
    degradationPart(options.degradation),
    outboundPart(options.outbound),
  ];
  // An in-memory store (tests) keeps nothing on disk, so neither does its flag snapshot.
  return [...parts, flagsPart({ inMemory: options.store?.sqliteFile === ':memory:' })];
}

/**
 * Bulwark's schema history: the migrations of every one of its parts (each part's migration code
 * imported when this is called), what `createBulwark()` applies without parts of your own.
 */
export const bulwarkMigrations: MigrationSource = (engine) =>
  // The parts' migrations depend on no option: the defaults describe every database.
  partMigrations(bulwarkParts({}))(engine);
