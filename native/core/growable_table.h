// A table that starts small and doubles as keys arrive, up to its capacity, moving entries to the
// larger table a few slots per call so that no call waits for a whole rehash. Shared-memory tables
// use it with one fixed generation (a segment needs its size up front).
//
// Thread safety: in-process tables serve one JS thread (their handle's); a fixed generation is the
// shared Table, safe from any thread or process as Table is.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "region.h"
#include "table.h"

namespace tollgate {

class GrowableTable {
 public:
  // An in-process table for `options` (options.capacity is the ceiling), starting with room for
  // `initial` keys. `populate` commits the first generation's memory now; later generations are
  // committed as they fill (small pages: a first touch costs microseconds). Null if out of memory.
  static std::unique_ptr<GrowableTable> in_process(const TableOptions& options, uint64_t initial,
                                                   bool populate, HashSeed seed);
  // A fixed table in memory prepared elsewhere (a shared-memory segment).
  explicit GrowableTable(std::unique_ptr<Region> region) noexcept;
  // Stops and joins the background work on its generations.
  ~GrowableTable();
  GrowableTable(const GrowableTable&) = delete;
  GrowableTable& operator=(const GrowableTable&) = delete;

  Hash128 hash(const void* key, size_t len) const noexcept { return current_.table->hash(key, len); }
  Policy creator_policy() const noexcept { return current_.table->creator_policy(); }
  void set_lock_timeout(int64_t ms) noexcept { current_.table->set_lock_timeout(ms); }
  uint64_t lock_failures() const noexcept { return current_.table->lock_failures(); }

  void prefetch(const Hash128& h) const noexcept { current_.table->prefetch(h); }
  void debug_fingerprint_bits(unsigned bits) noexcept;

  Verdict consume(const Hash128& h, const Policy& policy, int64_t limit, int64_t cost, int64_t now,
                  bool commit, const KeyText* key = nullptr) noexcept;
  bool refund(const Hash128& h, const Policy& policy, int64_t limit, int64_t amount, int64_t now) noexcept;
  bool block(const Hash128& h, int64_t until, int64_t now) noexcept;
  bool reset(const Hash128& h, int64_t now) noexcept;
  void debug_hold_lock(const Hash128& h) noexcept { current_.table->debug_hold_lock(h); }
  uint64_t sweep(int64_t now) noexcept;
  std::vector<TopKey> top_keys(int64_t now);
  // Counters over every generation; `capacity` is the ceiling's slots; `bytes` what is mapped now.
  TableStats stats() const noexcept;
  // Keys the current generation was sized for, and the ceiling (for tests and stats).
  uint64_t current_capacity() const noexcept { return current_.keys; }

 private:
  struct Generation {
    std::unique_ptr<Region> region;
    std::unique_ptr<Table> table;
    uint64_t keys = 0;  // the capacity it was planned for
  };
  // Entries moved from the old generation per call: the new one (twice the size) cannot fill before
  // the old one is empty, since each call inserts at most one key.
  static constexpr uint32_t kMigrateSlots = 16;

  GrowableTable() = default;
  bool make(Generation& g, uint64_t keys, bool populate) noexcept;
  // Lock shards of a generation sized for `keys`: the ceiling's count at the ceiling, fewer below.
  uint32_t generation_shards(uint64_t keys) const noexcept;
  // Before an operation on `h`: a migration step, and `h`'s entry moved over if the old
  // generation still holds it. Returns the table to operate on.
  Table& prepare(const Hash128& h, int64_t now) noexcept;
  void grow_if_full(int64_t now) noexcept;
  // current_ becomes the old generation and the next one (twice the size) the current; false
  // when there is no memory for it.
  bool double_now(int64_t now) noexcept;
  // A new key found no room in a generation below capacity (it signals instead of evicting):
  // finish any migration at once and double, so the key is placed without losing another. With
  // no memory to grow, the generation stops signalling and onFull applies as at capacity.
  void make_room(int64_t now) noexcept;
  void retire_old() noexcept;

  // In process, heavy hitters are kept here, not per generation, so that growth loses no counts:
  // one summary per shard of the ceiling's layout, guarded by the one JS thread that uses it.
  std::vector<TopSummary> top_;
  uint32_t top_shards_ = 0;
  void record_top(const Hash128& h, const KeyText* key, bool denied, int64_t now) noexcept;
  int64_t top_period_ms() const noexcept {
    return options_.top_period_ms > 0 ? options_.top_period_ms : kDefaultTopPeriodMs;
  }

  TableOptions options_{};
  HashSeed seed_{};
  bool growable_ = false;
  Generation current_;
  Generation old_;
  // The generation after current_, mapped (and being faulted in) from when current_ is half full.
  Generation next_;
  bool next_failed_ = false;  // mapping it early failed: wait for the doubling to try again
  uint64_t cursor_ = 0;
  // The old generation's slot pages already moved are given back in steps of this size, so that
  // freeing a large old generation never costs one call the whole munmap (tens of ms at GBs).
  static constexpr uint64_t kDiscardStep = uint64_t{1} << 20;
  uint64_t discarded_ = 0;  // bytes of the old region up to which pages were given back
  void discard_moved() noexcept;
  TableStats retired_{};  // counters of generations already freed

  // The next generation's pages are faulted in by a background thread (MADV_POPULATE_WRITE,
  // which writes nothing, so it is safe beside the JS thread's writes) while the current one
  // fills its second half, so that the calls after a doubling pay no page faults for the entries
  // they move and insert (a first touch costs microseconds, and on a VM sometimes milliseconds).
  // The thread only touches next_'s region: it is stopped and joined before that generation
  // changes hands, and in the destructor.
  std::thread prefault_thread_;
  std::atomic<bool> prefault_stop_{false};
  void start_prefault(const Region& region) noexcept;
  void finish_prefault() noexcept;
  // A retired generation's memory is given back by a background thread too: unmapping a region
  // of a hundred MiB or more cost the call that finished a migration 1.5-3 ms. The thread owns
  // the region it frees; it is joined before the next retirement and in the destructor.
  std::thread release_thread_;
  void release_in_background(std::unique_ptr<Region> region) noexcept;
  // Regions smaller than this are faulted in and unmapped on the calling thread, as they are cheap.
  static constexpr size_t kBackgroundBytes = size_t{4} << 20;
  unsigned fingerprint_bits_ = 64;  // a test hook, applied to every generation
};

}  // namespace tollgate
