// Host-wide monotonic milliseconds: CLOCK_MONOTONIC is shared by every process on the host.
#pragma once

#include <cstdint>
#include <ctime>

namespace tollgate {

inline int64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline int64_t monotonic_ms() noexcept { return monotonic_ns() / 1000000; }

// monotonic_ms(), read from the clock about once per millisecond: in between, the CPU's
// time-stamp counter (one instruction) shows whether the millisecond last read is surely not
// over yet, and if so that millisecond is the answer. It never runs ahead of CLOCK_MONOTONIC:
// near a millisecond's end, or whenever the counter behaves oddly, it reads the real clock.
// Used only where the kernel itself keeps time with the TSC (x86-64 Linux, clocksource "tsc").
// NOTE: not thread-safe; one per thread (the binding keeps one per table handle).
class CoarseMonotonicClock {
 public:
  int64_t now_ms() noexcept;

 private:
  int64_t read() noexcept;

  uint64_t origin_tsc_ = 0;  // first reading, for the tick rate
  int64_t origin_ns_ = 0;
  double ticks_per_ns_ = 0;  // 0 until calibrated over at least 20 ms
  uint64_t valid_until_tsc_ = 0;
  uint64_t last_tsc_ = 0;
  int64_t last_ms_ = 0;
};

}  // namespace tollgate
