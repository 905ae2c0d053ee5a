// ps::Mutex: absl::Mutex that ThreadSanitizer can see.
//
// Debian's libabsl is not built with -fsanitize=thread, so TSan cannot
// observe the happens-before edges of absl::Mutex and reports false races
// between critical sections. Under TSan this wrapper adds them explicitly
// (__tsan_acquire after locking, __tsan_release before unlocking); otherwise
// it is exactly absl::Mutex. Use with ps::MutexLock and the usual
// ABSL_GUARDED_BY annotations.
//
// Thread safety: it is a mutex.
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define VREC_TSAN_ACQUIRE(p) __tsan_acquire(p)
#define VREC_TSAN_RELEASE(p) __tsan_release(p)
#else
#define VREC_TSAN_ACQUIRE(p) (void)(p)
#define VREC_TSAN_RELEASE(p) (void)(p)
#endif

namespace vrec::ps {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    VREC_TSAN_ACQUIRE(this);
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    VREC_TSAN_RELEASE(this);
    mu_.Unlock();
  }
  // Releases the mutex until `cond` holds (evaluated with the mutex held,
  // possibly on another thread), then returns with it held again.
  void Await(const absl::Condition& cond) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    // absl evaluates `cond` with its own lock held (here, or on a thread
    // unlocking), which TSan cannot see: each evaluation acquires and
    // releases this mutex explicitly. Everything an evaluation reads is
    // written before the release below.
    struct Seen {
      Mutex* mu;
      const absl::Condition* cond;
    } seen{this, &cond};
    const absl::Condition seen_cond(
        +[](Seen* s) {
          VREC_TSAN_ACQUIRE(s->mu);
          const bool holds = s->cond->Eval();
          VREC_TSAN_RELEASE(s->mu);
          return holds;
        },
        &seen);
    VREC_TSAN_RELEASE(this);
    mu_.Await(seen_cond);
    VREC_TSAN_ACQUIRE(this);
  }

 private:
  absl::Mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace vrec::ps
