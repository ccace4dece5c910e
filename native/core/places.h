// An upstream account's places in a shared-memory segment: the book of src/engine/js/place-book.ts,
// decision for decision, kept where every process on the host reads and writes it.
//
// Terms: `limit` requests per `window_ms` (a place answered at t cools until t + window_ms), and
// `concurrency` in flight at once; 0 means no such limit. Holders (one per process and store) hold
// places under a lease they renew; waiting holders queue by (waiting_since, id).
//
// Thread safety: every operation may be called from any thread or process attached to the region;
// each takes the segment's one lock (waiting at most the lock timeout) and runs to the end under
// it. version() alone reads without the lock.
//
// Damage: the lock keeps tollgate's processes in step, but anything else the user runs may write
// over the segment's file. Each count, index and position read from it (holder count, in flight,
// free-slot count and stack entries, the cooling ring's head and count, a holder's places, the
// grant count and generations, the header's terms and layout) is read once and checked before it
// is used; one out of range ends the operation with kDamaged, before any access outside the
// segment. The checks are O(1) per operation beyond the loops the book already makes. NOTE: the
// bound of that: the lock's own bytes (a pthread mutex) are checked before it is taken, and what
// the C library trusts in them is put back before it is given back, but bytes written over them
// at the instant another process is inside pthread_mutex_lock or _unlock can still crash that
// process.
//
// A holder lapses, and its places are taken back, when its lease ends (places cool until
// lease_until + window_ms), as in PlaceBook. Native only: a holder whose process is gone lapses at
// once, its places cooling until now + window_ms. A holder's pid and pid namespace are recorded
// when it is created; a sweep checks the pids of holders in this process's pid namespace (at most
// once per millisecond of the callers' clock: a kill(2) per holder). NOTE: the bound of that check:
// a holder of another pid namespace (another container sharing /dev/shm), or one whose pid was
// reused by a new process before the check, is taken back only when its lease ends; where the
// namespace cannot be read (no /proc), no pid is judged.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "region.h"

namespace tollgate {

// The most holders one segment keeps (src/common/places.ts MAX_PLACE_HOLDERS).
constexpr uint32_t kMaxPlaceHolders = 1024;
// The most places one account may have (src/common/places.ts MAX_PLACES).
constexpr int64_t kMaxPlaces = 100000;
// Longest window and lease, in ms: a time (at most 2^52) plus both stays exact in a double.
constexpr int64_t kMaxPlaceTermMs = int64_t{1} << 50;
// How long an operation waits for the segment's lock by default.
constexpr int64_t kPlacesLockTimeoutMs = 1000;
// wake_at when only another holder's release can help (JS Infinity).
constexpr int64_t kPlacesNever = INT64_MAX;

struct PlaceTerms {
  int64_t limit;        // arrivals per window; 0 for none
  int64_t window_ms;    // the upstream's window
  int64_t concurrency;  // in flight at once; 0 for none
  int64_t lease_ms;     // how long a holder's places outlive its last renewal
};

// Empty when the terms can make a book, else what is wrong with them.
std::string place_terms_problem(const PlaceTerms& terms);

// Where a place is: its slot, and the grant that put it there (so a stale release of a slot
// granted again since is refused).
struct PlaceId {
  uint32_t slot;
  uint64_t generation;
};

// What an operation did. kLockTimeout and kHoldersFull change nothing past the sweep. kDamaged: a
// count, index or position read from the segment was out of range (damage() says which); the
// operation stopped there, before any access it would have sent out of bounds.
enum class PlacesStatus { kOk, kLockTimeout, kHoldersFull, kDamaged };

struct PlaceGrant {
  bool granted = false;
  PlaceId place{};                 // when granted
  int64_t wake_at = kPlacesNever;  // when not: the earliest time the book changes by itself
};

struct PlaceCounts {
  uint32_t in_flight = 0;
  uint32_t cooling = 0;
  uint32_t waiting = 0;  // holders with a waiter queued
  uint32_t holders = 0;
};

struct PlacesHeader;
class PlacesBook;

class Places {
 public:
  static constexpr uint64_t kMagic = 0x31636c706c6c7474ULL;  // "ttllplc1"
  // The magic and the version keep their offsets in every layout (as a table's do).
  static constexpr uint32_t kVersion = 1;

  // Bytes a segment with these terms needs (at least 4096, whole pages).
  static size_t region_size(const PlaceTerms& terms) noexcept;
  // Writes an empty book into zeroed memory of region_size(terms) bytes; the magic goes last, so
  // a reader that sees it sees a whole book. False if the lock could not be made.
  static bool format(void* base, const PlaceTerms& terms) noexcept;
  // Whether `size` bytes at `base` hold a book made with `terms`: empty if so, else what differs,
  // phrased to follow "the segment ..." (a rate-limit table is named as one).
  static std::string check(const void* base, size_t size, const PlaceTerms& terms);

  // Like check(), for a segment whose terms are not known: reads them into `terms` (for inspection).
  static std::string describe(const void* base, size_t size, PlaceTerms& terms);

  // Takes over a region format() prepared (possibly in another process, at another address), whose
  // terms check() found to be `terms`: the book is read through those and the layout they plan,
  // never through the copies in the segment.
  Places(std::unique_ptr<Region> region, const PlaceTerms& terms) noexcept;
  // The same, with the terms the segment records (for a region this process just formatted).
  explicit Places(std::unique_ptr<Region> region) noexcept;

  // How long an operation waits for the lock; negative waits for ever.
  void set_lock_timeout(int64_t ms) noexcept { lock_timeout_ms_ = ms; }

  // Each operation first takes back lapsed holders' places and frees cooled places, as PlaceBook's.
  // Asks for a place for `holder`, renewing (or creating) it; when none is free, queues it at
  // `waiting_since`.
  PlacesStatus acquire(int64_t now, uint64_t holder, int64_t waiting_since, PlaceGrant& out) noexcept;
  // Gives `place` back as answered at `now`; `released` false when the holder does not hold it.
  PlacesStatus release(int64_t now, uint64_t holder, PlaceId place, bool& released) noexcept;
  // Renews the holder's lease; `renewed` false when it had lapsed.
  PlacesStatus renew(int64_t now, uint64_t holder, bool& renewed) noexcept;
  // Takes the holder out of the queue; a holder with no place is forgotten.
  PlacesStatus leave(int64_t now, uint64_t holder) noexcept;
  PlacesStatus counts(int64_t now, PlaceCounts& out) noexcept;
  // Grows whenever a place may have been freed or the queue moved (where PlaceBook's does); read
  // without the lock, so a process can poll it.
  uint64_t version() const noexcept;
  // Times the lock was taken over from a process that died holding it (the book was then
  // repaired). NOTE: read without the lock; for tests.
  uint64_t recoveries() const noexcept;
  // What the last kDamaged found out of range ("its holder count"), or null if none was found.
  const char* damage() const noexcept { return damage_.load(std::memory_order_relaxed); }

  // NOTE: for crash tests only: takes the lock and returns holding it.
  void debug_hold_lock() noexcept;
  // NOTE: for crash tests only: spoils the derived counts (in flight, holders' places), as a
  // process killed half-way through an operation may; the next lock recovery repairs them.
  void debug_spoil_counts() noexcept;

 private:
  template <typename Body>
  PlacesStatus with_book(int64_t now, Body body) noexcept;

  PlacesStatus damaged(const char* what) noexcept;

  std::unique_ptr<Region> region_;
  PlacesHeader* header_;
  const PlaceTerms terms_;  // as checked on attach; the segment's copy is only compared with them
  const char* unsound_;     // set when the terms cannot make a book in this region: every call fails
  int64_t lock_timeout_ms_ = kPlacesLockTimeoutMs;
  uint64_t own_namespace_;  // this process's pid namespace (0: unknown, judge no pid)
  std::atomic<const char*> damage_{nullptr};
};

// A store's segment name: "places." + name, so that it never collides with a table's.
std::string places_segment_name(const std::string& store_name);

struct OpenedPlaces {
  std::unique_ptr<Places> places;  // null on failure
  bool created = false;
  std::string error;  // why it failed, naming the segment
  enum class Failure { kNone, kInvalid, kSharedMemory, kOutOfSpace, kMismatch } failure = Failure::kNone;
};

// Attaches to the store's segment, or creates it with `terms` and permission bits `mode`.
OpenedPlaces open_places(const std::string& store_name, unsigned mode, const PlaceTerms& terms);

}  // namespace tollgate
