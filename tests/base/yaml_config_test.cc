#include "base/yaml_config.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

// Parses `text`, runs `read` on the root with a context, and returns the problems.
template <typename Read>
std::string Problems(const std::string& text, Read read) {
  YamlProblems problems("f.yaml");
  std::optional<YAML::Node> root = ParseYamlText(problems, text, "test", 1 << 20);
  if (root) {
    const YamlContext ctx{problems, "rule 'r'", nullptr};
    read(ctx, *root);
  }
  return problems.empty() ? "" : problems.ToStatus().message();
}

TEST(YamlConfigTest, ProblemsNameFileLineColumnAndSubject) {
  const std::string message =
      Problems("a: 1\nb: yes\n", [](const YamlContext& ctx, const YAML::Node& root) {
        EXPECT_FALSE(yaml::Bool(ctx, root["b"], "b").has_value());
      });
  EXPECT_EQ(message, "f.yaml:2:4: rule 'r': b: expected true or false, found 'yes'");
}

TEST(YamlConfigTest, SyntaxErrorsHaveAPosition) {
  const std::string message = Problems("a: [1, 2\n", [](const YamlContext&, const YAML::Node&) {});
  EXPECT_NE(message.find("f.yaml:"), std::string::npos) << message;
  EXPECT_NE(message.find("invalid YAML"), std::string::npos) << message;
}

TEST(YamlConfigTest, UnknownAndDuplicateKeys) {
  const std::string message =
      Problems("a: 1\nzz: 2\na: 3\n", [](const YamlContext& ctx, const YAML::Node& root) {
        yaml::RefuseUnknownKeys(ctx, root, "rule", {"a", "b"});
      });
  EXPECT_NE(message.find("f.yaml:2:1: rule 'r': rule: unknown key 'zz' (expected a, b)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("f.yaml:3:1: rule 'r': rule: 'a' appears twice"), std::string::npos)
      << message;
}

TEST(YamlConfigTest, Durations) {
  EXPECT_EQ(yaml::ParseDurationMs("1h30m"), 5'400'000u);
  EXPECT_EQ(yaml::ParseDurationMs("2d"), 172'800'000u);
  EXPECT_EQ(yaml::ParseDurationMs("250"), 250u);
  EXPECT_EQ(yaml::ParseDurationMs("10 s"), std::nullopt);
  EXPECT_EQ(yaml::ParseDurationMs("10w"), std::nullopt);
  EXPECT_EQ(yaml::ParseDurationMs(""), std::nullopt);
  const std::string message =
      Problems("t: 0s\nu: 2h\n", [](const YamlContext& ctx, const YAML::Node& root) {
        EXPECT_FALSE(yaml::DurationMs(ctx, root["t"], "t", 3'600'000));
        EXPECT_FALSE(yaml::DurationMs(ctx, root["u"], "u", 3'600'000));
      });
  EXPECT_NE(message.find("t: must be positive"), std::string::npos) << message;
  EXPECT_NE(message.find("u: '2h' is longer than the limit"), std::string::npos) << message;
}

TEST(YamlConfigTest, MicrosAreExactDecimals) {
  Problems("a: 12.5\nb: 0.000001\nc: 3\nd: 1.2345678\ne: -1\nf: 1e3\n",
           [](const YamlContext& ctx, const YAML::Node& root) {
             EXPECT_EQ(yaml::Micros(ctx, root["a"], "a", 1'000'000'000), 12'500'000);
             EXPECT_EQ(yaml::Micros(ctx, root["b"], "b", 1'000'000'000), 1);
             EXPECT_EQ(yaml::Micros(ctx, root["c"], "c", 1'000'000'000), 3'000'000);
             EXPECT_FALSE(yaml::Micros(ctx, root["d"], "d", 1'000'000'000));
             EXPECT_FALSE(yaml::Micros(ctx, root["e"], "e", 1'000'000'000));
             EXPECT_FALSE(yaml::Micros(ctx, root["f"], "f", 1'000'000'000));
             EXPECT_FALSE(yaml::Micros(ctx, root["c"], "c", 2'000'000));
           });
}

TEST(YamlConfigTest, UnsignedRange) {
  const std::string message =
      Problems("a: 5\nb: 500\nc: x\n", [](const YamlContext& ctx, const YAML::Node& root) {
        EXPECT_EQ(yaml::Unsigned(ctx, root["a"], "a", 1, 10), 5u);
        EXPECT_FALSE(yaml::Unsigned(ctx, root["b"], "b", 1, 10));
        EXPECT_FALSE(yaml::Unsigned(ctx, root["c"], "c", 1, 10));
      });
  EXPECT_NE(message.find("b: 500 is out of range (expected an integer from 1 to 10)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("c: 'x' is not a whole number"), std::string::npos) << message;
}

TEST(YamlConfigTest, ToJsonTypesScalarsByTheCoreSchema) {
  Problems("v: {a: 1, b: '1', c: true, d: null, e: [x, 2.5], f: 'true'}\n",
           [](const YamlContext& ctx, const YAML::Node& root) {
             auto json = yaml::ToJson(ctx, root["v"], "v");
             ASSERT_TRUE(json);
             EXPECT_EQ(*json, Json::parse(
                                  R"({"a":1,"b":"1","c":true,"d":null,"e":["x",2.5],"f":"true"})"));
           });
}

TEST(YamlConfigTest, ProblemsAreBoundedAndCounted) {
  std::string text;
  for (int i = 0; i < 30; ++i) text += "k" + std::to_string(i) + ": 1\n";
  const std::string message = Problems(text, [](const YamlContext& ctx, const YAML::Node& root) {
    yaml::RefuseUnknownKeys(ctx, root, "x", {"a"});
  });
  EXPECT_NE(message.find("f.yaml: and 10 more problems"), std::string::npos) << message;
}

}  // namespace
}  // namespace cairn
