// Random: a seeded pseudo-random generator (xoshiro256**).
//
// Everything random in cairn draws from a Random handed in by the caller, so a test can
// print its seed and be re-run from it. Not thread-safe: give each thread its own.
#pragma once

#include <cstdint>
#include <string>

namespace cairn {

class Random {
 public:
  explicit Random(uint64_t seed);

  uint64_t Next64();
  // Uniform in [0, n); n must be > 0.
  uint64_t Uniform(uint64_t n);
  // Uniform in [lo, hi]; lo <= hi.
  int64_t Range(int64_t lo, int64_t hi);
  // True with probability 1/n.
  bool OneIn(uint64_t n) { return Uniform(n) == 0; }
  // n random bytes.
  std::string Bytes(size_t n);

  // A seed from the OS entropy source, for tests that pick a fresh seed and print it.
  static uint64_t SeedFromEntropy();

 private:
  uint64_t s_[4];
};

}  // namespace cairn
