// What a table's External holds: the table, its policy, where a decision is written for
// TypeScript to read, the clock, and the last key's hash. A handle serves one JS thread.
#pragma once

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "../core/clock.h"
#include "../core/constants.h"
#include "../core/growable_table.h"
#include "key_bytes.h"

namespace tollgate {

struct TableHandle {
  std::unique_ptr<GrowableTable> table;  // null once closed
  Policy policy{};
  double* detail = nullptr;       // kDetailSize doubles, kept alive by detail_ref
  const double* clock = nullptr;  // the test clock's one double, or null for the monotonic clock
  Napi::Reference<Napi::Float64Array> detail_ref;
  Napi::Reference<Napi::Float64Array> clock_ref;
  CoarseMonotonicClock host_clock;

  // Shared tables only: what a decision is when its shard lock was not had in time.
  bool lock_fails_open = true;
  int64_t lock_timeout_ms = -1;
  bool test_hooks = false;

  int64_t now() noexcept { return clock != nullptr ? int64_t(clock[0]) : host_clock.now_ms(); }

  // The last short key and its hash: a hot key (one global limit, one busy client) skips
  // SipHash on repeats for the price of a short compare.
  static constexpr size_t kHashCacheBytes = 96;  // 48 code units
  uint8_t cached_key[kHashCacheBytes] = {};
  size_t cached_length = 0;
  Hash128 cached_hash{};

  Hash128 hash(const KeyBytes& key) noexcept {
    const size_t length = key.bytes();
    if (length == cached_length && std::memcmp(key.data(), cached_key, length) == 0) return cached_hash;
    const Hash128 h = table->hash(key.data(), length);
    if (length <= kHashCacheBytes) {
      std::memcpy(cached_key, key.data(), length);
      cached_length = length;
      cached_hash = h;
    }
    return h;
  }

  // A verdict whose shard lock was not had in time becomes what onLockTimeout says.
  Verdict settle(const Verdict& v, int64_t limit) const noexcept {
    if (!v.lock_failed) return v;
    if (lock_fails_open) return Verdict{true, limit, limit, 0, 0};
    return Verdict{false, limit, 0, 0, std::max<int64_t>(1, lock_timeout_ms)};
  }

  void write(const Verdict& v) const noexcept {
    detail[kDetailAllowed] = v.allowed ? 1 : 0;
    detail[kDetailLimit] = double(v.limit);
    detail[kDetailRemaining] = double(v.remaining);
    detail[kDetailResetMs] = double(v.reset_ms);
    detail[kDetailRetryAfterMs] = v.retry_ms == kNever ? INFINITY : double(v.retry_ms);
  }
};

// A table's handle is owned by its JS External and deleted when that is collected: one finalizer
// per table (see table_binding.cc).
using Handle = TableHandle*;

}  // namespace tollgate
