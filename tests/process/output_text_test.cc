#include "engine/process/output_text.h"

#include <gtest/gtest.h>

#include <string>

#include "base/json.h"
#include "base/random.h"
#include "tests/support/seed.h"

namespace cairn::engine::process {
namespace {

constexpr const char* kReplacement = "\xEF\xBF\xBD";

TEST(SanitizeUtf8, KeepsValidText) {
  std::string text = "plain, é, €, 😀, \x7f";
  EXPECT_EQ(SanitizeUtf8(text), text);
  EXPECT_EQ(SanitizeUtf8(""), "");
}

TEST(SanitizeUtf8, ReplacesEachInvalidByte) {
  EXPECT_EQ(SanitizeUtf8("a\xffz"), std::string("a") + kReplacement + "z");
  EXPECT_EQ(SanitizeUtf8("\x80"), kReplacement);  // stray continuation
  EXPECT_EQ(SanitizeUtf8("\xC3"), kReplacement);  // truncated
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), std::string(kReplacement) + kReplacement);  // overlong
  EXPECT_EQ(SanitizeUtf8("\xE0\x80\xAF").size(), 9u);       // overlong, 3 bytes
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80").size(), 9u);       // surrogate
  EXPECT_EQ(SanitizeUtf8("\xF4\x90\x80\x80").size(), 12u);  // above U+10FFFF
  EXPECT_EQ(SanitizeUtf8("\xF0\x9F\x98"), std::string(kReplacement) + kReplacement + kReplacement);
}

TEST(SanitizeUtf8, RandomBytesAlwaysDumpStrictly) {
  uint64_t seed = cairn::testing::TestSeed();
  Random random(seed);
  for (int i = 0; i < 2000; ++i) {
    std::string clean = SanitizeUtf8(random.Bytes(random.Uniform(64)));
    EXPECT_NO_THROW(static_cast<void>(Json(clean).dump())) << "seed=" << seed;
    EXPECT_EQ(SanitizeUtf8(clean), clean) << "seed=" << seed;  // idempotent
  }
}

TEST(DropTrailingNewline, DropsOneOnly) {
  EXPECT_EQ(DropTrailingNewline("a\n"), "a");
  EXPECT_EQ(DropTrailingNewline("a\r\n"), "a");
  EXPECT_EQ(DropTrailingNewline("a\n\n"), "a\n");
  EXPECT_EQ(DropTrailingNewline("a\r"), "a\r");
  EXPECT_EQ(DropTrailingNewline(""), "");
}

TEST(Excerpt, CutsAndSaysHowMuch) {
  EXPECT_EQ(Excerpt("short", 10), "short");
  EXPECT_EQ(Excerpt("0123456789abc", 10), "0123456789 ... (13 bytes in all)");
  // A cut in the middle of a character leaves valid UTF-8.
  EXPECT_NO_THROW(static_cast<void>(Json(Excerpt("ééééé", 3)).dump()));
  EXPECT_EQ(Quoted("echo hi"), "'echo hi'");
}

TEST(TailBuffer, KeepsTheLastBytes) {
  TailBuffer tail(8);
  tail.Append("abc");
  EXPECT_EQ(tail.Text(), "abc");
  tail.Append("defghij");
  EXPECT_EQ(tail.Text(), "... cdefghij");
  for (int i = 0; i < 100; ++i) tail.Append("xy");
  EXPECT_EQ(tail.Text(), "... xyxyxyxy");
  tail.Append("0123456789ABCDEF");  // larger than the capacity at once
  EXPECT_EQ(tail.Text(), "... 89ABCDEF");
  EXPECT_EQ(tail.total_bytes(), 3u + 7u + 200u + 16u);
  tail.Clear();
  EXPECT_EQ(tail.Text(), "");
}

}  // namespace
}  // namespace cairn::engine::process
