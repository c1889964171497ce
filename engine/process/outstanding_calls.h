// OutstandingCalls: the calls of one executor whose `done` has not returned yet, and the
// door that Shutdown closes on new ones.
//
// Every Call() enters (or, once closed, is refused); every call leaves right after its
// `done` returned. Shutdown closes the door and waits until the count is back to zero.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace cairn::engine::process {

class OutstandingCalls {
 public:
  // Counts a new call; false (and nothing counted) once Close() was called.
  bool Enter() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return false;
    ++count_;
    return true;
  }
  // The call's `done` has returned.
  void Leave() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--count_ == 0) idle_.notify_all();
  }
  // Refuses new calls from now on. True the first time only.
  bool Close() {
    std::lock_guard<std::mutex> lock(mutex_);
    bool first = !closed_;
    closed_ = true;
    return first;
  }
  // Blocks until every call that entered has left.
  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [this] { return count_ == 0; });
  }
  size_t count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  size_t count_ = 0;
  bool closed_ = false;
};

}  // namespace cairn::engine::process
