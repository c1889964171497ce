#include "tools/serve/allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace cairn::serve {

void TuneAllocatorForDaemon() {
#if defined(__GLIBC__)
  // 1 MiB: the smallest memtable arena block (an 8 MiB write buffer / 8) and above
  // everything else the engine allocates often.
  constexpr int kMmapThresholdBytes = 1 << 20;
  ::mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
  // Two arenas instead of eight per core: the daemon's threads (HTTP handlers, engine
  // workers, RocksDB's commit and background threads) otherwise spread the block cache's
  // and the interpreter's small allocations over many arenas, each holding its own free
  // holes. The engine's throughput is bound by synced writes, not by malloc.
  constexpr int kArenas = 2;
  ::mallopt(M_ARENA_MAX, kArenas);
#endif
}

AllocatorTrimmer::AllocatorTrimmer(std::chrono::milliseconds interval) {
#if defined(__GLIBC__)
  thread_ = std::thread([this, interval] {
    std::unique_lock lock(mu_);
    while (!wake_.wait_for(lock, interval, [this] { return stop_; })) {
      lock.unlock();
      ::malloc_trim(0);
      lock.lock();
    }
  });
#else
  (void)interval;
#endif
}

AllocatorTrimmer::~AllocatorTrimmer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace cairn::serve
