// Malformed and hostile definitions through Engine::ApplyDefinition: each is refused with
// kInvalidArgument whose message says where (file:line:col, task path) and what was
// expected, and nothing is stored -- the workflows list, the definitions, and a run
// recorded before the bad apply are exactly as they were, byte for byte.
#include <gtest/gtest.h>

#include <initializer_list>
#include <regex>
#include <string>
#include <string_view>
#include <tuple>

#include "base/limits.h"
#include "tests/badinput/bad_input_util.h"

namespace cairn::engine::badinput {
namespace {

using cairn::testing::HasSubstr;
using cairn::testing::IsError;
using cairn::testing::Must;
using storage::RunStatus;

// A valid `document:` header of 5 lines: `do:` (or what follows) starts on line 6.
constexpr std::string_view kHeader =
    "document:\n"
    "  dsl: '1.0.3'\n"
    "  namespace: bad\n"
    "  name: wf\n"
    "  version: '1.0.0'\n";

std::string Doc(std::string_view rest) { return std::string(kHeader) + std::string(rest); }

constexpr std::string_view kKept =
    R"(document: {dsl: '1.0.3', namespace: bad, name: kept, version: '1.0.0'}
do:
  - first:
      set: {colors: [red]}
  - second:
      set:
        colors: '${ .colors + ["green"] }'
)";

using RefTuple = std::tuple<std::string, std::string, std::string, std::string>;

std::vector<RefTuple> Tuples(const std::vector<WorkflowRef>& refs) {
  std::vector<RefTuple> out;
  for (const WorkflowRef& r : refs) out.emplace_back(r.namespace_, r.name, r.version, r.hash.Hex());
  return out;
}

// The message is valid UTF-8 (Json::dump throws on anything else).
bool ValidUtf8(const std::string& text) {
  try {
    static_cast<void>(Json(text).dump());
    return true;
  } catch (const Json::exception&) {
    return false;
  }
}

// Before each test: one workflow applied and one run of it recorded. After each test:
// the run verifies and is unchanged, and the whole database is as it was.
class BadDefinitionTest : public EngineFixture {
 protected:
  void SetUp() override {
    EngineFixture::SetUp();
    Apply(kKept, "kept.yaml");
    RunInfo kept = RunToEnd("bad/kept");
    ASSERT_EQ(kept.header.status, RunStatus::kCompleted) << Show(kept);
    kept_run_ = kept.header.run_id;
    kept_history_ = History(kept_run_);
    kept_header_ = Must(engine_->store().GetRun(kept_run_));
    workflows_ = Tuples(Must(engine_->ListWorkflows()));
    database_ = SnapshotDatabase();
  }

  void TearDown() override {
    if (engine_ && !HasFatalFailure()) {
      EXPECT_EQ(Tuples(Must(engine_->ListWorkflows())), workflows_);
      ExpectVerifies(kept_run_);
      EXPECT_TRUE(History(kept_run_) == kept_history_) << "the recorded run changed";
      EXPECT_TRUE(Must(engine_->store().GetRun(kept_run_)) == kept_header_);
      DatabaseContents now = SnapshotDatabase();
      EXPECT_TRUE(now == database_) << "the store changed:\n" << DescribeDifference(database_, now);
      // The engine still works: the kept workflow runs again.
      EXPECT_EQ(RunToEnd("bad/kept").header.status, RunStatus::kCompleted);
    }
    EngineFixture::TearDown();
  }

  // Applies `text` as "bad.yaml": kInvalidArgument whose message has every part and (when
  // `positioned`) starts with "bad.yaml:LINE:COL: "; the workflow list is unchanged.
  ::testing::AssertionResult Refused(std::string_view text,
                                     std::initializer_list<std::string_view> parts,
                                     bool positioned = true, std::string_view source = "bad.yaml") {
    Result<WorkflowRef> result = engine_->ApplyDefinition(text, source);
    if (result.ok()) {
      return ::testing::AssertionFailure() << "applied as " << result->namespace_ << "/"
                                           << result->name << ":" << result->version;
    }
    ::testing::AssertionResult matches =
        IsError(result.status(), StatusCode::kInvalidArgument, parts);
    if (!matches) return matches;
    const std::string& message = result.status().message();
    if (!ValidUtf8(message)) {
      return ::testing::AssertionFailure()
             << "the message is not valid UTF-8: "
             << Json(message.substr(0, 300)).dump(-1, ' ', true, Json::error_handler_t::replace);
    }
    const std::regex where("^" + std::regex_replace(std::string(source), std::regex("\\."), "\\.") +
                           ":[0-9]+:[0-9]+: ");
    if (positioned && !std::regex_search(message, where)) {
      return ::testing::AssertionFailure() << "no " << source << ":LINE:COL: in: " << message;
    }
    if (Tuples(Must(engine_->ListWorkflows())) != workflows_) {
      return ::testing::AssertionFailure() << "the workflow list changed";
    }
    return ::testing::AssertionSuccess();
  }

  RunId kept_run_;
  std::vector<storage::Event> kept_history_;
  storage::RunHeader kept_header_;
  std::vector<RefTuple> workflows_;
  DatabaseContents database_;
};

// ---- flow ------------------------------------------------------------------------------

TEST_F(BadDefinitionTest, ThenCyclesWithoutAnExitAreRefused) {
  EXPECT_TRUE(Refused(Doc(R"(do:
  - a:
      set: {x: 1}
  - b:
      wait: PT1S
      then: a
  - c:
      set: {y: 1}
)"),
                      {"bad.yaml:7:5: /do/0/a: tasks a -> b -> a loop forever: none of them can "
                       "fail, branch or leave the loop"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - self:\n      set: {x: 1}\n      then: self\n"),
                      {"bad.yaml:7:5: /do/0/self: tasks self -> self loop forever"}));
  // Three tasks deep in a nested list.
  EXPECT_TRUE(Refused(Doc(R"(do:
  - outer:
      do:
        - a:
            set: {x: 1}
        - b:
            set: {x: 2}
        - c:
            set: {x: 3}
            then: a
)"),
                      {"bad.yaml:9:11: /do/0/outer/do/0/a: tasks a -> b -> c -> a loop forever"}));
}

TEST_F(BadDefinitionTest, ACycleThroughASwitchWithOnlyADefaultCaseIsRefused) {
  // A switch whose only case has no `when` cannot branch: a -> s -> a forever. (Accepted
  // before ff1abbc: a run then looped for ~25 s, wrote over 100000 events, and stopped as
  // max_steps.)
  EXPECT_TRUE(Refused(Doc(R"(do:
  - a:
      set: {x: 1}
  - s:
      switch:
        - always:
            then: a
)"),
                      {"bad.yaml:7:5: /do/0/a: tasks a -> s -> a loop forever"}));
}

TEST_F(BadDefinitionTest, BadThenTargetsListTheTasksThatExist) {
  EXPECT_TRUE(
      Refused(Doc("do:\n  - a:\n      wait: PT1S\n      then: c\n  - b:\n      wait: PT1S\n"),
              {"bad.yaml:9:13: /do/0/a/then: unknown task 'c' in `then` (expected "
               "continue, exit, end or a task of the same list: a, b)"}));
  // A task at another depth is not a target.
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      do:\n        - b:\n            wait: PT1S\n"
                          "            then: c\n  - c:\n      wait: PT1S\n"),
                      {"bad.yaml:11:19: /do/0/a/do/0/b/then: unknown task 'c' in `then` "
                       "(expected continue, exit, end or a task of the same list: b)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - s:\n      switch:\n        - x:\n            then: nowhere\n"),
                      {"bad.yaml:10:19: /do/0/s/switch/0/x/then: unknown task 'nowhere' in `then` "
                       "(expected continue, exit, end or a task of the same list: s)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      wait: PT1S\n      then: [a]\n"),
                      {"bad.yaml:9:13: /do/0/a/then: expected a string, got a sequence"}));
}

// ---- task types and properties ---------------------------------------------------------

TEST_F(BadDefinitionTest, UnknownTaskTypesSayWhichTypesExist) {
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      frobnicate:\n        x: 1\n"),
                      {"bad.yaml:7:5: /do/0/a: task 'a' has no task type (expected one of: call, "
                       "do, for, listen, raise, run, set, switch, try, wait)",
                       "bad.yaml:8:7: /do/0/a/frobnicate: unknown property 'frobnicate' in task "
                       "'a'"}));
  // A call to a function that is neither built in, declared nor in the engine's catalog.
  EXPECT_TRUE(Refused(Doc("do:\n  - c:\n      call: no.such.tool\n"),
                      {"bad.yaml:8:13: /do/0/c/call: unknown function 'no.such.tool' (expected "
                       "http, mcp, agent, a use.functions name or a registered tool)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {x: 1}\n      wait: PT1S\n"),
                      {"bad.yaml:7:5: /do/0/a: task 'a' has several task types: set, wait "
                       "(expected exactly one)"}));
}

TEST_F(BadDefinitionTest, UnknownPropertiesListWhatIsExpected) {
  EXPECT_TRUE(Refused(Doc("do:\n  - s:\n      set: {a: 1}\n      foo: 2\n"),
                      {"bad.yaml:9:7: /do/0/s/foo: unknown property 'foo' in set task (expected "
                       "one of: export, if, input, metadata, output, set, then, timeout)"}));
  EXPECT_TRUE(Refused(Doc("do: []\nfoo: 1\n"),
                      {"bad.yaml:7:1: /foo: unknown property 'foo' in the workflow (expected one "
                       "of: do, document, evaluate, input, output, timeout, use)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: http\n      with:\n        method: get\n"
                          "        endpoint: https://x\n        body2: {}\n"),
                      {"bad.yaml:12:9: /do/0/a/with/body2: unknown property 'body2' in an http "
                       "call's `with` (expected one of: body, endpoint, headers, method, output, "
                       "query, redirect)"}));
}

TEST_F(BadDefinitionTest, UnsupportedTasksAreRefusedByName) {
  EXPECT_TRUE(Refused(Doc("do:\n  - f:\n      fork:\n        branches: []\n"),
                      {"bad.yaml:8:7: /do/0/f/fork: `fork` tasks are not supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - e:\n      emit:\n        event: {with: {type: t}}\n"),
                      {"bad.yaml:8:7: /do/0/e/emit: `emit` tasks are not supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - r:\n      run:\n        container:\n          image: x\n"),
                      {"bad.yaml:9:9: /do/0/r/run/container: `run.container` is not supported "
                       "(supported: run.shell)"}));
}

// ---- nesting and size ------------------------------------------------------------------

// `do` inside `do`, `depth` levels.
std::string NestedDo(size_t depth) {
  std::string text = Doc("do:\n");
  std::string indent = "  ";
  for (size_t i = 0; i < depth; ++i) {
    text += indent + "- t" + std::to_string(i) + ":\n" + indent + "    do:\n";
    indent += "      ";
  }
  text += indent + "- leaf:\n" + indent + "    wait: PT1S\n";
  return text;
}

TEST_F(BadDefinitionTest, DeeplyNestedTaskListsAreRefused) {
  EXPECT_TRUE(
      Refused(NestedDo(limits::definition_depth_max), {"task lists nest deeper than 64 levels"}));
  std::string flow = Doc("do: ");
  for (int i = 0; i < 100'000; ++i) flow += "[{t: {do: ";
  flow += "[]";
  for (int i = 0; i < 100'000; ++i) flow += "}}]";
  EXPECT_TRUE(Refused(flow, {"bad.yaml:6:", "nests deeper than"}));
}

TEST_F(BadDefinitionTest, DeeplyNestedValuesAreRefused) {
  std::string value = std::string(200, '[') + std::string(200, ']');
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set:\n        x: " + value + "\n"),
                      {"bad.yaml:9:9: /do/0/a/set: value nests 201 levels deep (at most 128)"}));
  std::string mapping;
  for (int i = 0; i < 100'000; ++i) mapping += "{a: ";
  mapping += "1" + std::string(100'000, '}');
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: " + mapping + "\n"),
                      {"bad.yaml:8:", "the document nests deeper than"}));
  // A JSON schema nested beyond the value bound (201 levels), within the YAML bound.
  std::string schema = "{type: object}";
  for (int i = 0; i < 100; ++i) schema = "{type: object, properties: {p: " + schema + "}}";
  EXPECT_TRUE(Refused(Doc("input:\n  schema:\n    document: " + schema + "\ndo: []\n"),
                      {"bad.yaml:8:15: /input/schema/document", "levels deep (at most 128)"}));
}

TEST_F(BadDefinitionTest, FiveMegabyteDocumentsAreRefusedBeforeParsing) {
  std::string padded = Doc("do: []\n# " + std::string(5 << 20, 'x') + "\n");
  EXPECT_TRUE(Refused(
      padded,
      {"bad.yaml: the document is " + std::to_string(padded.size()) + " bytes (at most 4194304)"},
      /*positioned=*/false));
  // Real content, not a comment: ~5 MB of tasks.
  std::string tasks = Doc("do:\n");
  for (int i = 0; tasks.size() < (5u << 20); ++i) {
    tasks += "  - t" + std::to_string(i) + ":\n      set: {v: '" + std::string(400, 'v') + "'}\n";
  }
  EXPECT_TRUE(Refused(
      tasks,
      {"bad.yaml: the document is " + std::to_string(tasks.size()) + " bytes (at most 4194304)"},
      /*positioned=*/false));
  // Under the byte bound, over the task bound.
  std::string many = Doc("do:\n");
  for (size_t i = 0; i <= limits::definition_tasks_max; ++i) {
    many += "  - t" + std::to_string(i) + ": {wait: PT1S}\n";
  }
  EXPECT_TRUE(Refused(many, {"/do/10000/t10000: the definition has more than 10000 tasks"}));
}

TEST_F(BadDefinitionTest, YamlAliasBombsAreRefused) {
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char name = 'b'; name <= 'k'; ++name) {
    char previous = static_cast<char>(name - 1);
    laughs += std::string(1, name) + ": &" + name + " [";
    for (int i = 0; i < 10; ++i) laughs += std::string(i ? ", " : "") + "*" + previous;
    laughs += "]\n";
  }
  EXPECT_TRUE(Refused(laughs, {"nodes (counting every alias expanded)"}));
  // Inside an otherwise valid definition.
  std::string in_task = Doc("do:\n  - a:\n      set:\n        l0: &l0 [x, x, x, x, x, x, x, x]\n");
  for (int level = 1; level < 9; ++level) {
    std::string previous = "*l" + std::to_string(level - 1);
    in_task += "        l" + std::to_string(level) + ": &l" + std::to_string(level) + " [" +
               previous + ", " + previous + ", " + previous + ", " + previous + ", " + previous +
               ", " + previous + ", " + previous + ", " + previous + "]\n";
  }
  EXPECT_TRUE(Refused(in_task, {"nodes (counting every alias expanded)"}));
  std::string big = "big: &big '" + std::string(1 << 20, 'x') + "'\nmany: [";
  for (int i = 0; i < 64; ++i) big += std::string(i ? ", " : "") + "*big";
  big += "]\n";
  EXPECT_TRUE(Refused(big, {"expands (through aliases) to more than"}));
  // An alias inside its own anchor.
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: &loop {x: *loop}\n"), {"bad.yaml:8:"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: *nowhere\n"), {"bad.yaml:8:12:"}));
}

// ---- expressions -----------------------------------------------------------------------

TEST_F(BadDefinitionTest, InvalidJqIsRefusedWhereItIsWritten) {
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: ${ .a | | .b }\n"),
                      {"bad.yaml:8:12: /do/0/a/set: invalid expression `.a | | .b`"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - s:\n      switch:\n        - x:\n            when: .a ==\n"
                          "            then: end\n"),
                      {"bad.yaml:10:19: /do/0/s/switch/0/x/when: invalid expression `.a ==`"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      if: ${ ) }\n      set: {x: 1}\n"),
                      {"bad.yaml:8:11: /do/0/a/if: invalid expression `)`"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {x: 1}\n      output:\n        as: .x[\n"),
                      {"bad.yaml:10:13: /do/0/a/output/as: invalid expression `.x[`"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set:\n        x: '${ $nope }'\n"),
                      {"bad.yaml:9:12: /do/0/a/set/x: invalid expression `$nope`"}));
}

TEST_F(BadDefinitionTest, BuiltinsThatReadTheClockOrEnvironmentAreRefused) {
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: ${ now }\n"),
                      {"bad.yaml:8:12: /do/0/a/set: invalid expression `now`: ",
                       "uses `now`, which reads the clock; runtime expressions must be "
                       "deterministic"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {home: '${ env.HOME }'}\n"),
                      {"bad.yaml:8:19: /do/0/a/set/home: invalid expression `env.HOME`: ",
                       "uses `env`, which reads the process environment; runtime expressions "
                       "must be deterministic"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: ${ $ENV.PATH }\n"),
                      {"bad.yaml:8:12: /do/0/a/set", "`$ENV`", "reads the process environment"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: '${ {t: (now | todate)} }'\n"),
                      {"bad.yaml:8:12: /do/0/a/set", "uses `now`, which reads the clock"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: ${ input_filename }\n"),
                      {"bad.yaml:8:12: /do/0/a/set", "reads the name of an input file"}));
}

// ---- durations -------------------------------------------------------------------------

TEST_F(BadDefinitionTest, BadDurationsNameTheTextAndTheExpectedForm) {
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: P1Y\n"),
                      {"bad.yaml:8:13: /do/0/w/wait: invalid ISO 8601 duration 'P1Y': years and "
                       "months have no fixed length"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: 10s\n"),
                      {"bad.yaml:8:13: /do/0/w/wait: invalid ISO 8601 duration '10s'"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: 30\n"),
                      {"bad.yaml:8:13: /do/0/w/wait: expected a duration (ISO 8601 text or "
                       "{days, hours, minutes, seconds, milliseconds}), got an integer"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: {seconds: -1}\n"),
                      {"/do/0/w/wait: duration property 'seconds' must be a non-negative "
                       "integer, got -1"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: P400D\n"),
                      {"bad.yaml:8:13: /do/0/w/wait: duration 'P400D' is longer than the "
                       "maximum, 366d"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {x: 1}\n      timeout:\n        after: PT0S\n"),
                      {"bad.yaml:10:16: /do/0/a/timeout/after: a timeout must be longer than "
                       "zero"}));
}

// ---- bytes -----------------------------------------------------------------------------

TEST_F(BadDefinitionTest, NonUtf8BytesAreRefusedWithTheirPosition) {
  // Not silently replaced by U+FFFD (the stored definition would differ from the file).
  // Each case has its own workflow name so that one accepted case cannot hide the next.
  auto doc = [](std::string_view name, std::string_view rest) {
    return "document: {dsl: '1.0.3', namespace: bad, name: " + std::string(name) +
           ", version: '1.0.0'}\n" + std::string(rest);
  };
  EXPECT_TRUE(Refused(doc("latin1", "do:\n  - a:\n      set: {name: \"caf\xe9\"}\n"),
                      {"bad.yaml:4:", "UTF-8"}));
  EXPECT_TRUE(
      Refused(doc("taskname", "do:\n  - caf\xc3:\n      set: {x: 1}\n"), {"bad.yaml:3:", "UTF-8"}));
  // An overlong encoding of '/' and a UTF-16 surrogate encoded as UTF-8.
  EXPECT_TRUE(Refused(doc("overlong", "do:\n  - a:\n      set: {x: \"\xc0\xaf\"}\n"),
                      {"bad.yaml:4:", "UTF-8"}));
  EXPECT_TRUE(Refused(doc("surrogate", "do:\n  - a:\n      set: {x: \"\xed\xa0\x80\"}\n"),
                      {"bad.yaml:4:", "UTF-8"}));
}

TEST_F(BadDefinitionTest, EmptyGarbageAndBinaryTextAreRefused) {
  EXPECT_TRUE(Refused("", {"bad.yaml: the document is empty"}, /*positioned=*/false));
  EXPECT_TRUE(Refused("\n\n   \n", {"bad.yaml: the document is empty"}, /*positioned=*/false));
  EXPECT_TRUE(Refused("# nothing but a comment\n", {"bad.yaml: the document is empty"},
                      /*positioned=*/false));
  EXPECT_TRUE(Refused("just some words\n", {"bad.yaml:1:1: expected a mapping, got a string"}));
  EXPECT_TRUE(Refused("42\n", {"bad.yaml:1:1: expected a mapping, got an integer"}));
  EXPECT_TRUE(Refused("- a\n- b\n", {"bad.yaml:1:1: expected a mapping, got a sequence"}));
  EXPECT_TRUE(Refused("a: b: c\n", {"bad.yaml:1:5: invalid YAML:"}));
  EXPECT_TRUE(Refused(Doc("do:\n\t- a:\n\t\tset: {}\n"), {"bad.yaml:7:", "invalid YAML"}));
  EXPECT_TRUE(Refused(Doc("do: []\n---\ndo: []\n"), {"more than one YAML document"}));
  EXPECT_TRUE(Refused(Doc("do: []\ndo: []\n"),
                      {"bad.yaml:7:1: /do: duplicate key 'do' (first at line 6, column 1)"}));
  // yaml-cpp's "unknown escape character: X" quotes the byte after a backslash: the
  // message must still be valid UTF-8 (it goes into JSON: `-o json`, the HTTP API).
  EXPECT_TRUE(
      Refused("a: \"\\\xff\"\n", {"bad.yaml:1:", "invalid YAML: unknown escape character"}));
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 131 + 7) % 256);
  EXPECT_TRUE(Refused(garbage, {"bad.yaml"}, /*positioned=*/false));
  // An ELF header, as if a binary was applied by mistake.
  std::string elf(
      "\x7f"
      "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0",
      20);
  elf += std::string(2000, '\0');
  EXPECT_TRUE(Refused(elf, {"bad.yaml"}, /*positioned=*/false));
}

TEST_F(BadDefinitionTest, MalformedJsonIsRefusedWithItsPosition) {
  // An unclosed `[` (yaml-cpp sees a complex key; once reported as "bad.json:1:1: a
  // mapping key must be a scalar").
  EXPECT_TRUE(Refused(R"({
  "document": {"dsl": "1.0.3", "namespace": "bad", "name": "json", "version": "1.0.0"},
  "do": [
)",
                      {"bad.json:", "invalid YAML"}, /*positioned=*/true, "bad.json"));
  EXPECT_TRUE(Refused(R"({"document": {"dsl": "1.0.3", "namespace": "bad", "name": "json)",
                      {"bad.json:1:", "invalid YAML"}, /*positioned=*/true, "bad.json"));
  // Valid JSON that is a bad definition: positioned inside the JSON text.
  EXPECT_TRUE(Refused(R"({
  "document": {"dsl": "1.0.3", "namespace": "bad", "name": "json", "version": "1.0.0"},
  "do": [
    {"a": {"set": {"x": 1}, "then": "nowhere"}}
  ]
}
)",
                      {"bad.json:4:37: /do/0/a/then: unknown task 'nowhere'"},
                      /*positioned=*/true, "bad.json"));
  EXPECT_TRUE(Refused(R"({"document": {"dsl": "1.0.3", "namespace": "bad", "name": "json",
              "version": "1.0.0"}, "do": {"a": 1}})",
                      {"bad.json:2:42: /do: expected a sequence, got a mapping"},
                      /*positioned=*/true, "bad.json"));
}

// ---- versions --------------------------------------------------------------------------

TEST_F(BadDefinitionTest, ChangingAnAppliedVersionIsRefusedAndStoresNothing) {
  std::string changed(kKept);
  changed.replace(changed.find("[red]"), 5, "[blue]");
  Result<WorkflowRef> result = engine_->ApplyDefinition(changed, "kept.yaml");
  // BUG: Engine::Impl::Apply stores the new definition's bytes (PutDefinition) before
  // PutWorkflowVersion refuses the version, so an orphan entry is left in the
  // `definitions` family (TearDown's database check shows it).
  EXPECT_TRUE(IsError(result.status(), StatusCode::kAlreadyExists, {"bad/kept", "1.0.0"}));
}

// Valid JSON is a valid definition (YAML 1.2 is a superset): accepted, and hashed the same
// as the same document written in YAML.
TEST_F(EngineFixture, JsonInsteadOfYamlIsTheSameDefinition) {
  WorkflowRef from_json = Apply(R"({
  "document": {"dsl": "1.0.3", "namespace": "bad", "name": "json", "version": "1.0.0"},
  "do": [{"a": {"set": {"x": 1}}}]
})",
                                "wf.json");
  WorkflowRef from_yaml = Apply(R"(document:
  dsl: '1.0.3'
  namespace: bad
  name: json
  version: '1.0.0'
do:
  - a:
      set:
        x: 1
)",
                                "wf.yaml");
  EXPECT_EQ(from_json.hash, from_yaml.hash);
  EXPECT_EQ(Must(engine_->ListWorkflows()).size(), 1u);
  RunInfo info = RunToEnd("bad/json");
  EXPECT_EQ(info.header.status, RunStatus::kCompleted) << Show(info);
  EXPECT_EQ(*info.output, (Json{{"x", 1}}));
}

}  // namespace
}  // namespace cairn::engine::badinput
