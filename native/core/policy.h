// The four limiting policies as plain integer parameters, shared by every process that uses a table.
#pragma once

#include <cstdint>

#include "constants.h"

namespace tollgate {

// Each kind implements the public policy named beside it (src/common/policies.ts; the TypeScript
// side's PolicyCode has the same values).
enum class PolicyKind : uint32_t {
  kFixedWindow = 1,    // fixedWindow
  kSlidingWindow = 2,  // slidingWindow
  kTokenBucket = 3,    // tokenBucket
  kGcra = 4,           // leakyBucket: a leaky bucket as a meter is GCRA, which is how it is computed
};

// Rates are exact rationals (rate_tokens per rate_interval_ms), so "10 per 13 s" never drifts:
// tokenBucket's refillTokens per refillIntervalMs, leakyBucket's rateTokens per rateIntervalMs.
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

// Whether `limit` (the policy's or a per-call override) keeps every product within kMaxProduct.
inline bool limit_is_valid(const Policy& p, int64_t limit) noexcept {
  if (limit < 1) return false;
  const int64_t per = p.kind == PolicyKind::kFixedWindow || p.kind == PolicyKind::kSlidingWindow
                          ? p.window_ms
                          : p.rate_interval_ms;
  return per >= 1 && limit <= kMaxProduct / per;
}

// The bounds the algorithms rely on; the binding refuses anything else rather than divide by zero.
inline bool policy_is_valid(const Policy& p) noexcept {
  switch (p.kind) {
    case PolicyKind::kFixedWindow:
    case PolicyKind::kSlidingWindow:
      return p.window_ms >= 1 && limit_is_valid(p, p.limit);
    case PolicyKind::kTokenBucket:
    case PolicyKind::kGcra:
      return p.rate_tokens >= 1 && p.rate_interval_ms >= 1 &&
             p.rate_tokens <= kMaxProduct / p.rate_interval_ms && limit_is_valid(p, p.limit);
  }
  return false;
}

}  // namespace tollgate
