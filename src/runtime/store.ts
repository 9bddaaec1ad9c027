import { createStore as openStore } from '../store/index.js';
import type { Store, StoreOptions } from '../store/types.js';
import { bulwarkMigrations } from './parts.js';

/**
 * Opens the store as Bulwark does, with every part's tables (`migrations`, default
 * {@link bulwarkMigrations}): for scripts and tools that use the store, or one capability on it
 * (an `EmbeddedJobQueue`, say), without the rest of Bulwark. See the store's own `createStore()`
 * for the contract (errors, the migration lock).
 */
export function createStore(opts: StoreOptions): Promise<Store> {
  return openStore({ migrations: bulwarkMigrations, ...opts });
}
