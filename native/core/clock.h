// Host-wide monotonic milliseconds: CLOCK_MONOTONIC is shared by every process on the host.
#pragma once

#include <cstdint>
#include <ctime>

namespace tollgate {

inline int64_t monotonic_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace tollgate
