// CAIRN_ASSERT: invariants checked in every build.
//
// Use it only for what must never happen whatever the input (a bug in cairn). Input and
// I/O errors get a Status instead. On failure it prints the location and message to
// stderr and aborts, so that a crash test or a core dump shows where.
#pragma once

#include <string_view>

namespace cairn::internal {
[[noreturn]] void AssertFail(const char* file, int line, const char* expr, std::string_view msg);
}  // namespace cairn::internal

#define CAIRN_ASSERT(cond, msg)                                          \
  do {                                                                   \
    if (__builtin_expect(!(cond), 0)) {                                  \
      ::cairn::internal::AssertFail(__FILE__, __LINE__, #cond, (msg));   \
    }                                                                    \
  } while (0)
