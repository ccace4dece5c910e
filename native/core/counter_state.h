// The per-key algorithm state stored in a slot, and the verdict an algorithm returns.
#pragma once

#include <cstdint>
#include <limits>

namespace tollgate {

// Four integers whose meaning depends on the policy kind:
//   fixed window:   a = window start (ms), b = count
//   sliding window: a = current window start (aligned to window_ms), b = current count, c = previous count
//   token bucket:   a = tokens, b = time of last refill (ms), c = fractional credit in 1/interval units
//   GCRA:           a = theoretical arrival time (whole ms), b = its fraction in 1/rate_tokens ms
struct CounterState {
  int64_t a;
  int64_t b;
  int64_t c;
  int64_t d;
};

// Marks "never": a cost above the limit can never pass.
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct Verdict {
  bool allowed;
  int64_t limit;
  int64_t remaining;
  int64_t reset_ms;  // from now until the state is indistinguishable from a fresh key
  int64_t retry_ms;  // 0 when allowed; exact wait for this cost when denied; kNever if impossible
  bool lock_failed = false;  // the shard lock was not had in time: nothing was decided
};

}  // namespace tollgate
