#include "engine/definition/duration.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/assertions.h"

namespace cairn::engine {
namespace {

using cairn::testing::IsError;

uint64_t Iso(std::string_view text) {
  auto ms = ParseIsoDuration(text, kDefinitionDurationMsMax);
  EXPECT_TRUE(ms.ok()) << text << ": " << ms.status().ToString();
  return ms.value_or(~uint64_t{0});
}

TEST(DurationTest, IsoForms) {
  EXPECT_EQ(Iso("PT30S"), 30'000u);
  EXPECT_EQ(Iso("PT1M30S"), 90'000u);
  EXPECT_EQ(Iso("P1DT2H"), (24 + 2) * 3'600'000u);
  EXPECT_EQ(Iso("P2W"), 14 * 86'400'000u);
  EXPECT_EQ(Iso("P1W1D"), 8 * 86'400'000u);
  EXPECT_EQ(Iso("PT0.5S"), 500u);
  EXPECT_EQ(Iso("PT0.250S"), 250u);
  EXPECT_EQ(Iso("PT1.5H"), 5'400'000u);
  EXPECT_EQ(Iso("PT0.0001S"), 0u);  // below a millisecond: dropped
  EXPECT_EQ(Iso("PT0S"), 0u);
  EXPECT_EQ(Iso("P0D"), 0u);
  EXPECT_EQ(Iso("P366D"), kDefinitionDurationMsMax);
}

TEST(DurationTest, InvalidIsoTextIsNamed) {
  for (std::string_view text : {"",      "P",     "PT",    "T1S",     "1S",   "PT1",    "pt1s",
                                "PT-1S", "PT1.S", "PT.5S", "PT1..5S", "P1DT", "PT1S2M", "PT1H1H",
                                "P1D1W", "PT1D",  "P1H",   "PT1STT",  "P 1D", "PT1s"}) {
    auto ms = ParseIsoDuration(text, kDefinitionDurationMsMax);
    EXPECT_TRUE(IsError(ms.status(), StatusCode::kInvalidArgument,
                        {"invalid ISO 8601 duration '" + std::string(text) + "'"}))
        << text;
  }
  EXPECT_TRUE(IsError(ParseIsoDuration("P1Y", kDefinitionDurationMsMax).status(),
                      StatusCode::kInvalidArgument, {"years and months have no fixed length"}));
  EXPECT_TRUE(IsError(ParseIsoDuration("P1M", kDefinitionDurationMsMax).status(),
                      StatusCode::kInvalidArgument, {"years and months"}));
  std::string long_text = "PT" + std::string(500, '9') + "S";
  auto status = ParseIsoDuration(long_text, kDefinitionDurationMsMax).status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"number too large"}));
  EXPECT_LT(status.message().size(), 300u);  // the text is shortened in the message
}

TEST(DurationTest, BoundsAreEnforcedWithoutOverflow) {
  EXPECT_TRUE(IsError(ParseIsoDuration("P367D", kDefinitionDurationMsMax).status(),
                      StatusCode::kInvalidArgument,
                      {"duration 'P367D' is longer than the maximum, 366d"}));
  EXPECT_TRUE(IsError(ParseIsoDuration("PT999999999999999H", kDefinitionDurationMsMax).status(),
                      StatusCode::kInvalidArgument, {"longer than the maximum"}));
  EXPECT_TRUE(IsError(ParseIsoDuration("P366DT1S", kDefinitionDurationMsMax).status(),
                      StatusCode::kInvalidArgument, {"longer than the maximum"}));
  EXPECT_TRUE(ParseIsoDuration("PT1S", 1000).ok());
  EXPECT_FALSE(ParseIsoDuration("PT1.001S", 1000).ok());
}

TEST(DurationTest, ObjectForm) {
  EXPECT_EQ(*DurationFromObject(Json::parse(R"({"seconds":10})"), kDefinitionDurationMsMax),
            10'000u);
  EXPECT_EQ(*DurationFromObject(
                Json::parse(R"({"days":1,"hours":2,"minutes":3,"seconds":4,"milliseconds":5})"),
                kDefinitionDurationMsMax),
            86'400'000u + 7'200'000u + 180'000u + 4'000u + 5u);
  EXPECT_TRUE(IsError(DurationFromObject(Json::object(), kDefinitionDurationMsMax).status(),
                      StatusCode::kInvalidArgument, {"needs at least one of"}));
  EXPECT_TRUE(
      IsError(DurationFromObject(Json::parse(R"({"weeks":1})"), kDefinitionDurationMsMax).status(),
              StatusCode::kInvalidArgument, {"unknown duration property 'weeks'"}));
  EXPECT_TRUE(IsError(
      DurationFromObject(Json::parse(R"({"seconds":1.5})"), kDefinitionDurationMsMax).status(),
      StatusCode::kInvalidArgument, {"'seconds' must be a non-negative integer, got 1.5"}));
  EXPECT_TRUE(IsError(
      DurationFromObject(Json::parse(R"({"seconds":"3"})"), kDefinitionDurationMsMax).status(),
      StatusCode::kInvalidArgument, {"got \"3\""}));
  EXPECT_TRUE(IsError(
      DurationFromObject(Json::parse(R"({"days":18446744073709551615})"), kDefinitionDurationMsMax)
          .status(),
      StatusCode::kInvalidArgument, {"longer than the maximum"}));
  EXPECT_TRUE(IsError(
      DurationFromObject(Json::parse(R"({"days":366,"seconds":1})"), kDefinitionDurationMsMax)
          .status(),
      StatusCode::kInvalidArgument, {"longer than the maximum"}));
}

TEST(DurationTest, Format) {
  EXPECT_EQ(FormatDurationMs(0), "0ms");
  EXPECT_EQ(FormatDurationMs(250), "250ms");
  EXPECT_EQ(FormatDurationMs(90'000), "1m 30s");
  EXPECT_EQ(FormatDurationMs(kDefinitionDurationMsMax), "366d");
}

}  // namespace
}  // namespace cairn::engine
