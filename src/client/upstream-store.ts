// Opens the store an upstream account's places live in, from limitedFetch's `upstream.store`.
import { invalidArgument } from '../common/errors.js';
import type { PlaceStore, PlaceTerms } from '../common/places.js';
import { LocalPlaces } from '../engine/local-places.js';
import { isSharedMemoryStore } from '../engine/shared-memory.js';
import { RedisPlaces, type RedisPlacesOptions } from '../redis/redis-places.js';

export function openUpstreamStore(store: unknown, terms: PlaceTerms): PlaceStore {
  if (store === undefined) return new LocalPlaces(terms);
  if (isSharedMemoryStore(store)) throw invalidArgument('upstream.store', 'not yet', store);
  if (typeof store === 'object' && store !== null && 'redis' in store) return new RedisPlaces(store as RedisPlacesOptions, terms, undefined, 'upstream.store');
  throw invalidArgument('upstream.store', 'sharedMemory({ name }) or { redis, name }', store);
}
