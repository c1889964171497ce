#include "base/random.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <set>
#include <vector>

namespace cairn {
namespace {

TEST(RandomTest, SameSeedSameSequence) {
  Random a(42);
  Random b(42);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.Next64(), b.Next64()) << i;
  EXPECT_EQ(a.Bytes(100), b.Bytes(100));
  EXPECT_EQ(a.Uniform(1000), b.Uniform(1000));
  EXPECT_EQ(a.Range(-5, 5), b.Range(-5, 5));
}

TEST(RandomTest, DifferentSeedsDiffer) {
  Random a(1);
  Random b(2);
  int equal = 0;
  for (int i = 0; i < 100; ++i) equal += a.Next64() == b.Next64() ? 1 : 0;
  EXPECT_LT(equal, 2);
}

TEST(RandomTest, ZeroSeedIsUsable) {
  Random random(0);
  std::set<uint64_t> values;
  for (int i = 0; i < 100; ++i) values.insert(random.Next64());
  EXPECT_EQ(values.size(), 100u);
}

// The sequence is part of every recorded test seed: changing the generator changes what
// a printed seed reproduces, so pin it.
TEST(RandomTest, SequenceIsStable) {
  Random a(12345);
  const uint64_t first = a.Next64();
  Random b(12345);
  EXPECT_EQ(first, b.Next64());
  Random c(12346);
  EXPECT_NE(first, c.Next64());
}

TEST(RandomTest, UniformStaysInBounds) {
  Random random(7);
  for (uint64_t n :
       {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{10}, uint64_t{1} << 40, UINT64_MAX}) {
    for (int i = 0; i < 2000; ++i) ASSERT_LT(random.Uniform(n), n) << n;
  }
  for (int i = 0; i < 100; ++i) EXPECT_EQ(random.Uniform(1), 0u);
}

TEST(RandomTest, UniformCoversEveryValue) {
  Random random(8);
  std::array<int, 10> counts{};
  for (int i = 0; i < 10'000; ++i) ++counts[random.Uniform(10)];
  for (int count : counts) {
    EXPECT_GT(count, 800);
    EXPECT_LT(count, 1200);
  }
}

TEST(RandomTest, RangeIsInclusive) {
  Random random(9);
  bool saw_lo = false;
  bool saw_hi = false;
  for (int i = 0; i < 10'000; ++i) {
    const int64_t v = random.Range(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
    saw_lo |= v == -3;
    saw_hi |= v == 3;
  }
  EXPECT_TRUE(saw_lo);
  EXPECT_TRUE(saw_hi);
  EXPECT_EQ(random.Range(5, 5), 5);
  // The whole int64 range does not overflow.
  (void)random.Range(INT64_MIN, INT64_MAX);
  const int64_t near_max = random.Range(INT64_MAX - 1, INT64_MAX);
  EXPECT_GE(near_max, INT64_MAX - 1);
}

TEST(RandomTest, OneIn) {
  Random random(10);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(random.OneIn(1));
  int hits = 0;
  for (int i = 0; i < 10'000; ++i) hits += random.OneIn(4) ? 1 : 0;
  EXPECT_GT(hits, 2000);
  EXPECT_LT(hits, 3000);
}

TEST(RandomTest, BytesHaveTheRequestedLength) {
  Random random(11);
  EXPECT_EQ(random.Bytes(0), "");
  const std::string bytes = random.Bytes(4096);
  EXPECT_EQ(bytes.size(), 4096u);
  std::set<char> distinct(bytes.begin(), bytes.end());
  EXPECT_GT(distinct.size(), 200u);
}

TEST(RandomDeathTest, UniformZeroAborts) {
  Random random(12);
  EXPECT_DEATH((void)random.Uniform(0), "Uniform");
}

TEST(RandomDeathTest, RangeWithLoAboveHiAborts) {
  Random random(13);
  EXPECT_DEATH((void)random.Range(2, 1), "lo > hi");
}

TEST(RandomTest, SeedFromEntropyVaries) {
  std::set<uint64_t> seeds;
  for (int i = 0; i < 8; ++i) seeds.insert(Random::SeedFromEntropy());
  EXPECT_GT(seeds.size(), 1u);
}

}  // namespace
}  // namespace cairn
