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

// ---- fixed window: per-key windows that start at the key's first allowed request ----

Verdict fixed_window(const Policy& p, int64_t limit, CounterState& s, int64_t now, int64_t cost,
                     bool commit) {
  int64_t start = s.a;
  int64_t count = s.b;
  if (now >= start + p.window_ms) {
    start = now;
    count = 0;
  }
  const int64_t reset = start + p.window_ms - now;
  if (cost > limit || count + cost > limit) {
    return Verdict{false, limit, std::max<int64_t>(0, limit - count), reset, cost > limit ? kNever : reset};
  }
  if (commit) {
    count += cost;
    s.a = start;
    s.b = count;
  }
  return Verdict{true, limit, limit - count, reset, 0};
}

// ---- sliding window: the weighted two-window counter over windows aligned to window_ms ----

struct SlidingView {
  int64_t start;  // current window start
  int64_t cur;
  int64_t prev;
  int64_t elapsed;  // ms into the current window
};

SlidingView sliding_view(const Policy& p, const CounterState& s, int64_t now) {
  const int64_t w = p.window_ms;
  const int64_t aligned = now - now % w;
  SlidingView v{aligned, 0, 0, 0};
  if (s.a >= aligned) {  // same window (or a clock that stepped back: keep the stored window)
    v.start = s.a;
    v.cur = s.b;
    v.prev = s.c;
  } else if (s.a == aligned - w) {
    v.prev = s.b;
  }
  v.elapsed = std::max<int64_t>(0, now - v.start);
  return v;
}

// The previous window's count weighted by the part of it still inside the sliding window, rounded up.
int64_t weighted_prev(const Policy& p, const SlidingView& v) {
  const int64_t w = p.window_ms;
  if (v.prev == 0 || v.elapsed >= w) return 0;
  return ceil_div(int64_t(v.prev) * (w - v.elapsed), w);
}

// Until the state is that of a fresh key: this window's count weighs into the next one.
int64_t sliding_expiry(const Policy& p, const SlidingView& v, int64_t now) {
  if (v.cur > 0) return v.start + 2 * p.window_ms - now;
  if (v.prev > 0 && v.elapsed < p.window_ms) return v.start + p.window_ms - now;
  return 0;
}

// What a caller is told: until the current window ends (at most one window), when its requests
// start rolling off; 0 for a key with nothing counted.
int64_t sliding_reset(const Policy& p, const SlidingView& v, int64_t now) {
  if (v.cur > 0 || (v.prev > 0 && v.elapsed < p.window_ms)) return v.start + p.window_ms - now;
  return 0;
}

int64_t sliding_retry(const Policy& p, int64_t limit, const SlidingView& v, int64_t cost) {
  const int64_t w = p.window_ms;
  if (cost > limit) return kNever;
  const int64_t room = limit - v.cur - cost;
  if (room >= 0) {
    // Within this window: wait until ceil(prev * (w - e) / w) <= room.
    return w - floor_div(int64_t(room) * w, v.prev) - v.elapsed;
  }
  // Next window: this window's count becomes the weighted previous one.
  return (w - v.elapsed) + w - floor_div(int64_t(limit - cost) * w, v.cur);
}

Verdict sliding_window(const Policy& p, int64_t limit, CounterState& s, int64_t now, int64_t cost,
                       bool commit) {
  SlidingView v = sliding_view(p, s, now);
  const int64_t used = v.cur + weighted_prev(p, v);
  Verdict out;
  if (cost > limit || used + cost > limit) {
    out = Verdict{false, limit, std::max<int64_t>(0, limit - used), sliding_reset(p, v, now),
                  sliding_retry(p, limit, v, cost)};
  } else if (commit) {
    v.cur += cost;
    s.a = v.start;
    s.b = v.cur;
    s.c = v.prev;
    out = Verdict{true, limit, limit - used - cost, sliding_reset(p, v, now), 0};
  } else {
    out = Verdict{true, limit, limit - used, sliding_reset(p, v, now), 0};
  }
  out.expires_ms = sliding_expiry(p, v, now);
  return out;
}

// ---- token bucket: integer tokens plus a fractional credit, refilled lazily ----

void refill_tokens(const Policy& p, int64_t capacity, CounterState& s, int64_t now) {
  const int64_t t = p.rate_tokens;
  const int64_t i = p.rate_interval_ms;
  if (s.a >= capacity) {
    s.a = capacity;
    s.c = 0;
  } else if (now > s.b) {
    const int64_t elapsed = now - s.b;
    const int64_t need = (capacity - s.a) * i - s.c;  // credit units missing to be full
    if (elapsed >= ceil_div(need, t)) {
      s.a = capacity;
      s.c = 0;
    } else {
      const int64_t credit = int64_t(s.c + int64_t(elapsed) * t);
      s.a += credit / i;
      s.c = credit % i;
    }
  }
  s.b = std::max(s.b, now);
}

int64_t tokens_wait(const Policy& p, const CounterState& s, int64_t target) {
  if (s.a >= target) return 0;
  return ceil_div(int64_t(target - s.a) * p.rate_interval_ms - s.c, p.rate_tokens);
}

Verdict token_bucket(const Policy& p, int64_t capacity, CounterState& s, int64_t now, int64_t cost,
                     bool commit) {
  CounterState view = s;
  refill_tokens(p, capacity, view, now);
  if (cost > capacity || cost > view.a) {
    return Verdict{false, capacity, view.a, tokens_wait(p, view, capacity),
                   cost > capacity ? kNever : tokens_wait(p, view, cost)};
  }
  if (!commit) return Verdict{true, capacity, view.a, tokens_wait(p, view, capacity), 0};
  view.a -= cost;
  s = view;
  return Verdict{true, capacity, view.a, tokens_wait(p, view, capacity), 0};
}

// ---- GCRA: theoretical arrival time kept as whole ms plus a fraction of 1/rate_tokens ms ----

// Credit units (1/rate_tokens ms) by which the arrival time is ahead of now.
int64_t gcra_backlog(const CounterState& s, int64_t now, int64_t t) {
  if (s.a < now) return 0;
  return (s.a - now) * t + s.b;
}

Verdict gcra(const Policy& p, int64_t burst, CounterState& s, int64_t now, int64_t cost, bool commit) {
  const int64_t t = p.rate_tokens;
  const int64_t i = p.rate_interval_ms;
  const int64_t backlog = gcra_backlog(s, now, t);
  const int64_t tolerance = int64_t(burst) * i;
  const auto remaining_of = [&](int64_t b) {
    return std::max<int64_t>(0, floor_div(std::max<int64_t>(0, tolerance - b), i));
  };
  if (cost > burst || backlog > tolerance - int64_t(cost) * i) {
    return Verdict{false, burst, remaining_of(backlog), ceil_div(backlog, t),
                   cost > burst ? kNever : ceil_div(backlog - (tolerance - int64_t(cost) * i), t)};
  }
  if (!commit) return Verdict{true, burst, remaining_of(backlog), ceil_div(backlog, t), 0};
  const int64_t next = backlog + cost * i;
  s.a = now + next / t;
  s.b = next % t;
  return Verdict{true, burst, remaining_of(next), ceil_div(next, t), 0};
}

}  // namespace

CounterState fresh_state(const Policy& policy, int64_t limit, int64_t now) noexcept {
  switch (policy.kind) {
    case PolicyKind::kFixedWindow:
      return CounterState{now, 0, 0};
    case PolicyKind::kSlidingWindow:
      return CounterState{now - now % policy.window_ms, 0, 0};
    case PolicyKind::kTokenBucket:
      return CounterState{limit, now, 0};
    case PolicyKind::kGcra:
      return CounterState{now, 0, 0};
  }
  return CounterState{0, 0, 0};
}

Verdict decide(const Policy& policy, int64_t limit, CounterState& state, int64_t now, int64_t cost,
               bool commit) noexcept {
  Verdict v{false, limit, 0, 0, kNever};
  switch (policy.kind) {
    case PolicyKind::kFixedWindow:
      v = fixed_window(policy, limit, state, now, cost, commit);
      break;
    case PolicyKind::kSlidingWindow:
      v = sliding_window(policy, limit, state, now, cost, commit);
      break;
    case PolicyKind::kTokenBucket:
      v = token_bucket(policy, limit, state, now, cost, commit);
      break;
    case PolicyKind::kGcra:
      v = gcra(policy, limit, state, now, cost, commit);
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
      if (now >= state.a + policy.window_ms) return 0;  // window over: nothing left to give back
      state.b = std::max<int64_t>(0, state.b - amount);
      return state.a + policy.window_ms - now;
    }
    case PolicyKind::kSlidingWindow: {
      SlidingView v = sliding_view(policy, state, now);
      v.cur = std::max<int64_t>(0, v.cur - amount);
      state = CounterState{v.start, v.cur, v.prev};
      return sliding_expiry(policy, v, now);
    }
    case PolicyKind::kTokenBucket: {
      refill_tokens(policy, limit, state, now);
      if (amount >= limit - state.a) {
        state.a = limit;
        state.c = 0;
      } else {
        state.a += amount;
      }
      return tokens_wait(policy, state, limit);
    }
    case PolicyKind::kGcra: {
      const int64_t t = policy.rate_tokens;
      const int64_t back = int64_t(amount) * policy.rate_interval_ms;
      const int64_t backlog = gcra_backlog(state, now, t);
      const int64_t next = back >= backlog ? 0 : int64_t(backlog - back);
      state.a = now + next / t;
      state.b = next % t;
      return ceil_div(next, t);
    }
  }
  return 0;
}

}  // namespace tollgate
