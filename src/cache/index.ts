export { TieredCache, type SetOptions, type TieredCacheOptions } from './tiered.js';
export { MemoryCacheStore, type MemoryCacheStoreOptions } from './memory.js';
export { RedisCacheStore, type RedisCacheStoreOptions } from './redis.js';
export { CacheJournal, planReplay, type JournalRecord } from './journal.js';
export type { CacheEntry, CacheStore } from './types.js';
