// Incremental doubling: see growable_table.h.
#include "growable_table.h"

#include <time.h>

#include <algorithm>
#include <new>

namespace tollgate {
namespace {

// Adds the decision and table counters of `from` (not sizes or entries) to `into`.
void add_counters(TableStats& into, const TableStats& from) noexcept {
  into.evictions += from.evictions;
  into.refused += from.refused;
  into.swept += from.swept;
  into.allowed += from.allowed;
  into.denied += from.denied;
  into.denied_blocked += from.denied_blocked;
  into.near_limit += from.near_limit;
  into.displaced += from.displaced;
  into.contended += from.contended;
}

}  // namespace

std::unique_ptr<GrowableTable> GrowableTable::in_process(const TableOptions& options, uint64_t initial,
                                                         bool populate, HashSeed seed) {
  std::unique_ptr<GrowableTable> t(new (std::nothrow) GrowableTable());
  if (!t) return nullptr;
  t->options_ = options;
  t->seed_ = seed;
  t->growable_ = true;
  if (options.top_keys) {
    t->top_shards_ = TableLayout::plan(options.capacity, options.shards, false).shard_count;
    t->top_.resize(t->top_shards_);
  }
  const uint64_t first = std::max<uint64_t>(1, std::min(initial, options.capacity));
  if (!t->make(t->current_, first, populate)) return nullptr;
  return t;
}

GrowableTable::GrowableTable(std::unique_ptr<Region> region) noexcept {
  current_.table = std::make_unique<Table>(region->base());
  current_.region = std::move(region);
}

GrowableTable::~GrowableTable() {
  finish_prefault();
  if (release_thread_.joinable()) release_thread_.join();
}

void GrowableTable::release_in_background(std::unique_ptr<Region> region) noexcept {
  if (release_thread_.joinable()) release_thread_.join();  // long done: a whole migration ago
  if (region->size() < kBackgroundBytes) return;           // small: unmapped here, at once (the unique_ptr)
  Region* const raw = region.release();
  try {
    release_thread_ = std::thread([raw] {
      raw->unmap_gradually();
      delete raw;
    });
  } catch (...) {
    delete raw;  // no thread to be had: free it here, as before
  }
}

void GrowableTable::start_prefault(const Region& region) noexcept {
  finish_prefault();
  if (region.size() < kBackgroundBytes) return;  // a few hundred faults at most: not worth a thread
  prefault_stop_.store(false, std::memory_order_relaxed);
  char* const base = static_cast<char*>(region.base());
  const size_t size = region.size();
  std::atomic<bool>* const stop = &prefault_stop_;
  try {
    prefault_thread_ = std::thread([base, size, stop] {
      // In small steps with a pause between: each step holds the process's memory-map lock (as
      // a reader) while it faults pages in, and a thread that needs it as a writer (V8 mapping
      // or protecting its own pages, on the JS thread) waits for the step to end. 256 KiB is
      // about a quarter of a millisecond here. A stop request is honoured within one step.
      constexpr size_t kStep = size_t{256} << 10;
      for (size_t offset = 0; offset < size && !stop->load(std::memory_order_relaxed); offset += kStep) {
        if (!Region::prefault(base + offset, std::min(kStep, size - offset))) return;  // unsupported here
        const timespec pause{0, 50000};
        nanosleep(&pause, nullptr);
      }
    });
  } catch (...) {
    // No thread to be had: the pages fault in as they are touched, as without this.
  }
}

void GrowableTable::finish_prefault() noexcept {
  if (!prefault_thread_.joinable()) return;
  prefault_stop_.store(true, std::memory_order_relaxed);
  prefault_thread_.join();
}

uint32_t GrowableTable::generation_shards(uint64_t keys) const noexcept {
  const uint32_t ceiling = TableLayout::plan(options_.capacity, options_.shards, false).shard_count;
  if (keys >= options_.capacity) return ceiling;
  // A generation smaller than the ceiling gets the shards the automatic rule gives its own size,
  // never more than the ceiling has: with the ceiling's count (an explicit `shards: 256`), the
  // first generations' shards were a bucket or two each, and a shard that small overflows by
  // chance long before the table is full.
  return std::min(ceiling, TableLayout::plan(keys, 0, false).shard_count);
}

bool GrowableTable::make(Generation& g, uint64_t keys, bool populate) noexcept {
  TableOptions o = options_;
  o.capacity = keys;
  o.shards = growable_ ? generation_shards(keys) : options_.shards;
  o.top_keys = false;  // kept by this object for every generation (top_)
  // Every generation hashes with the same seed, so an entry moves by its stored hash.
  const size_t size = TableLayout::plan(o.capacity, o.shards, o.top_keys).total_size;
  std::unique_ptr<Region> region = Region::anonymous(size, populate, populate);
  if (!region || !Table::format(region->base(), o, seed_)) return false;
  g.table = std::make_unique<Table>(region->base());
  g.table->count_own_entries();  // one JS thread owns an in-process table
  // Below the ceiling a generation grows rather than evict or refuse a key; at it, onFull rules.
  g.table->signal_when_full(growable_ && keys < options_.capacity);
  g.table->debug_fingerprint_bits(fingerprint_bits_);
  g.region = std::move(region);
  g.keys = keys;
  return true;
}

Table& GrowableTable::prepare(const Hash128& h, int64_t now) noexcept {
  if (old_.table != nullptr) {
    if (!old_.table->migrate(cursor_, kMigrateSlots, *current_.table, now)) {
      retire_old();
    } else {
      discard_moved();
      old_.table->move_key(h, *current_.table, now);
    }
  }
  return *current_.table;
}

void GrowableTable::discard_moved() noexcept {
  // Entries are one array in cursor order: everything before the cursor has been moved.
  const uint64_t moved_end = old_.table->entry_offset(cursor_);
  if (discarded_ < old_.table->entry_offset(0)) discarded_ = old_.table->entry_offset(0);
  if (moved_end < discarded_ + kDiscardStep) return;
  old_.region->discard(discarded_, moved_end - discarded_);
  discarded_ = moved_end / 4096 * 4096;
}

void GrowableTable::retire_old() noexcept {
  add_counters(retired_, old_.table->stats());
  // Its counters are read and nothing points into it any more: the memory goes back off this thread.
  old_.table.reset();
  release_in_background(std::move(old_.region));
  old_.keys = 0;
  cursor_ = 0;
  discarded_ = 0;
}

void GrowableTable::grow_if_full(int64_t now) noexcept {
  if (!growable_ || old_.table != nullptr || current_.keys >= options_.capacity) return;
  const uint64_t entries = current_.table->own_entries();
  // Half full: map the next generation now and let a background thread fault its pages in, so
  // that by the doubling every page the migration and new keys write to is already there.
  if (next_.table == nullptr && entries >= current_.keys / 2 && !next_failed_) {
    if (make(next_, std::min(options_.capacity, current_.keys * 2), false)) {
      start_prefault(*next_.region);
    } else {
      next_failed_ = true;  // no memory now: try again at the doubling
    }
  }
  if (entries < current_.keys) return;
  double_now(now);  // no memory: stay
}

bool GrowableTable::double_now(int64_t now) noexcept {
  if (next_.table == nullptr && !make(next_, std::min(options_.capacity, current_.keys * 2), false))
    return false;
  next_failed_ = false;
  // Stops the prefault if it is somehow still running (bounded by one of its steps): the
  // generation about to become the old one must not be touched by it once it is freed.
  finish_prefault();
  old_ = std::move(current_);
  current_ = std::move(next_);
  next_ = Generation{};
  cursor_ = 0;
  discarded_ = 0;
  // Start at once, so a table that grows under a burst of new keys is never two steps behind.
  if (!old_.table->migrate(cursor_, kMigrateSlots, *current_.table, now)) retire_old();
  return true;
}

void GrowableTable::make_room(int64_t now) noexcept {
  // Rare (a probe window full below the doubling point): a migration still under way is finished
  // in this call, a pause proportional to the old generation, which is half the current one.
  if (old_.table != nullptr) {
    while (old_.table->migrate(cursor_, 1u << 16, *current_.table, now)) {
    }
    retire_old();
  }
  if (!double_now(now)) current_.table->signal_when_full(false);
}

Verdict GrowableTable::consume(const Hash128& h, const Policy& policy, int64_t limit, int64_t cost,
                               int64_t now, bool commit, const KeyText* key) noexcept {
  Verdict v = prepare(h, now).consume(h, policy, limit, cost, now, commit, key);
  while (v.no_room) {
    make_room(now);
    v = prepare(h, now).consume(h, policy, limit, cost, now, commit, key);
  }
  if (commit && !top_.empty() && key != nullptr && !v.lock_failed) record_top(h, key, !v.allowed, now);
  if (commit && v.allowed) grow_if_full(now);
  return v;
}

void GrowableTable::record_top(const Hash128& h, const KeyText* key, bool denied, int64_t now) noexcept {
  // From the hash's high half (the table places keys by the low half): fixed per key, so a key
  // always falls in one summary.
  const uint32_t shard = uint32_t(((h.hi >> 32) * top_shards_) >> 32);
  top_record(top_[shard], h.lo, *key, denied, now, top_period_ms());
}

bool GrowableTable::refund(const Hash128& h, const Policy& policy, int64_t limit, int64_t amount,
                           int64_t now) noexcept {
  return prepare(h, now).refund(h, policy, limit, amount, now);
}

bool GrowableTable::block(const Hash128& h, int64_t until, int64_t now) noexcept {
  bool stored = prepare(h, now).block(h, until, now);
  // In process no lock times out: false from a signalling generation means no room.
  while (!stored && current_.table->signals_when_full()) {
    make_room(now);
    stored = prepare(h, now).block(h, until, now);
  }
  grow_if_full(now);
  return stored;
}

bool GrowableTable::reset(const Hash128& h, int64_t now) noexcept {
  // prepare() has moved the key over if the old generation held it: one place to forget it.
  return prepare(h, now).reset(h, now);
}

void GrowableTable::debug_fingerprint_bits(unsigned bits) noexcept {
  fingerprint_bits_ = bits;
  current_.table->debug_fingerprint_bits(bits);
  if (old_.table != nullptr) old_.table->debug_fingerprint_bits(bits);
  if (next_.table != nullptr) next_.table->debug_fingerprint_bits(bits);
}

uint64_t GrowableTable::sweep(int64_t now) noexcept {
  uint64_t total = current_.table->sweep(now);
  if (old_.table != nullptr) total += old_.table->sweep(now);
  return total;
}

std::vector<TopKey> GrowableTable::top_keys(int64_t now) {
  if (!growable_) return current_.table->top_keys(now);
  std::vector<TopKey> out;
  for (TopSummary& summary : top_) top_collect(summary, now, top_period_ms(), out);
  return out;
}

TableStats GrowableTable::stats() const noexcept {
  TableStats st = current_.table->stats();
  if (old_.table != nullptr) {
    const TableStats o = old_.table->stats();
    add_counters(st, o);
    st.entries += o.entries;
    st.bytes += o.bytes;
    st.max_shard_entries = std::max(st.max_shard_entries, o.max_shard_entries);
  }
  if (next_.region != nullptr) st.bytes += next_.region->size();
  add_counters(st, retired_);
  if (growable_) {
    st.capacity = TableLayout::plan(options_.capacity, options_.shards, false).capacity;
    st.bytes += top_.size() * sizeof(TopSummary);
  }
  return st;
}

}  // namespace tollgate
