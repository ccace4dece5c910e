// Integer-exact fixed window, sliding window, token bucket and GCRA decisions on one key's state.
#pragma once

#include "counter_state.h"
#include "policy.h"

namespace tollgate {

// State of a key never seen (or expired) at time `now`.
CounterState fresh_state(const Policy& policy, int64_t limit, int64_t now) noexcept;

// Decides a request of `cost` (>= 1). When `commit` is true and the request is allowed, `state` is
// updated; a denial never changes it. `remaining` is counted after the request when committed.
Verdict decide(const Policy& policy, int64_t limit, CounterState& state, int64_t now, int64_t cost,
               bool commit) noexcept;

// Gives `amount` back (never beyond a fresh key's allowance) and returns, in ms from now, when the
// state will be indistinguishable from a fresh key (the entry's new expiry).
int64_t refund(const Policy& policy, int64_t limit, CounterState& state, int64_t now,
               int64_t amount) noexcept;

}  // namespace tollgate
