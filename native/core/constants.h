// Limits the C++ core shares with the TypeScript engine and the Lua scripts. The TypeScript side
// declares the same values in src/constants.ts; test/package.test.ts checks that they agree.
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

}  // namespace tollgate
