// The TSC shortcut for monotonic milliseconds; see clock.h.
#include "clock.h"

#include <cstdio>
#include <cstring>

#if defined(__x86_64__) && defined(__linux__)
#include <x86intrin.h>
#define TOLLGATE_TSC_CLOCK 1
#else
#define TOLLGATE_TSC_CLOCK 0
#endif

namespace tollgate {
namespace {

#if TOLLGATE_TSC_CLOCK
bool kernel_keeps_time_with_tsc() {
  std::FILE* f = std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
  if (f == nullptr) return false;
  char name[32] = {};
  const bool ok = std::fgets(name, sizeof name, f) != nullptr && std::strncmp(name, "tsc", 3) == 0;
  std::fclose(f);
  return ok;
}

const bool kTscUsable = kernel_keeps_time_with_tsc();
#endif

}  // namespace

int64_t CoarseMonotonicClock::read() noexcept {
#if TOLLGATE_TSC_CLOCK
  const uint64_t tsc = __rdtsc();
  const int64_t ns = monotonic_ns();
  if (origin_tsc_ == 0 || tsc < origin_tsc_) {
    origin_tsc_ = tsc;
    origin_ns_ = ns;
    ticks_per_ns_ = 0;
  } else if (ns - origin_ns_ >= 20000000) {
    ticks_per_ns_ = double(tsc - origin_tsc_) / double(ns - origin_ns_);
  }
  last_ms_ = ns / 1000000;
  last_tsc_ = tsc;
  // Trust the counter for at most 90% of what is left of this millisecond.
  const int64_t left_ns = (last_ms_ + 1) * 1000000 - ns;
  valid_until_tsc_ = ticks_per_ns_ > 0 ? tsc + uint64_t(double(left_ns) * 0.9 * ticks_per_ns_) : tsc;
  return last_ms_;
#else
  return monotonic_ms();
#endif
}

int64_t CoarseMonotonicClock::now_ms() noexcept {
#if TOLLGATE_TSC_CLOCK
  if (!kTscUsable) return monotonic_ms();
  const uint64_t tsc = __rdtsc();
  // Still inside the millisecond last read (and the counter went forward): that is the time.
  if (tsc >= last_tsc_ && tsc < valid_until_tsc_) return last_ms_;
  return read();
#else
  return monotonic_ms();
#endif
}

}  // namespace tollgate
