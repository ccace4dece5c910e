// Packing of an entry's state: see entry.h. Layouts (bit widths, after the 54-bit expiry; field
// names as in counter_state.h):
//   fixed window:   window_start 54, count 51
//   GCRA:           tat 54, tat_fraction 51
//   token bucket:   refilled_at 54, split 1, then credit 31 + tokens 51 (split 0)
//                                             or credit 51 + tokens 31 (split 1)
//   sliding window: split 1, then window_start 54 + count 41 + previous_count 41 (split 0)
//                             or expiry - window_start 31 + count 51 + previous_count 51 (split 1)
// Token bucket: credit < rate_interval_ms and tokens × rate_interval_ms <= 2^50, so credit >= 2^31
// leaves tokens below 2^19. Sliding window: a count >= 2^41 needs window_ms < 2^9, and a live
// entry's expiry is its window start plus one or two windows, so expiry - window_start < 2^10.
#include "entry.h"

#include <algorithm>

namespace tollgate {
namespace {

constexpr uint64_t mask(unsigned width) { return width >= 64 ? ~uint64_t{0} : (uint64_t{1} << width) - 1; }

// 192 bits written or read as a stream of fields, low bits first.
constexpr unsigned kWords = 3;

class BitStream {
 public:
  explicit BitStream(uint64_t* words) : words_(words) {}

  void put(int64_t value, unsigned width) noexcept {
    const uint64_t v = std::min<uint64_t>(uint64_t(std::max<int64_t>(0, value)), mask(width));
    const unsigned word = pos_ / 64, shift = pos_ % 64;
    words_[word] |= v << shift;
    if (shift + width > 64 && word + 1 < kWords) words_[word + 1] |= v >> (64 - shift);
    pos_ += width;
  }

  int64_t get(unsigned width) noexcept {
    const unsigned word = pos_ / 64, shift = pos_ % 64;
    uint64_t v = words_[word] >> shift;
    if (shift + width > 64 && word + 1 < kWords) v |= words_[word + 1] << (64 - shift);
    pos_ += width;
    return int64_t(v & mask(width));
  }

 private:
  uint64_t* words_;
  unsigned pos_ = 0;
};

static_assert(kTimeBits + 54 + 51 <= 192, "fixed window and GCRA fit");
static_assert(kTimeBits + 54 + 1 + 31 + 51 <= 192, "token bucket fits");
static_assert(kTimeBits + 1 + 54 + 41 + 41 <= 192, "sliding window fits");
static_assert(kTimeBits + 1 + 31 + 51 + 51 <= 192, "sliding window with large counts fits");

constexpr int64_t kSmallCount = int64_t{1} << 41;
constexpr int64_t kSmallCredit = int64_t{1} << 31;

}  // namespace

void store_state(Entry& e, PolicyKind kind, const CounterState& state, int64_t expires_at) noexcept {
  e.bits[0] = e.bits[1] = e.bits[2] = 0;
  BitStream out(e.bits);
  out.put(expires_at, kTimeBits);
  switch (kind) {
    case PolicyKind::kFixedWindow: {
      const FixedWindowState& s = state.fixed_window;
      out.put(s.window_start, 54);
      out.put(s.count, 51);
      return;
    }
    case PolicyKind::kGcra: {
      const GcraState& s = state.gcra;
      out.put(s.tat, 54);
      out.put(s.tat_fraction, 51);
      return;
    }
    case PolicyKind::kTokenBucket: {
      const TokenBucketState& s = state.token_bucket;
      out.put(s.refilled_at, 54);
      const bool wide_credit = s.credit >= kSmallCredit;
      out.put(wide_credit, 1);
      out.put(s.credit, wide_credit ? 51 : 31);
      out.put(s.tokens, wide_credit ? 31 : 51);
      return;
    }
    case PolicyKind::kSlidingWindow: {
      const SlidingWindowState& s = state.sliding_window;
      const bool large = s.count >= kSmallCount || s.previous_count >= kSmallCount;
      out.put(large, 1);
      if (large) {
        out.put(expires_at - s.window_start, 31);
        out.put(s.count, 51);
        out.put(s.previous_count, 51);
      } else {
        out.put(s.window_start, 54);
        out.put(s.count, 41);
        out.put(s.previous_count, 41);
      }
      return;
    }
  }
}

CounterState load_state(const Entry& e, PolicyKind kind) noexcept {
  uint64_t words[3] = {e.bits[0], e.bits[1], e.bits[2]};
  BitStream in(words);
  const int64_t expires_at = in.get(kTimeBits);
  CounterState state{};
  switch (kind) {
    case PolicyKind::kFixedWindow: {
      FixedWindowState& s = state.fixed_window;
      s.window_start = in.get(54);
      s.count = in.get(51);
      break;
    }
    case PolicyKind::kGcra: {
      GcraState& s = state.gcra;
      s.tat = in.get(54);
      s.tat_fraction = in.get(51);
      break;
    }
    case PolicyKind::kTokenBucket: {
      TokenBucketState& s = state.token_bucket;
      s.refilled_at = in.get(54);
      const bool wide_credit = in.get(1) != 0;
      s.credit = in.get(wide_credit ? 51 : 31);
      s.tokens = in.get(wide_credit ? 31 : 51);
      break;
    }
    case PolicyKind::kSlidingWindow: {
      SlidingWindowState& s = state.sliding_window;
      if (in.get(1) != 0) {
        s.window_start = std::max<int64_t>(0, expires_at - in.get(31));
        s.count = in.get(51);
        s.previous_count = in.get(51);
      } else {
        s.window_start = in.get(54);
        s.count = in.get(41);
        s.previous_count = in.get(41);
      }
      break;
    }
  }
  return state;
}

void store_block(Entry& e, int64_t until) noexcept {
  e.bits[0] = e.bits[1] = e.bits[2] = 0;
  BitStream(e.bits).put(until, kTimeBits);
}

}  // namespace tollgate
