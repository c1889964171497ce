#include "base/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "base/limits.h"
#include "base/random.h"
#include "tests/support/seed.h"

namespace cairn {
namespace {

// DumpJson writes what is hashed and persisted: it must give nlohmann's bytes exactly.
void ExpectSameDump(const Json& value) {
  ASSERT_EQ(DumpJson(value), DumpJsonReference(value)) << DumpJsonReference(value);
}

TEST(JsonTest, DumpMatchesNlohmannOnEdgeCases) {
  std::string every_ascii;
  for (int c = 0; c < 0x80; ++c) every_ascii.push_back(static_cast<char>(c));
  for (const Json& value :
       {Json(),
        Json(true),
        Json(false),
        Json(0),
        Json(-1),
        Json(42u),
        Json(std::numeric_limits<int64_t>::min()),
        Json(std::numeric_limits<int64_t>::max()),
        Json(std::numeric_limits<uint64_t>::max()),
        Json(0.1),
        Json(-0.0),
        Json(1.0),
        Json(1e300),
        Json(5e-324),
        Json(std::nan("")),
        Json(INFINITY),
        Json(""),
        Json(every_ascii),
        Json("\"\\/\b\f\n\r\t\x01\x1f\x7f"),
        Json("caf\xc3\xa9 \xe2\x82\xac"),
        Json("bad \xff utf-8 \xc3"),
        Json("\xf0\x9f\x98\x80"),
        Json::object(),
        Json::array(),
        Json{{"b", 1}, {"a", {{"z", Json::array()}, {"\n", nullptr}}}, {"\xc3\xa9", "x"}},
        Json::array({1, "two", 3.5, nullptr, Json::object(), Json::array({Json::array()})}),
        Json::binary({1, 2, 3}),
        Json::binary({4}, 7),
        Json{{"nested", Json::binary({})}}}) {
    ExpectSameDump(value);
  }
}

Json RandomString(Random& random) {
  static const char* kPieces[] = {"a",   "Z",        " ",    "\"",       "\\",
                                  "\n",  "\t",       "\x01", "\x1f",     "\x7f",
                                  "/",   "\xc3\xa9", "\xff", "\xe2\x82", "\xf0\x9f\x98\x80",
                                  "key", "0"};
  std::string s;
  const uint64_t n = random.Uniform(8);
  for (uint64_t i = 0; i < n; ++i) s += kPieces[random.Uniform(std::size(kPieces))];
  return s;
}

Json RandomValue(Random& random, int depth) {
  switch (random.Uniform(depth > 4 ? 6 : 8)) {
    case 0:
      return nullptr;
    case 1:
      return random.OneIn(2);
    case 2:
      return static_cast<int64_t>(random.Next64());
    case 3:
      return random.Next64();
    case 4:
      return static_cast<double>(random.Range(-1000000, 1000000)) / 64.0 *
             std::pow(10.0, static_cast<double>(random.Range(-30, 30)));
    case 5:
      return RandomString(random);
    case 6: {
      Json array = Json::array();
      for (uint64_t i = random.Uniform(5); i > 0; --i)
        array.push_back(RandomValue(random, depth + 1));
      return array;
    }
    default: {
      Json object = Json::object();
      for (uint64_t i = random.Uniform(5); i > 0; --i) {
        object[RandomString(random).get<std::string>()] = RandomValue(random, depth + 1);
      }
      return object;
    }
  }
}

TEST(JsonTest, DumpMatchesNlohmannOnRandomValues) {
  const uint64_t seed = testing::TestSeed();
  Random random(seed);
  for (int i = 0; i < 20000; ++i) {
    const Json value = RandomValue(random, 0);
    ASSERT_EQ(DumpJson(value), DumpJsonReference(value)) << "seed=" << seed << " value " << i;
  }
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

// ParseJson as it was: a depth guard called for every token. The fast path must accept
// and refuse the same texts with the same messages.
Result<Json> GuardedParse(std::string_view text, size_t depth_max) {
  bool too_deep = false;
  Json::parser_callback_t guard = [&too_deep, depth_max](int depth, Json::parse_event_t, Json&) {
    if (depth > static_cast<int>(depth_max)) too_deep = true;
    return !too_deep;
  };
  Json value = Json::parse(text.begin(), text.end(), guard, /*allow_exceptions=*/false);
  if (too_deep) return Status::InvalidArgument("deep");
  if (value.is_discarded()) return Status::InvalidArgument("invalid");
  return value;
}

TEST(JsonTest, ParseRefusesWhatTheGuardedParseRefuses) {
  const size_t depth_max = 5;
  std::vector<std::string> texts = {"1", "[]", "{}", "\"x\"", "[1,", "{\"a\":}", "nul"};
  for (size_t depth = 1; depth <= depth_max + 3; ++depth) {
    for (const char* inner : {"", "1", "[]", "{}", "{\"k\":null}", "[1,[2]]", "x"}) {
      std::string arrays = std::string(depth, '[') + inner + std::string(depth, ']');
      std::string objects;
      for (size_t i = 0; i < depth; ++i) objects += "{\"a\":";
      objects += *inner == '\0' ? "0" : inner;
      objects += std::string(depth, '}');
      texts.push_back(arrays);
      texts.push_back(objects);
      texts.push_back("[" + arrays + ",1]");
      texts.push_back(arrays.substr(0, arrays.size() - 1));  // unterminated
    }
  }
  for (const std::string& text : texts) {
    Result<Json> fast = ParseJson(text, "t", 1 << 20, depth_max);
    Result<Json> guarded = GuardedParse(text, depth_max);
    ASSERT_EQ(fast.ok(), guarded.ok()) << text;
    if (fast.ok()) {
      EXPECT_EQ(*fast, *guarded) << text;
    } else {
      const bool deep = fast.status().message().find("nests deeper") != std::string::npos;
      EXPECT_EQ(deep, guarded.status().message() == "deep")
          << text << ": " << fast.status().message();
    }
  }
}

}  // namespace
}  // namespace cairn
