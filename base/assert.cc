#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace cairn::internal {

void AssertFail(const char* file, int line, const char* expr, std::string_view msg) {
  std::fprintf(stderr, "cairn: assertion failed at %s:%d: %s: %.*s\n", file, line, expr,
               static_cast<int>(msg.size()), msg.data());
  std::fflush(stderr);
  std::abort();
}

}  // namespace cairn::internal
