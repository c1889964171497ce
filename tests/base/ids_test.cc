#include "base/ids.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <unordered_set>

#include "base/limits.h"
#include "base/random.h"

namespace cairn {
namespace {

constexpr int64_t kNanosPerMilli = 1'000'000;

TEST(RunIdTest, ParsesValidIds) {
  for (const char* text : {"a", "run-1", "Run_2.x", "ns:run@3", "0123456789"}) {
    auto id = RunId::Parse(text);
    ASSERT_TRUE(id.ok()) << text << ": " << id.status().ToString();
    EXPECT_EQ(id->str(), text);
    EXPECT_FALSE(id->empty());
  }
  const std::string longest(limits::run_id_bytes_max, 'x');
  EXPECT_TRUE(RunId::Parse(longest).ok());
}

TEST(RunIdTest, RejectsEmpty) {
  auto id = RunId::Parse("");
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(id.status().message().find("empty"), std::string::npos);
}

TEST(RunIdTest, RejectsTooLongNamingTheLength) {
  auto id = RunId::Parse(std::string(limits::run_id_bytes_max + 1, 'x'));
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(id.status().message().find(std::to_string(limits::run_id_bytes_max + 1)),
            std::string::npos)
      << id.status().message();
  EXPECT_NE(id.status().message().find(std::to_string(limits::run_id_bytes_max)),
            std::string::npos);
}

TEST(RunIdTest, RejectsBadCharacterNamingOffsetAndCharacter) {
  auto id = RunId::Parse("abc/def");
  ASSERT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(id.status().message().find("'/'"), std::string::npos) << id.status().message();
  EXPECT_NE(id.status().message().find("offset 3"), std::string::npos) << id.status().message();
}

TEST(RunIdTest, ShowsUnprintableBytesInHex) {
  auto id = RunId::Parse(std::string("ab\0c", 4));
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("0x00"), std::string::npos) << id.status().message();
  EXPECT_NE(id.status().message().find("offset 2"), std::string::npos);
  auto high = RunId::Parse("x\xff");
  ASSERT_FALSE(high.ok());
  EXPECT_NE(high.status().message().find("0xff"), std::string::npos) << high.status().message();
}

TEST(RunIdTest, CharacterSet) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool expected = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' ||
                          ch == ':' || ch == '@';
    EXPECT_EQ(IsRunIdChar(ch), expected) << c;
    EXPECT_EQ(RunId::Parse(std::string(1, ch)).ok(), expected) << c;
  }
}

TEST(RunIdTest, GenerateIs26ValidCharacters) {
  Random random(1);
  for (int i = 0; i < 100; ++i) {
    const RunId id = RunId::Generate(1'700'000'000'000'000'000 + i, random);
    EXPECT_EQ(id.str().size(), 26u);
    EXPECT_TRUE(RunId::Parse(id.str()).ok()) << id.str();
  }
}

TEST(RunIdTest, GeneratedIdsAreTimeOrderedAcrossMilliseconds) {
  Random random(2);
  int64_t now = 1'700'000'000'000'000'000;
  RunId previous = RunId::Generate(now, random);
  for (int i = 0; i < 1000; ++i) {
    now += kNanosPerMilli * (1 + static_cast<int64_t>(random.Uniform(100'000)));
    const RunId next = RunId::Generate(now, random);
    EXPECT_LT(previous, next) << previous.str() << " vs " << next.str();
    previous = next;
  }
}

TEST(RunIdTest, GeneratedIdsAreUnique) {
  Random random(3);
  std::unordered_set<RunId> seen;
  for (int i = 0; i < 10'000; ++i) {
    EXPECT_TRUE(seen.insert(RunId::Generate(1'700'000'000'000'000'000, random)).second);
  }
}

TEST(RunIdTest, GenerateClampsNegativeTime) {
  Random random(4);
  const RunId id = RunId::Generate(-5, random);
  EXPECT_EQ(id.str().substr(0, 10), "0000000000");
  EXPECT_TRUE(RunId::Parse(id.str()).ok());
}

TEST(RunIdTest, GenerateIsDeterministicForASeed) {
  Random a(9);
  Random b(9);
  EXPECT_EQ(RunId::Generate(123'456'789'000, a), RunId::Generate(123'456'789'000, b));
}

TEST(RunIdTest, FromTrustedAcceptsValid) { EXPECT_EQ(RunId::FromTrusted("ok-1").str(), "ok-1"); }

TEST(RunIdDeathTest, FromTrustedAbortsOnInvalid) {
  EXPECT_DEATH(RunId::FromTrusted("not ok"), "invalid trusted run id");
}

TEST(RunIdTest, DefaultIsEmptyAndOrdersFirst) {
  const RunId empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_LT(empty, RunId::FromTrusted("a"));
  std::set<RunId> ordered = {RunId::FromTrusted("b"), RunId::FromTrusted("a"),
                             RunId::FromTrusted("ab")};
  EXPECT_EQ(ordered.begin()->str(), "a");
  EXPECT_EQ(ordered.rbegin()->str(), "b");
}

TEST(EventSeqTest, ValueNextAndOrder) {
  constexpr EventSeq zero;
  static_assert(zero.value() == 0);
  static_assert(zero.Next().value() == 1);
  static_assert(EventSeq(5) < EventSeq(6));
  EXPECT_EQ(EventSeq(UINT64_MAX - 1).Next().value(), UINT64_MAX);
  EXPECT_EQ(EventSeq(3), EventSeq(3));
}

}  // namespace
}  // namespace cairn
