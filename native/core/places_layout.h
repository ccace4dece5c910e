// What a places segment holds and where (internal to places.cc and places_segment.cc).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "places.h"
#include "shard_lock.h"

namespace tollgate {

// Where everything sits, as offsets from the segment's base; derived from the terms alone.
struct PlacesLayout {
  uint32_t slot_count;     // places that can be in flight: limit, else concurrency
  uint32_t ring_capacity;  // cooling places at most: limit (0 without a window)
  uint64_t holders_offset;
  uint64_t slots_offset;
  uint64_t free_offset;  // the free slots' indices, a stack
  uint64_t ring_offset;  // the cooling places' free times, a ring sorted ascending
  uint64_t total_size;

  static PlacesLayout plan(const PlaceTerms& terms) noexcept;
  bool operator==(const PlacesLayout& o) const noexcept {
    return slot_count == o.slot_count && ring_capacity == o.ring_capacity &&
           holders_offset == o.holders_offset && slots_offset == o.slots_offset &&
           free_offset == o.free_offset && ring_offset == o.ring_offset && total_size == o.total_size;
  }
};

// waiting_since of a holder with no waiter queued (JS: undefined); JS times are far above it.
constexpr int64_t kNotWaiting = INT64_MIN;

struct PlaceHolder {
  uint64_t id;             // the JS holder's 16 hex digits, as a number (same order)
  int64_t lease_until;     // its places lapse at this time unless renewed
  int64_t waiting_since;   // when its first waiter arrived, or kNotWaiting
  uint64_t pid_namespace;  // where `pid` means something (see pid_namespace_id())
  int32_t pid;             // the process that created it
  uint32_t places;         // places it holds in flight
};

struct PlaceSlot {
  uint64_t holder;      // while in flight: who holds it
  uint64_t generation;  // the grant that put it in flight: the book's grant count then
  uint32_t in_flight;   // 1 while held
  uint32_t reserved;
};

struct PlacesHeader {
  // Written once by the creator (magic last); read by everyone without the lock.
  uint64_t magic;
  uint32_t layout_version;
  uint32_t holder_size;  // sizeof(PlaceHolder), so a build with another layout is refused
  PlaceTerms terms;
  PlacesLayout layout;

  // Its own cache line: pollers read it without the lock; written only under `lock`.
  alignas(64) std::atomic<uint64_t> changes;

  alignas(64) ShardLock lock;
  // Everything below, the holders, slots, free stack and ring: only access them holding `lock`.
  uint64_t grants;           // places ever granted: the next grant's generation
  uint64_t recoveries_seen;  // lock.recoveries() when the book was last known sound
  int64_t pids_checked_at;   // the `now` of the last sweep that judged pids
  uint32_t holder_count;     // holders[0, holder_count) are live, in no order
  uint32_t in_flight;
  uint32_t free_count;  // free[0, free_count) are free slots
  uint32_t ring_head;   // the earliest cooling place's index in the ring
  uint32_t ring_count;  // cooling places
};

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "the version is read across processes without a lock");
static_assert(std::is_standard_layout<PlaceHolder>::value && sizeof(PlaceHolder) == 40, "holders are packed");
static_assert(sizeof(PlaceSlot) == 24, "slots are packed");
static_assert(offsetof(PlacesHeader, layout_version) == 8, "magic and version keep a table's offsets");

}  // namespace tollgate
