// Opens the store an upstream account's places live in, from limitedFetch's `upstream.store`.
import { invalidArgument, outOfRange } from '../common/errors.js';
import type { PlaceStore, PlaceTerms } from '../common/places.js';
import { LocalPlaces } from '../engine/local-places.js';
import { isSharedMemoryStore } from '../engine/shared-memory.js';
import { SharedPlaces } from '../engine/shared-places.js';
import { RedisPlaces, type RedisPlacesOptions } from '../redis/redis-places.js';

/** The longest account name on shared memory: a segment name (200) less the `places.` before it. */
const MAX_PLACES_NAME = 193;

export function openUpstreamStore(store: unknown, terms: PlaceTerms): PlaceStore {
  if (store === undefined) return new LocalPlaces(terms);
  if (isSharedMemoryStore(store)) {
    // A table's sizing means nothing to an account's places: refused rather than ignored.
    if (store.capacity !== undefined || store.shards !== undefined) {
      throw invalidArgument('upstream.store', 'sharedMemory({ name }) without capacity or shards (an account has no table to size)', store.capacity ?? store.shards);
    }
    // The segment is places.<name>: a shared-memory name has room for 193 characters of it.
    if (store.name.length > MAX_PLACES_NAME) throw outOfRange('upstream.store.name', `1 to ${MAX_PLACES_NAME} characters (the account's segment is places.<name>)`, store.name);
    return new SharedPlaces({ name: store.name, mode: store.mode }, terms);
  }
  if (typeof store === 'object' && store !== null && 'redis' in store) return new RedisPlaces(store as RedisPlacesOptions, terms, undefined, 'upstream.store');
  throw invalidArgument('upstream.store', 'sharedMemory({ name }) or { redis, name }', store);
}
