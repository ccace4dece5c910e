// Bucketed cuckoo hashing over packed entries. A shard is an array of buckets of four 32-byte
// entries (two cache lines); a key may live in either of two buckets, both chosen from its 64-bit
// fingerprint, so a lookup fetches the two buckets at once and compares the fingerprints stored in
// the entries themselves: one round of memory access, nothing that waits on a first miss. A new
// key whose two buckets are full moves an occupant to that occupant's other bucket (a short
// breadth-first search), which keeps the table holding its capacity at ~89% load.
#include "table.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include "places.h"

namespace tollgate {

// Written once by format(), read-only afterwards: every attached process checks it before use.
struct Table::Header {
  uint64_t magic;  // written last, with release ordering: a table is usable once it is set
  uint32_t version;
  uint32_t entry_size;
  TableLayout layout;
  HashSeed seed;
  uint32_t evict;
  // The count in force: a default is recorded as the count it chose, so that an attacher giving
  // that count explicitly is the same table. Read it through shards_in_force().
  uint32_t shards;
  uint64_t requested_capacity;
  Policy policy;  // the creator's; attached processes may differ in everything but the kind
  uint32_t top_keys;
  uint32_t reserved;
  int64_t top_period_ms;

  // Earlier builds of this layout wrote 0 for a default count; the layout has the count it chose.
  uint32_t shards_in_force() const noexcept { return shards != 0 ? shards : layout.shard_count; }
};

struct alignas(64) Table::Shard {
  ShardLock lock;
  // The fields below and this shard's entries: only access them while holding `lock`.
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
  uint64_t displaced;       // entries moved to their other bucket to make room
  uint32_t blocks;          // block entries: while none, a lookup stops at the key's state entry
  uint32_t cursor;          // next entry the incremental reclaimer looks at
};
#if defined(__x86_64__) && defined(__GLIBC__)
static_assert(sizeof(ShardLock) <= 48, "the lock and the per-decision counters share one cache line");
#endif
// NOTE: elsewhere the mutex may be larger (glibc on arm64: 48 bytes, so the lock is 56) and the
// counters then spill into the shard's second line: correct, one more line per decision.

// A key's two candidate buckets, as pointers to their first entries (equal when a shard has one
// bucket, or by chance).
struct Table::Probe {
  Shard* shard;
  Entry* bucket[2];
};

namespace {

constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

inline uint64_t mul_high(uint64_t a, uint64_t b) {
  return uint64_t((static_cast<unsigned __int128>(a) * b) >> 64);
}

// Whether `e` is a block entry (else a key's counters).
inline bool is_block(const Entry& e) { return (e.fp & kBlockBit) != 0; }

}  // namespace

// An eighth more entries than asked for: with two buckets per key and displacement, a table
// holding exactly its capacity (89% full) almost never has to evict or refuse.

TableLayout TableLayout::plan(uint64_t capacity, uint32_t shards, bool top_keys) noexcept {
  TableLayout l{};
  if (shards == 0) {
    shards = 1;
    while (shards < kMaxAutoShards && uint64_t{shards} * kKeysPerAutoShard <= capacity) shards *= 2;
  }
  l.shard_count = shards;
  const uint64_t wanted = (capacity * kHeadroomNum / kHeadroomDen + shards - 1) / shards;
  l.slots_per_shard =
      uint32_t(std::max<uint64_t>(1, (wanted + Table::kBucket - 1) / Table::kBucket) * Table::kBucket);
  l.capacity = uint64_t{l.slots_per_shard} * shards;
  l.shards_offset = align_up(sizeof(Table::Header), 64);
  l.slots_offset = align_up(l.shards_offset + uint64_t{shards} * sizeof(Table::Shard), 128);
  const uint64_t slots_end = l.slots_offset + l.capacity * sizeof(Entry);
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
  header->entry_size = sizeof(Entry);
  header->layout = layout;
  header->seed = seed;
  header->evict = options.evict ? 1 : 0;
  header->shards = layout.shard_count;
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
  return a.capacity == b.capacity && a.shard_count == b.shard_count &&
         a.slots_per_shard == b.slots_per_shard && a.top_offset == b.top_offset &&
         a.shards_offset == b.shards_offset && a.slots_offset == b.slots_offset &&
         a.total_size == b.total_size;
}

// The header fields every layout version keeps in place, so that any version can read them.
struct VersionPrefix {
  uint64_t magic;
  uint32_t version;
};

std::string version_problem(const void* base, size_t size) {
  const auto* prefix = static_cast<const VersionPrefix*>(base);
  const uint64_t magic = size < 4096 ? 0 : __atomic_load_n(&prefix->magic, __ATOMIC_ACQUIRE);
  // A live account's places must never read as an unfinished table that invites its destruction.
  if (magic == Places::kMagic) {
    return "is an upstream account's places (limitedFetch's upstream.store), not a rate-limit table";
  }
  if (magic != Table::kMagic) {
    return "is not a tollgate table (or its creator died before finishing it; destroy it and retry)";
  }
  if (prefix->version != Table::kVersion) {
    return "was made by an incompatible version of tollgate (table layout " +
           std::to_string(prefix->version) + "; this one reads layout " + std::to_string(Table::kVersion) +
           "): stop the processes using it, or give this one another name";
  }
  return std::string();
}

}  // namespace

std::string Table::check(const void* base, size_t size, const TableOptions& options) {
  std::string problem = version_problem(base, size);
  if (!problem.empty()) return problem;
  const auto* header = static_cast<const Header*>(base);
  if (header->entry_size != sizeof(Entry))
    return "is corrupt (entry size " + std::to_string(header->entry_size) + ")";
  if (header->requested_capacity != options.capacity) {
    return "was created with capacity " + std::to_string(header->requested_capacity) + ", not " +
           std::to_string(options.capacity);
  }
  const uint32_t shard_count =
      options.shards != 0 ? options.shards : TableLayout::plan(options.capacity, 0).shard_count;
  if (header->shards_in_force() != shard_count) {
    return "was created with shards " + std::to_string(header->shards_in_force()) + ", not " +
           std::to_string(shard_count) +
           (options.shards == 0 ? " (the default for capacity " + std::to_string(options.capacity) + ")"
                                : "");
  }
  if (header->policy.kind != options.policy.kind) {
    return std::string("was created for a ") + kind_name(header->policy.kind) + " policy, not " +
           kind_name(options.policy.kind);
  }
  if ((header->evict != 0) != options.evict) {
    return std::string("was created with onFull '") + (header->evict != 0 ? "evict" : "refuse") + "'";
  }
  if ((header->top_keys != 0) != options.top_keys ||
      (options.top_keys && header->top_period_ms != options.top_period_ms)) {
    return std::string("was created with topKeys ") +
           (header->top_keys != 0 ? "on, period " + std::to_string(header->top_period_ms) + " ms" : "off");
  }
  // Everything below was derived by us from the options just compared; a mismatch is damage.
  const TableLayout expected = TableLayout::plan(options.capacity, shard_count, options.top_keys);
  if (!same_layout(header->layout, expected) || expected.total_size > size) return "is corrupt or truncated";
  const auto* shards =
      reinterpret_cast<const Shard*>(static_cast<const char*>(base) + expected.shards_offset);
  for (uint32_t s = 0; s < expected.shard_count; ++s) {
    if (!shards[s].lock.looks_sound())
      return "is corrupt (the lock of shard " + std::to_string(s) + " is damaged)";
  }
  return std::string();
}

std::string Table::describe(const void* base, size_t size, TableOptions& options) {
  std::string problem = version_problem(base, size);
  if (!problem.empty()) return problem;
  const auto* header = static_cast<const Header*>(base);
  options.capacity = header->requested_capacity;
  options.shards = header->shards_in_force();
  options.evict = header->evict != 0;
  options.policy = header->policy;
  options.top_keys = header->top_keys != 0;
  options.top_period_ms = header->top_period_ms;
  if (options.capacity < 1 || options.capacity > kMaxCapacity || options.shards > kMaxShards ||
      !policy_is_valid(options.policy)) {
    return "is corrupt";
  }
  return check(base, size, options);
}

Policy Table::creator_policy() const noexcept { return header_->policy; }

Table::Table(void* base) noexcept : base_(static_cast<char*>(base)), header_(static_cast<Header*>(base)) {
  const TableLayout& l = header_->layout;
  shards_ = reinterpret_cast<Shard*>(base_ + l.shards_offset);
  entries_ = reinterpret_cast<Entry*>(base_ + l.slots_offset);
  top_ = l.top_offset == 0 ? nullptr : reinterpret_cast<TopSummary*>(base_ + l.top_offset);
  top_period_ms_ = header_->top_period_ms > 0 ? header_->top_period_ms : kDefaultTopPeriodMs;
  shard_count_ = l.shard_count;
  slots_per_shard_ = l.slots_per_shard;
  buckets_per_shard_ = l.slots_per_shard / kBucket;
  seed_ = header_->seed;
  evict_ = header_->evict != 0;
}

Hash128 Table::hash(const void* key, size_t len) const noexcept { return siphash13_128(seed_, key, len); }

uint64_t Table::fingerprint(const Hash128& h) const noexcept {
  // Bit 0 is the state/block marker; a key whose bits are all zero borrows bit 1, as 0 means empty.
  const uint64_t fp = (h.lo & fp_mask_) & ~kBlockBit;
  return fp != 0 ? fp : 2;
}

Table::Probe Table::probe_of(uint64_t fp) const noexcept {
  // The shard from the high bits of fp × shards, the first bucket from the bits below them (the
  // fraction that product leaves), the second from bits 1-32: independent parts of a uniform hash.
  const unsigned __int128 product = static_cast<unsigned __int128>(fp) * shard_count_;
  const uint32_t shard = uint32_t(product >> 64);
  const uint32_t b0 = uint32_t(mul_high(uint64_t(product), buckets_per_shard_));
  uint32_t b1 = b0;
  if (buckets_per_shard_ > 1) {
    // Any bucket but the first, so the two candidates never coincide.
    const uint32_t offset = 1 + uint32_t((((fp >> 1) & 0xffffffffULL) * (buckets_per_shard_ - 1)) >> 32);
    b1 = b0 + offset < buckets_per_shard_ ? b0 + offset : b0 + offset - buckets_per_shard_;
  }
  Entry* first = entries_ + uint64_t{slots_per_shard_} * shard;
  return Probe{&shards_[shard], {first + uint64_t{b0} * kBucket, first + uint64_t{b1} * kBucket}};
}

void Table::find(const Probe& p, uint64_t fp, KeyEntries& found) const noexcept {
  found = KeyEntries{nullptr, nullptr};
  // Blocks are rare: while the shard has none, the key's state entry ends the search.
  const bool any_blocks = p.shard->blocks != 0;
  const int buckets = p.bucket[0] == p.bucket[1] ? 1 : 2;
  for (int b = 0; b < buckets; ++b) {
    for (uint32_t j = 0; j < kBucket; ++j) {
      Entry& e = p.bucket[b][j];
      if (e.fp == fp) {
        found.state = &e;
        if (!any_blocks) return;
      } else if (e.fp == (fp | kBlockBit)) {
        found.block = &e;
      }
    }
  }
}

void Table::prefetch(const Hash128& h) const noexcept {
  const Probe p = probe_of(fingerprint(h));
  __builtin_prefetch(p.shard);
  for (Entry* bucket : p.bucket) {
    __builtin_prefetch(bucket);
    __builtin_prefetch(bucket + 2);
  }
}

Entry* Table::shard_entries(const Shard& shard) const noexcept {
  return entries_ + uint64_t{slots_per_shard_} * uint64_t(&shard - shards_);
}

uint64_t Table::entry_offset(uint64_t index) const noexcept {
  return header_->layout.slots_offset + index * sizeof(Entry);
}

void Table::release(Shard& shard, Entry& entry) noexcept {
  // The count errs high if this process dies in between (a lookup then only looks further).
  const bool block = is_block(entry);
  entry.fp = 0;
  if (block) --shard.blocks;
  --shard.entries;
  if (count_own_) --own_entries_;
}

void Table::reclaim_step(Shard& shard, int64_t now) noexcept {
  // Two entries per insertion keep up with any insertion rate: a shard is swept once every S/2 inserts.
  Entry* entries = shard_entries(shard);
  for (int k = 0; k < 2; ++k) {
    // Bounded: in shared memory a damaged cursor must not send us outside the shard.
    const uint32_t index = shard.cursor < slots_per_shard_ ? shard.cursor : 0;
    shard.cursor = index + 1 == slots_per_shard_ ? 0 : index + 1;
    Entry& e = entries[index];
    if (e.fp != 0 && expiry_of(e) <= now) {
      release(shard, e);
      ++shard.swept;
    }
  }
}

Entry* Table::displace(const Probe& p, int64_t now) noexcept {
  // Breadth-first over "the occupant of entry n could move to its other bucket", from the eight
  // candidates: the first free or expired entry found ends a path, which is then walked back,
  // each occupant moving one step into the hole its successor left. At ~89% load a free entry is
  // almost always within two moves; the bound keeps a miss in a full shard to a few microseconds.
  struct Node {
    Entry* at;
    int parent;
  };
  constexpr int kMaxNodes = 64;
  Node nodes[kMaxNodes];
  int count = 0;
  // Buckets whose entries are nodes (added whole, but for the last one at the bound): a bucket
  // reached again adds no node. Checked per bucket, not per entry, and only while nodes are still
  // added, so a failed search in a full table costs about a probe and one bucket's read per node.
  constexpr int kMaxBuckets = 2 + (kMaxNodes - 2 * kBucket + kBucket - 1) / kBucket;
  Entry* reached[kMaxBuckets];
  int reached_count = 0;
  const int buckets = p.bucket[0] == p.bucket[1] ? 1 : 2;
  for (int b = 0; b < buckets; ++b) {
    reached[reached_count++] = p.bucket[b];
    for (uint32_t j = 0; j < kBucket; ++j) nodes[count++] = Node{&p.bucket[b][j], -1};
  }
  Entry* const first = shard_entries(*p.shard);
  for (int n = 0; n < count; ++n) {
    const Entry& occupant = *nodes[n].at;
    const Probe home = probe_of(occupant.fp & ~kBlockBit);
    Entry* const bucket_start = first + uint64_t(nodes[n].at - first) / kBucket * kBucket;
    Entry* const other = home.bucket[0] == bucket_start ? home.bucket[1] : home.bucket[0];
    if (other == bucket_start) continue;  // a one-bucket shard: nowhere to go
    for (uint32_t j = 0; j < kBucket; ++j) {
      Entry& target = other[j];
      if (target.fp != 0 && expiry_of(target) > now) continue;
      // A path found: walk it back from the hole to the candidate it frees.
      if (target.fp != 0) {
        release(*p.shard, target);
        ++p.shard->swept;
      }
      Entry* hole = &target;
      for (int at = n; at >= 0; at = nodes[at].parent) {
        *hole = *nodes[at].at;
        hole = nodes[at].at;
        ++p.shard->displaced;
      }
      hole->fp = 0;  // moved out: free for the caller, who counts it as a new entry
      return hole;
    }
    if (count == kMaxNodes) continue;  // at the bound: searched for a hole, adds no nodes
    bool seen = false;
    for (int k = 0; k < reached_count && !seen; ++k) seen = reached[k] == other;
    if (seen) continue;
    reached[reached_count++] = other;
    for (uint32_t j = 0; j < kBucket && count < kMaxNodes; ++j) nodes[count++] = Node{&other[j], n};
  }
  return nullptr;
}

Entry* Table::claim(const Probe& p, uint64_t fp, int64_t now, int64_t* earliest_expiry,
                    bool moving) noexcept {
  Shard& shard = *p.shard;
  // The emptier of the two buckets keeps them evenly filled, so displacement is rarely needed.
  Entry* free_entry = nullptr;
  int best_free = 0;
  const int buckets = p.bucket[0] == p.bucket[1] ? 1 : 2;
  for (int b = 0; b < buckets; ++b) {
    int free_count = 0;
    Entry* first_free = nullptr;
    for (uint32_t j = 0; j < kBucket; ++j) {
      if (p.bucket[b][j].fp == 0) {
        if (first_free == nullptr) first_free = &p.bucket[b][j];
        ++free_count;
      }
    }
    if (free_count > best_free) {
      best_free = free_count;
      free_entry = first_free;
    }
  }
  if (free_entry == nullptr) {
    // Both full: reuse an expired candidate, else move one aside, else evict the candidate nearest
    // to expiry, else refuse.
    Entry* victim = nullptr;
    int64_t victim_expiry = kNever;
    for (int b = 0; b < buckets; ++b) {
      for (uint32_t j = 0; j < kBucket; ++j) {
        const int64_t expiry = expiry_of(p.bucket[b][j]);
        if (expiry < victim_expiry) {
          victim = &p.bucket[b][j];
          victim_expiry = expiry;
        }
      }
    }
    if (victim_expiry <= now) {
      ++shard.swept;
      free_entry = victim;
    } else if ((free_entry = displace(p, now)) != nullptr) {
      // moved aside
    } else if (signal_full_ && !moving) {
      *earliest_expiry = victim_expiry;
      return nullptr;
    } else if (evict_) {
      ++shard.evictions;
      free_entry = victim;
    } else {
      ++shard.refused;
      *earliest_expiry = victim_expiry;
      return nullptr;
    }
    if (free_entry->fp != 0) {
      release(shard, *free_entry);
    }
  }
  ++shard.entries;
  if (count_own_) ++own_entries_;
  // Order matters only if this process dies before the caller writes the state (the lock then
  // passes on as recovered): an entry that reads as expired is indistinguishable from a fresh
  // one, so the new key never inherits a previous occupant's counters.
  free_entry->bits[0] = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if ((fp & kBlockBit) != 0) ++shard.blocks;  // before the entry appears: the count never errs low
  free_entry->fp = fp;
  return free_entry;
}

ShardGuard Table::lock_key(const Probe& p) noexcept {
  // An in-process table is one JS thread's (count_own_entries): its decisions take no lock, the
  // robust mutex's trylock and unlock being a sizeable share of a hot-key call's instructions.
  if (count_own_) return ShardGuard(p.shard->lock, ShardGuard::Unlocked{});
  return ShardGuard(p.shard->lock, p.shard->contended, lock_timeout_ms_, lock_failures_);
}

template <typename R, typename Op>
R Table::with_key(const Hash128& h, R if_unlocked, Op&& op) noexcept {
  const uint64_t fp = fingerprint(h);
  const Probe p = probe_of(fp);
  const ShardGuard guard = lock_key(p);
  if (!guard.held()) return if_unlocked;
  KeyEntries found;
  find(p, fp, found);
  return op(p, fp, found);
}

Verdict Table::consume(const Hash128& h, const Policy& policy, int64_t limit, int64_t cost, int64_t now,
                       bool commit, const KeyText* key) noexcept {
  Verdict unlocked{false, limit, 0, 0, 0};
  unlocked.lock_failed = true;
  return with_key(h, unlocked, [&](const Probe& p, uint64_t fp, const KeyEntries& found) -> Verdict {
    Shard& shard = *p.shard;
    TopSummary* top = commit && top_ != nullptr && key != nullptr ? &top_[p.shard - shards_] : nullptr;
    const int64_t expiry = found.state != nullptr ? expiry_of(*found.state) : 0;
    const bool live = expiry > now;
    CounterState state = live ? load_state(*found.state, policy.kind) : fresh_state(policy, limit, now);

    if (found.block != nullptr && expiry_of(*found.block) > now) {
      const int64_t until = expiry_of(*found.block);
      Verdict v = decide(policy, limit, state, now, cost, false);
      v.allowed = false;
      v.remaining = 0;
      // The later of the block's end and the reset the state itself shows (a sliding window's is
      // its current window's end, not the entry's expiry).
      const int64_t shown = !live ? 0 : policy.kind == PolicyKind::kSlidingWindow ? now + v.reset_ms : expiry;
      v.reset_ms = std::max(shown, until) - now;
      v.retry_ms = cost > limit ? kNever : std::max(v.retry_ms, until - now);
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
    Entry* entry = found.state;
    if (entry == nullptr) {
      reclaim_step(shard, now);
      int64_t earliest = kNever;
      entry = claim(p, fp, now, &earliest);
      if (entry == nullptr) {
        if (signal_full_) {
          Verdict none{false, limit, 0, 0, 0};
          none.no_room = true;
          return none;
        }
        return Verdict{false, limit, 0, 0, earliest - now};  // counted as refused
      }
    }
    ++shard.allowed;
    if (v.remaining * 5 <= v.limit) ++shard.near_limit;
    store_state(*entry, policy.kind, state, now + v.expires_ms);
    return v;
  });
}

bool Table::refund(const Hash128& h, const Policy& policy, int64_t limit, int64_t amount,
                   int64_t now) noexcept {
  return with_key(h, false, [&](const Probe&, uint64_t, const KeyEntries& found) {
    Entry* entry = found.state;
    if (entry == nullptr || expiry_of(*entry) <= now) return true;
    CounterState state = load_state(*entry, policy.kind);
    const int64_t reset = tollgate::refund(policy, limit, state, now, amount);
    store_state(*entry, policy.kind, state, now + reset);
    return true;
  });
}

bool Table::block(const Hash128& h, int64_t until, int64_t now) noexcept {
  return with_key(h, false, [&](const Probe& p, uint64_t fp, const KeyEntries& found) {
    if (found.block != nullptr) {
      store_block(*found.block, std::max(until, expiry_of(*found.block)));
      return true;
    }
    reclaim_step(*p.shard, now);
    int64_t earliest = kNever;
    Entry* block = claim(p, fp | kBlockBit, now, &earliest);
    if (block == nullptr) return false;
    store_block(*block, until);
    return true;
  });
}

bool Table::reset(const Hash128& h, int64_t now) noexcept {
  return with_key(h, false, [&](const Probe& p, uint64_t, const KeyEntries& found) {
    bool live = false;
    for (Entry* e : {found.state, found.block}) {
      if (e == nullptr) continue;
      live = live || expiry_of(*e) > now;
      release(*p.shard, *e);
    }
    return live;
  });
}

void Table::put(const Entry& moved, int64_t now) noexcept {
  const Probe p = probe_of(moved.fp & ~kBlockBit);
  ShardGuard guard(p.shard->lock);
  KeyEntries found;
  find(p, moved.fp & ~kBlockBit, found);
  Entry* target = is_block(moved) ? found.block : found.state;
  if (target == nullptr) {
    int64_t earliest = kNever;
    target = claim(p, moved.fp, now, &earliest, true);
    if (target == nullptr) return;  // refuse mode and no room: the entry is dropped, counted as refused
  }
  *target = moved;
}

void Table::move_key(const Hash128& h, Table& into, int64_t now) noexcept {
  const uint64_t fp = fingerprint(h);
  const Probe p = probe_of(fp);
  Entry moved[2];
  int count = 0;
  {
    ShardGuard guard(p.shard->lock);
    KeyEntries found;
    find(p, fp, found);
    for (Entry* e : {found.state, found.block}) {
      if (e == nullptr) continue;
      if (expiry_of(*e) > now) moved[count++] = *e;
      release(*p.shard, *e);
    }
  }
  for (int i = 0; i < count; ++i) into.put(moved[i], now);
}

bool Table::migrate(uint64_t& cursor, uint32_t count, Table& into, int64_t now) noexcept {
  const uint64_t total = slot_count();
  for (uint32_t n = 0; n < count && cursor < total; ++n, ++cursor) {
    Shard& shard = shards_[cursor / slots_per_shard_];
    Entry& e = entries_[cursor];
    ShardGuard guard(shard.lock);
    if (e.fp == 0) continue;
    // The entry carries its fingerprint, which places it in the larger table too.
    if (expiry_of(e) > now) into.put(e, now);
    release(shard, e);
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
  probe_of(fingerprint(h)).shard->lock.lock(-1, contended);
}

uint64_t Table::sweep(int64_t now) noexcept {
  uint64_t total = 0;
  for (uint32_t s = 0; s < shard_count_; ++s) {
    Shard& shard = shards_[s];
    Entry* entries = shard_entries(shard);
    ShardGuard guard(shard.lock, lock_timeout_ms_);
    if (!guard.held()) continue;
    for (uint32_t i = 0; i < slots_per_shard_; ++i) {
      if (entries[i].fp != 0 && expiry_of(entries[i]) <= now) {
        release(shard, entries[i]);
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
    st.displaced += shard.displaced;
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
