// A fixed-capacity hash table of per-key limiter state, split into independently locked shards.
//
// Thread safety: every public member may be called from any thread or process attached to the
// region. Each operation hashes outside any lock, then holds exactly one shard lock while it runs;
// nothing inside the table is reachable except through those locked operations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "algorithms.h"
#include "constants.h"
#include "entry.h"
#include "shard_lock.h"
#include "siphash.h"
#include "top_keys.h"

namespace tollgate {

// Entries per bucket: a bucket is two cache lines (the adjacent-line prefetcher fetches them as a
// pair), and a key may live in either of two buckets of its shard.
static_assert(kBucketSlots * sizeof(Entry) == 128, "a bucket is two cache lines");

// Where everything sits inside the region, as offsets from its base.
struct TableLayout {
  uint64_t capacity;  // entries in all
  uint32_t shard_count;
  uint32_t slots_per_shard;  // entries per shard, a whole number of buckets
  uint64_t shards_offset;
  uint64_t slots_offset;  // the entries, shard after shard
  uint64_t top_offset;    // one TopSummary per shard, or 0 when heavy hitters are off
  uint64_t total_size;

  // Entries for `capacity` keys plus headroom, in whole buckets per shard;
  // shards == 0 picks a count.
  static TableLayout plan(uint64_t capacity, uint32_t shards, bool top_keys = false) noexcept;
};

// What a table is made for; shared tables compare it on attach.
struct TableOptions {
  uint64_t capacity;  // as asked for: layout adds headroom
  uint32_t shards;    // 0 = chosen from the capacity (the count chosen is what a table records)
  bool evict;         // when full: evict the entry nearest to expiry, or refuse the new key
  Policy policy;
  bool top_keys = false;                        // keep heavy-hitter summaries
  int64_t top_period_ms = kDefaultTopPeriodMs;  // their counts halve this often
};

struct TableStats {
  uint64_t entries;   // occupied entries (a blocked key has two), including expired ones not yet reclaimed
  uint64_t capacity;  // entries in all
  uint64_t shards;
  uint64_t evictions;  // live entries dropped to make room for a new key
  uint64_t refused;    // new keys turned away because both their buckets were full
  uint64_t displaced;  // entries moved to their other bucket to make room for a new key
  uint64_t swept;      // expired entries reclaimed (by sweep, incrementally, or on reuse)
  uint64_t lock_recoveries;
  uint64_t bytes;              // size of the region
  uint64_t allowed;            // consuming decisions allowed
  uint64_t denied;             // ... denied by the policy
  uint64_t denied_blocked;     // ... denied by block()
  uint64_t near_limit;         // ... allowed with at most a fifth of the limit left
  uint64_t contended;          // lock acquisitions that had to wait for another thread or process
  uint64_t max_shard_entries;  // the fullest shard's entries (load is uneven by chance)
};

class Table {
 public:
  // Entries per bucket; also the minimum shard size.
  static constexpr uint32_t kBucket = kBucketSlots;
  static constexpr uint64_t kMaxCapacity = tollgate::kMaxCapacity;
  static constexpr uint64_t kMagic = 0x31657461676c6c74ULL;  // "tllgate1"
  // 4: 32-byte packed entries in two-line buckets, blocks as entries of their own. The magic and
  // the version keep their offsets in every layout, so each version refuses the others' segments.
  static constexpr uint32_t kVersion = 4;

  // Writes an empty table into zeroed memory of plan(capacity, shards).total_size bytes; the magic
  // number goes last, so a reader that sees it sees a whole table. False if a lock failed.
  static bool format(void* base, const TableOptions& options, HashSeed seed) noexcept;
  // Whether `size` bytes at `base` hold a table this process may use with `options`: empty if so,
  // else what differs, phrased to follow "the table ...". The policy's kind must match; its
  // parameters may differ (each process decides with its own).
  static std::string check(const void* base, size_t size, const TableOptions& options);
  // Reads the options a table was made with (for inspection; `shards` is the count in force, never
  // 0); empty if it is a sound table, else what is wrong, as check() words it.
  static std::string describe(const void* base, size_t size, TableOptions& options);

  // Attaches to memory that format() prepared (possibly in another process, at another address).
  explicit Table(void* base) noexcept;

  Hash128 hash(const void* key, size_t len) const noexcept;
  // How long an operation waits for a shard lock before giving up (a live holder stopped or
  // stuck); negative waits for ever. Per attachment: each process chooses its own.
  void set_lock_timeout(int64_t ms) noexcept { lock_timeout_ms_ = ms; }
  // Operations this attachment gave up because a lock was not had in time, or looked damaged.
  uint64_t lock_failures() const noexcept { return lock_failures_; }
  // The policy of the process that created the table.
  Policy creator_policy() const noexcept;
  // NOTE: for tests only: keeps only the low `bits` of every fingerprint this attachment computes,
  // so that different keys share fingerprints (and, with few bits, buckets) on purpose.
  void debug_fingerprint_bits(unsigned bits) noexcept {
    fp_mask_ = bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  }

  // A hint for batches: starts fetching both of the key's buckets (and its shard), changing
  // nothing, so that the misses of many keys overlap.
  void prefetch(const Hash128& h) const noexcept;

  // Decides a request; commits it when allowed and `commit` is set. A new key that finds no room
  // is denied with retry_ms until the earliest entry in its buckets expires (refuse mode only).
  // `key` (optional) feeds the heavy-hitter summary of consuming decisions when it is on.
  // When the shard lock is not had in time the verdict has lock_failed set and nothing changed.
  Verdict consume(const Hash128& h, const Policy& policy, int64_t limit, int64_t cost, int64_t now,
                  bool commit, const KeyText* key = nullptr) noexcept;
  // The heavy hitters of every shard as of `now`, unsorted; empty when they are off.
  std::vector<TopKey> top_keys(int64_t now);
  // Gives back up to `amount` to a live key; a missing key is left missing. False only when the
  // lock was not had in time.
  bool refund(const Hash128& h, const Policy& policy, int64_t limit, int64_t amount, int64_t now) noexcept;
  // Denies every request for the key until `until` (a block only ever lengthens). The key's
  // counters are kept as they are. False if the block found no room (or the lock was not had).
  bool block(const Hash128& h, int64_t until, int64_t now) noexcept;
  // Forgets the key, block included. True if it was live.
  bool reset(const Hash128& h, int64_t now) noexcept;
  // NOTE: for crash tests only: takes the shard lock of `h` and returns holding it.
  void debug_hold_lock(const Hash128& h) noexcept;
  // Growth of in-process tables (GrowableTable): moving the key's live entries (state and block)
  // into another table, and a step of moving every live entry over.
  // NOTE: in-process only: these hold one shard lock of each table at a time.
  void move_key(const Hash128& h, Table& into, int64_t now) noexcept;
  // Moves the live entries among up to `count` entries from `cursor` on into `into`; false once
  // every entry has been visited.
  bool migrate(uint64_t& cursor, uint32_t count, Table& into, int64_t now) noexcept;
  // Entries placed minus entries released through this object, counted only once
  // count_own_entries() is called: the table's entries when one thread owns it (in process).
  // Such a table's decisions then take no shard lock either (see lock_key).
  // NOTE: not counted by default, as threads and processes sharing a table would race on it.
  void count_own_entries() noexcept { count_own_ = true; }
  // A new key that finds no room is neither evicted for nor refused, and nothing is counted:
  // consume() says no_room and block() false. For a growing table's generations below its
  // capacity, which grow instead of losing a key (see GrowableTable::consume).
  void signal_when_full(bool on) noexcept { signal_full_ = on; }
  bool signals_when_full() const noexcept { return signal_full_; }
  uint64_t own_entries() const noexcept { return own_entries_; }
  uint64_t slot_count() const noexcept { return uint64_t{slots_per_shard_} * shard_count_; }
  // Byte offset of entry `index` (in migrate()'s cursor order) from the table's base.
  uint64_t entry_offset(uint64_t index) const noexcept;

  // Reclaims every expired entry now; returns how many. Shards whose lock is not had in time are
  // passed over (here and in stats()).
  uint64_t sweep(int64_t now) noexcept;
  TableStats stats() const noexcept;

 private:
  friend struct TableLayout;
  struct Header;
  struct Shard;
  struct Probe;
  // A key's state and block entries, null where absent.
  struct KeyEntries {
    Entry* state;
    Entry* block;
  };

  uint64_t fingerprint(const Hash128& h) const noexcept;
  Probe probe_of(uint64_t fp) const noexcept;
  // Finds the key's state and block entries in one pass over its buckets (into `found`, which
  // the hot path then reads in place rather than copying).
  void find(const Probe& p, uint64_t fp, KeyEntries& found) const noexcept;
  // The lock every operation on one key takes first: its shard's, waited for at most the lock
  // timeout, a wait counted in the shard's `contended`, a failure in lock_failures_.
  ShardGuard lock_key(const Probe& p) noexcept;
  // Finds the key's slot under its lock: how consume, refund, block and reset start. Hashes to the
  // fingerprint, takes the shard lock (lock_key), finds the key's entries, and runs
  // `op(const Probe&, uint64_t fp, const KeyEntries&)` holding the lock, returning what it returns;
  // returns `if_unlocked` without running it when the lock was not had in time.
  template <typename R, typename Op>
  R with_key(const Hash128& h, R if_unlocked, Op&& op) noexcept;
  // An entry for `fp` in its buckets (emptied, with `fp` set), moving others aside if need be; null
  // when there is no room (refuse mode, or signal_when_full() unless `moving`: an entry moved in by
  // a migration is placed as onFull says), with the earliest expiry among the candidates in
  // `earliest_expiry`. Called with the shard lock held.
  Entry* claim(const Probe& p, uint64_t fp, int64_t now, int64_t* earliest_expiry,
               bool moving = false) noexcept;
  // Frees an entry of the probe's buckets by moving occupants along a path to a free (or expired)
  // entry of their other buckets; null if no short path exists.
  Entry* displace(const Probe& p, int64_t now) noexcept;
  void release(Shard& shard, Entry& entry) noexcept;
  void reclaim_step(Shard& shard, int64_t now) noexcept;
  Entry* shard_entries(const Shard& shard) const noexcept;
  // Puts a copy of a live entry (state or block) of another generation into this table.
  void put(const Entry& entry, int64_t now) noexcept;

  char* base_;
  Header* header_;
  Shard* shards_;
  Entry* entries_;
  TopSummary* top_;  // null when heavy hitters are off
  int64_t top_period_ms_;
  uint32_t shard_count_;
  uint32_t slots_per_shard_;
  uint32_t buckets_per_shard_;
  HashSeed seed_;
  bool evict_;
  uint64_t fp_mask_ = ~uint64_t{0};
  int64_t lock_timeout_ms_ = -1;
  uint64_t own_entries_ = 0;  // see own_entries(); only written when count_own_
  bool count_own_ = false;
  bool signal_full_ = false;
  uint64_t lock_failures_ = 0;  // this attachment's; its thread only
};

}  // namespace tollgate
