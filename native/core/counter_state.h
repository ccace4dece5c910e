// The per-key algorithm state stored in a slot, and the verdict an algorithm returns.
//
// Each policy kind has its own named state; the terms and invariants are documented once, in
// docs/internals.md ("The algorithms' state"). The TypeScript engine (src/engine/js/counter-state.ts)
// uses the same names in camelCase.
#pragma once

#include <cstdint>
#include <limits>

namespace tollgate {

// PolicyKind::kFixedWindow (public fixedWindow): a window that starts at the key's first allowed
// request after the previous one ended.
struct FixedWindowState {
  int64_t window_start;  // ms; the window ends at window_start + window_ms
  int64_t count;         // units allowed in the window, at most the limit
};

// PolicyKind::kSlidingWindow (public slidingWindow): the weighted two-window counter over windows
// aligned to window_ms.
struct SlidingWindowState {
  int64_t window_start;    // ms, a multiple of window_ms: the window `count` belongs to
  int64_t count;           // units allowed in that window
  int64_t previous_count;  // units allowed in the window before it
};

// PolicyKind::kTokenBucket (public tokenBucket): whole tokens plus a fractional credit, refilled
// lazily at rate_tokens per rate_interval_ms.
struct TokenBucketState {
  int64_t tokens;       // whole tokens as of refilled_at, at most the capacity
  int64_t refilled_at;  // ms up to which refills are counted; never goes back
  int64_t credit;       // toward the next token, in 1/rate_interval_ms of a token: below rate_interval_ms
};

// PolicyKind::kGcra (public leakyBucket): the generic cell rate algorithm's theoretical arrival
// time, whole ms plus a fraction.
struct GcraState {
  int64_t tat;           // ms, whole part of the theoretical arrival time
  int64_t tat_fraction;  // in 1/rate_tokens ms: below rate_tokens
};

// One key's state, read through the member of its policy's kind (the only one ever written for
// it: a table has one kind, which every attached process shares).
union CounterState {
  FixedWindowState fixed_window;
  SlidingWindowState sliding_window;
  TokenBucketState token_bucket;
  GcraState gcra;
};
static_assert(sizeof(CounterState) == 3 * sizeof(int64_t), "three integers, as every kind's state fits");

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
