#include "tests/support/seed.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "base/random.h"

namespace cairn::testing {
namespace {

bool ParseSeed(std::string_view text, uint64_t* out) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  if (text.empty()) return false;
  uint64_t value = 0;
  for (char c : text) {
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return false;
    }
    if (value > (UINT64_MAX - static_cast<uint64_t>(digit)) / static_cast<uint64_t>(base)) {
      return false;  // overflow
    }
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(digit);
  }
  *out = value;
  return true;
}

}  // namespace

uint64_t TestSeed() {
  uint64_t seed = 0;
  const char* env = std::getenv("CAIRN_TEST_SEED");
  if (env != nullptr && env[0] != '\0') {
    if (!ParseSeed(env, &seed)) {
      std::fprintf(stderr, "CAIRN_TEST_SEED='%s' is not a 64-bit decimal or 0x-hex number\n", env);
      std::abort();
    }
  } else {
    seed = Random::SeedFromEntropy();
  }
  std::fprintf(stderr, "seed=%" PRIu64 " (re-run with CAIRN_TEST_SEED=%" PRIu64 ")\n", seed, seed);
  return seed;
}

}  // namespace cairn::testing
