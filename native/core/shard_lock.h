// A mutex that lives inside a region: process-shared, and robust where the OS offers it.
#pragma once

#include <pthread.h>

#include <cstdint>

// PTHREAD_MUTEX_ROBUST is an enumerator in glibc, not a macro, so it cannot be probed with #if.
#if defined(__linux__)
#define TOLLGATE_ROBUST_LOCKS 1
#else
#define TOLLGATE_ROBUST_LOCKS 0
#endif

namespace tollgate {

// NOTE: initialise exactly once, in place, by whoever formats the region; never copy or move.
class ShardLock {
 public:
  // Returns false when the OS refuses the attributes.
  bool init() noexcept;
  // Blocks until held. A holder that died (EOWNERDEAD) is recovered from: the shard's slots are
  // always consistent between writes of whole fields, so the lock is marked consistent and kept.
  void lock() noexcept;
  // lock(), first trying without waiting: returns true if it had to wait.
  bool lock_noting_contention() noexcept;
  void unlock() noexcept;
  // Times the lock was taken over from a dead holder.
  uint64_t recoveries() const noexcept { return recoveries_; }

 private:
  pthread_mutex_t mutex_;
  uint64_t recoveries_;  // guarded by mutex_
};

// Holds a shard lock for a scope: the only way table code takes one.
class ShardGuard {
 public:
  explicit ShardGuard(ShardLock& lock) noexcept : lock_(lock) { lock_.lock(); }
  // Also counts, in `contended` (guarded by the same lock), a wait for another holder.
  ShardGuard(ShardLock& lock, uint64_t& contended) noexcept : lock_(lock) {
    if (lock_.lock_noting_contention()) ++contended;
  }
  ~ShardGuard() { lock_.unlock(); }
  ShardGuard(const ShardGuard&) = delete;
  ShardGuard& operator=(const ShardGuard&) = delete;

 private:
  ShardLock& lock_;
};

}  // namespace tollgate
