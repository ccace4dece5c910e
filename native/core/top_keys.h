// Heavy hitters: a Space-Saving summary per shard of the keys with the most decisions and the most
// denials, decaying by half every period so it describes recent traffic.
//
// Space-Saving keeps kTopEntries counters; a key not in the summary replaces the smallest and
// inherits its count as `error`. So a reported count is at most `error` above the truth, and any
// key with more than (the shard's decisions since the last decay) / kTopEntries is present.
// A key always falls in the same shard, so per-shard summaries merge by union.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tollgate {

constexpr uint32_t kTopEntries = 16;
constexpr uint32_t kTopKeyBytes = 96;  // longer keys are stored cut short (and say so)

// A key's text as the binding read it: its UTF-16 code units, two bytes each.
struct KeyText {
  const uint8_t* data;
  size_t bytes;
  uint32_t units;
};

// Lives in the region, one per shard, guarded by that shard's lock. Fields are arrays so a lookup
// scans 128 bytes of fingerprints, not 16 whole entries.
struct alignas(64) TopSummary {
  int64_t epoch;  // when counts were last halved, in ms, plus one (so zeroed memory means unset)
  uint64_t fp[kTopEntries];
  uint64_t count[kTopEntries];
  uint64_t denied[kTopEntries];
  uint64_t error[kTopEntries];
  uint32_t length[kTopEntries];  // the key's full length in UTF-16 code units; 0 = unused entry
  uint8_t key[kTopEntries][kTopKeyBytes];
};

struct TopKey {
  std::vector<uint8_t> key;  // at most kTopKeyBytes: UTF-16 code units, two bytes each
  uint32_t length;           // the full key's length in code units (more than stored if cut short)
  uint64_t count;
  uint64_t denied;
  uint64_t error;
};

// Counts one decision for the key. Call with the shard's lock held.
void top_record(TopSummary& s, uint64_t fp, const KeyText& key, bool denied, int64_t now,
                int64_t period_ms) noexcept;

// Appends the summary's live entries, as of `now` (decay applied), to `out`. Lock held.
void top_collect(TopSummary& s, int64_t now, int64_t period_ms, std::vector<TopKey>& out);

}  // namespace tollgate
