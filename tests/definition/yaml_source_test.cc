// ParseSource: YAML 1.2 core-schema typing, positions, and the builder's bounds.
#include "engine/definition/yaml_source.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/assertions.h"

namespace cairn::engine::definition_impl {
namespace {

using cairn::testing::IsError;

SourceLimits TestLimits() {
  SourceLimits limits;
  limits.bytes_max = 1 << 20;
  limits.nodes_max = 1000;
  limits.depth_max = 16;
  limits.expanded_bytes_max = 1 << 20;
  return limits;
}

Json Value(std::string_view yaml) {
  auto root = ParseSource("v: " + std::string(yaml), "t", TestLimits());
  EXPECT_TRUE(root.ok()) << yaml << ": " << root.status().ToString();
  if (!root.ok()) return "<error>";
  return ToJson(*(*root)->Find("v"));
}

Status Error(std::string_view yaml, const SourceLimits& limits = TestLimits()) {
  return ParseSource(yaml, "t.yaml", limits).status();
}

TEST(YamlSourceTest, CoreSchemaScalars) {
  EXPECT_EQ(Value(""), nullptr);
  EXPECT_EQ(Value("~"), nullptr);
  EXPECT_EQ(Value("null"), nullptr);
  EXPECT_EQ(Value("NULL"), nullptr);
  EXPECT_EQ(Value("true"), true);
  EXPECT_EQ(Value("False"), false);
  EXPECT_EQ(Value("42"), 42);
  EXPECT_EQ(Value("-7"), -7);
  EXPECT_EQ(Value("+7"), 7);
  EXPECT_EQ(Value("007"), 7);
  EXPECT_EQ(Value("0o17"), 15);
  EXPECT_EQ(Value("0x1F"), 31);
  EXPECT_EQ(Value("2.5"), 2.5);
  EXPECT_EQ(Value("1e3"), 1000.0);
  EXPECT_EQ(Value(".5"), 0.5);
  EXPECT_EQ(Value("-.5"), -0.5);
  EXPECT_EQ(Value("1."), 1.0);
  EXPECT_EQ(Value("18446744073709551615"), Json(uint64_t{18446744073709551615u}));
  EXPECT_TRUE(Value("99999999999999999999999").is_number_float());
  // YAML 1.1 spellings are strings in 1.2.
  EXPECT_EQ(Value("yes"), "yes");
  EXPECT_EQ(Value("on"), "on");
  EXPECT_EQ(Value("0b101"), "0b101");
  EXPECT_EQ(Value("1.0.3"), "1.0.3");
  EXPECT_EQ(Value("1_000"), "1_000");
  EXPECT_EQ(Value("0x"), "0x");
}

TEST(YamlSourceTest, QuotedAndTaggedScalars) {
  EXPECT_EQ(Value("'42'"), "42");
  EXPECT_EQ(Value("\"true\""), "true");
  EXPECT_EQ(Value("!!str 42"), "42");
  EXPECT_EQ(Value("!!int '42'"), 42);
  EXPECT_EQ(Value("!!float 1"), 1.0);
  EXPECT_EQ(Value("!!bool 'true'"), true);
  EXPECT_EQ(Value("|\n  a\n  b\n"), "a\nb\n");
  EXPECT_EQ(Value("[1, '2', {a: b}]"), Json::parse(R"([1,"2",{"a":"b"}])"));
}

TEST(YamlSourceTest, RefusedScalarsAndTags) {
  EXPECT_TRUE(IsError(Error("v: .inf"), StatusCode::kInvalidArgument,
                      {"t.yaml:1:4: /v: '.inf' (infinity or NaN) cannot be represented in JSON"}));
  EXPECT_TRUE(IsError(Error("v: -.Inf"), StatusCode::kInvalidArgument, {"infinity or NaN"}));
  EXPECT_TRUE(IsError(Error("v: .nan"), StatusCode::kInvalidArgument, {"infinity or NaN"}));
  EXPECT_TRUE(IsError(Error("v: 1e999"), StatusCode::kInvalidArgument, {"out of range"}));
  EXPECT_TRUE(IsError(Error("v: 0xFFFFFFFFFFFFFFFFFF"), StatusCode::kInvalidArgument,
                      {"does not fit in 64 bits"}));
  EXPECT_TRUE(IsError(Error("v: !custom x"), StatusCode::kInvalidArgument,
                      {"t.yaml:1:4: /v: unsupported YAML tag '!custom'"}));
  EXPECT_TRUE(IsError(Error("v: !!binary aGk="), StatusCode::kInvalidArgument,
                      {"unsupported YAML tag '!!binary'"}));
  EXPECT_TRUE(
      IsError(Error("v: !!int x"), StatusCode::kInvalidArgument, {"'x' is not a valid !!int"}));
  EXPECT_TRUE(IsError(Error("? [a]\n: b\n"), StatusCode::kInvalidArgument,
                      {"a mapping key must be a scalar"}));
  EXPECT_TRUE(
      IsError(Error("~: b\n"), StatusCode::kInvalidArgument, {"a mapping key must not be null"}));
}

TEST(YamlSourceTest, PositionsAreOneBased) {
  auto root = ParseSource("a: 1\nlist:\n  - x\n  - {k: v}\n", "t", TestLimits());
  ASSERT_TRUE(root.ok());
  const SourceNode& node = **root;
  EXPECT_EQ(node.pos.line, 1u);
  EXPECT_EQ(node.pos.column, 1u);
  const SourceNode::Entry* list = node.FindEntry("list");
  ASSERT_NE(list, nullptr);
  EXPECT_EQ(list->key_pos.line, 2u);
  EXPECT_EQ(list->key_pos.column, 1u);
  EXPECT_EQ(list->value->items[0]->pos.line, 3u);
  EXPECT_EQ(list->value->items[0]->pos.column, 5u);
  EXPECT_EQ(list->value->items[1]->pos.column, 5u);
  EXPECT_EQ(list->value->items[1]->entries[0].key_pos.column, 6u);
  EXPECT_EQ(node.height, 4u);
  EXPECT_EQ(list->value->nodes, 5u);  // the list, x, the map, its key k and v
}

TEST(YamlSourceTest, Bounds) {
  SourceLimits limits = TestLimits();
  EXPECT_TRUE(IsError(Error(std::string(17, '[') + std::string(17, ']'), limits),
                      StatusCode::kInvalidArgument,
                      {"t.yaml:1:17: /0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0: the document nests deeper "
                       "than 16 levels"}));
  EXPECT_TRUE(Error(std::string(16, '[') + std::string(16, ']'), limits).ok());
  limits.bytes_max = 10;
  EXPECT_TRUE(IsError(Error("a: 12345678", limits), StatusCode::kInvalidArgument,
                      {"t.yaml: the document is 11 bytes (at most 10)"}));
  limits = TestLimits();
  std::string many = "[";
  for (int i = 0; i < 1000; ++i) many += "1,";
  many += "1]";
  EXPECT_TRUE(IsError(Error(many, limits), StatusCode::kInvalidArgument, {"more than 1000 nodes"}));
}

TEST(YamlSourceTest, AnchorsAndAliases) {
  auto root = ParseSource("a: &x {k: [1, 2]}\nb: *x\n", "t", TestLimits());
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(ToJson(**root), Json::parse(R"({"a":{"k":[1,2]},"b":{"k":[1,2]}})"));
  EXPECT_EQ((*root)->nodes, 1u + 2 * 5 + 2);
  EXPECT_TRUE(IsError(Error("a: &x [*x]"), StatusCode::kInvalidArgument,
                      {"alias to an anchor that is not complete"}));
  EXPECT_TRUE(IsError(Error("a: *nowhere"), StatusCode::kInvalidArgument, {"t.yaml:"}));
  EXPECT_TRUE(IsError(Error("a: &k b\n*k : c\n"), StatusCode::kInvalidArgument,
                      {"an alias cannot be a mapping key"}));
}

TEST(YamlSourceTest, DuplicateKeys) {
  EXPECT_TRUE(IsError(Error("a:\n  b: 1\n  c: 2\n  b: 3\n"), StatusCode::kInvalidArgument,
                      {"t.yaml:4:3: /a/b: duplicate key 'b' (first at line 2, column 3)"}));
  EXPECT_TRUE(
      IsError(Error(R"({"a": 1, "a": 2})"), StatusCode::kInvalidArgument, {"duplicate key 'a'"}));
}

TEST(YamlSourceTest, StringsMustBeValidUtf8) {
  EXPECT_FALSE(Error("v: \xd0").ok());
  EXPECT_TRUE(IsError(Error("v: a\xff"
                            "b"),
                      StatusCode::kInvalidArgument,
                      {"t.yaml:1:4: /v: the text is not valid UTF-8"}));
  EXPECT_TRUE(IsError(Error("k\xc0\xaf: 1"), StatusCode::kInvalidArgument,
                      {"not valid UTF-8"}));  // overlong '/'
  EXPECT_TRUE(IsError(Error("v: \xed\xa0\x80"), StatusCode::kInvalidArgument,
                      {"not valid UTF-8"}));  // a surrogate
  EXPECT_TRUE(IsError(Error("v: \xf4\x90\x80\x80"), StatusCode::kInvalidArgument,
                      {"not valid UTF-8"}));  // above U+10FFFF
  EXPECT_EQ(Value("\xc3\xa9\xf0\x9f\x98\x80"), "\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(Value("\"\\xe9\""), "\xc3\xa9");  // a YAML escape is a code point
}

TEST(YamlSourceTest, DescribeAndEscape) {
  EXPECT_EQ(EscapePointerToken("a/b~c"), "a~1b~0c");
  EXPECT_EQ(EscapePointerToken(""), "");
}

}  // namespace
}  // namespace cairn::engine::definition_impl
