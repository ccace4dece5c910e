// One key's 32-byte table entry: its fingerprint, its expiry and its algorithm state, packed.
//
// The fingerprint is 64 bits of the key's keyed hash; it is also what places the entry (see
// table.cc), so an entry can be moved (displaced, or migrated to a larger table) without its key.
// Bit 0 tells the key's two entries apart: its algorithm state (0) and, only while it is blocked,
// its block (1). Both have the same placement, so one lookup finds both. 0 marks an empty entry.
//
// The other 192 bits hold exact values, never rounded: the expiry (absolute ms, 54 bits), then the
// state in a layout chosen by the policy kind. Every bound used to pack them is one the policy
// validation already guarantees (limit × windowMs and limit × rateIntervalMs below 2^50, times
// below 2^53 plus at most 2^51 ahead); a value outside its field (a segment written by a process
// with other parameters) is saturated, never spilt into a neighbouring field.
#pragma once

#include <cstdint>

#include "counter_state.h"
#include "policy.h"

namespace tollgate {

struct alignas(32) Entry {
  uint64_t fp;       // 0 = empty
  uint64_t bits[3];  // expiry in the low 54 bits of bits[0], then the packed state
};
static_assert(sizeof(Entry) == 32, "an entry is a quarter of a bucket");

constexpr uint64_t kBlockBit = 1;  // set in a block entry's fingerprint
constexpr unsigned kTimeBits = 54;
constexpr int64_t kMaxStoredTime = (int64_t{1} << kTimeBits) - 1;

// When the entry's key becomes indistinguishable from a fresh one (a block: when it ends).
inline int64_t expiry_of(const Entry& e) noexcept {
  return int64_t(e.bits[0] & ((uint64_t{1} << kTimeBits) - 1));
}

// Writes `state` and its expiry for a policy of `kind`; the fingerprint is left as is.
void store_state(Entry& e, PolicyKind kind, const CounterState& state, int64_t expires_at) noexcept;
// The state store_state() wrote.
CounterState load_state(const Entry& e, PolicyKind kind) noexcept;
// A block entry holds nothing but its end.
void store_block(Entry& e, int64_t until) noexcept;

}  // namespace tollgate
