// Limits the C++ core shares with the TypeScript engine and the Lua scripts. The TypeScript side
// declares the same values in src/common/constants.ts; the addon exports these (its `constants`),
// and test/package.test.ts compares the two by value.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tollgate {

// Longest key, in UTF-16 code units (a JS string's length).
constexpr size_t kMaxKeyUnits = 1024;

// Longest block(), in ms (about 35,000 years): longer durations are cut to it, so that now plus
// the duration stays exact in a double on every engine.
constexpr int64_t kMaxBlockMs = int64_t{1} << 50;

// Most lock shards a table may have.
constexpr uint32_t kMaxShards = 4096;

// Most keys a table may be made for (a mistake beyond: 8 GiB of slots).
constexpr uint64_t kMaxCapacity = uint64_t{1} << 27;

// Entries in a bucket (of two cache lines): a key may live in either of two buckets of its shard.
constexpr uint32_t kBucketSlots = 4;

// Slots planned per key asked for (9/8: an eighth of headroom, so a table holds its capacity).
constexpr uint64_t kHeadroomNum = 9;
constexpr uint64_t kHeadroomDen = 8;

// Shards chosen when none are asked for: doubling while each keeps at least this many keys, up to
// the most chosen automatically.
constexpr uint64_t kKeysPerAutoShard = 8192;
constexpr uint32_t kMaxAutoShards = 256;

// Bound on limit * window and limit * refill interval: every intermediate product of the
// algorithms stays below it, so both engines compute exactly (in int64 and in doubles).
constexpr int64_t kMaxProduct = int64_t{1} << 50;

// How often heavy-hitter counts halve when no period is given, in ms.
constexpr int64_t kDefaultTopPeriodMs = 60000;

// The version of the addon's interface to JavaScript; the loader refuses a binary of another.
constexpr int kAbiVersion = 6;

// Indices into the Float64Array the TypeScript side reads a decision from.
enum Detail : uint32_t {
  kDetailAllowed = 0,
  kDetailLimit,
  kDetailRemaining,
  kDetailResetMs,
  kDetailRetryAfterMs,
  kDetailSize
};

// What a call on a closed table says (TypeScript checks first, with the same words).
constexpr const char* kClosedMessage = "The limiter is closed; create a new one to make further decisions";

static_assert(kHeadroomNum > kHeadroomDen, "a table needs headroom beyond its capacity");
static_assert(kMaxBlockMs <= kMaxProduct, "now plus a block stays exact in a double");

}  // namespace tollgate
