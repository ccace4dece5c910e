// Bucketed open addressing: a shard is an array of buckets of kBucket slots, and a key may live in
// either of two buckets chosen by its hash (a new key goes to the emptier). A 16-bit tag per slot
// (15 hash bits) screens candidates, so a lookup almost never loads a slot that is not its own:
// it costs the bucket's tags (both candidates' are fetched at once) and one slot line.
#include "table.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tollgate {

// Written once by format(), read-only afterwards: every attached process checks it before use.
struct Table::Header {
  uint64_t magic;  // written last, with release ordering: a table is usable once it is set
  uint32_t version;
  uint32_t slot_size;
  TableLayout layout;
  HashSeed seed;
  uint32_t evict;
  uint32_t requested_shards;  // as asked for; 0 = chosen from the capacity
  uint64_t requested_capacity;
  Policy policy;  // the creator's; attached processes may differ in everything but the kind
  uint32_t top_keys;
  uint32_t reserved;
  int64_t top_period_ms;
};

struct alignas(64) Table::Shard {
  ShardLock lock;
  // The fields below and this shard's tags and slots: only access them while holding `lock`.
  // The two counters every decision writes share the lock's cache line (48 + 16 bytes), so a
  // decision dirties one shard line, not two, when processes take turns on a shard.
  uint64_t allowed;  // consuming decisions allowed
  uint64_t denied;   // ... denied by the policy
  uint64_t entries;
  uint64_t evictions;
  uint64_t refused;
  uint64_t swept;
  uint64_t denied_blocked;  // ... denied by a block
  uint64_t near_limit;      // ... allowed with at most a fifth of the limit left
  uint64_t contended;       // times a caller found the lock taken and had to wait
  uint32_t cursor;          // next slot the incremental reclaimer looks at
};
#if defined(__x86_64__) && defined(__GLIBC__)
static_assert(sizeof(ShardLock) <= 48, "the lock and the per-decision counters share one cache line");
#endif
// NOTE: elsewhere the mutex may be larger (glibc on arm64: 48 bytes, so the lock is 56) and the
// counters then spill into the shard's second line: correct, one more line per decision.

struct Table::Probe {
  Shard* shard;
  Tag* tags;
  Slot* slots;
  uint32_t home[2];  // first slot of each candidate bucket
  Tag tag;  // high bit set: a zero tag marks an empty slot
  Hash128 hash;
};

namespace {

constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Bit j set where tags[j] == value, for the kBucket tags starting at `tags`.
inline uint64_t match_window(const Tag* tags, Tag value) {
  static_assert(Table::kBucket == 64, "the mask is one 64-bit word");
#if defined(__SSE2__)
  const __m128i needle = _mm_set1_epi16(static_cast<short>(value));
  uint64_t mask = 0;
  for (int k = 0; k < 4; ++k) {
    const auto* group = reinterpret_cast<const __m128i*>(tags + 16 * k);
    const __m128i lo = _mm_cmpeq_epi16(_mm_load_si128(group), needle);
    const __m128i hi = _mm_cmpeq_epi16(_mm_load_si128(group + 1), needle);
    // Each 16-bit result is 0 or -1; packing keeps one byte per tag, in order.
    const auto bits = static_cast<uint16_t>(_mm_movemask_epi8(_mm_packs_epi16(lo, hi)));
    mask |= uint64_t{bits} << (16 * k);
  }
  return mask;
#else
  uint64_t mask = 0;
  for (uint32_t j = 0; j < 64; ++j) mask |= uint64_t{tags[j] == value} << j;
  return mask;
#endif
}

}  // namespace

// An eighth more slots than asked for: with two-choice windows, a table holding exactly its capacity
// evicts fewer than 1 in 100,000 inserts (shards fill unevenly; windows fill unevenly within them).

TableLayout TableLayout::plan(uint64_t capacity, uint32_t shards, bool top_keys) noexcept {
  TableLayout l{};
  if (shards == 0) {
    shards = 1;
    while (shards < kMaxAutoShards && uint64_t{shards} * kKeysPerAutoShard <= capacity) shards *= 2;
  }
  l.shard_count = shards;
  const uint64_t wanted = (capacity * kHeadroomNum / kHeadroomDen + shards - 1) / shards;
  l.slots_per_shard = uint32_t(std::max<uint64_t>(1, (wanted + Table::kBucket - 1) / Table::kBucket) * Table::kBucket);
  l.capacity = uint64_t{l.slots_per_shard} * shards;
  l.shards_offset = align_up(sizeof(Table::Header), 64);
  l.tags_offset = l.shards_offset + uint64_t{shards} * sizeof(Table::Shard);
  l.tag_stride = l.slots_per_shard;
  l.slots_offset = align_up(l.tags_offset + l.tag_stride * shards * sizeof(Tag), 64);
  const uint64_t slots_end = l.slots_offset + l.capacity * sizeof(Slot);
  l.top_offset = top_keys ? align_up(slots_end, 64) : 0;
  l.total_size = align_up(top_keys ? l.top_offset + uint64_t{shards} * sizeof(TopSummary) : slots_end, 4096);
  return l;
}

bool Table::format(void* base, const TableOptions& options, HashSeed seed) noexcept {
  const TableLayout layout = TableLayout::plan(options.capacity, options.shards, options.top_keys);
  auto* header = static_cast<Header*>(base);
  header->top_keys = options.top_keys ? 1 : 0;
  header->top_period_ms = options.top_period_ms;
  header->version = kVersion;
  header->slot_size = sizeof(Slot);
  header->layout = layout;
  header->seed = seed;
  header->evict = options.evict ? 1 : 0;
  header->requested_shards = options.shards;
  header->requested_capacity = options.capacity;
  header->policy = options.policy;
  auto* shards = reinterpret_cast<Shard*>(static_cast<char*>(base) + layout.shards_offset);
  for (uint32_t s = 0; s < layout.shard_count; ++s) {
    Shard* shard = new (&shards[s]) Shard();
    if (!shard->lock.init()) return false;
  }
  __atomic_store_n(&header->magic, kMagic, __ATOMIC_RELEASE);
  return true;
}

namespace {

const char* kind_name(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::kFixedWindow:
      return "fixedWindow";
    case PolicyKind::kSlidingWindow:
      return "slidingWindow";
    case PolicyKind::kTokenBucket:
      return "tokenBucket";
    case PolicyKind::kGcra:
      return "leakyBucket";
  }
  return "unknown";
}

bool same_layout(const TableLayout& a, const TableLayout& b) {
  return a.capacity == b.capacity && a.shard_count == b.shard_count && a.slots_per_shard == b.slots_per_shard &&
         a.top_offset == b.top_offset &&
         a.shards_offset == b.shards_offset && a.tags_offset == b.tags_offset && a.tag_stride == b.tag_stride &&
         a.slots_offset == b.slots_offset && a.total_size == b.total_size;
}

}  // namespace

std::string Table::check(const void* base, size_t size, const TableOptions& options) {
  const auto* header = static_cast<const Header*>(base);
  if (size < sizeof(Header) || __atomic_load_n(&header->magic, __ATOMIC_ACQUIRE) != kMagic) {
    return "is not a tollgate table (or its creator died before finishing it; destroy it and retry)";
  }
  if (header->version != kVersion || header->slot_size != sizeof(Slot)) {
    return "was made by an incompatible tollgate (layout version " + std::to_string(header->version) +
           ", this one reads version " + std::to_string(kVersion) + ")";
  }
  if (header->requested_capacity != options.capacity) {
    return "was created with capacity " + std::to_string(header->requested_capacity) + ", not " +
           std::to_string(options.capacity);
  }
  if (header->requested_shards != options.shards) {
    return "was created with shards " + std::to_string(header->requested_shards) + ", not " +
           std::to_string(options.shards);
  }
  if (header->policy.kind != options.policy.kind) {
    return std::string("was created for a ") + kind_name(header->policy.kind) + " policy, not " +
           kind_name(options.policy.kind);
  }
  if ((header->evict != 0) != options.evict) {
    return std::string("was created with onFull '") + (header->evict != 0 ? "evict" : "refuse") + "'";
  }
  if ((header->top_keys != 0) != options.top_keys || (options.top_keys && header->top_period_ms != options.top_period_ms)) {
    return std::string("was created with topKeys ") +
           (header->top_keys != 0 ? "on, period " + std::to_string(header->top_period_ms) + " ms" : "off");
  }
  // Everything below was derived by us from the options just compared; a mismatch is damage.
  const TableLayout expected = TableLayout::plan(options.capacity, options.shards, options.top_keys);
  if (!same_layout(header->layout, expected) || expected.total_size > size) return "is corrupt or truncated";
  const auto* shards = reinterpret_cast<const Shard*>(static_cast<const char*>(base) + expected.shards_offset);
  for (uint32_t s = 0; s < expected.shard_count; ++s) {
    if (!shards[s].lock.looks_sound()) return "is corrupt (the lock of shard " + std::to_string(s) + " is damaged)";
  }
  return std::string();
}

std::string Table::describe(const void* base, size_t size, TableOptions& options) {
  const auto* header = static_cast<const Header*>(base);
  if (size < sizeof(Header) || __atomic_load_n(&header->magic, __ATOMIC_ACQUIRE) != kMagic) {
    return "is not a tollgate table";
  }
  if (header->version != kVersion || header->slot_size != sizeof(Slot)) {
    return "was made by an incompatible tollgate (layout version " + std::to_string(header->version) + ")";
  }
  options.capacity = header->requested_capacity;
  options.shards = header->requested_shards;
  options.evict = header->evict != 0;
  options.policy = header->policy;
  options.top_keys = header->top_keys != 0;
  options.top_period_ms = header->top_period_ms;
  if (options.capacity < 1 || options.capacity > kMaxCapacity || options.shards > 4096 || !policy_is_valid(options.policy)) {
    return "is corrupt";
  }
  return check(base, size, options);
}

Policy Table::creator_policy() const noexcept { return header_->policy; }

Table::Table(void* base) noexcept
    : base_(static_cast<char*>(base)), header_(static_cast<Header*>(base)) {
  const TableLayout& l = header_->layout;
  shards_ = reinterpret_cast<Shard*>(base_ + l.shards_offset);
  tags_ = reinterpret_cast<Tag*>(base_ + l.tags_offset);
  slots_ = reinterpret_cast<Slot*>(base_ + l.slots_offset);
  top_ = l.top_offset == 0 ? nullptr : reinterpret_cast<TopSummary*>(base_ + l.top_offset);
  top_period_ms_ = header_->top_period_ms > 0 ? header_->top_period_ms : 60000;
  shard_count_ = l.shard_count;
  slots_per_shard_ = l.slots_per_shard;
  tag_stride_ = l.tag_stride;
  seed_ = header_->seed;
  evict_ = header_->evict != 0;
}

Hash128 Table::hash(const void* key, size_t len) const noexcept {
  return siphash13_128(seed_, key, len);
}

Table::Probe Table::probe_of(const Hash128& h) const noexcept {
  // Independent bits of the hash pick the shard, the two home slots and the tag.
  const uint32_t shard = uint32_t(((h.hi >> 32) * shard_count_) >> 32);
  const uint32_t buckets = slots_per_shard_ / kBucket;
  const uint32_t home0 = uint32_t(((h.lo & 0xffffffffULL) * buckets) >> 32) * kBucket;
  const uint32_t home1 = uint32_t(((h.lo >> 32) * buckets) >> 32) * kBucket;
  Tag* tags = tags_ + tag_stride_ * shard;
  // Both candidates' tags are fetched together: a key in its second bucket costs no extra wait.
  __builtin_prefetch(tags + home1);
  __builtin_prefetch(tags + home1 + kBucket / 2);
  return Probe{&shards_[shard], tags, slots_ + uint64_t{slots_per_shard_} * shard, {home0, home1},
               static_cast<Tag>(0x8000 | (h.hi & 0x7fff)), h};
}

int64_t Table::find(const Probe& p) const noexcept {
  for (const uint32_t home : p.home) {
    uint64_t mask = match_window(p.tags + home, p.tag);
    while (mask != 0) {
      const uint32_t index = home + uint32_t(__builtin_ctzll(mask));
      const Slot& slot = p.slots[index];
      if (slot.fp_lo == p.hash.lo && slot.fp_hi == p.hash.hi) return index;
      mask &= mask - 1;
    }
  }
  return -1;
}

void Table::prefetch(const Hash128& h) const noexcept {
  const Probe p = probe_of(h);  // already fetches the second bucket's tags
  __builtin_prefetch(p.shard);
  __builtin_prefetch(p.tags + p.home[0]);
  __builtin_prefetch(p.tags + p.home[0] + kBucket / 2);
}

void Table::prefetch_slot(const Hash128& h) noexcept {
  const Probe p = probe_of(h);
  int64_t index;
  {
    ShardGuard guard(p.shard->lock, lock_timeout_ms_);
    if (!guard.held()) return;
    index = find(p);
  }
  if (index >= 0) __builtin_prefetch(&p.slots[index]);
}

void Table::set_tag(Tag* tags, uint32_t index, Tag tag) const noexcept { tags[index] = tag; }

void Table::release(Shard& shard, Tag* tags, uint32_t index) noexcept {
  set_tag(tags, index, 0);
  --shard.entries;
  if (count_own_) --own_entries_;
}

void Table::reclaim_step(const Probe& p, int64_t now) noexcept {
  // Two slots per insertion keep up with any insertion rate: a shard is swept once every S/2 inserts.
  Shard& shard = *p.shard;
  for (int k = 0; k < 2; ++k) {
    // Bounded: in shared memory a damaged cursor must not send us outside the shard.
    const uint32_t index = shard.cursor < slots_per_shard_ ? shard.cursor : 0;
    shard.cursor = index + 1 == slots_per_shard_ ? 0 : index + 1;
    if (p.tags[index] != 0 && p.slots[index].expires_at <= now) {
      release(shard, p.tags, index);
      ++shard.swept;
    }
  }
}

int64_t Table::claim(const Probe& p, int64_t now, int64_t* earliest_expiry) noexcept {
  Shard& shard = *p.shard;
  // Two choices keep windows evenly filled, so a table holds its capacity without overflowing.
  const uint64_t empty0 = match_window(p.tags + p.home[0], 0);
  const uint64_t empty1 = match_window(p.tags + p.home[1], 0);
  const bool second = __builtin_popcountll(empty1) > __builtin_popcountll(empty0);
  const uint64_t empty = second ? empty1 : empty0;
  uint32_t index;
  if (empty != 0) {
    index = p.home[second ? 1 : 0] + uint32_t(__builtin_ctzll(empty));
    ++shard.entries;
    if (count_own_) ++own_entries_;
  } else {
    // Both windows full: reuse an expired entry, else evict the entry nearest to expiry, else refuse.
    int64_t victim = -1;
    int64_t victim_expiry = kNever;
    for (const uint32_t home : p.home) {
      for (uint32_t j = 0; j < kBucket && victim_expiry > now; ++j) {
        const uint32_t candidate = home + j;
        const int64_t expiry = p.slots[candidate].expires_at;
        if (expiry < victim_expiry) {
          victim = candidate;
          victim_expiry = expiry;
        }
      }
    }
    if (victim_expiry <= now) {
      ++shard.swept;
    } else if (evict_) {
      ++shard.evictions;
    } else {
      ++shard.refused;
      *earliest_expiry = victim_expiry;
      return -1;
    }
    index = uint32_t(victim);
  }
  // Order matters only if this process dies before the caller writes the state (the lock then
  // passes on as recovered): an entry that reads as expired is indistinguishable from a fresh
  // one, so the new key never inherits a previous occupant's counters.
  Slot& slot = p.slots[index];
  slot.expires_at = 0;
  slot.blocked_until = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  slot.fp_lo = p.hash.lo;
  slot.fp_hi = p.hash.hi;
  set_tag(p.tags, index, p.tag);
  return index;
}

Verdict Table::consume(const Hash128& h, const Policy& policy, int64_t limit, int64_t cost,
                       int64_t now, bool commit, const KeyText* key) noexcept {
  const Probe p = probe_of(h);
  Shard& shard = *p.shard;
  ShardGuard guard(shard.lock, shard.contended, lock_timeout_ms_);
  if (!guard.held()) {
    ++lock_failures_;
    Verdict failed{false, limit, 0, 0, 0};
    failed.lock_failed = true;
    return failed;
  }
  TopSummary* top = commit && top_ != nullptr && key != nullptr ? &top_[p.shard - shards_] : nullptr;
  int64_t index = find(p);
  const bool live = index >= 0 && p.slots[index].expires_at > now;
  CounterState state = live ? p.slots[index].state : fresh_state(policy, limit, now);

  if (live && p.slots[index].blocked_until > now) {
    const Slot& slot = p.slots[index];
    Verdict v = decide(policy, limit, state, now, cost, false);
    v.allowed = false;
    v.remaining = 0;
    v.reset_ms = slot.expires_at - now;
    v.retry_ms = cost > limit ? kNever : std::max(v.retry_ms, slot.blocked_until - now);
    if (commit) ++shard.denied_blocked;
    if (top != nullptr) top_record(*top, h.lo, *key, true, now, top_period_ms_);
    return v;
  }

  const Verdict v = decide(policy, limit, state, now, cost, commit);
  if (!commit) return v;
  if (top != nullptr) top_record(*top, h.lo, *key, !v.allowed, now, top_period_ms_);
  if (!v.allowed) {
    ++shard.denied;
    return v;
  }
  if (index < 0) {
    reclaim_step(p, now);
    int64_t earliest = kNever;
    index = claim(p, now, &earliest);
    if (index < 0) return Verdict{false, limit, 0, 0, earliest - now};  // counted as refused
  }
  ++shard.allowed;
  if (v.remaining * 5 <= v.limit) ++shard.near_limit;
  Slot& slot = p.slots[index];
  slot.state = state;
  slot.blocked_until = 0;
  slot.expires_at = now + v.reset_ms;
  return v;
}

bool Table::refund(const Hash128& h, const Policy& policy, int64_t limit, int64_t amount,
                   int64_t now) noexcept {
  const Probe p = probe_of(h);
  ShardGuard guard(p.shard->lock, lock_timeout_ms_);
  if (!guard.held()) {
    ++lock_failures_;
    return false;
  }
  const int64_t index = find(p);
  if (index < 0 || p.slots[index].expires_at <= now) return true;
  Slot& slot = p.slots[index];
  const int64_t reset = tollgate::refund(policy, limit, slot.state, now, amount);
  slot.expires_at = std::max(now + reset, slot.blocked_until);
  return true;
}

bool Table::block(const Hash128& h, const Policy& policy, int64_t limit, int64_t until,
                  int64_t now) noexcept {
  const Probe p = probe_of(h);
  ShardGuard guard(p.shard->lock, lock_timeout_ms_);
  if (!guard.held()) {
    ++lock_failures_;
    return false;
  }
  int64_t index = find(p);
  if (index >= 0 && p.slots[index].expires_at > now) {
    Slot& slot = p.slots[index];
    slot.blocked_until = std::max(slot.blocked_until, until);
    slot.expires_at = std::max(slot.expires_at, until);
    return true;
  }
  if (index < 0) {
    reclaim_step(p, now);
    int64_t earliest = kNever;
    index = claim(p, now, &earliest);
    if (index < 0) return false;
  }
  Slot& slot = p.slots[index];
  slot.state = fresh_state(policy, limit, now);
  slot.blocked_until = until;
  slot.expires_at = until;
  return true;
}

bool Table::reset(const Hash128& h, int64_t now) noexcept {
  const Probe p = probe_of(h);
  ShardGuard guard(p.shard->lock, lock_timeout_ms_);
  if (!guard.held()) {
    ++lock_failures_;
    return false;
  }
  const int64_t index = find(p);
  if (index < 0) return false;
  const bool live = p.slots[index].expires_at > now;
  release(*p.shard, p.tags, uint32_t(index));
  return live;
}

bool Table::take(const Hash128& h, int64_t now, Slot& out) noexcept {
  const Probe p = probe_of(h);
  ShardGuard guard(p.shard->lock);
  const int64_t index = find(p);
  if (index < 0) return false;
  out = p.slots[index];
  release(*p.shard, p.tags, uint32_t(index));
  return out.expires_at > now;
}

void Table::put(const Hash128& h, const Slot& entry, int64_t now) noexcept {
  const Probe p = probe_of(h);
  ShardGuard guard(p.shard->lock);
  int64_t index = find(p);
  if (index < 0) {
    int64_t earliest = kNever;
    index = claim(p, now, &earliest);
    if (index < 0) return;  // refuse mode and no room: the entry is dropped, counted as refused
  }
  Slot& slot = p.slots[index];
  slot.state = entry.state;
  slot.blocked_until = entry.blocked_until;
  slot.expires_at = entry.expires_at;
}

bool Table::migrate(uint64_t& cursor, uint32_t count, Table& into, int64_t now) noexcept {
  const uint64_t total = slot_count();
  for (uint32_t n = 0; n < count && cursor < total; ++n, ++cursor) {
    const uint32_t s = uint32_t(cursor / slots_per_shard_);
    const uint32_t i = uint32_t(cursor % slots_per_shard_);
    Shard& shard = shards_[s];
    Tag* tags = tags_ + tag_stride_ * s;
    Slot* slots = slots_ + uint64_t{slots_per_shard_} * s;
    ShardGuard guard(shard.lock);
    if (tags[i] == 0) continue;
    // The slot keeps the key's whole 128-bit hash: the entry moves without its key.
    if (slots[i].expires_at > now) into.put(Hash128{slots[i].fp_lo, slots[i].fp_hi}, slots[i], now);
    release(shard, tags, i);
  }
  return cursor < total;
}

std::vector<TopKey> Table::top_keys(int64_t now) {
  std::vector<TopKey> out;
  if (top_ == nullptr) return out;
  for (uint32_t s = 0; s < shard_count_; ++s) {
    ShardGuard guard(shards_[s].lock, lock_timeout_ms_);
    if (!guard.held()) continue;
    top_collect(top_[s], now, top_period_ms_, out);
  }
  return out;
}

void Table::debug_hold_lock(const Hash128& h) noexcept {
  bool contended = false;
  probe_of(h).shard->lock.lock(-1, contended);
}

uint64_t Table::sweep(int64_t now) noexcept {
  uint64_t total = 0;
  for (uint32_t s = 0; s < shard_count_; ++s) {
    Shard& shard = shards_[s];
    Tag* tags = tags_ + tag_stride_ * s;
    const Slot* slots = slots_ + uint64_t{slots_per_shard_} * s;
    ShardGuard guard(shard.lock, lock_timeout_ms_);
    if (!guard.held()) continue;
    for (uint32_t i = 0; i < slots_per_shard_; ++i) {
      if (tags[i] != 0 && slots[i].expires_at <= now) {
        release(shard, tags, i);
        ++shard.swept;
        ++total;
      }
    }
  }
  return total;
}

TableStats Table::stats() const noexcept {
  TableStats st{};
  st.capacity = header_->layout.capacity;
  st.shards = shard_count_;
  st.bytes = header_->layout.total_size;
  for (uint32_t s = 0; s < shard_count_; ++s) {
    Shard& shard = shards_[s];
    ShardGuard guard(shard.lock, lock_timeout_ms_);
    if (!guard.held()) continue;
    st.entries += shard.entries;
    st.evictions += shard.evictions;
    st.refused += shard.refused;
    st.swept += shard.swept;
    st.lock_recoveries += shard.lock.recoveries();
    st.allowed += shard.allowed;
    st.denied += shard.denied;
    st.denied_blocked += shard.denied_blocked;
    st.near_limit += shard.near_limit;
    st.contended += shard.contended;
    st.max_shard_entries = std::max(st.max_shard_entries, shard.entries);
  }
  return st;
}

}  // namespace tollgate
