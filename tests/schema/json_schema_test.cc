#include "engine/schema/json_schema.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/json.h"
#include "base/limits.h"
#include "tests/support/assertions.h"

namespace cairn::engine {
namespace {

using ::cairn::testing::HasSubstr;
using ::cairn::testing::IsError;
using ::cairn::testing::Must;

Json J(std::string_view text) { return Must(ParseJson(text, "test")); }

CompiledSchema Compile(std::string_view schema) { return Must(CompiledSchema::Compile(J(schema))); }

Status Validate(std::string_view schema, std::string_view value) {
  return Compile(schema).Validate(J(value));
}

// Every value in `values` is valid against `schema`.
void ExpectValid(std::string_view schema, std::initializer_list<std::string_view> values) {
  const CompiledSchema compiled = Compile(schema);
  for (std::string_view value : values) {
    EXPECT_TRUE(compiled.Validate(J(value)).ok())
        << schema << " should accept " << value << ": " << compiled.Validate(J(value)).ToString();
  }
}

// `value` is invalid and the message has every one of `parts`.
void ExpectInvalid(std::string_view schema, std::string_view value,
                   std::initializer_list<std::string_view> parts = {}) {
  const Status status = Validate(schema, value);
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, parts)) << schema << " on " << value;
}

// CheckSchema refuses `schema` with a message that has every one of `parts`.
void ExpectRefused(std::string_view schema, std::initializer_list<std::string_view> parts) {
  const Status status = CheckSchema(J(schema));
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, parts)) << schema;
  EXPECT_EQ(status, CompiledSchema::Compile(J(schema)).status());
}

// --- Boolean schemas and the default schema -----------------------------------------------

TEST(JsonSchemaTest, TrueAcceptsEverythingFalseNothing) {
  ExpectValid("true", {"null", "1", "\"x\"", "[1,2]", "{\"a\":{}}"});
  ExpectValid("{}", {"null", "1", "\"x\"", "[1,2]", "{\"a\":{}}"});
  EXPECT_EQ(Validate("false", "1").message(),
            "(root): not allowed (the schema at (root) is false)");
  ExpectInvalid("{\"properties\":{\"a\":false}}", "{\"a\":1}",
                {"/a: not allowed (the schema at /properties/a is false)"});
}

TEST(JsonSchemaTest, DefaultConstructedIsTrueAndCopiesShare) {
  const CompiledSchema schema;
  EXPECT_EQ(schema.document(), Json(true));
  EXPECT_TRUE(schema.Validate(J("{\"anything\":[1,null]}")).ok());
  const CompiledSchema compiled = Compile("{\"type\":\"string\"}");
  const CompiledSchema copy = compiled;
  EXPECT_EQ(&copy.document(), &compiled.document());  // shared, not recompiled
  EXPECT_FALSE(copy.Validate(J("1")).ok());
  EXPECT_FALSE(compiled.Validate(J("1")).ok());
}

// --- type, enum, const -------------------------------------------------------------------

TEST(JsonSchemaTest, TypeNames) {
  ExpectValid("{\"type\":\"null\"}", {"null"});
  ExpectValid("{\"type\":\"boolean\"}", {"true", "false"});
  ExpectValid("{\"type\":\"object\"}", {"{}"});
  ExpectValid("{\"type\":\"array\"}", {"[]"});
  ExpectValid("{\"type\":\"string\"}", {"\"\""});
  ExpectValid("{\"type\":\"number\"}", {"1", "-1", "1.5", "18446744073709551615"});
  ExpectValid("{\"type\":\"integer\"}",
              {"1", "-1", "1.0", "-0.0", "1e300", "18446744073709551615"});
  ExpectInvalid("{\"type\":\"integer\"}", "1.5", {"(root): expected integer, got number 1.5"});
  ExpectInvalid("{\"type\":\"null\"}", "0", {"expected null, got number 0"});
  ExpectInvalid("{\"type\":\"boolean\"}", "\"true\"", {"expected boolean, got string \"true\""});
  ExpectInvalid("{\"type\":\"object\"}", "[]", {"expected object, got array"});
  ExpectInvalid("{\"type\":\"array\"}", "{}", {"expected array, got object"});
  ExpectInvalid("{\"type\":\"number\"}", "null", {"expected number, got null null"});
}

TEST(JsonSchemaTest, TypeArray) {
  ExpectValid("{\"type\":[\"string\",\"null\"]}", {"\"a\"", "null"});
  ExpectInvalid("{\"type\":[\"string\",\"null\"]}", "true",
                {"expected null or string, got boolean true"});
  ExpectValid("{\"type\":[\"integer\",\"string\"]}", {"3", "\"3\""});
  ExpectInvalid("{\"type\":[\"integer\",\"string\"]}", "3.5", {"expected integer or string"});
}

TEST(JsonSchemaTest, Enum) {
  const std::string_view schema = "{\"enum\":[\"red\",\"green\",1,null,{\"a\":[1]}]}";
  ExpectValid(schema, {"\"red\"", "\"green\"", "1", "1.0", "null", "{\"a\":[1.0]}"});
  ExpectInvalid(schema, "\"blue\"",
                {"(root): string \"blue\" is not one of enum [\"red\",\"green\",1,null,"});
  ExpectInvalid(schema, "{\"a\":[2]}", {"object is not one of enum"});
  ExpectInvalid(schema, "true", {"boolean true is not one of enum"});
  ExpectInvalid("{\"enum\":[]}", "1", {"is not one of enum []"});
}

TEST(JsonSchemaTest, EnumMessageIsTruncated) {
  std::string schema = "{\"enum\":[";
  for (int i = 0; i < 200; ++i) schema += (i ? ",\"" : "\"") + std::string(20, 'x') + "\"";
  schema += "]}";
  const Status status = Validate(schema, "\"y\"");
  ASSERT_FALSE(status.ok());
  EXPECT_LT(status.message().size(), 300u) << status.message();
  EXPECT_TRUE(HasSubstr(status.message(), "..."));
}

TEST(JsonSchemaTest, Const) {
  ExpectValid("{\"const\":{\"a\":[1,\"x\"]}}", {"{\"a\":[1.0,\"x\"]}"});
  ExpectInvalid("{\"const\":{\"a\":[1,\"x\"]}}", "{\"a\":[1,\"y\"]}",
                {"(root): object is not equal to const {\"a\":[1,\"x\"]}"});
  ExpectValid("{\"const\":null}", {"null"});
  ExpectInvalid("{\"const\":null}", "0", {"number 0 is not equal to const null"});
  ExpectInvalid("{\"const\":false}", "0", {"number 0 is not equal to const false"});
  // Numbers compare exactly: 2^53 + 1 is not the double 2^53.
  ExpectInvalid("{\"const\":9007199254740992.0}", "9007199254740993", {"not equal to const"});
  ExpectValid("{\"const\":9007199254740992.0}", {"9007199254740992"});
}

// --- numbers -----------------------------------------------------------------------------

TEST(JsonSchemaTest, MinimumAndMaximum) {
  const std::string_view schema = "{\"minimum\":1,\"maximum\":10.5}";
  ExpectValid(schema, {"1", "1.0", "10.5", "5", "\"not a number\""});
  ExpectInvalid(schema, "0", {"(root): 0 is less than minimum 1"});
  ExpectInvalid(schema, "0.999", {"0.999 is less than minimum 1"});
  ExpectInvalid(schema, "11", {"11 is greater than maximum 10.5"});
  ExpectInvalid(schema, "10.500001", {"is greater than maximum 10.5"});
}

TEST(JsonSchemaTest, ExclusiveBounds) {
  const std::string_view schema = "{\"exclusiveMinimum\":0,\"exclusiveMaximum\":1}";
  ExpectValid(schema, {"0.5", "1e-300"});
  ExpectInvalid(schema, "0", {"0 is not greater than exclusiveMinimum 0"});
  ExpectInvalid(schema, "-0.0", {"is not greater than exclusiveMinimum 0"});
  ExpectInvalid(schema, "1", {"1 is not less than exclusiveMaximum 1"});
  ExpectInvalid(schema, "1.0", {"1.0 is not less than exclusiveMaximum 1"});
}

TEST(JsonSchemaTest, NumbersCompareExactlyAcrossRepresentations) {
  ExpectInvalid("{\"maximum\":9007199254740992.0}", "9007199254740993",
                {"9007199254740993 is greater than maximum 9.007199254740992e+15"});
  ExpectValid("{\"maximum\":18446744073709551616.0}", {"18446744073709551615"});
  ExpectInvalid("{\"minimum\":18446744073709551615}", "18446744073709551614", {"less than"});
  ExpectValid("{\"minimum\":-9223372036854775808}", {"-9223372036854775808", "0"});
  ExpectInvalid("{\"minimum\":-9223372036854775807}", "-9223372036854775808", {"less than"});
  ExpectInvalid("{\"minimum\":-1e300}", "-1e301", {"less than"});
  ExpectValid("{\"minimum\":-1e300}", {"-9223372036854775808", "18446744073709551615"});
  ExpectInvalid("{\"maximum\":-0.5}", "0", {"greater than"});
  ExpectValid("{\"maximum\":-0.5}", {"-1"});
}

TEST(JsonSchemaTest, MultipleOf) {
  ExpectValid("{\"multipleOf\":2}", {"0", "4", "-4", "4.0", "18446744073709551614", "\"x\""});
  ExpectInvalid("{\"multipleOf\":2}", "7", {"(root): 7 is not a multiple of 2"});
  ExpectInvalid("{\"multipleOf\":2}", "4.5", {"4.5 is not a multiple of 2"});
  ExpectInvalid("{\"multipleOf\":2}", "18446744073709551615", {"not a multiple"});
  ExpectValid("{\"multipleOf\":1.5}", {"4.5", "0", "-3"});
  ExpectInvalid("{\"multipleOf\":1.5}", "35", {"35 is not a multiple of 1.5"});
  // Fractions that binary doubles cannot hold exactly.
  ExpectValid("{\"multipleOf\":0.1}", {"0.3", "0.7", "1.1", "12.3"});
  ExpectValid("{\"multipleOf\":0.0001}", {"0.0075"});
  ExpectValid("{\"multipleOf\":0.01}", {"19.99", "1234567.89"});
  ExpectInvalid("{\"multipleOf\":0.0001}", "0.00751", {"not a multiple"});
  ExpectInvalid("{\"multipleOf\":1}", "1000000000000.5", {"not a multiple"});
  // The quotient overflows to infinity: not a multiple, no crash.
  ExpectInvalid("{\"multipleOf\":0.123456789}", "1e308", {"not a multiple"});
}

// --- strings -----------------------------------------------------------------------------

TEST(JsonSchemaTest, LengthCountsCodePoints) {
  const std::string_view schema = "{\"minLength\":2,\"maxLength\":3}";
  ExpectValid(schema, {"\"ab\"", "\"abc\"", "\"h\u00e9\"", "\"\u00e9\u00e9\u00e9\"",
                       "\"\\ud83d\\ude00\\ud83d\\ude00\"", "5"});
  ExpectInvalid(schema, "\"a\"", {"(root): \"a\" has 1 character, fewer than minLength 2"});
  ExpectInvalid(schema, "\"\\ud83d\\ude00\"", {"has 1 character, fewer than minLength 2"});
  ExpectInvalid(schema, "\"abcd\"", {"\"abcd\" has 4 characters, more than maxLength 3"});
  ExpectValid("{\"maxLength\":0}", {"\"\""});
}

TEST(JsonSchemaTest, InvalidUtf8CountsEachBadByte) {
  // ParseJson never produces it, but a value built in memory may hold it.
  const CompiledSchema schema = Compile("{\"maxLength\":2}");
  EXPECT_TRUE(schema.Validate(Json(std::string("a\xff"))).ok());
  EXPECT_TRUE(IsError(schema.Validate(Json(std::string("a\xff\xfe"))), StatusCode::kInvalidArgument,
                      {"has 3 characters"}));
  EXPECT_TRUE(IsError(CheckSchema(Json{{"pattern", std::string("a\xff")}}),
                      StatusCode::kInvalidArgument, {"/pattern: pattern is not valid UTF-8"}));
}

TEST(JsonSchemaTest, LongKeysAreCutInPointers) {
  const std::string key(5000, 'k');
  const Json schema = {{"properties", {{key, {{"type", "string"}}}}}};
  const Status status = Must(CompiledSchema::Compile(schema)).Validate(Json{{key, 1}});
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(HasSubstr(status.message(), "/" + std::string(128, 'k') + "...: expected string"));
  EXPECT_LT(status.message().size(), 300u);
  const Status refused = CheckSchema(Json{{"properties", {{key, {{"minimum", "0"}}}}}});
  EXPECT_TRUE(IsError(refused, StatusCode::kInvalidArgument,
                      {"/properties/" + std::string(128, 'k') + ".../minimum: expected a number"}));
}

TEST(JsonSchemaTest, LongStringsArePreviewedShort) {
  const std::string value = "\"" + std::string(10000, 'z') + "\"";
  const Status status = Validate("{\"maxLength\":5}", value);
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(HasSubstr(status.message(), "has 10000 characters, more than maxLength 5"));
  EXPECT_LT(status.message().size(), 200u);
}

TEST(JsonSchemaTest, PatternMatchesAnywhere) {
  ExpectValid("{\"pattern\":\"b+\"}", {"\"abbbc\"", "\"b\"", "1"});
  ExpectInvalid("{\"pattern\":\"b+\"}", "\"ac\"", {"(root): \"ac\" does not match pattern \"b+\""});
  ExpectValid("{\"pattern\":\"^[0-9]{3}-[a-z]+$\"}", {"\"123-abc\""});
  ExpectInvalid("{\"pattern\":\"^[0-9]{3}-[a-z]+$\"}", "\"x123-abc\"", {"does not match"});
  ExpectInvalid("{\"pattern\":\"^[0-9]{3}-[a-z]+$\"}", "\"123-abc\\n\"", {"does not match"});
  ExpectValid("{\"pattern\":\"^(cat|dog)$\"}", {"\"cat\"", "\"dog\""});
  ExpectInvalid("{\"pattern\":\"^(cat|dog)$\"}", "\"cow\"", {"does not match"});
  ExpectValid("{\"pattern\":\"a(?=b)\"}", {"\"ab\""});
  ExpectInvalid("{\"pattern\":\"a(?!b)\"}", "\"ab\"", {"does not match"});
  ExpectValid("{\"pattern\":\"\\\\bword\\\\b\"}", {"\"a word here\""});
  ExpectValid("{\"pattern\":\"\\\\d\\\\s\\\\w\\\\x41\\\\u0042\"}", {"\"1 _AB\""});
}

TEST(JsonSchemaTest, PatternWorksOnCodePoints) {
  ExpectValid("{\"pattern\":\"^.$\"}", {"\"\u00e9\"", "\"\\ud83d\\ude00\""});
  ExpectInvalid("{\"pattern\":\"^.$\"}", "\"ab\"", {"does not match"});
  ExpectValid("{\"pattern\":\"^[\u00e0-\u00ff]+$\"}", {"\"\u00e9\u00e8\""});
  ExpectValid("{\"pattern\":\"^\\\\u00e9$\"}", {"\"\u00e9\""});
  ExpectValid("{\"pattern\":\"^\\ud83d\\ude00+$\"}", {"\"\\ud83d\\ude00\\ud83d\\ude00\""});
}

TEST(JsonSchemaTest, PatternsWithoutBacktrackingBlowUp) {
  // Catastrophic for a backtracking matcher; linear here.
  const auto start = std::chrono::steady_clock::now();
  ExpectInvalid("{\"pattern\":\"^(a+)+$\"}", "\"" + std::string(5000, 'a') + "b\"",
                {"does not match"});
  ExpectInvalid("{\"pattern\":\"^(a|a)*$\"}", "\"" + std::string(5000, 'a') + "b\"",
                {"does not match"});
  ExpectValid("{\"pattern\":\"^[a-z]+$\"}", {"\"" + std::string(100000, 'q') + "\""});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(JsonSchemaTest, PatternsThatCannotBeMatchedFaithfullyAreRefused) {
  ExpectRefused("{\"pattern\":\"(a)\\\\1\"}", {"/pattern: backreferences (\\1) are not supported"});
  ExpectRefused("{\"pattern\":\"(?<=a)b\"}", {"/pattern: (?< (lookbehind or a named group)"});
  ExpectRefused("{\"pattern\":\"(?<year>[0-9]+)\"}", {"/pattern: (?<"});
  ExpectRefused("{\"pattern\":\"\\\\p{L}\"}", {"/pattern: escape \\p is not supported"});
  ExpectRefused("{\"pattern\":\"[\\\\P{L}]\"}", {"/pattern: escape \\P is not supported"});
  ExpectRefused("{\"pattern\":\"\\\\k<a>\"}", {"escape \\k is not supported"});
  ExpectRefused("{\"pattern\":\"\\\\uD83D\\\\uDE00\"}", {"\\uD83D is half of a UTF-16 surrogate"});
  ExpectRefused("{\"pattern\":\"(a\"}", {"/pattern: invalid regular expression"});
  ExpectRefused("{\"pattern\":\"a)(b\"}", {"/pattern: invalid regular expression"});
  ExpectRefused("{\"pattern\":\"[z-a]\"}", {"/pattern: invalid regular expression"});
  ExpectRefused("{\"pattern\":\"a**\"}", {"/pattern: a quantifier cannot follow another"});
  ExpectRefused("{\"pattern\":\"a{2}{3}\"}", {"a quantifier cannot follow another"});
  ExpectRefused("{\"pattern\":\"a+?*\"}", {"a quantifier cannot follow another"});
  ExpectRefused("{\"pattern\":\"*a\"}", {"/pattern: invalid regular expression"});
  ExpectRefused("{\"pattern\":\"\\\\\"}", {"/pattern: invalid regular expression"});
  ExpectRefused("{\"pattern\":5}", {"/pattern: expected a string, got number"});
}

TEST(JsonSchemaTest, PatternSizeIsBounded) {
  const std::string long_pattern(schema_pattern_bytes_max + 1, 'a');
  ExpectRefused("{\"pattern\":\"" + long_pattern + "\"}",
                {"/pattern: pattern of 1025 bytes is longer than the limit of 1024"});
  EXPECT_TRUE(CheckSchema(Json{{"pattern", std::string(schema_pattern_bytes_max, 'a')}}).ok());
  ExpectRefused("{\"pattern\":\"a{5000}\"}", {"/pattern: pattern needs about", "automaton states"});
  ExpectRefused("{\"pattern\":\"((a{100}){100}){100}\"}", {"automaton states"});
  ExpectRefused("{\"pattern\":\"(?:a?){99999999999999999999999}\"}", {"automaton states"});
  EXPECT_TRUE(CheckSchema(J("{\"pattern\":\"^[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,255}$\"}")).ok());
  // Deeply nested groups compile without trouble.
  const std::string nested = std::string(300, '(') + "a" + std::string(300, ')');
  EXPECT_TRUE(CheckSchema(Json{{"pattern", nested}}).ok());
}

TEST(JsonSchemaTest, PatternWorkIsChargedToTheBudget) {
  const CompiledSchema schema = Must(CompiledSchema::Compile(
      J("{\"pattern\":\"^(?:a|b){1,300}$\"}"), {.steps_max = 10'000, .violations_max = 10}));
  EXPECT_TRUE(schema.Validate(Json("ab")).ok());
  EXPECT_TRUE(IsError(schema.Validate(Json(std::string(100000, 'a'))), StatusCode::kInvalidArgument,
                      {"schema validation exceeded 10000 steps"}));
}

// --- arrays ------------------------------------------------------------------------------

TEST(JsonSchemaTest, Items) {
  const std::string_view schema = "{\"items\":{\"type\":\"integer\"}}";
  ExpectValid(schema, {"[]", "[1,2,3]", "{}"});
  ExpectInvalid(schema, "[1,\"2\",3,4.5]",
                {"/1: expected integer, got string \"2\"; /3: expected integer, got number 4.5"});
}

TEST(JsonSchemaTest, PrefixItems) {
  const std::string_view schema = "{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"number\"}]}";
  ExpectValid(schema, {"[]", "[\"a\"]", "[\"a\",1]", "[\"a\",1,null,{}]"});
  ExpectInvalid(schema, "[1]", {"/0: expected string, got number 1"});
  const std::string_view closed = "{\"prefixItems\":[{\"type\":\"string\"}],\"items\":false}";
  ExpectValid(closed, {"[\"a\"]"});
  ExpectInvalid(closed, "[\"a\",2]", {"/1: not allowed (the schema at /items is false)"});
  const std::string_view rest =
      "{\"prefixItems\":[{\"type\":\"string\"}],\"items\":{\"type\":\"null\"}}";
  ExpectValid(rest, {"[\"a\",null,null]"});
  ExpectInvalid(rest, "[\"a\",null,1]", {"/2: expected null, got number 1"});
}

TEST(JsonSchemaTest, MinAndMaxItems) {
  const std::string_view schema = "{\"minItems\":1,\"maxItems\":2}";
  ExpectValid(schema, {"[1]", "[1,2]", "\"not an array\""});
  ExpectInvalid(schema, "[]", {"(root): array has 0 items, fewer than minItems 1"});
  ExpectInvalid(schema, "[1,2,3]", {"array has 3 items, more than maxItems 2"});
}

TEST(JsonSchemaTest, UniqueItems) {
  const std::string_view schema = "{\"uniqueItems\":true}";
  ExpectValid(schema, {"[]", "[1,2,\"1\",[1],{\"a\":1},{\"a\":2},true,1.5,null,false,0]"});
  ExpectInvalid(schema, "[1,2,1.0]", {"(root): items 0 and 2 are equal, but uniqueItems is true"});
  ExpectInvalid(schema, "[{\"a\":1,\"b\":[2]},{\"b\":[2.0],\"a\":1.0}]", {"items 0 and 1"});
  ExpectInvalid(schema, "[0,-0.0]", {"items 0 and 1"});
  ExpectValid("{\"uniqueItems\":false}", {"[1,1]"});
  // Many items: sorted, not compared pairwise.
  std::string many = "[";
  for (int i = 0; i < 30000; ++i) many += (i ? "," : "") + std::to_string(i);
  ExpectValid(schema, {many + "]"});
  ExpectInvalid(schema, many + ",29999]", {"items 29999 and 30000 are equal"});
}

TEST(JsonSchemaTest, UniqueItemsReportsTheFirstDuplicateInDocumentOrder) {
  ExpectInvalid("{\"uniqueItems\":true}", "[3,[1],2,[1],3]", {"items 1 and 3 are equal"});
  ExpectInvalid("{\"uniqueItems\":true}", "[\"b\",\"a\",\"a\",\"b\"]", {"items 1 and 2 are equal"});
}

TEST(JsonSchemaTest, ItemsArrayFormIsRefused) {
  ExpectRefused("{\"items\":[{\"type\":\"string\"}]}",
                {"/items: the array form of items (draft-07 tuples) is not supported; use "
                 "prefixItems"});
  ExpectRefused("{\"additionalItems\":false}", {"/additionalItems: keyword not supported"});
}

// --- objects -----------------------------------------------------------------------------

TEST(JsonSchemaTest, PropertiesAndRequired) {
  const std::string_view schema =
      "{\"type\":\"object\",\"required\":[\"name\",\"team\"],\"properties\":{"
      "\"name\":{\"type\":\"string\"},"
      "\"team\":{\"type\":\"object\",\"properties\":{\"size\":{\"minimum\":1}}}}}";
  ExpectValid(schema, {"{\"name\":\"x\",\"team\":{}}", "{\"name\":\"x\",\"team\":{\"size\":3}}",
                       "{\"name\":\"x\",\"team\":{},\"other\":1}"});
  ExpectInvalid(schema, "{\"name\":\"x\",\"team\":{\"size\":0}}",
                {"/team/size: 0 is less than minimum 1"});
  ExpectInvalid(schema, "{\"team\":{}}", {"(root): missing required property \"name\""});
  ExpectInvalid(schema, "{}",
                {"missing required property \"name\"; (root): missing required "
                 "property \"team\""});
  ExpectInvalid(schema, "{\"name\":5,\"team\":[]}",
                {"/name: expected string, got number 5; /team: expected object, got array"});
  ExpectValid("{\"required\":[]}", {"{}"});
  ExpectValid("{\"required\":[\"a\"]}", {"[]", "\"a\""});  // applies to objects only
}

TEST(JsonSchemaTest, PointersEscapeKeys) {
  const std::string_view schema =
      "{\"properties\":{\"a/b\":{\"properties\":{\"c~d\":{\"type\":\"string\"}}}}}";
  ExpectInvalid(schema, "{\"a/b\":{\"c~d\":1}}", {"/a~1b/c~0d: expected string"});
  ExpectInvalid("{\"items\":{\"properties\":{\"\":{\"type\":\"null\"}}}}", "[{\"\":1}]",
                {"/0/: expected null"});
}

TEST(JsonSchemaTest, AdditionalProperties) {
  const std::string_view closed =
      "{\"properties\":{\"a\":{},\"c\":{}},\"additionalProperties\":false}";
  ExpectValid(closed, {"{}", "{\"a\":1,\"c\":2}"});
  ExpectInvalid(closed, "{\"a\":1,\"b\":2,\"d\":3}",
                {"/b: property not allowed (it is not in properties, and additionalProperties "
                 "is false); /d: property not allowed"});
  const std::string_view typed =
      "{\"properties\":{\"id\":{\"type\":\"string\"}},\"additionalProperties\":{\"type\":"
      "\"integer\"}}";
  ExpectValid(typed, {"{\"id\":\"x\",\"n\":1,\"m\":2}"});
  ExpectInvalid(typed, "{\"id\":\"x\",\"n\":\"1\"}", {"/n: expected integer, got string \"1\""});
  ExpectInvalid(typed, "{\"id\":1}", {"/id: expected string, got number 1"});
  ExpectValid("{\"additionalProperties\":true}", {"{\"x\":1}"});
  ExpectInvalid("{\"additionalProperties\":false}", "{\"x\":1}", {"/x: property not allowed"});
}

TEST(JsonSchemaTest, MinAndMaxProperties) {
  const std::string_view schema = "{\"minProperties\":1,\"maxProperties\":2}";
  ExpectValid(schema, {"{\"a\":1}", "{\"a\":1,\"b\":2}", "[]"});
  ExpectInvalid(schema, "{}", {"(root): object has 0 properties, fewer than minProperties 1"});
  ExpectInvalid(schema, "{\"a\":1,\"b\":2,\"c\":3}",
                {"object has 3 properties, more than maxProperties 2"});
  ExpectInvalid("{\"minProperties\":2}", "{\"a\":1}", {"object has 1 property, fewer"});
}

// --- combinators -------------------------------------------------------------------------

TEST(JsonSchemaTest, AllOf) {
  const std::string_view schema = "{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":3}]}";
  ExpectValid(schema, {"3", "10"});
  ExpectInvalid(schema, "2", {"(root): 2 is less than minimum 3"});
  ExpectInvalid(schema, "2.5", {"expected integer, got number 2.5; (root): 2.5 is less than"});
}

TEST(JsonSchemaTest, AnyOf) {
  const std::string_view schema = "{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":10}]}";
  ExpectValid(schema, {"\"x\"", "10", "11"});
  ExpectInvalid(schema, "5",
                {"(root): matches none of the 2 schemas in anyOf ([0] expected string, got "
                 "number 5; [1] 5 is less than minimum 10)"});
  // Reasons deeper than the anyOf keep their pointer.
  ExpectInvalid("{\"anyOf\":[{\"properties\":{\"a\":{\"type\":\"string\"}}},{\"type\":\"array\"}]}",
                "{\"a\":1}", {"([0] /a: expected string, got number 1; [1] expected array"});
}

TEST(JsonSchemaTest, AnyOfListsAtMostFourReasons) {
  const Status status = Validate(
      "{\"anyOf\":[{\"const\":1},{\"const\":2},{\"const\":3},{\"const\":4},{\"const\":5}]}", "0");
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument,
                      {"matches none of the 5 schemas in anyOf",
                       "[3] number 0 is not equal to "
                       "const 4; ...)"}));
}

TEST(JsonSchemaTest, OneOf) {
  const std::string_view schema =
      "{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2},{\"type\":\"string\"}]}";
  ExpectValid(schema, {"1", "2.5"});
  ExpectInvalid(schema, "\"x\"", {"matches more than one schema in oneOf (1 and 2)"});
  ExpectInvalid(schema, "3",
                {"(root): matches more than one schema in oneOf (0 and 1); exactly one must "
                 "match"});
  ExpectInvalid(schema, "1.5", {"matches none of the 3 schemas in oneOf ([0] expected integer"});
}

TEST(JsonSchemaTest, Not) {
  ExpectValid("{\"not\":{\"type\":\"string\"}}", {"1", "null"});
  ExpectInvalid("{\"not\":{\"type\":\"string\"}}", "\"x\"",
                {"(root): matches the schema in not, which it must not"});
  ExpectValid("{\"not\":{\"not\":{\"type\":\"string\"}}}", {"\"x\""});
  ExpectInvalid("{\"properties\":{\"a\":{\"not\":true}}}", "{\"a\":1}",
                {"/a: matches the schema in not"});
}

// --- references --------------------------------------------------------------------------

TEST(JsonSchemaTest, RefToDefsAndDefinitions) {
  const std::string_view schema =
      "{\"$defs\":{\"positive\":{\"type\":\"integer\",\"minimum\":1}},"
      "\"definitions\":{\"name\":{\"type\":\"string\"}},"
      "\"properties\":{\"n\":{\"$ref\":\"#/$defs/positive\"},"
      "\"s\":{\"$ref\":\"#/definitions/name\"}}}";
  ExpectValid(schema, {"{\"n\":1,\"s\":\"x\"}"});
  ExpectInvalid(schema, "{\"n\":0}", {"/n: 0 is less than minimum 1"});
  ExpectInvalid(schema, "{\"s\":[]}", {"/s: expected string, got array"});
}

TEST(JsonSchemaTest, RefEscapingAndNestedDefs) {
  const std::string_view schema =
      "{\"$defs\":{\"a/b\":{\"type\":\"string\"},\"c~d\":{\"type\":\"null\"},"
      "\"e f\":{\"$defs\":{\"inner\":{\"const\":7}}}},"
      "\"properties\":{\"x\":{\"$ref\":\"#/$defs/a~1b\"},\"y\":{\"$ref\":\"#/$defs/c~0d\"},"
      "\"z\":{\"$ref\":\"#/$defs/e%20f/$defs/inner\"}}}";
  ExpectValid(schema, {"{\"x\":\"s\",\"y\":null,\"z\":7}"});
  ExpectInvalid(schema, "{\"x\":1}", {"/x: expected string"});
  ExpectInvalid(schema, "{\"y\":1}", {"/y: expected null"});
  ExpectInvalid(schema, "{\"z\":1}", {"/z: number 1 is not equal to const 7"});
}

TEST(JsonSchemaTest, RecursiveRefThroughTheValue) {
  const std::string_view tree =
      "{\"$defs\":{\"node\":{\"type\":\"object\",\"required\":[\"v\"],\"properties\":{"
      "\"v\":{\"type\":\"integer\"},"
      "\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}},"
      "\"additionalProperties\":false}},"
      "\"$ref\":\"#/$defs/node\"}";
  ExpectValid(tree, {"{\"v\":1}", "{\"v\":1,\"children\":[{\"v\":2,\"children\":[{\"v\":3}]}]}"});
  ExpectInvalid(tree, "{\"v\":1,\"children\":[{\"v\":2,\"children\":[{\"v\":\"3\"}]}]}",
                {"/children/0/children/0/v: expected integer, got string \"3\""});
  // "#" is the root: a list of lists.
  const std::string_view nested = "{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}";
  ExpectValid(nested, {"[]", "[[],[[[]]]]"});
  ExpectInvalid(nested, "[[],[[1]]]", {"/1/0/0: expected array, got number 1"});
  // As deep as a value may nest.
  std::string deep;
  for (size_t i = 0; i + 1 < limits::json_depth_max; ++i) deep += "[";
  for (size_t i = 0; i + 1 < limits::json_depth_max; ++i) deep += "]";
  ExpectValid(nested, {deep});
}

TEST(JsonSchemaTest, UnsupportedRefsAreRefusedByName) {
  ExpectRefused("{\"$ref\":\"https://example.com/s.json\"}",
                {"/$ref: \"https://example.com/s.json\" is not supported (only local references"});
  ExpectRefused("{\"$ref\":\"other.json#/$defs/a\"}", {"is not supported"});
  ExpectRefused("{\"$ref\":\"#anchor\"}", {"/$ref: \"#anchor\" is not supported (anchors"});
  ExpectRefused("{\"properties\":{\"a\":{},\"b\":{\"$ref\":\"#/properties/a\"}}}",
                {"\"#/properties/a\" is not supported (only local references"});
  ExpectRefused("{\"$defs\":{},\"$ref\":\"#/$defs/missing\"}",
                {"/$ref: \"#/$defs/missing\" does not point to a subschema of this schema"});
  ExpectRefused("{\"$defs\":{\"a\":{\"required\":[\"x\"]}},\"$ref\":\"#/$defs/a/required\"}",
                {"does not point to a subschema"});
  ExpectRefused("{\"$defs\":{\"a\":{}},\"$ref\":\"#/$defs/a~2\"}", {"'~' must be followed"});
  ExpectRefused("{\"$defs\":{\"a\":{}},\"$ref\":\"#/$defs/%zz\"}", {"bad percent-encoding"});
  ExpectRefused("{\"$defs\":{\"a\":{}},\"$ref\":\"#/$defs/a%2\"}", {"bad percent-encoding"});
  ExpectRefused("{\"$ref\":5}", {"/$ref: expected a string, got number"});
  for (std::string_view keyword :
       {"$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$vocabulary"}) {
    const std::string schema = "{\"" + std::string(keyword) + "\":\"x\"}";
    ExpectRefused(schema, {"/" + std::string(keyword) + ": keyword not supported"});
  }
}

TEST(JsonSchemaTest, RefCyclesThatNeverDescendAreRefused) {
  ExpectRefused("{\"$ref\":\"#\"}", {"(root): $ref cycle"});
  ExpectRefused("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}}}",
                {"$ref cycle: this schema applies itself again", "without descending"});
  ExpectRefused("{\"$defs\":{\"a\":{\"anyOf\":[{\"type\":\"string\"},{\"$ref\":\"#/$defs/a\"}]}}}",
                {"/$defs/a: $ref cycle"});
  ExpectRefused(
      "{\"$defs\":{\"a\":{\"not\":{\"allOf\":[{\"oneOf\":[{\"$ref\":\"#/$defs/a\"}]}]}}}}",
      {"$ref cycle"});
  // Unused definitions are checked too.
  ExpectRefused("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}},\"type\":\"string\"}", {"$ref cycle"});
}

TEST(JsonSchemaTest, RefSiblingsNeedA2019OrLaterDialect) {
  ExpectRefused("{\"$defs\":{\"a\":{}},\"$ref\":\"#/$defs/a\",\"minimum\":1}",
                {"/$ref: \"minimum\" beside $ref is ignored by draft-07 and applied by 2019-09"});
  ExpectRefused(
      "{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"$defs\":{\"a\":{}},"
      "\"$ref\":\"#/$defs/a\",\"type\":\"string\"}",
      {"\"type\" beside $ref"});
  // Annotations beside $ref are fine in every draft.
  EXPECT_TRUE(CheckSchema(J("{\"$defs\":{\"a\":{}},\"$ref\":\"#/$defs/a\",\"title\":\"t\","
                            "\"description\":\"d\",\"default\":1}"))
                  .ok());
  // 2020-12 applies both.
  const std::string_view schema =
      "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
      "\"$defs\":{\"int\":{\"type\":\"integer\"}},\"$ref\":\"#/$defs/int\",\"minimum\":5}";
  ExpectValid(schema, {"5"});
  ExpectInvalid(schema, "4", {"(root): 4 is less than minimum 5"});
  ExpectInvalid(schema, "5.5", {"(root): expected integer, got number 5.5"});
}

// --- annotations, dialects, unsupported keywords -------------------------------------------

TEST(JsonSchemaTest, AnnotationsAreAcceptedAndHaveNoEffect) {
  const std::string_view schema =
      "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"urn:cairn:x\","
      "\"$comment\":\"c\",\"title\":\"t\",\"description\":\"d\",\"default\":{\"a\":1},"
      "\"examples\":[1,\"x\"],\"deprecated\":true,\"readOnly\":false,\"writeOnly\":false,"
      "\"format\":\"email\",\"properties\":{\"when\":{\"type\":\"string\",\"format\":"
      "\"date-time\",\"title\":\"w\"}}}";
  // format is an annotation: a non-email and a non-date pass.
  ExpectValid(schema, {"\"not an email\"", "{\"when\":\"yesterday\"}", "5"});
  ExpectInvalid(schema, "{\"when\":1}", {"/when: expected string"});
}

TEST(JsonSchemaTest, AnnotationsMustBeWellFormed) {
  ExpectRefused("{\"title\":5}", {"/title: expected a string, got number"});
  ExpectRefused("{\"description\":[]}", {"/description: expected a string, got array"});
  ExpectRefused("{\"$comment\":null}", {"/$comment: expected a string, got null"});
  ExpectRefused("{\"examples\":1}", {"/examples: expected an array, got number"});
  ExpectRefused("{\"deprecated\":\"yes\"}", {"/deprecated: expected a boolean, got string"});
  ExpectRefused("{\"readOnly\":1}", {"/readOnly: expected a boolean"});
  ExpectRefused("{\"writeOnly\":1}", {"/writeOnly: expected a boolean"});
  ExpectRefused("{\"format\":1}", {"/format: expected a string, got number"});
  ExpectRefused("{\"$id\":1}", {"/$id: expected a string"});
}

TEST(JsonSchemaTest, Dialects) {
  for (std::string_view uri :
       {"http://json-schema.org/draft-06/schema#", "http://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-07/schema", "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema"}) {
    EXPECT_TRUE(CheckSchema(Json{{"$schema", uri}, {"type", "string"}}).ok()) << uri;
  }
  ExpectRefused("{\"$schema\":\"http://json-schema.org/draft-04/schema#\"}",
                {"/$schema: \"http://json-schema.org/draft-04/schema#\" is not supported"});
  ExpectRefused("{\"$schema\":\"https://example.com/my-meta\"}", {"is not supported"});
  ExpectRefused("{\"$schema\":7}", {"/$schema: expected a string"});
  ExpectRefused(
      "{\"properties\":{\"a\":{\"$schema\":\"https://json-schema.org/draft/2020-12/"
      "schema\"}}}",
      {"/properties/a/$schema: $schema is supported only at the root"});
  ExpectRefused("{\"$defs\":{\"a\":{\"$id\":\"a.json\"}}}",
                {"/$defs/a/$id: $id is supported only at the root"});
}

TEST(JsonSchemaTest, UnsupportedKeywordsAreRefusedByName) {
  for (std::string_view keyword :
       {"patternProperties", "if", "then", "else", "dependentRequired", "dependentSchemas",
        "dependencies", "contains", "minContains", "maxContains", "propertyNames",
        "unevaluatedProperties", "unevaluatedItems", "contentEncoding", "contentMediaType",
        "contentSchema", "id", "x-custom", "Type"}) {
    const std::string schema = "{\"properties\":{\"a\":{\"" + std::string(keyword) + "\":{}}}}";
    ExpectRefused(schema, {"/properties/a/" + std::string(keyword) +
                               ": keyword not supported (supported: type, enum, const,",
                           "writeOnly)"});
  }
}

TEST(JsonSchemaTest, MalformedKeywordsNameThePointerAndTheExpectation) {
  ExpectRefused("{\"properties\":{\"age\":{\"minimum\":\"1\"}}}",
                {"/properties/age/minimum: expected a number, got string"});
  ExpectRefused("{\"exclusiveMinimum\":true}",
                {"/exclusiveMinimum: expected a number, got boolean"});
  ExpectRefused("{\"maximum\":null}", {"/maximum: expected a number, got null"});
  ExpectRefused("{\"multipleOf\":0}", {"/multipleOf: expected a number greater than 0, got 0"});
  ExpectRefused("{\"multipleOf\":-2}", {"/multipleOf: expected a number greater than 0"});
  ExpectRefused("{\"minLength\":-1}", {"/minLength: expected a non-negative integer, got -1"});
  ExpectRefused("{\"maxItems\":1.5}", {"/maxItems: expected a non-negative integer, got 1.5"});
  ExpectRefused("{\"minProperties\":\"2\"}", {"/minProperties: expected a non-negative integer"});
  EXPECT_TRUE(CheckSchema(J("{\"maxLength\":2.0,\"minItems\":1e30}")).ok());
  ExpectRefused("{\"type\":\"int\"}", {"/type: unknown type \"int\""});
  ExpectRefused("{\"type\":[\"string\",5]}", {"/type/1: expected a type name, got number"});
  ExpectRefused("{\"type\":[]}", {"/type: expected at least one type name"});
  ExpectRefused("{\"type\":[\"string\",\"string\"]}", {"/type/1: type string repeated"});
  ExpectRefused("{\"type\":{}}", {"/type: expected a type name or an array of them, got object"});
  ExpectRefused("{\"enum\":\"a\"}", {"/enum: expected an array, got string"});
  ExpectRefused("{\"required\":\"a\"}", {"/required: expected an array of property names"});
  ExpectRefused("{\"required\":[\"a\",1]}", {"/required/1: expected a string, got number"});
  ExpectRefused("{\"required\":[\"a\",\"a\"]}", {"/required: \"a\" repeated"});
  ExpectRefused("{\"uniqueItems\":1}", {"/uniqueItems: expected a boolean, got number"});
  ExpectRefused("{\"properties\":[]}", {"/properties: expected an object of schemas, got array"});
  ExpectRefused("{\"properties\":{\"a\":1}}",
                {"/properties/a: expected a schema (an object or a boolean), got number"});
  ExpectRefused("{\"$defs\":{\"a\":\"x\"}}", {"/$defs/a: expected a schema"});
  ExpectRefused("{\"additionalProperties\":null}", {"/additionalProperties: expected a schema"});
  ExpectRefused("{\"allOf\":[]}", {"/allOf: expected at least one schema"});
  ExpectRefused("{\"anyOf\":{}}", {"/anyOf: expected an array of schemas, got object"});
  ExpectRefused("{\"oneOf\":[true,3]}", {"/oneOf/1: expected a schema"});
  ExpectRefused("{\"not\":[]}", {"/not: expected a schema (an object or a boolean), got array"});
  ExpectRefused("{\"prefixItems\":[]}", {"/prefixItems: expected at least one schema"});
  ExpectRefused("\"string\"", {"(root): expected a schema (an object or a boolean), got string"});
  ExpectRefused("null", {"(root): expected a schema"});
}

TEST(JsonSchemaTest, TheFirstProblemIsReportedDeterministically) {
  // Keys are visited in sorted order, so the report does not depend on how the document was
  // written.
  ExpectRefused("{\"minimum\":\"x\",\"anyOf\":5,\"zzz\":1}", {"/anyOf: expected an array"});
}

// --- reports and bounds ------------------------------------------------------------------

TEST(JsonSchemaTest, ViolationsAreListedInOrderAndCapped) {
  std::string value = "[";
  for (int i = 0; i < 30; ++i) value += (i ? ",\"" : "\"") + std::to_string(i) + "\"";
  value += "]";
  const Status status = Validate("{\"items\":{\"type\":\"integer\"}}", value);
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(HasSubstr(status.message(), "/0: expected integer, got string \"0\"; /1: "));
  EXPECT_TRUE(HasSubstr(status.message(),
                        "/9: expected integer, got string \"9\"; ... (more "
                        "violations not shown)"));
  EXPECT_FALSE(HasSubstr(status.message(), "/10:"));
  // Exactly the cap: no "more" note.
  std::string ten = "[";
  for (int i = 0; i < 10; ++i) ten += (i ? ",\"x\"" : "\"x\"");
  ten += "]";
  const Status exactly = Validate("{\"items\":{\"type\":\"integer\"}}", ten);
  EXPECT_FALSE(HasSubstr(exactly.message(), "more violations"));
  EXPECT_TRUE(HasSubstr(exactly.message(), "/9: expected integer"));
}

TEST(JsonSchemaTest, ViolationsMaxIsAnOption) {
  const CompiledSchema schema = Must(CompiledSchema::Compile(
      J("{\"items\":{\"type\":\"integer\"}}"), {.steps_max = 1000, .violations_max = 1}));
  EXPECT_EQ(schema.Validate(J("[\"a\",\"b\"]")).message(),
            "/0: expected integer, got string \"a\"; ... (more violations not shown)");
}

// anyOf of two refs to the next level, 40 levels: 2^40 paths if nothing bounded the work.
Json ExponentialSchema(int levels) {
  Json defs = Json::object();
  for (int i = 0; i < levels; ++i) {
    const std::string next = "#/$defs/l" + std::to_string(i + 1);
    defs["l" + std::to_string(i)] = {{"anyOf", {{{"$ref", next}}, {{"$ref", next}}}}};
  }
  defs["l" + std::to_string(levels)] = {{"type", "string"}};
  return {{"$defs", defs}, {"$ref", "#/$defs/l0"}};
}

TEST(JsonSchemaTest, ExponentialSchemasHitTheStepBound) {
  const CompiledSchema schema = Must(CompiledSchema::Compile(ExponentialSchema(40)));
  EXPECT_TRUE(schema.Validate(Json("ok")).ok());  // the first branch matches at every level
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(IsError(schema.Validate(Json(5)), StatusCode::kInvalidArgument,
                      {"schema validation exceeded " + std::to_string(schema_validation_steps_max) +
                       " steps (at (root))"}));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  const CompiledSchema small = Must(
      CompiledSchema::Compile(ExponentialSchema(40), {.steps_max = 1000, .violations_max = 10}));
  EXPECT_TRUE(IsError(small.Validate(Json(5)), StatusCode::kInvalidArgument,
                      {"schema validation exceeded 1000 steps"}));
}

TEST(JsonSchemaTest, StepsCountEqualityWork) {
  Json big = Json::array();
  for (int i = 0; i < 5000; ++i) big.push_back(i);
  Json schema = {{"enum", Json::array()}};
  for (int i = 0; i < 100; ++i) schema["enum"].push_back(big);
  const CompiledSchema compiled =
      Must(CompiledSchema::Compile(schema, {.steps_max = 100'000, .violations_max = 10}));
  EXPECT_TRUE(compiled.Validate(big).ok());  // the first candidate: 5001 steps
  Json other = big;
  other.back() = -1;
  EXPECT_TRUE(
      IsError(compiled.Validate(other), StatusCode::kInvalidArgument, {"exceeded 100000 steps"}));
}

TEST(JsonSchemaTest, HostileDeepSchemasAreRefusedNotCrashed) {
  Json schema = true;
  for (int i = 0; i < 100000; ++i) schema = Json{{"not", std::move(schema)}};
  EXPECT_TRUE(IsError(CheckSchema(schema), StatusCode::kInvalidArgument,
                      {"schema nests deeper than 128 levels"}));
  Json items = true;
  for (int i = 0; i < 200; ++i) items = Json{{"items", std::move(items)}};
  EXPECT_TRUE(IsError(CheckSchema(items), StatusCode::kInvalidArgument, {"nests deeper"}));
}

TEST(JsonSchemaTest, LongRefChainsHitTheDepthBound) {
  // Shallow as JSON, but each definition applies the next one to the same value.
  Json defs = Json::object();
  const int chain = 5000;
  for (int i = 0; i < chain; ++i) {
    defs["d" + std::to_string(i)] = {{"$ref", "#/$defs/d" + std::to_string(i + 1)}};
  }
  defs["d" + std::to_string(chain)] = {{"type", "string"}};
  const CompiledSchema schema =
      Must(CompiledSchema::Compile(Json{{"$defs", defs}, {"$ref", "#/$defs/d0"}}));
  EXPECT_TRUE(IsError(schema.Validate(Json("x")), StatusCode::kInvalidArgument,
                      {"schema validation nested deeper than 1024 subschemas (at (root))"}));
  // A short chain is fine.
  defs = Json::object();
  for (int i = 0; i < 100; ++i) {
    defs["d" + std::to_string(i)] = {{"allOf", {{{"$ref", "#/$defs/d" + std::to_string(i + 1)}}}}};
  }
  defs["d100"] = {{"type", "string"}};
  const CompiledSchema short_chain =
      Must(CompiledSchema::Compile(Json{{"$defs", defs}, {"$ref", "#/$defs/d0"}}));
  EXPECT_TRUE(short_chain.Validate(Json("x")).ok());
  EXPECT_TRUE(IsError(short_chain.Validate(Json(1)), StatusCode::kInvalidArgument,
                      {"(root): expected string, got number 1"}));
}

// Runs `body` on a thread with `stack_bytes` of stack.
void RunWithStack(size_t stack_bytes, std::function<void()> body) {
  pthread_attr_t attributes;
  ASSERT_EQ(pthread_attr_init(&attributes), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attributes, stack_bytes), 0);
  pthread_t thread;
  const auto run = [](void* argument) -> void* {
    (*static_cast<std::function<void()>*>(argument))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attributes, run, &body), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attributes);
}

TEST(JsonSchemaTest, TheDeepestValidationFitsInTwoMebibytesOfStack) {
  // 500 levels of anyOf through $ref: 1001 nested subschemas, just under the bound, ending
  // in a big pattern; the failure is then re-run to explain it.
  Json defs = Json::object();
  const int levels = 500;
  for (int i = 0; i < levels; ++i) {
    defs["d" + std::to_string(i)] = {
        {"anyOf", {{{"$ref", "#/$defs/d" + std::to_string(i + 1)}}, {{"type", "null"}}}}};
  }
  defs["d" + std::to_string(levels)] = {{"pattern", "^(?:[a-z]?){700}$"}};
  const CompiledSchema schema =
      Must(CompiledSchema::Compile(Json{{"$defs", defs}, {"$ref", "#/$defs/d0"}}));
  RunWithStack(2 << 20, [&] {
    EXPECT_TRUE(schema.Validate(Json(std::string(700, 'a'))).ok());
    EXPECT_TRUE(IsError(schema.Validate(Json(std::string(701, 'a'))), StatusCode::kInvalidArgument,
                        {"(root): matches none of the 2 schemas in anyOf ([0] matches none of the "
                         "2 schemas in anyOf; [1] expected null, got string"}));
  });
}

TEST(JsonSchemaTest, DeepValuesAreRefused) {
  Json value = 1;
  for (int i = 0; i < 1000; ++i) value = Json::array({std::move(value)});
  const CompiledSchema schema = Compile("{\"uniqueItems\":true}");
  EXPECT_TRUE(IsError(schema.Validate(value), StatusCode::kInvalidArgument,
                      {"value nests deeper than 128 levels"}));
  EXPECT_TRUE(CompiledSchema().Validate(value).ok());  // `true` looks at nothing
}

TEST(JsonSchemaTest, ManySubschemasAreBounded) {
  Json properties = Json::object();
  for (size_t i = 0; i <= limits::definition_nodes_max; ++i) {
    properties["p" + std::to_string(i)] = true;
  }
  EXPECT_TRUE(IsError(CheckSchema(Json{{"properties", properties}}), StatusCode::kInvalidArgument,
                      {"schema has more than 200000 subschemas"}));
}

TEST(JsonSchemaTest, NonFiniteNumbersInValues) {
  // Not JSON, but a value built in memory could hold one.
  const CompiledSchema schema = Compile("{\"minimum\":0,\"uniqueItems\":true,\"items\":{}}");
  EXPECT_TRUE(IsError(schema.Validate(Json(std::nan(""))), StatusCode::kInvalidArgument,
                      {"NaN or infinity is not a JSON number"}));
  EXPECT_TRUE(schema.Validate(Json::array({std::nan(""), nullptr})).ok());
  EXPECT_TRUE(IsError(CheckSchema(Json{{"maximum", INFINITY}}), StatusCode::kInvalidArgument,
                      {"/maximum: expected a finite number"}));
}

TEST(JsonSchemaTest, ValidateIsThreadSafe) {
  const CompiledSchema schema = Compile(
      "{\"type\":\"object\",\"properties\":{\"id\":{\"pattern\":\"^[a-z]+-[0-9]+$\"},"
      "\"n\":{\"multipleOf\":3}},\"required\":[\"id\"]}");
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const Json good = {{"id", "run-" + std::to_string(i)}, {"n", 3 * i}};
        const Json bad = {{"id", "Run-" + std::to_string(i)}, {"n", 3 * i + 1}};
        if (!schema.Validate(good).ok()) ++failures[t];
        if (schema.Validate(bad).message().find("/id: ") == std::string::npos) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int count : failures) EXPECT_EQ(count, 0);
}

TEST(JsonSchemaTest, TheDslExampleSchemas) {
  // From the Open Workflow DSL reference (input, output).
  const std::string_view input =
      "{\"type\":\"object\",\"properties\":{\"order\":{\"type\":\"object\",\"required\":"
      "[\"pet\"],\"properties\":{\"pet\":{\"type\":\"object\",\"required\":[\"id\"],"
      "\"properties\":{\"id\":{\"type\":\"string\"}}}}}}}";
  ExpectValid(input, {"{\"order\":{\"pet\":{\"id\":\"p1\"}}}", "{}"});
  ExpectInvalid(input, "{\"order\":{\"pet\":{}}}",
                {"/order/pet: missing required property \"id\""});
  ExpectInvalid(input, "{\"order\":{\"pet\":{\"id\":7}}}", {"/order/pet/id: expected string"});
}

}  // namespace
}  // namespace cairn::engine
