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
#endif
}

}  // namespace cairn::serve
