// Limits the C++ core shares with the TypeScript engine and the Lua scripts. The TypeScript side
// declares the same values in src/constants.ts; test/constants.test.ts checks that they agree.
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

}  // namespace tollgate
