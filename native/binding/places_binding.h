// Exposes an upstream account's places in shared memory (native/core/places.h) to JavaScript.
#pragma once

#include <napi.h>

namespace tollgate {

// Adds the places functions to the addon's exports; each but openPlaces takes the handle
// openPlaces returned first. Their shapes are declared once, in src/engine/table-engine.ts
// (NativePlacesFunctions):
//   openPlaces(name, mode, limit, windowMs, concurrency, leaseMs) -> handle
//   placesAcquire(handle, now, holder, waitingSince) -> place (a string) | wakeAt (-1: Infinity)
//   placesRelease(handle, now, holder, place) -> boolean
//   placesRenew(handle, now, holder) -> boolean
//   placesLeave(handle, now, holder)
//   placesCounts(handle, now) -> [inFlight, cooling, waiting, holders]
//   placesVersion(handle) -> number (read without the lock)
//   placesClose(handle): unmaps; later calls throw TOLLGATE_CLOSED
//   inspectPlaces(name) -> { limit, windowMs, concurrency, leaseMs, inFlight, cooling, waiting, holders }
//     of a live segment, without a handle (for `npx tollgate inspect places.<name>`)
// A call that finds the segment damaged (a count or index out of range) throws
// TOLLGATE_SHARED_MEMORY, naming destroySharedPlaces(name) as the way out.
void add_places_functions(Napi::Env env, Napi::Object exports);

}  // namespace tollgate
