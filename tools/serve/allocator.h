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

namespace cairn::serve {

void TuneAllocatorForDaemon();

}  // namespace cairn::serve
