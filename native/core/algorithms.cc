// Each algorithm is a pure function of (policy, state, now, cost); the TypeScript engine mirrors it line by
// line.
#include "algorithms.h"

#include <algorithm>

namespace tollgate {
namespace {

// Policies are validated so that limit * window_ms and limit * rate_interval_ms stay below 2^50, so
// every product below fits int64 (and a double exactly, which the TypeScript engine relies on).
// The one unbounded quantity, elapsed time, is only ever compared through a division.

inline int64_t floor_div(int64_t a, int64_t b) { return a / b; }  // operands are non-negative here
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- fixed window (public fixedWindow): per-key windows that start at the key's first allowed request ----

Verdict fixed_window(const Policy& p, int64_t limit, FixedWindowState& s, int64_t now, int64_t cost,
                     bool commit) {
  int64_t window_start = s.window_start;
  int64_t count = s.count;
  if (now >= window_start + p.window_ms) {
    window_start = now;
    count = 0;
  }
  const int64_t reset = window_start + p.window_ms - now;
  if (cost > limit || count + cost > limit) {
    return Verdict{false, limit, std::max<int64_t>(0, limit - count), reset, cost > limit ? kNever : reset};
  }
  if (commit) {
    count += cost;
    s.window_start = window_start;
    s.count = count;
  }
  return Verdict{true, limit, limit - count, reset, 0};
}

// ---- sliding window (public slidingWindow): the weighted two-window counter over windows aligned to
// window_ms ----

// The state as of `now` (its window the current one), and how far into that window `now` is.
struct SlidingView {
  int64_t window_start;
  int64_t count;
  int64_t previous_count;
  int64_t elapsed;  // ms into the current window
};

SlidingView sliding_view(const Policy& p, const SlidingWindowState& s, int64_t now) {
  const int64_t w = p.window_ms;
  const int64_t aligned = now - now % w;
  SlidingView v{aligned, 0, 0, 0};
  if (s.window_start >= aligned) {  // same window (or a clock that stepped back: keep the stored window)
    v.window_start = s.window_start;
    v.count = s.count;
    v.previous_count = s.previous_count;
  } else if (s.window_start == aligned - w) {
    v.previous_count = s.count;
  }
  v.elapsed = std::max<int64_t>(0, now - v.window_start);
  return v;
}

// The previous window's count weighted by the part of it still inside the sliding window, rounded up.
int64_t weighted_previous(const Policy& p, const SlidingView& v) {
  const int64_t w = p.window_ms;
  if (v.previous_count == 0 || v.elapsed >= w) return 0;
  return ceil_div(int64_t(v.previous_count) * (w - v.elapsed), w);
}

// Until the state is that of a fresh key: this window's count weighs into the next one.
int64_t sliding_expiry(const Policy& p, const SlidingView& v, int64_t now) {
  if (v.count > 0) return v.window_start + 2 * p.window_ms - now;
  if (v.previous_count > 0 && v.elapsed < p.window_ms) return v.window_start + p.window_ms - now;
  return 0;
}

// What a caller is told: until the current window ends (at most one window), when its requests
// start rolling off; 0 for a key with nothing counted.
int64_t sliding_reset(const Policy& p, const SlidingView& v, int64_t now) {
  if (v.count > 0 || (v.previous_count > 0 && v.elapsed < p.window_ms))
    return v.window_start + p.window_ms - now;
  return 0;
}

int64_t sliding_retry(const Policy& p, int64_t limit, const SlidingView& v, int64_t cost) {
  const int64_t w = p.window_ms;
  if (cost > limit) return kNever;
  const int64_t room = limit - v.count - cost;
  if (room >= 0) {
    // Within this window: wait until ceil(previous_count * (w - elapsed) / w) <= room.
    return w - floor_div(int64_t(room) * w, v.previous_count) - v.elapsed;
  }
  // Next window: this window's count becomes the weighted previous one.
  return (w - v.elapsed) + w - floor_div(int64_t(limit - cost) * w, v.count);
}

Verdict sliding_window(const Policy& p, int64_t limit, SlidingWindowState& s, int64_t now, int64_t cost,
                       bool commit) {
  SlidingView v = sliding_view(p, s, now);
  const int64_t used = v.count + weighted_previous(p, v);
  Verdict out;
  if (cost > limit || used + cost > limit) {
    out = Verdict{false, limit, std::max<int64_t>(0, limit - used), sliding_reset(p, v, now),
                  sliding_retry(p, limit, v, cost)};
  } else if (commit) {
    v.count += cost;
    s = SlidingWindowState{v.window_start, v.count, v.previous_count};
    out = Verdict{true, limit, limit - used - cost, sliding_reset(p, v, now), 0};
  } else {
    out = Verdict{true, limit, limit - used, sliding_reset(p, v, now), 0};
  }
  out.expires_ms = sliding_expiry(p, v, now);
  return out;
}

// ---- token bucket (public tokenBucket): whole tokens plus a fractional credit, refilled lazily ----

// Brings the bucket up to `now` (a full bucket drops its credit; refilled_at never goes back).
void refill(const Policy& p, int64_t capacity, TokenBucketState& s, int64_t now) {
  const int64_t t = p.rate_tokens;
  const int64_t i = p.rate_interval_ms;
  if (s.tokens >= capacity) {
    s.tokens = capacity;
    s.credit = 0;
  } else if (now > s.refilled_at) {
    const int64_t elapsed = now - s.refilled_at;
    const int64_t need = (capacity - s.tokens) * i - s.credit;  // credit missing to be full
    if (elapsed >= ceil_div(need, t)) {
      s.tokens = capacity;
      s.credit = 0;
    } else {
      const int64_t credit = int64_t(s.credit + int64_t(elapsed) * t);
      s.tokens += credit / i;
      s.credit = credit % i;
    }
  }
  s.refilled_at = std::max(s.refilled_at, now);
}

// Ms until the bucket holds `target` tokens.
int64_t tokens_wait(const Policy& p, const TokenBucketState& s, int64_t target) {
  if (s.tokens >= target) return 0;
  return ceil_div(int64_t(target - s.tokens) * p.rate_interval_ms - s.credit, p.rate_tokens);
}

Verdict token_bucket(const Policy& p, int64_t capacity, TokenBucketState& s, int64_t now, int64_t cost,
                     bool commit) {
  TokenBucketState view = s;
  refill(p, capacity, view, now);
  if (cost > capacity || cost > view.tokens) {
    return Verdict{false, capacity, view.tokens, tokens_wait(p, view, capacity),
                   cost > capacity ? kNever : tokens_wait(p, view, cost)};
  }
  if (!commit) return Verdict{true, capacity, view.tokens, tokens_wait(p, view, capacity), 0};
  view.tokens -= cost;
  s = view;
  return Verdict{true, capacity, view.tokens, tokens_wait(p, view, capacity), 0};
}

// ---- GCRA (public leakyBucket): the theoretical arrival time as whole ms plus a fraction ----

// How far the theoretical arrival time is ahead of now, in 1/rate_tokens ms (0 when behind).
int64_t gcra_backlog(const GcraState& s, int64_t now, int64_t t) {
  if (s.tat < now) return 0;
  return (s.tat - now) * t + s.tat_fraction;
}

Verdict gcra(const Policy& p, int64_t burst, GcraState& s, int64_t now, int64_t cost, bool commit) {
  const int64_t t = p.rate_tokens;
  const int64_t i = p.rate_interval_ms;
  const int64_t backlog = gcra_backlog(s, now, t);
  const int64_t tolerance = int64_t(burst) * i;  // tau: burst emission intervals
  const auto remaining_of = [&](int64_t b) {
    return std::max<int64_t>(0, floor_div(std::max<int64_t>(0, tolerance - b), i));
  };
  if (cost > burst || backlog > tolerance - int64_t(cost) * i) {
    return Verdict{false, burst, remaining_of(backlog), ceil_div(backlog, t),
                   cost > burst ? kNever : ceil_div(backlog - (tolerance - int64_t(cost) * i), t)};
  }
  if (!commit) return Verdict{true, burst, remaining_of(backlog), ceil_div(backlog, t), 0};
  const int64_t next = backlog + cost * i;
  s.tat = now + next / t;
  s.tat_fraction = next % t;
  return Verdict{true, burst, remaining_of(next), ceil_div(next, t), 0};
}

}  // namespace

CounterState fresh_state(const Policy& policy, int64_t limit, int64_t now) noexcept {
  CounterState s{};
  switch (policy.kind) {
    case PolicyKind::kFixedWindow:
      s.fixed_window = FixedWindowState{now, 0};
      break;
    case PolicyKind::kSlidingWindow:
      s.sliding_window = SlidingWindowState{now - now % policy.window_ms, 0, 0};
      break;
    case PolicyKind::kTokenBucket:
      s.token_bucket = TokenBucketState{limit, now, 0};
      break;
    case PolicyKind::kGcra:
      s.gcra = GcraState{now, 0};
      break;
  }
  return s;
}

Verdict decide(const Policy& policy, int64_t limit, CounterState& state, int64_t now, int64_t cost,
               bool commit) noexcept {
  Verdict v{false, limit, 0, 0, kNever};
  switch (policy.kind) {
    case PolicyKind::kFixedWindow:
      v = fixed_window(policy, limit, state.fixed_window, now, cost, commit);
      break;
    case PolicyKind::kSlidingWindow:
      v = sliding_window(policy, limit, state.sliding_window, now, cost, commit);
      break;
    case PolicyKind::kTokenBucket:
      v = token_bucket(policy, limit, state.token_bucket, now, cost, commit);
      break;
    case PolicyKind::kGcra:
      v = gcra(policy, limit, state.gcra, now, cost, commit);
      break;
  }
  if (v.expires_ms < 0) v.expires_ms = v.reset_ms;
  return v;
}

int64_t refund(const Policy& policy, int64_t limit, CounterState& state, int64_t now,
               int64_t amount) noexcept {
  amount = std::min(amount, limit);  // more than a fresh key's allowance changes nothing, and stays bounded
  switch (policy.kind) {
    case PolicyKind::kFixedWindow: {
      FixedWindowState& s = state.fixed_window;
      if (now >= s.window_start + policy.window_ms) return 0;  // window over: nothing left to give back
      s.count = std::max<int64_t>(0, s.count - amount);
      return s.window_start + policy.window_ms - now;
    }
    case PolicyKind::kSlidingWindow: {
      SlidingView v = sliding_view(policy, state.sliding_window, now);
      v.count = std::max<int64_t>(0, v.count - amount);
      state.sliding_window = SlidingWindowState{v.window_start, v.count, v.previous_count};
      return sliding_expiry(policy, v, now);
    }
    case PolicyKind::kTokenBucket: {
      TokenBucketState& s = state.token_bucket;
      refill(policy, limit, s, now);
      if (amount >= limit - s.tokens) {
        s.tokens = limit;
        s.credit = 0;
      } else {
        s.tokens += amount;
      }
      return tokens_wait(policy, s, limit);
    }
    case PolicyKind::kGcra: {
      const int64_t t = policy.rate_tokens;
      const int64_t back = int64_t(amount) * policy.rate_interval_ms;
      const int64_t backlog = gcra_backlog(state.gcra, now, t);
      const int64_t next = back >= backlog ? 0 : int64_t(backlog - back);
      state.gcra.tat = now + next / t;
      state.gcra.tat_fraction = next % t;
      return ceil_div(next, t);
    }
  }
  return 0;
}

}  // namespace tollgate
