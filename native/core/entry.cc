// Packing of an entry's state: see entry.h. Layouts (bit widths, after the 54-bit expiry):
//   fixed window:   start 54, count 51
//   GCRA:           arrival time 54, fraction 51
//   token bucket:   last refill 54, split 1, then credit 31 + tokens 51 (split 0)
//                                             or credit 51 + tokens 31 (split 1)
//   sliding window: split 1, then start 54 + current 41 + previous 41 (split 0)
//                             or expiry - start 31 + current 51 + previous 51 (split 1)
// Token bucket: credit < rateIntervalMs and tokens × rateIntervalMs <= 2^50, so credit >= 2^31
// leaves tokens below 2^19. Sliding window: a count >= 2^41 needs windowMs < 2^9, and a live
// entry's expiry is its window start plus one or two windows, so expiry - start < 2^10.
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

void store_state(Entry& e, PolicyKind kind, const CounterState& s, int64_t expires_at) noexcept {
  e.bits[0] = e.bits[1] = e.bits[2] = 0;
  BitStream out(e.bits);
  out.put(expires_at, kTimeBits);
  switch (kind) {
    case PolicyKind::kFixedWindow:
    case PolicyKind::kGcra:
      out.put(s.a, 54);
      out.put(s.b, 51);
      return;
    case PolicyKind::kTokenBucket: {
      out.put(s.b, 54);
      const bool wide_credit = s.c >= kSmallCredit;
      out.put(wide_credit, 1);
      out.put(s.c, wide_credit ? 51 : 31);
      out.put(s.a, wide_credit ? 31 : 51);
      return;
    }
    case PolicyKind::kSlidingWindow: {
      const bool large = s.b >= kSmallCount || s.c >= kSmallCount;
      out.put(large, 1);
      if (large) {
        out.put(expires_at - s.a, 31);
        out.put(s.b, 51);
        out.put(s.c, 51);
      } else {
        out.put(s.a, 54);
        out.put(s.b, 41);
        out.put(s.c, 41);
      }
      return;
    }
  }
}

CounterState load_state(const Entry& e, PolicyKind kind) noexcept {
  uint64_t words[3] = {e.bits[0], e.bits[1], e.bits[2]};
  BitStream in(words);
  const int64_t expires_at = in.get(kTimeBits);
  CounterState s{0, 0, 0};
  switch (kind) {
    case PolicyKind::kFixedWindow:
    case PolicyKind::kGcra:
      s.a = in.get(54);
      s.b = in.get(51);
      break;
    case PolicyKind::kTokenBucket: {
      s.b = in.get(54);
      const bool wide_credit = in.get(1) != 0;
      s.c = in.get(wide_credit ? 51 : 31);
      s.a = in.get(wide_credit ? 31 : 51);
      break;
    }
    case PolicyKind::kSlidingWindow:
      if (in.get(1) != 0) {
        s.a = std::max<int64_t>(0, expires_at - in.get(31));
        s.b = in.get(51);
        s.c = in.get(51);
      } else {
        s.a = in.get(54);
        s.b = in.get(41);
        s.c = in.get(41);
      }
      break;
  }
  return s;
}

void store_block(Entry& e, int64_t until) noexcept {
  e.bits[0] = e.bits[1] = e.bits[2] = 0;
  BitStream(e.bits).put(until, kTimeBits);
}

}  // namespace tollgate
