// Allocator settings for a long-running daemon (`cairn serve`, bench/serve_load).
//
// The engine's memory is dominated by RocksDB's memtables, allocated in blocks of 1–4 MiB
// (a tenth of each family's write buffer) and freed at each flush. glibc's malloc raises
// its mmap threshold to the size of the largest mmapped block freed, so after the first
// flush those blocks come from the heap arenas instead, one per thread that happened to
// allocate them; freed, they leave holes that are not handed back to the kernel. Under a
// steady load the heap in use stays flat (memtables fill and flush) while the resident
// size keeps creeping up. bench/README.md has the measurements.
//
// TuneAllocatorForDaemon() fixes the mmap threshold (which also turns off its dynamic
// adjustment), so blocks of a megabyte or more are mapped and returned to the kernel
// when freed, and caps malloc's arenas at two, so the small allocations' free holes are
// shared by every thread instead of kept per arena. Call it once, first thing, before other threads start. A no-op on a C
// library other than glibc.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace cairn::serve {

void TuneAllocatorForDaemon();

// Hands the allocator's free pages back to the kernel (glibc's malloc_trim) every
// `interval` on a thread of its own, until destroyed. The block cache's blocks and the
// interpreter's values are small and freed in no particular order, so pages inside the
// arenas end up free but still resident; trimming releases them (a few milliseconds of
// walking the arenas, each under its lock). A no-op on a C library other than glibc.
class AllocatorTrimmer {
 public:
  explicit AllocatorTrimmer(std::chrono::milliseconds interval);
  ~AllocatorTrimmer();
  AllocatorTrimmer(const AllocatorTrimmer&) = delete;
  AllocatorTrimmer& operator=(const AllocatorTrimmer&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace cairn::serve
