#include "engine/expr/expression.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/limits.h"
#include "base/random.h"
#include "tests/support/assertions.h"
#include "tests/support/seed.h"

namespace cairn::engine {
namespace {

using ::cairn::testing::HasSubstr;
using ::cairn::testing::IsError;
using ::cairn::testing::Must;

Json J(std::string_view text) { return Json::parse(text); }

std::string Trim(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t\n");
  return std::string(text.substr(begin, text.find_last_not_of(" \t\n") - begin + 1));
}

class ExpressionTest : public ::testing::Test {
 protected:
  Result<Json> Eval(std::string_view jq_text, const Json& input = Json(),
                    const std::vector<Variable>& variables = {}) {
    return evaluator_.Evaluate(jq_text, input, variables);
  }
  Evaluator evaluator_;
};

// --- ${ } form ------------------------------------------------------------------------

TEST(RuntimeExpressionTest, RecognisesTheWholeStringForm) {
  EXPECT_TRUE(IsRuntimeExpression("${ .a }"));
  EXPECT_TRUE(IsRuntimeExpression("  ${.a}\n"));
  EXPECT_TRUE(IsRuntimeExpression("${}"));
  EXPECT_FALSE(IsRuntimeExpression(".a"));
  EXPECT_FALSE(IsRuntimeExpression("hello ${ .a }"));
  EXPECT_FALSE(IsRuntimeExpression("${ .a } tail"));
  EXPECT_FALSE(IsRuntimeExpression("$ { .a }"));
  EXPECT_FALSE(IsRuntimeExpression("${"));
  EXPECT_FALSE(IsRuntimeExpression(""));
}

TEST(RuntimeExpressionTest, StripsTheMarkersAndWhitespace) {
  EXPECT_EQ(StripRuntimeExpression("${ .a }"), ".a");
  EXPECT_EQ(StripRuntimeExpression(" ${\n .colors + [ \"red\" ]\n} "), ".colors + [ \"red\" ]");
  EXPECT_EQ(StripRuntimeExpression("${}"), "");
  EXPECT_EQ(StripRuntimeExpression(".a.b"), ".a.b");
  EXPECT_EQ(StripRuntimeExpression("plain text"), "plain text");
}

// --- Evaluate -------------------------------------------------------------------------

TEST_F(ExpressionTest, Paths) {
  const Json input = J(R"({"user":{"claims":{"subject":"alice"}},"list":[1,2,3]})");
  EXPECT_EQ(Must(Eval(".user.claims.subject", input)), "alice");
  EXPECT_EQ(Must(Eval(".list[1]", input)), 2);
  EXPECT_EQ(Must(Eval(".", input)), input);
  EXPECT_EQ(Must(Eval(".missing", input)), Json());
  EXPECT_EQ(Must(Eval("[.list[] * 2]", input)), J("[2,4,6]"));
}

TEST_F(ExpressionTest, Variables) {
  const Json input = J(R"({"id": 7})");
  const Json workflow_input = J(R"({"name": "w"})");
  const Json context = J(R"({"step": 3})");
  EXPECT_EQ(Must(Eval("[$input.name, $context.step, .id]", input,
                      {{"input", &workflow_input}, {"context", &context}})),
            J(R"(["w", 3, 7])"));
  // Names and count may change from one call to the next.
  EXPECT_EQ(Must(Eval("$context.step", input, {{"context", &context}})), 3);
  EXPECT_EQ(Must(Eval(".id", input)), 7);
}

TEST_F(ExpressionTest, CachedProgramSeesEachCallsValues) {
  for (int i = 0; i < 5; ++i) {
    const Json item = i;
    const Json input = J(R"({"base": 100})");
    EXPECT_EQ(Must(Eval(".base + $item", input, {{"item", &item}})), 100 + i);
  }
  EXPECT_EQ(evaluator_.cached_programs(), 1u);
}

TEST_F(ExpressionTest, ConformanceKitExpressions) {
  EXPECT_EQ(Must(Eval(StripRuntimeExpression(R"(${ .colors + [ "red" ] })"),
                      J(R"({"colors": ["blue"]})"))),
            J(R"(["blue", "red"])"));

  const Json color = "green";
  const Json index = 1;
  EXPECT_EQ(
      Must(Eval(StripRuntimeExpression("${ { colors: (.processed.colors + [ $color ]), indexes: "
                                       "(.processed.indexes + [ $index ])} }"),
                J(R"({"processed": {"colors": ["red"], "indexes": [0]}})"),
                {{"color", &color}, {"index", &index}})),
      J(R"({"colors": ["red", "green"], "indexes": [0, 1]})"));

  EXPECT_EQ(Must(Eval(".user.claims.subject", J(R"({"user":{"claims":{"subject":"s"}}})"))), "s");

  const Json workflow_input = "wf";
  EXPECT_EQ(Must(Eval("{ ids: [ $input, .id ] }", J(R"({"id": 2})"), {{"input", &workflow_input}})),
            J(R"({"ids": ["wf", 2]})"));

  const Json error = J(R"({"type": "https://example.com/errors/x", "status": 400})");
  EXPECT_EQ(Must(Eval(StripRuntimeExpression("${ $err }"), Json(), {{"err", &error}})), error);
}

TEST_F(ExpressionTest, NoOutputIsNullAndOnlyTheFirstOutputCounts) {
  EXPECT_EQ(Must(Eval("empty")), Json());
  EXPECT_EQ(Must(Eval(".[]", J("[]"))), Json());
  EXPECT_EQ(Must(Eval("1, 2, 3")), 1);
  EXPECT_EQ(Must(Eval(".[]", J("[4, 5]"))), 4);
  // jq 1.6 cannot tell error(null) from the end of the outputs.
  EXPECT_EQ(Must(Eval("error(null)")), Json());
}

TEST_F(ExpressionTest, TopLevelDefinitionsAndComments) {
  EXPECT_EQ(Must(Eval("def double(f): f * 2; double(.a)", J(R"({"a": 21})"))), 42);
  EXPECT_EQ(Must(Eval("def f: 1; def g: f + 1;\ng")), 2);
  EXPECT_EQ(Must(Eval(".a # a trailing comment", J(R"({"a": 1})"))), 1);
  EXPECT_EQ(Must(Eval("# a leading comment\n.a", J(R"({"a": 1})"))), 1);
  EXPECT_EQ(Must(Eval("reduce .[] as $x (0; . + $x)", J("[1, 2, 3]"))), 6);
  EXPECT_EQ(Must(Eval("label $out | 1, break $out")), 1);
  EXPECT_EQ(Must(Eval("$__loc__.line")), 1);
}

TEST_F(ExpressionTest, ProgramErrorSurfacesItsMessage) {
  Status status = Eval(R"(.a | error("the order is missing"))", J(R"({"a": 1})")).status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument,
                      {"the order is missing", "`.a | error(\"the order is missing\")`"}));

  status = Eval(R"(error({code: 7}))").status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {R"({"code":7})"}));

  status = Eval(R"(.a + 1)", J(R"({"a": "x"})")).status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"cannot be added"}));

  // A caught error is not an error.
  EXPECT_EQ(Must(Eval(R"(try error("x") catch .)")), "x");
}

TEST_F(ExpressionTest, CompileErrors) {
  Status status = Eval(".a |||").status();
  EXPECT_TRUE(
      IsError(status, StatusCode::kInvalidArgument, {"`.a |||`", "syntax error", "line 1"}));
  EXPECT_FALSE(HasSubstr(status.message(), "__cairn")) << status.message();  // no wrapper text
  EXPECT_FALSE(HasSubstr(status.message(), "Unix shell"));

  status = Eval("no_such_function(1)").status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"no_such_function/1 is not defined"}));

  status = Eval("$undeclared").status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"$undeclared is not defined"}));

  status = Eval("(.a").status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"does not compile"}));
  EXPECT_EQ(evaluator_.cached_programs(), 0u);
}

TEST_F(ExpressionTest, LongExpressionsAreQuotedTruncated) {
  const std::string text = "[" + std::string(300, '1') + "] | error(\"boom\")";
  Status status = Eval(text).status();
  ASSERT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"boom", "..."}));
  EXPECT_LT(status.message().size(), 400u);
}

TEST_F(ExpressionTest, RefusesBadTexts) {
  EXPECT_TRUE(IsError(Eval("").status(), StatusCode::kInvalidArgument, {"is empty"}));
  EXPECT_TRUE(IsError(Eval("  \n ").status(), StatusCode::kInvalidArgument, {"is empty"}));
  EXPECT_TRUE(
      IsError(Eval(std::string_view(".a\0.b", 5)).status(), StatusCode::kInvalidArgument, {"NUL"}));
  std::string long_text = "." + std::string(limits::expression_bytes_max, 'a');
  EXPECT_TRUE(IsError(Eval(long_text).status(), StatusCode::kInvalidArgument,
                      {"more than the limit of 16384"}));
}

TEST_F(ExpressionTest, RefusesBadVariableNames) {
  const Json value = 1;
  for (const char* name : {"foo-bar", "1x", "", "if", "reduce", "__loc__", "ENV", "__cairn_x"}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(IsError(Eval(".", Json(), {{name, &value}}).status(), StatusCode::kInvalidArgument,
                        {"variable"}));
    EXPECT_TRUE(IsError(CheckExpression(".", {name}), StatusCode::kInvalidArgument));
  }
  EXPECT_TRUE(IsError(Eval(".", Json(), {{"x", &value}, {"x", &value}}).status(),
                      StatusCode::kInvalidArgument, {"given twice"}));
}

// --- Determinism ----------------------------------------------------------------------

TEST(CheckExpressionTest, RefusesEveryNonDeterministicBuiltin) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"now", "now"},
      {"localtime", "0 | localtime"},
      {"strflocaltime", R"(0 | strflocaltime("%H"))"},
      {"env", "env.HOME"},
      {"$ENV", "$ENV.HOME"},
      {"$ENV", "$ ENV"},
      {"input", "input"},
      {"inputs", "[inputs]"},
      {"_input", "_input"},
      {"input_filename", "input_filename"},
      {"input_line_number", "input_line_number"},
      {"halt", "halt"},
      {"halt_error", "halt_error"},
      {"halt_error", "halt_error(1)"},
      {"debug", ".a | debug"},
      {"stderr", "stderr"},
      {"get_search_list", "get_search_list"},
      {"modulemeta", R"("m" | modulemeta)"},
      {"get_jq_origin", "get_jq_origin"},
      {"get_prog_origin", "get_prog_origin"},
      {"import", R"(import "a" as a; .)"},
      {"include", R"(include "a"; .)"},
  };
  Evaluator evaluator;
  for (const auto& [name, text] : cases) {
    SCOPED_TRACE(text);
    Status status = CheckExpression(text, {"input"});
    EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"uses `" + name + "`", "which"}));
    EXPECT_TRUE(IsError(evaluator.Evaluate(text, Json(), {}).status(), StatusCode::kInvalidArgument,
                        {"uses `" + name + "`"}));
  }
  EXPECT_EQ(evaluator.cached_programs(), 0u);
}

TEST(CheckExpressionTest, RefusalNamesWhy) {
  Status status = CheckExpression(".a |\n  now", {});
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument,
                      {"uses `now`, which reads the clock", "deterministic", "line 2"}));
  EXPECT_TRUE(IsError(CheckExpression("env", {}), StatusCode::kInvalidArgument, {"environment"}));
  EXPECT_TRUE(IsError(CheckExpression("input", {}), StatusCode::kInvalidArgument, {"inputs"}));
  EXPECT_TRUE(IsError(CheckExpression("__cairn_strftime(\"%Z\")", {}), StatusCode::kInvalidArgument,
                      {"reserved"}));
  // jq lexes `1env` as a number and a word, and so does the scan.
  EXPECT_TRUE(IsError(CheckExpression("[1env]", {}), StatusCode::kInvalidArgument, {"`env`"}));
  EXPECT_TRUE(CheckExpression("if . then 1else 2 end", {}).ok());
  EXPECT_TRUE(CheckExpression("[1e3, 1.5e-3, .5]", {}).ok());
}

TEST(CheckExpressionTest, RefusesInEveryCodePosition) {
  for (const char* text : {
           "[now]",
           "{a: now}",
           "{a: 1, b: .x | now}",
           "{(now | tostring): 1}",
           R"jq("time: \(now)")jq",
           R"jq("\("nested \(now)")")jq",
           R"jq(@base64 "\(now)")jq",
           ".a | now",
           "now?",
           "try now catch 0",
           "..|now",
           ".[now:]",
           "if now then 1 else 2 end",
           "def f: now; f",
           "reduce range(2) as $i (0; now)",
           "[.[] | {a: now}]",
       }) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(IsError(CheckExpression(text, {}), StatusCode::kInvalidArgument, {"`now`"}));
  }
}

TEST(CheckExpressionTest, AllowsTheNamesWhereTheyAreNotCalls) {
  Evaluator evaluator;
  const Json input = J(R"({"now": 1, "env": 2, "input": 3, "a": {"now": 4}})");
  const Json workflow_input = "wf";
  const std::vector<std::pair<std::string, Json>> cases = {
      {".now", 1},
      {".a.now", 4},
      {R"(."now")", 1},
      {R"(.["now"])", 1},
      {".now?", 1},
      {R"({"now": 1})", J(R"({"now": 1})")},
      {"{now: 1}", J(R"({"now": 1})")},
      {"{now}", J(R"({"now": 1})")},
      {"{env, input}", J(R"({"env": 2, "input": 3})")},
      {"{a: 1, now}", J(R"({"a": 1, "now": 1})")},
      {"{now: .now, if: 2}", J(R"({"now": 1, "if": 2})")},
      {R"("now")", "now"},
      {R"jq("the time is now \("now")")jq", "the time is now now"},
      {R"jq("\\(now)")jq", "\\(now)"},
      {"# now\n.input", 3},
      {"$input", "wf"},
      {"{input: $input}", J(R"({"input": "wf"})")},
      {". as {now: $x} | $x", 1},
      {R"(@text "now")", "now"},
      {"def now_or_later: 5; now_or_later", 5},
      {"[.[] | numbers] | length", 3},
      {"0 | todate", "1970-01-01T00:00:00Z"},
      {R"("2015-03-05T23:51:47Z" | fromdate)", 1425599507},
      {"0 | gmtime | mktime", 0},
      {R"(86400 | strftime("%Y-%m-%d %H:%M %z %%Z %%s"))", "1970-01-02 00:00 +0000 %Z %s"},
      {R"("10 Mar 2020" | strptime("%d %b %Y") | mktime)", 1583798400},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(text);
    Status status = CheckExpression(text, {"input"});
    EXPECT_TRUE(status.ok()) << status.ToString();
    Result<Json> value = evaluator.Evaluate(text, input, {{"input", &workflow_input}});
    ASSERT_TRUE(value.ok()) << value.status().ToString();
    EXPECT_EQ(*value, expected);
  }
}

TEST_F(ExpressionTest, TimeZoneConversionsAreRefusedAtRunTime) {
  for (const char* text :
       {R"(0 | strftime("%Z"))", R"(0 | strftime("%s"))", R"(0 | strftime("%-s"))",
        R"("1" | strptime("%s"))", R"(0 | strftime("%" + "Z"))"}) {
    SCOPED_TRACE(text);
    Status status = Eval(text).status();
    EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"host's time zone"}));
  }
}

TEST(CheckExpressionTest, AcceptsDeclaredVariablesOnly) {
  EXPECT_TRUE(CheckExpression("[$input, $context, .a]", {"input", "context"}).ok());
  EXPECT_TRUE(IsError(CheckExpression("$secret", {"input"}), StatusCode::kInvalidArgument,
                      {"$secret is not defined"}));
  EXPECT_TRUE(IsError(CheckExpression(".a |", {}), StatusCode::kInvalidArgument, {"syntax error"}));
}

TEST(CheckExpressionTest, RefusesWhenHomeHasAJqFile) {
  char dir_template[] = "/tmp/cairn-expr-home-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string jq_file = dir + "/.jq";
  std::ofstream(jq_file) << "def map(f): 42;\n";
  const char* old_home = getenv("HOME");
  const std::string saved = old_home ? old_home : "";
  ASSERT_EQ(setenv("HOME", dir.c_str(), 1), 0);

  Status status = CheckExpression("[1] | map(. + 1)", {});
  Evaluator evaluator;
  Result<Json> value = evaluator.Evaluate("[1] | map(. + 1)", Json(), {});

  if (old_home)
    setenv("HOME", saved.c_str(), 1);
  else
    unsetenv("HOME");
  unlink(jq_file.c_str());
  rmdir(dir.c_str());
  EXPECT_TRUE(IsError(status, StatusCode::kFailedPrecondition, {jq_file, "HOME"}));
  EXPECT_TRUE(IsError(value.status(), StatusCode::kFailedPrecondition));
}

// --- Values ---------------------------------------------------------------------------

TEST_F(ExpressionTest, NumbersRoundTrip) {
  const Json input = J(R"({"small": 42, "negative": -7, "limit": 9007199254740992,
                           "below": -9007199254740992, "half": 1.5, "tiny": 1e-300})");
  for (const char* field : {"small", "negative", "limit", "below"}) {
    SCOPED_TRACE(field);
    Json value = Must(Eval(std::string(".") + field, input));
    EXPECT_TRUE(value.is_number_integer());
    EXPECT_EQ(value, input[field]);
  }
  EXPECT_EQ(Must(Eval(".half", input)), 1.5);
  EXPECT_EQ(Must(Eval(".tiny", input)), 1e-300);
  EXPECT_TRUE(Must(Eval(".half * 2", input)).is_number_integer());
  EXPECT_EQ(Must(Eval("1 / 3")), 1.0 / 3.0);
  EXPECT_EQ(Must(Eval("[1e15, 1e16]")), J("[1000000000000000, 10000000000000000]"));
  // Beyond 2^53 jq 1.6 has doubles only: the value comes back as a (rounded) double.
  Json big = Must(Eval(".", Json(int64_t{9007199254740995})));
  EXPECT_TRUE(big.is_number_float());
  EXPECT_EQ(big.get<double>(), 9007199254740996.0);
  EXPECT_EQ(Must(Eval(".", Json(uint64_t{18446744073709551615u}))).get<double>(),
            18446744073709551616.0);
}

TEST_F(ExpressionTest, NanIsNullAndInfinityIsRefused) {
  EXPECT_EQ(Must(Eval("nan")), Json());
  EXPECT_EQ(Must(Eval("[nan, 1]")), J("[null, 1]"));
  EXPECT_TRUE(IsError(Eval("infinite").status(), StatusCode::kInvalidArgument, {"infinite"}));
  EXPECT_TRUE(
      IsError(Eval("{a: [-infinite]}").status(), StatusCode::kInvalidArgument, {"infinite"}));
  EXPECT_TRUE(IsError(Eval("1e308 * 10").status(), StatusCode::kInvalidArgument, {"infinite"}));
}

TEST_F(ExpressionTest, UnicodeStrings) {
  const Json input = J(R"({"s": "héllo wörld ✓ 🎉", "k": {"ключ": "значение"}})");
  EXPECT_EQ(Must(Eval(".s", input)), input["s"]);
  EXPECT_EQ(Must(Eval(".s | length", input)), 15);
  EXPECT_EQ(Must(Eval(".k", input)), input["k"]);
  EXPECT_EQ(Must(Eval(R"(.k["ключ"])", input)), "значение");
  EXPECT_EQ(Must(Eval(R"("\u00e9" + "🎉")")), "é🎉");
  EXPECT_EQ(Must(Eval(R"([.s | explode[0:2][]] | implode)", input)), "hé");
  // Control characters and embedded NULs survive; invalid UTF-8 becomes U+FFFD.
  EXPECT_EQ(Must(Eval(".", Json(std::string("a\0b\n", 4)))), std::string("a\0b\n", 4));
  EXPECT_EQ(Must(Eval(".", Json(std::string("a\xff")))), "a\xEF\xBF\xBD");
}

TEST_F(ExpressionTest, ObjectsAndArraysRoundTrip) {
  const Json input = J(R"({"b": [1, {"c": null, "d": true, "e": false}], "a": {}, "z": []})");
  EXPECT_EQ(Must(Eval(".", input)), input);
  EXPECT_EQ(Must(Eval("keys", input)), J(R"(["a", "b", "z"])"));
}

TEST_F(ExpressionTest, DeepNestingIsRefusedNotFatal) {
  Json deep = 1;
  for (int i = 0; i < 1000; ++i) deep = Json::array({std::move(deep)});
  EXPECT_TRUE(IsError(Eval(".", deep).status(), StatusCode::kInvalidArgument,
                      {"input", "nests deeper than 128"}));
  const Json value = deep;
  EXPECT_TRUE(IsError(Eval("1", Json(), {{"v", &value}}).status(), StatusCode::kInvalidArgument,
                      {"variable `$v`", "nests deeper"}));

  Json fits = 1;
  for (size_t i = 1; i < limits::json_depth_max; ++i) fits = Json::array({std::move(fits)});
  EXPECT_EQ(Must(Eval(".", fits)), fits);

  EXPECT_TRUE(IsError(Eval("reduce range(500) as $i (null; [.])").status(),
                      StatusCode::kInvalidArgument, {"result nests deeper than 128"}));
  EXPECT_EQ(Must(Eval("reduce range(500) as $i (null; [.]) | flatten | length")), 1);
}

TEST_F(ExpressionTest, LargeResultsAreRefused) {
  Status status = Eval("[range(1000000)]").status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument,
                      {"larger than " + std::to_string(limits::run_data_bytes_max) + " bytes"}));
  status =
      Eval(R"jq([range(200000) | {key: "k\(.)", value: "0123456789"}] | from_entries)jq").status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"larger than"}));
  EXPECT_EQ(Must(Eval("[range(1000)] | length")), 1000);
}

// --- Caching --------------------------------------------------------------------------

TEST_F(ExpressionTest, CachesByTextAndVariableNames) {
  const Json one = 1;
  const Json two = 2;
  EXPECT_EQ(Must(Eval("$x", Json(), {{"x", &one}})), 1);
  EXPECT_EQ(Must(Eval("$x", Json(), {{"x", &two}})), 2);
  EXPECT_EQ(evaluator_.cached_programs(), 1u);
  EXPECT_EQ(Must(Eval("$x", Json(), {{"x", &one}, {"y", &two}})), 1);
  EXPECT_EQ(Must(Eval("$x", Json(), {{"y", &two}, {"x", &one}})), 1);
  EXPECT_EQ(evaluator_.cached_programs(), 3u);
  EXPECT_EQ(Must(Eval(".a", J(R"({"a": 5})"))), 5);
  EXPECT_EQ(evaluator_.cached_programs(), 4u);
}

TEST_F(ExpressionTest, CacheIsBoundedLeastRecentlyUsed) {
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(Must(Eval(". + " + std::to_string(i), 1)), 1 + i);
    ASSERT_EQ(Must(Eval(". + 0", 1)), 1);  // kept hot
  }
  EXPECT_EQ(evaluator_.cached_programs(), 256u);
  EXPECT_EQ(Must(Eval(". + 299", 1)), 300);
  EXPECT_EQ(Must(Eval(". + 0", 1)), 1);
  EXPECT_EQ(evaluator_.cached_programs(), 256u);
  EXPECT_EQ(evaluator_.compiled_programs(), 256u);
}

TEST_F(ExpressionTest, ErrorsDoNotPoisonTheCachedProgram) {
  EXPECT_FALSE(Eval(".a + 1", J(R"({"a": "x"})")).ok());
  EXPECT_EQ(Must(Eval(".a + 1", J(R"({"a": 1})"))), 2);
  EXPECT_FALSE(Eval("[range(1000000)]").ok());
  EXPECT_EQ(Must(Eval("[range(3)]")), J("[0, 1, 2]"));
  EXPECT_EQ(Must(Eval(".[]", J("[7, 8, 9]"))), 7);
  EXPECT_EQ(Must(Eval(".[]", J("[10]"))), 10);
}

// --- Conversions kept across evaluations ----------------------------------------------

// An object of `members` members, each {"i": <i>, "s": "<tag>"}: 1 + 5 * members values and keys.
Json Members(int members, std::string_view tag) {
  Json value = Json::object();
  for (int i = 0; i < members; ++i) {
    value["m" + std::to_string(i)] = Json{{"i", i}, {"s", std::string(tag)}};
  }
  return value;
}

TEST_F(ExpressionTest, AnEqualValueReusesItsConversion) {
  const Json data = Members(10, "a");
  const Json copy = data;  // another object, equal
  EXPECT_EQ(Must(Eval("[.[] | .i] | add", data)), 45);
  EXPECT_EQ(evaluator_.cached_conversions(), 1u);
  EXPECT_EQ(evaluator_.conversion_cache_hits(), 0u);
  EXPECT_EQ(Must(Eval("[.[] | .s] | add", copy)), "aaaaaaaaaa");
  EXPECT_EQ(Must(Eval("$d | keys_unsorted[0]", Json(), {{"d", &copy}})), "m0");
  EXPECT_EQ(evaluator_.conversion_cache_hits(), 2u);
  EXPECT_EQ(evaluator_.cached_conversions(), 1u);
  // Small values are converted every time, not kept.
  EXPECT_EQ(Must(Eval(". + 1", 1)), 2);
  EXPECT_EQ(Must(Eval(".a + 1", J(R"({"a": 1})"))), 2);
  EXPECT_EQ(evaluator_.cached_conversions(), 1u);
}

TEST_F(ExpressionTest, AValueChangedInPlaceIsConvertedAgain) {
  Json data = Members(10, "a");
  EXPECT_EQ(Must(Eval("[.[] | .i] | add", data)), 45);
  data["m3"]["i"] = 103;  // same object, same address
  EXPECT_EQ(Must(Eval("[.[] | .i] | add", data)), 145);
  data["m3"]["s"] = "b";
  EXPECT_EQ(Must(Eval("[.[] | .s] | add", data)), "aaabaaaaaa");
  data.erase("m9");
  EXPECT_EQ(Must(Eval("length", data)), 9);
  // Values Json's == calls equal but jq does not: -0 and 0, 2^64-1 and -1.
  data["z"] = 0.0;
  EXPECT_EQ(Must(Eval(".z | tojson", data)), "0");
  data["z"] = -0.0;
  EXPECT_EQ(Must(Eval(".z | tojson", data)), "-0");
  data["z"] = uint64_t{18446744073709551615u};
  EXPECT_EQ(Must(Eval(".z > 0", data)), true);
  data["z"] = int64_t{-1};
  EXPECT_EQ(Must(Eval(".z > 0", data)), false);
  // A number of another type that converts to the same double is the same jq value.
  data["z"] = 2;
  EXPECT_EQ(Must(Eval(".z * 2", data)), 4);
  data["z"] = 2.0;
  EXPECT_EQ(Must(Eval(".z * 2", data)), 4);
  EXPECT_GE(evaluator_.conversion_cache_hits(), 1u);
}

TEST_F(ExpressionTest, UnconvertibleValuesFailTheSameEveryTime) {
  Json deep = 1;
  for (size_t i = 0; i < limits::json_depth_max; ++i) deep = Json::array({std::move(deep)});
  Json data = Members(10, "a");
  data["deep"] = deep;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(IsError(Eval(".m0.i + 1", data).status(), StatusCode::kInvalidArgument,
                        {"expression input nests deeper than 128"}));
    EXPECT_TRUE(IsError(Eval("$v | length", Json(), {{"v", &data}}).status(),
                        StatusCode::kInvalidArgument, {"variable `$v` nests deeper than 128"}));
  }
  EXPECT_EQ(evaluator_.cached_conversions(), 0u);
  data.erase("deep");
  EXPECT_EQ(Must(Eval(".m0.i + 1", data)), 1);
  EXPECT_EQ(evaluator_.cached_conversions(), 1u);
}

TEST_F(ExpressionTest, ConversionCacheIsBounded) {
  for (int i = 0; i < 20; ++i) {
    const Json data = Members(10 + i, "v" + std::to_string(i));
    ASSERT_EQ(Must(Eval("length", data)), 10 + i);
    EXPECT_LE(evaluator_.cached_conversions(), 8u);
  }
  EXPECT_EQ(evaluator_.cached_conversions(), 8u);
  // The most recent values are kept: the last one hits, the first one no longer does.
  const uint64_t hits = evaluator_.conversion_cache_hits();
  EXPECT_EQ(Must(Eval("length", Members(29, "v19"))), 29);
  EXPECT_EQ(evaluator_.conversion_cache_hits(), hits + 1);
  EXPECT_EQ(Must(Eval("length", Members(10, "v0"))), 10);
  EXPECT_EQ(evaluator_.conversion_cache_hits(), hits + 1);
  // Values and keys in all: a value larger than the whole bound is not kept, and large
  // ones push out older ones.
  Json huge = Json::array();
  for (int i = 0; i < 70000; ++i) huge.push_back(i);
  EXPECT_EQ(Must(Eval("length", huge)), 70000);
  EXPECT_EQ(evaluator_.cached_conversions(), 8u);
  Json large = Json::array();
  for (int i = 0; i < 40000; ++i) large.push_back(i);
  EXPECT_EQ(Must(Eval("length", large)), 40000);
  large.push_back(1);
  EXPECT_EQ(Must(Eval("length", large)), 40001);
  EXPECT_LE(evaluator_.cached_conversion_nodes(), size_t{1} << 16);
  EXPECT_EQ(evaluator_.cached_conversions(), 1u);
}

TEST_F(ExpressionTest, VariablesVouchedConvertibleAreNotCheckedAgain) {
  Json deep = 1;
  for (size_t i = 0; i < limits::json_depth_max; ++i) deep = Json::array({std::move(deep)});
  const Json fine = J(R"({"k": 1})");
  // Unvouched, an unbound value that cannot go to jq fails every program.
  for (const char* text : {".a", ".a + 1"}) {
    EXPECT_TRUE(IsError(Eval(text, J(R"({"a": 1})"), {{"deep", &deep}}).status(),
                        StatusCode::kInvalidArgument, {"variable `$deep`", "nests deeper"}))
        << text;
  }
  // Vouched for, it is not checked (the caller's claim stands); bound, it is converted,
  // which still refuses it.
  EXPECT_EQ(Must(Eval(".a", J(R"({"a": 1})"), {{"deep", &deep, true}})), 1);
  EXPECT_EQ(Must(Eval(".a + 1", J(R"({"a": 1})"), {{"deep", &deep, true}})), 2);
  EXPECT_TRUE(IsError(Eval("$deep | length", Json(), {{"deep", &deep, true}}).status(),
                      StatusCode::kInvalidArgument, {"variable `$deep`", "nests deeper"}));
  // An input that is the very object of a vouched variable is taken as vouched too; an
  // equal copy is not.
  EXPECT_EQ(Must(Eval("$fine.k", deep, {{"fine", &fine}, {"deep", &deep, true}})), 1);
  const Json copy = deep;
  EXPECT_TRUE(IsError(Eval("$fine.k", copy, {{"fine", &fine}, {"deep", &deep, true}}).status(),
                      StatusCode::kInvalidArgument, {"expression input nests deeper"}));
  EXPECT_EQ(Must(Eval("$fine.k", fine, {{"fine", &fine, true}})), 1);
}

// --- Variables an expression does not name, path programs ------------------------------

TEST_F(ExpressionTest, VariablesTheTextDoesNotNameAreCheckedNotRead) {
  Json deep = 1;
  for (size_t i = 0; i < limits::json_depth_max; ++i) deep = Json::array({std::move(deep)});
  const Json fine = J(R"({"k": 1})");
  // Not read, still refused in order, whether the program is run by jq or not.
  for (const char* text : {".a", ".a + 1", "$fine.k", "$fine.k + 1"}) {
    EXPECT_TRUE(IsError(Eval(text, J(R"({"a": 1})"), {{"fine", &fine}, {"deep", &deep}}).status(),
                        StatusCode::kInvalidArgument, {"variable `$deep`", "nests deeper"}))
        << text;
  }
  EXPECT_TRUE(IsError(Eval(".a", deep, {{"deep", &deep}}).status(), StatusCode::kInvalidArgument,
                      {"expression input nests deeper"}));
  // A name inside a string is bound (harmless); a name the text does not hold is not.
  EXPECT_EQ(Must(Eval("\"fine\"", Json(), {{"fine", &fine}})), "fine");
  EXPECT_TRUE(IsError(Eval("$nowhere", Json(), {{"fine", &fine}}).status(),
                      StatusCode::kInvalidArgument, {"$nowhere is not defined"}));
  EXPECT_TRUE(IsError(Eval("[1,2] | .[0] as $fine | $fine2", Json(), {{"fine", &fine}}).status(),
                      StatusCode::kInvalidArgument, {"$fine2 is not defined"}));
  EXPECT_FALSE(ConvertibleToJq(deep));
  EXPECT_TRUE(ConvertibleToJq(deep[0]));
  EXPECT_FALSE(ConvertibleToJq(deep[0], 2));
}

TEST_F(ExpressionTest, TemplateExpressionsShareValuesButNotChanges) {
  const Json input = J(R"({"x": 1, "list": [1, 2]})");
  const Json item = J(R"({"n": 5})");
  const Json template_value = J(R"({
    "a": "${ .x += 1 | .x }", "b": "${ .x }", "c": "${ $item | .n = 7 | .n }",
    "d": "${ $item.n }", "e": "${ .list | . += [3] }", "f": "${ .list }"})");
  EXPECT_EQ(Must(evaluator_.EvaluateTemplate(template_value, input, {{"item", &item}})),
            J(R"({"a": 2, "b": 1, "c": 7, "d": 5, "e": [1, 2, 3], "f": [1, 2]})"));
  EXPECT_EQ(input, J(R"({"x": 1, "list": [1, 2]})"));
}

// The kinds of JSON values jq handles specially: numbers beyond 2^53, unsigned, NaN and
// infinities, -0.0, control characters, non-ASCII and invalid UTF-8, deep and empty values.
Json RandomValue(Random& rng, int depth) {
  static const char* kKeys[] = {"a", "b", "c", "end", "x_1", "\xc3\xa9", "\xff", ""};
  const uint64_t kind = rng.Uniform(depth > 4 ? 9 : 11);
  switch (kind) {
    case 0:
      return nullptr;
    case 1:
      return rng.OneIn(2);
    case 2: {
      static const int64_t kInts[] = {0, 1, -1, 42, 9007199254740992, 9007199254740993,
                                      -9007199254740993, INT64_MAX, INT64_MIN};
      return kInts[rng.Uniform(std::size(kInts))];
    }
    case 3: {
      static const uint64_t kUnsigned[] = {0, 7, 9007199254740993ull, UINT64_MAX};
      return kUnsigned[rng.Uniform(std::size(kUnsigned))];
    }
    case 4: {
      static const double kDoubles[] = {0.5, -0.0, 1e300, 3.0, 9007199254740992.0, 1e17,
                                        -2.25, std::nan(""), INFINITY, -INFINITY};
      return kDoubles[rng.Uniform(std::size(kDoubles))];
    }
    case 5:
    case 6: {
      static const char* kStrings[] = {"plain", "", "q\"uote\\", "tab\tnl\n", "\x01ctl",
                                       "caf\xc3\xa9", "bad\xff", "\xed\xa0\x80", "nul"};
      std::string text = kStrings[rng.Uniform(std::size(kStrings))];
      if (text == "nul") text = std::string("a\0b", 3);
      return text;
    }
    case 7:
    case 8: {
      Json array = Json::array();
      for (uint64_t i = rng.Uniform(4); i > 0; --i) array.push_back(RandomValue(rng, depth + 1));
      return array;
    }
    default: {
      Json object = Json::object();
      for (uint64_t i = rng.Uniform(5); i > 0; --i) {
        object[kKeys[rng.Uniform(std::size(kKeys))]] = RandomValue(rng, depth + 1);
      }
      return object;
    }
  }
}

// Equal, and of the same JSON types all the way down (an integer is not a double).
::testing::AssertionResult SameJson(const Json& a, const Json& b) {
  if (a.type() != b.type()) {
    return ::testing::AssertionFailure() << a.dump() << " vs " << b.dump() << ": types differ";
  }
  if (a.is_structured()) {
    if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes differ";
    auto ai = a.begin();
    auto bi = b.begin();
    for (; ai != a.end(); ++ai, ++bi) {
      if (a.is_object() && ai.key() != bi.key()) return ::testing::AssertionFailure() << "keys";
      if (auto same = SameJson(*ai, *bi); !same) return same;
    }
    return ::testing::AssertionSuccess();
  }
  if (a.dump(-1, ' ', false, Json::error_handler_t::replace) !=
      b.dump(-1, ' ', false, Json::error_handler_t::replace)) {
    return ::testing::AssertionFailure() << a.dump() << " vs " << b.dump();
  }
  return ::testing::AssertionSuccess();
}

// Path programs (and merges of paths) are answered without jq; `(TEXT)` is not one and runs
// in jq. Both must give the same value of the same types, or the same error.
TEST_F(ExpressionTest, PathProgramsGiveWhatJqGives) {
  const uint64_t seed = ::cairn::testing::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Random rng(seed);
  const char* kPaths[] = {".",
                          ".a",
                          ".a.b",
                          ".end",
                          ".a.c.x_1",
                          ".b.a.b.c",
                          "$v",
                          "$v.a",
                          "$v.a.b",
                          "$w.end",
                          " .a.b ",
                          "$v.c.a.b",
                          "$v + { k: . }",
                          "$v.a+{k:.b,a:$w}",
                          ". + {a: $v.a, b: .c, a: .b}",
                          "$w.a + {end: .}",
                          "\n$v\t+ {x_1: $w.a.b}\n",
                          "$v + {z: .a, b: $w, a: ., b: .b}",
                          // jq keywords are field names after `.` and object keys
                          ".and",
                          ".if.then",
                          "$v.def.reduce",
                          ". + {if: .a, __loc__: $v.end, import: .}"};
  for (int round = 0; round < 3000; ++round) {
    const Json input = RandomValue(rng, 0);
    const Json v = RandomValue(rng, 0);
    const Json w = rng.OneIn(20) ? Json(std::string("bad\xff")) : RandomValue(rng, 0);
    const std::vector<Variable> variables = {{"v", &v}, {"w", &w}};
    for (const char* path : kPaths) {
      Result<Json> direct = Eval(path, input, variables);
      Result<Json> by_jq = Eval("(" + Trim(path) + ")", input, variables);
      ASSERT_EQ(direct.ok(), by_jq.ok())
          << path << " on " << input.dump(-1, ' ', false, Json::error_handler_t::replace)
          << ": " << (direct.ok() ? by_jq.status() : direct.status()).ToString();
      if (direct.ok()) {
        ASSERT_TRUE(SameJson(*direct, *by_jq))
            << path << " on " << input.dump(-1, ' ', false, Json::error_handler_t::replace);
      } else {
        // The messages quote the expression, which differs by the parentheses.
        auto unquoted = [](const Status& status) {
          const std::string& message = status.message();
          const size_t end = message.find("`: ");
          return end == std::string::npos ? message : message.substr(end);
        };
        ASSERT_EQ(direct.status().code(), by_jq.status().code());
        ASSERT_EQ(unquoted(direct.status()), unquoted(by_jq.status())) << path;
      }
    }
  }
}

TEST_F(ExpressionTest, CheckKeepsTheCompileForEvaluation) {
  const Json two = 2;
  const Json other = "unused";
  // As a definition's loader checks it, then as the interpreter runs it: other names, in
  // another order, the same bound ones.
  Must(evaluator_.Check(".a + $x", {"context", "input", "x", "task"}));
  EXPECT_EQ(evaluator_.cached_programs(), 1u);
  EXPECT_EQ(evaluator_.compiled_programs(), 1u);
  EXPECT_EQ(Must(Eval(".a + $x", J(R"({"a": 1})"), {{"workflow", &other}, {"x", &two}})), 3);
  EXPECT_EQ(evaluator_.cached_programs(), 2u);
  EXPECT_EQ(evaluator_.compiled_programs(), 1u);
  // Another bound set is another program (`a` occurs in the text: it is bound).
  EXPECT_EQ(Must(Eval(".a + $x", J(R"({"a": 1})"), {{"x", &two}, {"a", &other}})), 3);
  EXPECT_EQ(evaluator_.compiled_programs(), 2u);
  // Whatever order the names come in, each value goes to its own name.
  const Json one = 1;
  EXPECT_EQ(Must(Eval("[$b, $a]", Json(), {{"a", &one}, {"b", &two}})), J("[2, 1]"));
  EXPECT_EQ(Must(Eval("[$b, $a]", Json(), {{"b", &two}, {"a", &one}})), J("[2, 1]"));
  EXPECT_EQ(evaluator_.compiled_programs(), 3u);
}

// A path or merge program is answered without jq: it compiles only when a value needs jq's
// judgement (here: an error, a string that is not ASCII), and then gives jq's answer.
TEST_F(ExpressionTest, PathProgramsCompileOnlyWhenJqIsNeeded) {
  const std::vector<std::string> names = {"input", "v"};
  for (const char* text : {".a.b", "$v.a", "$input + {k: .a}", ".and.if", ". + {then: $v}"}) {
    Must(evaluator_.Check(text, names));
  }
  EXPECT_EQ(evaluator_.cached_programs(), 5u);
  EXPECT_EQ(evaluator_.compiled_programs(), 0u);
  const Json v = J(R"({"a": "x"})");
  const std::vector<Variable> variables = {{"input", &v}, {"v", &v}};
  EXPECT_EQ(Must(Eval("$v.a", Json(), variables)), "x");
  EXPECT_EQ(Must(Eval(".and.if", J(R"({"and": {"if": [1]}})"), variables)), J("[1]"));
  EXPECT_EQ(evaluator_.compiled_programs(), 0u);
  EXPECT_EQ(Must(Eval(".and.if", J(R"({"and": {"if": "\u00e9"}})"), variables)),
            std::string("\xc3\xa9"));
  EXPECT_EQ(evaluator_.compiled_programs(), 1u);
  EXPECT_TRUE(IsError(Eval(".a.b", J(R"({"a": 5})"), variables).status(),
                      StatusCode::kInvalidArgument, {"Cannot index number with"}));
  EXPECT_EQ(evaluator_.compiled_programs(), 2u);
}

TEST_F(ExpressionTest, CheckReportsWhatCheckExpressionReports) {
  const std::vector<std::string> names = {"context", "input"};
  for (const char* text : {".a +", "$nope", "now", "", ".a", "$input"}) {
    EXPECT_EQ(evaluator_.Check(text, names).ToString(), CheckExpression(text, names).ToString())
        << text;
  }
  EXPECT_EQ(evaluator_.Check(".a", {"x", "x"}).ToString(),
            CheckExpression(".a", {"x", "x"}).ToString());
  EXPECT_EQ(evaluator_.cached_programs(), 2u);  // the two that compile
}

// --- Templates and the implicit form --------------------------------------------------

TEST_F(ExpressionTest, TemplatesEvaluateExpressionStringsOnly) {
  const Json input = J(R"({"name": "ada", "n": 3})");
  const Json context = J(R"({"region": "eu"})");
  const Json template_value = J(R"({
    "greeting": "${ \"hi \" + .name }",
    "plain": "hello ${ .name }",
    "${ .name }": "keys are not evaluated",
    "nested": {"list": [1, "${ .n * 2 }", {"deep": "${ $context.region }"}], "lit": ".name"},
    "number": 5, "flag": true, "nothing": null
  })");
  EXPECT_EQ(Must(evaluator_.EvaluateTemplate(template_value, input, {{"context", &context}})),
            J(R"({
    "greeting": "hi ada",
    "plain": "hello ${ .name }",
    "${ .name }": "keys are not evaluated",
    "nested": {"list": [1, 6, {"deep": "eu"}], "lit": ".name"},
    "number": 5, "flag": true, "nothing": null
  })"));
  EXPECT_EQ(Must(evaluator_.EvaluateTemplate("${ .n }", input, {})), 3);
  EXPECT_EQ(Must(evaluator_.EvaluateTemplate(".n", input, {})), ".n");
  EXPECT_EQ(Must(evaluator_.EvaluateTemplate(7, input, {})), 7);
}

TEST_F(ExpressionTest, TemplateErrorsNameTheField) {
  const Json template_value = J(R"({"args": {"a/b": ["x", "${ error(\"bad\") }"]}})");
  Status status = evaluator_.EvaluateTemplate(template_value, Json(), {}).status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"at /args/a~1b/1", "bad"}));
  status = evaluator_.EvaluateTemplate(J(R"({"t": "${ now }"})"), Json(), {}).status();
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"/t", "`now`"}));
}

TEST_F(ExpressionTest, TemplateBounds) {
  Json deep = "${ 1 }";
  for (int i = 0; i < 200; ++i) deep = Json::array({std::move(deep)});
  EXPECT_TRUE(IsError(evaluator_.EvaluateTemplate(deep, Json(), {}).status(),
                      StatusCode::kInvalidArgument, {"nests deeper"}));

  Json wide = Json::array();
  for (int i = 0; i < 3; ++i) wide.push_back("${ [range(300000)] }");
  EXPECT_TRUE(IsError(evaluator_.EvaluateTemplate(wide, Json(), {}).status(),
                      StatusCode::kInvalidArgument, {"larger than"}));

  Json tall = "${ reduce range(100) as $i (null; [.]) }";
  for (int i = 0; i < 100; ++i) tall = Json::array({std::move(tall)});
  EXPECT_TRUE(IsError(evaluator_.EvaluateTemplate(tall, Json(), {}).status(),
                      StatusCode::kInvalidArgument, {"nests deeper"}));
}

TEST_F(ExpressionTest, ImplicitForm) {
  const Json input = J(R"({"a": {"b": 1}})");
  EXPECT_EQ(Must(evaluator_.EvaluateImplicit(".a.b", input, {})), 1);
  EXPECT_EQ(Must(evaluator_.EvaluateImplicit("${ .a.b }", input, {})), 1);
  EXPECT_EQ(Must(evaluator_.EvaluateImplicit(" ${.a} ", input, {})), J(R"({"b": 1})"));
  EXPECT_EQ(Must(evaluator_.EvaluateImplicit(J(R"({"x": "${ .a.b }", "y": ".a"})"), input, {})),
            J(R"({"x": 1, "y": ".a"})"));
  EXPECT_EQ(Must(evaluator_.EvaluateImplicit(true, input, {})), true);
  EXPECT_TRUE(IsError(evaluator_.EvaluateImplicit("${ }", input, {}).status(),
                      StatusCode::kInvalidArgument, {"is empty"}));
}

// --- EvaluatorPool --------------------------------------------------------------------

TEST(EvaluatorPoolTest, LeasesFromSeveralThreads) {
  EvaluatorPool pool;
  constexpr int kThreads = 8;
  constexpr int kRounds = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&pool, &failures, t] {
      for (int round = 0; round < kRounds; ++round) {
        EvaluatorPool::Lease lease = pool.Acquire();
        const Json item = round;
        Result<Json> value = lease->Evaluate("{t: .t, r: $item, s: (.t * 1000 + $item)}",
                                             Json{{"t", t}}, {{"item", &item}});
        if (!value.ok() || *value != Json{{"r", round}, {"s", t * 1000 + round}, {"t", t}}) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  // Returned evaluators are reused, with their caches.
  EvaluatorPool::Lease first = pool.Acquire();
  EXPECT_EQ(first->cached_programs(), 1u);
  Evaluator* address = &*first;
  { EvaluatorPool::Lease moved = std::move(first); }
  EvaluatorPool::Lease again = pool.Acquire();
  EXPECT_EQ(&*again, address);
}

}  // namespace
}  // namespace cairn::engine
