// Keyed SipHash (Aumasson & Bernstein) so attacker-chosen keys cannot be steered into one probe window.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tollgate {

struct HashSeed {
  uint64_t k0;
  uint64_t k1;
};

struct Hash128 {
  uint64_t lo;
  uint64_t hi;
};

// SipHash-1-3 with 128-bit output: the table's key hash. The low half, less its lowest bit (the
// state/block marker), is the 63-bit fingerprint an entry stores and its place in the table, so two
// keys are confused only if those 63 bits collide under a secret seed; the high half picks a key's
// heavy-hitter summary.
Hash128 siphash13_128(const HashSeed& seed, const void* data, size_t len) noexcept;

// SipHash-2-4 with 64-bit output: the reference variant, kept so the shared round code can be
// checked against the published test vectors.
uint64_t siphash24_64(const HashSeed& seed, const void* data, size_t len) noexcept;

// A seed from the OS entropy source (getrandom), falling back to clock and address bits.
HashSeed random_seed() noexcept;

}  // namespace tollgate
