// Space-Saving with periodic halving; see top_keys.h.
#include "top_keys.h"

#include <algorithm>
#include <cstring>

namespace tollgate {
namespace {

void decay(TopSummary& s, int64_t now, int64_t period_ms) noexcept {
  if (s.epoch == 0) s.epoch = now + 1;
  const int64_t since = now - (s.epoch - 1);
  if (since < period_ms) return;
  const int64_t halvings = std::min<int64_t>(63, since / period_ms);
  for (uint32_t i = 0; i < kTopEntries; ++i) {
    s.count[i] >>= halvings;
    s.denied[i] >>= halvings;
    s.error[i] >>= halvings;
    if (s.count[i] == 0) s.length[i] = 0;
  }
  s.epoch += halvings * period_ms;
}

}  // namespace

void top_record(TopSummary& s, uint64_t fp, const KeyText& key, bool denied, int64_t now,
                int64_t period_ms) noexcept {
  decay(s, now, period_ms);
  // The key's entry if present; else an unused entry; else the one with the smallest count.
  uint32_t victim = kTopEntries;
  for (uint32_t i = 0; i < kTopEntries; ++i) {
    if (s.length[i] != 0 && s.fp[i] == fp) {
      ++s.count[i];
      s.denied[i] += denied ? 1 : 0;
      return;
    }
    if (victim == kTopEntries) {
      victim = i;
    } else if (s.length[victim] != 0 && (s.length[i] == 0 || s.count[i] < s.count[victim])) {
      victim = i;
    }
  }
  const uint32_t j = victim;
  const uint64_t inherited = s.length[j] == 0 ? 0 : s.count[j];
  s.fp[j] = fp;
  s.error[j] = inherited;
  s.count[j] = inherited + 1;
  s.denied[j] = denied ? 1 : 0;
  s.length[j] = std::max<uint32_t>(1, key.units);
  std::memcpy(s.key[j], key.data, std::min<size_t>(key.bytes, kTopKeyBytes));
}

void top_collect(TopSummary& s, int64_t now, int64_t period_ms, std::vector<TopKey>& out) {
  decay(s, now, period_ms);
  for (uint32_t i = 0; i < kTopEntries; ++i) {
    if (s.length[i] == 0) continue;
    TopKey k;
    // The segment may be shared with other writers: every length read from it is bounded here.
    k.length = std::min<uint32_t>(s.length[i], 1u << 20);
    const uint64_t stored = std::min<uint64_t>(uint64_t{k.length} * 2, kTopKeyBytes);
    k.key.assign(s.key[i], s.key[i] + stored);
    k.count = s.count[i];
    k.denied = s.denied[i];
    k.error = s.error[i];
    out.push_back(std::move(k));
  }
}

}  // namespace tollgate
