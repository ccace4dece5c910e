// Incremental doubling: see growable_table.h.
#include "growable_table.h"

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

std::unique_ptr<GrowableTable> GrowableTable::in_process(const TableOptions& options, uint64_t initial, bool populate,
                                                         HashSeed seed) {
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
  // Its counters are read: give the pages back before the unmap, which is then cheap.
  old_.region->discard(0, old_.region->size());
  old_.table.reset();
  old_.region.reset();
  old_.keys = 0;
  cursor_ = 0;
  discarded_ = 0;
}

void GrowableTable::grow_if_full(int64_t now) noexcept {
  if (!growable_ || old_.table != nullptr) return;
  if (current_.table->own_entries() < current_.keys || current_.keys >= options_.capacity) return;
  Generation next;
  if (!make(next, std::min(options_.capacity, current_.keys * 2), false)) return;  // no memory: stay
  old_ = std::move(current_);
  current_ = std::move(next);
  cursor_ = 0;
  discarded_ = 0;
  // Start at once, so a table that grows under a burst of new keys is never two steps behind.
  if (!old_.table->migrate(cursor_, kMigrateSlots, *current_.table, now)) retire_old();
}

Verdict GrowableTable::consume(const Hash128& h, const Policy& policy, int64_t limit, int64_t cost, int64_t now,
                               bool commit, const KeyText* key) noexcept {
  const Verdict v = prepare(h, now).consume(h, policy, limit, cost, now, commit, key);
  if (commit && !top_.empty() && key != nullptr && !v.lock_failed) record_top(h, key, !v.allowed, now);
  if (commit && v.allowed) grow_if_full(now);
  return v;
}

void GrowableTable::record_top(const Hash128& h, const KeyText* key, bool denied, int64_t now) noexcept {
  // The same shard choice as the table's, so a key always falls in one summary.
  const uint32_t shard = uint32_t(((h.hi >> 32) * top_shards_) >> 32);
  top_record(top_[shard], h.lo, *key, denied, now, options_.top_period_ms > 0 ? options_.top_period_ms : 60000);
}

bool GrowableTable::refund(const Hash128& h, const Policy& policy, int64_t limit, int64_t amount, int64_t now) noexcept {
  return prepare(h, now).refund(h, policy, limit, amount, now);
}

bool GrowableTable::block(const Hash128& h, int64_t until, int64_t now) noexcept {
  const bool stored = prepare(h, now).block(h, until, now);
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
}

uint64_t GrowableTable::sweep(int64_t now) noexcept {
  uint64_t total = current_.table->sweep(now);
  if (old_.table != nullptr) total += old_.table->sweep(now);
  return total;
}

std::vector<TopKey> GrowableTable::top_keys(int64_t now) {
  if (!growable_) return current_.table->top_keys(now);
  std::vector<TopKey> out;
  for (TopSummary& summary : top_) top_collect(summary, now, options_.top_period_ms > 0 ? options_.top_period_ms : 60000, out);
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
  add_counters(st, retired_);
  if (growable_) {
    st.capacity = TableLayout::plan(options_.capacity, options_.shards, false).capacity;
    st.bytes += top_.size() * sizeof(TopSummary);
  }
  return st;
}

}  // namespace tollgate
