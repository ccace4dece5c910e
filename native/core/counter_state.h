// The per-key algorithm state stored in a slot, and the verdict an algorithm returns.
#pragma once

#include <cstdint>
#include <limits>

namespace tollgate {

// Three integers whose meaning depends on the policy kind:
//   fixed window:   a = window start (ms), b = count
//   sliding window: a = current window start (aligned to window_ms), b = current count, c = previous count
//   token bucket:   a = tokens, b = time of last refill (ms), c = fractional credit in 1/interval units
//   GCRA:           a = theoretical arrival time (whole ms), b = its fraction in 1/rate_tokens ms
struct CounterState {
  int64_t a;
  int64_t b;
  int64_t c;
};

// Marks "never": a cost above the limit can never pass.
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct Verdict {
  bool allowed;
  int64_t limit;
  int64_t remaining;
  // What the caller is told: from now until the key is back to a fresh state, except for a sliding
  // window, where it is until the current window ends (never more than one window; its requests
  // then weigh less and less for one more window).
  int64_t reset_ms;
  int64_t retry_ms;          // 0 when allowed; exact wait for this cost when denied; kNever if impossible
  bool lock_failed = false;  // the shard lock was not had in time: nothing was decided
  // From now until the state is indistinguishable from a fresh key (the entry's expiry); set by
  // decide() for every kind (reset_ms except for a sliding window).
  int64_t expires_ms = -1;
  // A table that signals when full (a growing table's generation below its capacity) had no room
  // for this new key: nothing was written or counted, and the caller grows and asks again.
  bool no_room = false;
};

}  // namespace tollgate
