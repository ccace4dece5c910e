// The four limiting policies as plain integer parameters, shared by every process that uses a table.
#pragma once

#include <cstdint>

namespace tollgate {

enum class PolicyKind : uint32_t {
  kFixedWindow = 1,
  kSlidingWindow = 2,
  kTokenBucket = 3,
  kGcra = 4,
};

// Rates are exact rationals (rate_tokens per rate_interval_ms), so "10 per 13 s" never drifts.
// `limit` is the fixed/sliding window limit, the token bucket capacity or the GCRA burst.
// NOTE: callers validate that limit * window_ms and limit * rate_interval_ms stay below 2^50; the
// arithmetic here relies on it (the TypeScript engine needs the same bound for exact doubles).
struct Policy {
  PolicyKind kind;
  int64_t limit;
  int64_t window_ms;         // fixed and sliding window only
  int64_t rate_tokens;       // token bucket and GCRA only
  int64_t rate_interval_ms;  // token bucket and GCRA only
};

}  // namespace tollgate
