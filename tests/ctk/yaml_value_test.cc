// Doc string values: YAML 1.2 core schema typing, as the definition loader types.
#include "tests/ctk/yaml_value.h"

#include <gtest/gtest.h>

#include "tests/support/assertions.h"

namespace cairn::ctk {
namespace {

using cairn::testing::IsError;
using cairn::testing::Must;

Json Value(const char* text) { return Must(YamlToJson(text, "t.feature")); }

TEST(YamlToJson, TypesPlainScalarsByTheCoreSchema) {
  EXPECT_EQ(Value("1"), Json(1));
  EXPECT_TRUE(Value("1").is_number_integer());
  EXPECT_EQ(Value("-0x1f"), Json("-0x1f"));  // the core schema's hex has no sign
  EXPECT_EQ(Value("0x1f"), Json(31));
  EXPECT_EQ(Value("0o17"), Json(15));
  EXPECT_EQ(Value("+7"), Json(7));
  EXPECT_EQ(Value("1.5e3"), Json(1500.0));
  EXPECT_EQ(Value("true"), Json(true));
  EXPECT_EQ(Value("False"), Json(false));
  EXPECT_EQ(Value("~"), Json(nullptr));
  EXPECT_EQ(Value(""), Json(nullptr));
  EXPECT_EQ(Value("yes"), Json("yes"));  // YAML 1.1's booleans are strings in 1.2
  EXPECT_EQ(Value("'1'"), Json("1"));
  EXPECT_EQ(Value("\"true\""), Json("true"));
  EXPECT_EQ(Value("https://fake-source.com"), Json("https://fake-source.com"));
  EXPECT_EQ(Value("/do/0/tryGetPet/try/0/getPet"), Json("/do/0/tryGetPet/try/0/getPet"));
}

TEST(YamlToJson, BuildsObjectsAndArrays) {
  EXPECT_EQ(
      Value("ids: [ 1, 2 ]\nname: x\nnested:\n  a: ~\n  b: [red, 'green']"),
      (Json{
          {"ids", {1, 2}}, {"name", "x"}, {"nested", {{"a", nullptr}, {"b", {"red", "green"}}}}}));
  EXPECT_EQ(Value("{\"a\": [1, 2.5, \"s\", null, true]}"),
            (Json{{"a", {1, 2.5, "s", nullptr, true}}}));
  EXPECT_EQ(Value("greetings: Hello John Doe!"), (Json{{"greetings", "Hello John Doe!"}}));
}

TEST(YamlToJson, RefusesWhatJsonCannotHold) {
  EXPECT_TRUE(IsError(YamlToJson(".inf", "t.feature").status(), StatusCode::kInvalidArgument,
                      {"t.feature:1:1: ", ".inf"}));
  EXPECT_TRUE(IsError(YamlToJson("a: [1,", "t.feature").status(), StatusCode::kInvalidArgument,
                      {"t.feature"}));
  EXPECT_TRUE(IsError(YamlToJson("a: 1\n---\nb: 2\n", "t.feature").status(),
                      StatusCode::kInvalidArgument, {"2 YAML documents"}));
  EXPECT_TRUE(IsError(YamlToJson("99999999999999999999999", "t.feature").status(),
                      StatusCode::kInvalidArgument, {"out of range"}));
  EXPECT_TRUE(IsError(YamlToJson("? [a]\n: 1\n", "t.feature").status(),
                      StatusCode::kInvalidArgument, {"not a scalar"}));
}

}  // namespace
}  // namespace cairn::ctk
