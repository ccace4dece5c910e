// Opens the store an upstream account's places live in, from limitedFetch's `upstream.store`.
import { invalidArgument } from '../common/errors.js';
import type { PlaceStore, PlaceTerms } from '../common/places.js';
import { LocalPlaces } from '../engine/local-places.js';
import { isSharedMemoryStore } from '../engine/shared-memory.js';

export function openUpstreamStore(store: unknown, terms: PlaceTerms): PlaceStore {
  if (store === undefined) return new LocalPlaces(terms);
  if (isSharedMemoryStore(store)) throw invalidArgument('upstream.store', 'not yet', store);
  throw invalidArgument('upstream.store', 'sharedMemory({ name }) or { redis, name }', store);
}
