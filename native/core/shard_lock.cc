// Robust process-shared mutexes on Linux; plain process-shared ones where robustness is missing (macOS).
#include "shard_lock.h"

#include <cerrno>
#include <ctime>

namespace tollgate {
namespace {

timespec deadline_after(int64_t ms) noexcept {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  t.tv_sec += time_t(ms / 1000);
  t.tv_nsec += long(ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec += 1;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

}  // namespace

bool ShardLock::init() noexcept {
  pthread_mutexattr_t attr;
  if (pthread_mutexattr_init(&attr) != 0) return false;
  bool ok = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) == 0;
#if TOLLGATE_ROBUST_LOCKS
  ok = ok && pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) == 0;
#endif
  ok = ok && pthread_mutex_init(&mutex_, &attr) == 0;
  pthread_mutexattr_destroy(&attr);
  recoveries_ = 0;
  return ok;
}

int ShardLock::expected_kind() noexcept {
#if defined(__GLIBC__)
  // The kind glibc records for a mutex made with init()'s attributes, learnt from a real one.
  ShardLock probe;
  if (!probe.init()) return -1;
  const int kind = probe.mutex_.__data.__kind;
  pthread_mutex_destroy(&probe.mutex_);
  return kind;
#else
  return 0;
#endif
}

const int ShardLock::kExpectedKind = ShardLock::expected_kind();

bool ShardLock::acquired(int rc) noexcept {
  if (rc == 0) return true;
#if TOLLGATE_ROBUST_LOCKS
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(&mutex_);
    ++recoveries_;
    return true;
  }
#endif
  return false;
}

bool ShardLock::lock(int64_t timeout_ms, bool& contended) noexcept {
  const int first = pthread_mutex_trylock(&mutex_);
  if (first != EBUSY) {
    contended = false;
    return acquired(first);
  }
  contended = true;
  if (timeout_ms < 0) return acquired(pthread_mutex_lock(&mutex_));
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
  const timespec deadline = deadline_after(timeout_ms);
  return acquired(pthread_mutex_clocklock(&mutex_, CLOCK_MONOTONIC, &deadline));
#else
  // Without a monotonic timed lock (musl, macOS): try again every 50 µs until the deadline.
  const timespec deadline = deadline_after(timeout_ms);
  for (;;) {
    const int rc = pthread_mutex_trylock(&mutex_);
    if (rc != EBUSY) return acquired(rc);
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
      return false;
    const timespec pause{0, 50000};
    nanosleep(&pause, nullptr);
  }
#endif
}

void ShardLock::unlock() noexcept { pthread_mutex_unlock(&mutex_); }

}  // namespace tollgate
