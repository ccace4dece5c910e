// A mutex that lives inside a region: process-shared, and robust where the OS offers it.
#pragma once

#include <pthread.h>

#include <cstdint>
#include <cstring>

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
  // Whether the mutex still looks like one init() made (glibc: its kind field). Random bytes over
  // a segment would otherwise make glibc abort inside pthread_mutex_lock. Always true elsewhere.
  bool looks_sound() const noexcept {
#if defined(__GLIBC__)
    return mutex_.__data.__kind == kExpectedKind;
#else
    return true;
#endif
  }
  // Takes the lock. A holder that died (EOWNERDEAD) is recovered from: the shard's slots are
  // always consistent between writes of whole fields, so the lock is marked consistent and kept.
  // With timeout_ms >= 0, gives up after that long (a live holder stopped or stuck) and returns
  // false; a negative timeout waits for ever. `contended` is set when it had to wait at all.
  bool lock(int64_t timeout_ms, bool& contended) noexcept;
  void unlock() noexcept;
  // Times the lock was taken over from a dead holder.
  uint64_t recoveries() const noexcept { return recoveries_; }

  // What the C library keeps in the mutex for its holder alone and trusts at unlock (glibc: the
  // kind, the owner, and the links of the holding thread's robust list, which the unlock writes
  // through). The guard saves them after locking and puts them back before unlocking, so that a
  // stray write over the segment while the lock is held cannot send the unlock through a wild
  // pointer. Empty elsewhere.
  struct HolderFields {
#if defined(__GLIBC__) && TOLLGATE_ROBUST_LOCKS
    int kind;
    int owner;
    decltype(pthread_mutex_t{}.__data.__list) list;
#endif
  };
  HolderFields holder_fields() const noexcept {
#if defined(__GLIBC__) && TOLLGATE_ROBUST_LOCKS
    return HolderFields{mutex_.__data.__kind, mutex_.__data.__owner, mutex_.__data.__list};
#else
    return HolderFields{};
#endif
  }
  // Writes only a field that changed: looks_sound() reads the kind without the lock.
  void restore(const HolderFields& saved) noexcept {
#if defined(__GLIBC__) && TOLLGATE_ROBUST_LOCKS
    if (mutex_.__data.__kind != saved.kind) mutex_.__data.__kind = saved.kind;
    if (mutex_.__data.__owner != saved.owner) mutex_.__data.__owner = saved.owner;
    if (std::memcmp(&mutex_.__data.__list, &saved.list, sizeof saved.list) != 0)
      mutex_.__data.__list = saved.list;
#else
    (void)saved;
#endif
  }

 private:
  static int expected_kind() noexcept;
  static const int kExpectedKind;  // expected_kind(), computed once when the library loads
  bool acquired(int rc) noexcept;

  pthread_mutex_t mutex_;
  uint64_t recoveries_;  // guarded by mutex_
};

// Holds a shard lock for a scope: the only way table code takes one. Check held() before use
// when a timeout was given.
class ShardGuard {
 public:
  // For a table one thread owns (in process): nobody else takes its locks, so none is taken.
  struct Unlocked {};
  ShardGuard(ShardLock& lock, Unlocked) noexcept : lock_(lock), held_(true), locked_(false) {}
  explicit ShardGuard(ShardLock& lock, int64_t timeout_ms = -1) noexcept : lock_(lock) {
    bool contended = false;
    held_ = lock_.looks_sound() && lock_.lock(timeout_ms, contended);
    locked_ = held_;
    if (locked_) saved_ = lock_.holder_fields();
  }
  // Also counts, in `contended` (guarded by the same lock), a wait for another holder, and in
  // `failures` (the caller's own) a lock not had in time.
  ShardGuard(ShardLock& lock, uint64_t& contended, int64_t timeout_ms, uint64_t& failures) noexcept
      : lock_(lock) {
    bool waited = false;
    held_ = lock_.looks_sound() && lock_.lock(timeout_ms, waited);
    locked_ = held_;
    if (locked_) saved_ = lock_.holder_fields();
    if (held_ && waited) ++contended;
    if (!held_) ++failures;
  }
  ~ShardGuard() {
    if (!locked_) return;
    lock_.restore(saved_);
    lock_.unlock();
  }
  bool held() const noexcept { return held_; }
  ShardGuard(const ShardGuard&) = delete;
  ShardGuard& operator=(const ShardGuard&) = delete;

 private:
  ShardLock& lock_;
  bool held_;
  bool locked_;                      // taken here, so given back here
  ShardLock::HolderFields saved_{};  // while locked_: as the lock was just after taking it
};

}  // namespace tollgate
