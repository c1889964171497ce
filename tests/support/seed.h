// TestSeed(): the seed of a randomized test, printed so that any run can be repeated.
//
//   CAIRN_TEST_SEED=12345 ctest -R fault   # re-runs with that seed
//
// Thread-safe.
#pragma once

#include <cstdint>

namespace cairn::testing {

// The value of $CAIRN_TEST_SEED (decimal, or hex with 0x) if set, otherwise a fresh seed
// from the OS entropy source. Prints "seed=<n>" to stderr either way. Aborts with a
// message if CAIRN_TEST_SEED is set but is not a 64-bit number: silently ignoring it would
// make a reproduction attempt test something else.
uint64_t TestSeed();

}  // namespace cairn::testing
