// Robust process-shared mutexes on Linux; plain process-shared ones where robustness is missing (macOS).
#include "shard_lock.h"

#include <cerrno>

namespace tollgate {

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

void ShardLock::lock() noexcept {
  const int rc = pthread_mutex_lock(&mutex_);
#if TOLLGATE_ROBUST_LOCKS
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(&mutex_);
    ++recoveries_;
  }
#else
  (void)rc;
#endif
}

bool ShardLock::lock_noting_contention() noexcept {
  const int rc = pthread_mutex_trylock(&mutex_);
  if (rc == 0) return false;
#if TOLLGATE_ROBUST_LOCKS
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(&mutex_);
    ++recoveries_;
    return false;
  }
#endif
  lock();
  return true;
}

void ShardLock::unlock() noexcept { pthread_mutex_unlock(&mutex_); }

}  // namespace tollgate
