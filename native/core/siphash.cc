// SipHash rounds written from the paper's description, parameterised by compression/finalisation rounds.
#include "siphash.h"

#include <sys/random.h>

#include <cstring>
#include <ctime>

namespace tollgate {
namespace {

inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct State {
  uint64_t v0, v1, v2, v3;

  inline void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
};

inline uint64_t load_le64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // x86-64 and arm64 are little-endian; the seed makes byte order moot anyway
  return v;
}

template <int C, int D, bool Wide>
inline void run(const HashSeed& seed, const void* data, size_t len, uint64_t out[2]) {
  State s{seed.k0 ^ 0x736f6d6570736575ULL, seed.k1 ^ 0x646f72616e646f6dULL, seed.k0 ^ 0x6c7967656e657261ULL,
          seed.k1 ^ 0x7465646279746573ULL};
  if (Wide) s.v1 ^= 0xee;
  const auto* p = static_cast<const unsigned char*>(data);
  const size_t whole = len & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) {
    const uint64_t m = load_le64(p + i);
    s.v3 ^= m;
    for (int r = 0; r < C; ++r) s.round();
    s.v0 ^= m;
  }
  uint64_t last = uint64_t(len & 0xff) << 56;
  for (size_t i = 0; i < (len & 7); ++i) last |= uint64_t(p[whole + i]) << (8 * i);
  s.v3 ^= last;
  for (int r = 0; r < C; ++r) s.round();
  s.v0 ^= last;

  s.v2 ^= Wide ? 0xee : 0xff;
  for (int r = 0; r < D; ++r) s.round();
  out[0] = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  if (!Wide) return;
  s.v1 ^= 0xdd;
  for (int r = 0; r < D; ++r) s.round();
  out[1] = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace

Hash128 siphash13_128(const HashSeed& seed, const void* data, size_t len) noexcept {
  uint64_t out[2];
  run<1, 3, true>(seed, data, len, out);
  return Hash128{out[0], out[1]};
}

uint64_t siphash24_64(const HashSeed& seed, const void* data, size_t len) noexcept {
  uint64_t out[2];
  run<2, 4, false>(seed, data, len, out);
  return out[0];
}

HashSeed random_seed() noexcept {
  HashSeed seed{0, 0};
  if (getrandom(&seed, sizeof seed, 0) == sizeof seed) return seed;
  // NOTE: only reached where getrandom is unavailable; weaker, but still differs per table.
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  seed.k0 = uint64_t(ts.tv_nsec) * 0x9e3779b97f4a7c15ULL ^ uint64_t(ts.tv_sec);
  seed.k1 = reinterpret_cast<uintptr_t>(&seed) * 0xbf58476d1ce4e5b9ULL ^ seed.k0;
  return seed;
}

}  // namespace tollgate
