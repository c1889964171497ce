// Clock: the only way cairn code reads the time.
//
// Production code gets a SystemClock from main(); tests get a ManualClock they move by
// hand, so that whole scenarios (timers, expiries, crash and recovery) run on fake time.
// Times are nanoseconds since the Unix epoch, as int64 (good until the year 2262).
#pragma once

#include <atomic>
#include <cstdint>

namespace cairn {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall time, nanoseconds since the Unix epoch. Thread-safe.
  virtual int64_t NowNanos() const = 0;
  // Monotonic time for measuring intervals, nanoseconds from an arbitrary origin.
  // Thread-safe.
  virtual int64_t MonotonicNanos() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowNanos() const override;
  int64_t MonotonicNanos() const override;
};

// A clock that moves only when told. Thread-safe. Monotonic time equals wall time.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_nanos = 1'700'000'000'000'000'000) : now_(start_nanos) {}
  int64_t NowNanos() const override { return now_.load(std::memory_order_acquire); }
  int64_t MonotonicNanos() const override { return NowNanos(); }
  void Set(int64_t nanos) { now_.store(nanos, std::memory_order_release); }
  void Advance(int64_t nanos) { now_.fetch_add(nanos, std::memory_order_acq_rel); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace cairn
