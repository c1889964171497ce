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

TEST(YamlConfigTest, Conditions) {
  Problems("w:\n  - {path: /a, gt: 5}\n  - {path: /b, in: [x, y]}\n  - {path: /c, exists: false}\n",
           [](const YamlContext& ctx, const YAML::Node& root) {
             auto conditions = yaml::Conditions(ctx, root["w"], "when", 8);
             ASSERT_TRUE(conditions);
             ASSERT_EQ(conditions->size(), 3u);
             EXPECT_TRUE(AllHold(*conditions, Json::parse(R"({"a": 6, "b": "y"})")));
             EXPECT_FALSE(AllHold(*conditions, Json::parse(R"({"a": 5, "b": "y"})")));
             EXPECT_FALSE(AllHold(*conditions, Json::parse(R"({"a": 6.5, "b": "z"})")));
             EXPECT_FALSE(AllHold(*conditions, Json::parse(R"({"a": 7, "b": "x", "c": 1})")));
             EXPECT_FALSE(AllHold(*conditions, Json::parse(R"({"a": "9", "b": "x"})")));
           });
  const std::string message = Problems(
      "w:\n  - {path: /a, gt: x}\n  - {path: a, eq: 1}\n  - {path: /a, eq: 1, ne: 2}\n  - {eq: "
      "1}\n  - {path: /a, like: 1}\n",
      [](const YamlContext& ctx, const YAML::Node& root) {
        EXPECT_FALSE(yaml::Conditions(ctx, root["w"], "when", 8));
      });
  EXPECT_NE(message.find("f.yaml:2:5: rule 'r': when: gt: expected a number, found string"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("'a' is not a JSON pointer"), std::string::npos) << message;
  EXPECT_NE(message.find("expected exactly one operator, found 2"), std::string::npos) << message;
  EXPECT_NE(message.find("missing 'path'"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key 'like'"), std::string::npos) << message;
}

TEST(ConditionTest, Operators) {
  const Json v = Json::parse(R"({"n": 10, "f": 2.5, "s": "a", "l": [1]})");
  auto c = [](std::string path, Condition::Op op, Json operand) {
    return Condition{std::move(path), op, std::move(operand)};
  };
  using Op = Condition::Op;
  EXPECT_TRUE(c("/n", Op::kEq, 10).Holds(v));
  EXPECT_TRUE(c("/n", Op::kEq, 10.0).Holds(v));
  EXPECT_TRUE(c("/n", Op::kNe, 11).Holds(v));
  EXPECT_TRUE(c("/missing", Op::kNe, 11).Holds(v));
  EXPECT_FALSE(c("/missing", Op::kEq, nullptr).Holds(v));
  EXPECT_TRUE(c("/f", Op::kGt, 2).Holds(v));
  EXPECT_TRUE(c("/f", Op::kLte, 2.5).Holds(v));
  EXPECT_FALSE(c("/s", Op::kGt, 0).Holds(v));
  EXPECT_TRUE(c("/s", Op::kNotIn, Json::array({"b"})).Holds(v));
  EXPECT_TRUE(c("/l", Op::kEq, Json::array({1})).Holds(v));
  EXPECT_TRUE(c("/l/0", Op::kExists, true).Holds(v));
  EXPECT_TRUE(c("/l/1", Op::kExists, false).Holds(v));
  EXPECT_EQ(c("/n", Op::kGte, 5).ToString(), "/n gte 5");
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

TEST(YamlConfigTest, DurationsThatWouldOverflowAreRefused) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "999999999d";
  EXPECT_EQ(yaml::ParseDurationMs(text), std::nullopt);
}

TEST(YamlConfigTest, DocumentsThatExpandThroughAliasesAreBounded) {
  std::string yaml = "x0: &a0 [v, v, v, v, v, v, v, v, v, v]\n";
  for (int i = 1; i < 9; ++i) {
    yaml += "x" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) yaml += (j ? ", *a" : "*a") + std::to_string(i - 1);
    yaml += "]\n";
  }
  YamlProblems problems("f.yaml");
  EXPECT_FALSE(ParseYamlText(problems, yaml, "test", 1 << 20));
  EXPECT_EQ(problems.ToStatus().message(),
            "f.yaml:1:1: the document expands (through YAML aliases) to more than 1000000 nodes");
}

}  // namespace
}  // namespace cairn
