// The variables expressions run with ($workflow, $task, $runtime, $input, $context), read
// straight off the interpreter: what each holds, and that a value jq cannot take faults
// every expression of the task, whether the expression names the variable or not.
#include <gtest/gtest.h>

#include "base/limits.h"
#include "engine/core/interpreter.h"
#include "tests/support/assertions.h"

namespace cairn::engine {
namespace {

using storage::RunStatus;
using testing::HasSubstr;
using testing::Must;

constexpr int64_t kStartNs = 1'700'000'000'123'000'000;

// Starts a run of `yaml` with `input` and returns what the first step produced.
StepOutput Start(const std::string& yaml, Json input, RunState& state) {
  auto definition = Must(LoadDefinition(yaml, "scope.yaml"));
  Interpreter interpreter(definition, nullptr, nullptr);
  Evaluator evaluator;
  state.run_id = "01JSCOPETEST00000000000000";
  StepInput start;
  start.time_ns = kStartNs;
  start.body = storage::RunStarted{};
  start.payload = std::move(input);
  return Must(interpreter.Step(state, start, evaluator));
}

const storage::RunStopped& Stopped(const StepOutput& out) {
  return std::get<storage::RunStopped>(out.events.back().body);
}

TEST(ScopeTest, ExpressionsSeeTheVariablesTheyName) {
  RunState state;
  StepOutput out = Start(R"(
document: {dsl: '1.0.3', namespace: scope, name: names, version: '1.0.0'}
do:
  - first:
      set:
        workflow_input: ${ $workflow.input.x }
        run: ${ $workflow.id }
        name: ${ $workflow.definition.document.name }
        started: ${ $workflow.startedAt.iso8601 }
        reference: ${ $task.reference }
        task: ${ $task.name }
        task_input: ${ $task.input.x }
        task_started: ${ $task.startedAt.epoch.milliseconds }
        runtime: ${ $runtime.name }
        input: ${ $input.x }
        context: ${ $context }
        dot: ${ .x }
)",
                         Json{{"x", 5}}, state);
  ASSERT_EQ(state.status, RunStatus::kCompleted);
  const auto& stopped = Stopped(out);
  EXPECT_EQ(Must(ParseJson(stopped.output.json, "output")),
            (Json{{"workflow_input", 5},
                  {"run", "01JSCOPETEST00000000000000"},
                  {"name", "names"},
                  {"started", "2023-11-14T22:13:20.123Z"},
                  {"reference", "/do/0/first"},
                  {"task", "first"},
                  {"task_input", 5},
                  {"task_started", kStartNs / 1'000'000},
                  {"runtime", "cairn"},
                  {"input", 5},
                  {"context", Json::object()},
                  {"dot", 5}}));
}

// An input nested as deep as JSON may be is one level too deep for jq inside $workflow
// (and $task): every expression of the run faults, even one that reads neither.
TEST(ScopeTest, AValueTooDeepForJqFaultsExpressionsThatDoNotNameIt) {
  Json deep = 1;
  for (size_t i = 1; i < limits::json_depth_max; ++i) deep = Json::array({std::move(deep)});
  ASSERT_TRUE(ConvertibleToJq(deep));
  for (const char* expression : {"${ 1 }", "${ .[0] | length }", "${ $task.name }"}) {
    RunState state;
    StepOutput out = Start(std::string(R"(
document: {dsl: '1.0.3', namespace: scope, name: deep, version: '1.0.0'}
do:
  - first:
      set:
        a: ')") + expression + "'\n",
                           deep, state);
    ASSERT_EQ(state.status, RunStatus::kFailed) << expression;
    EXPECT_TRUE(HasSubstr(Stopped(out).error.detail,
                          "expression variable `$workflow` nests deeper than 128 levels"))
        << expression << ": " << Stopped(out).error.detail;
  }
}

// A task input as deep as JSON may be (an earlier task's result) is one level too deep
// inside $task: every expression of the task faults, the first and the later ones alike,
// while the input itself (`.`, $input) could go to jq.
TEST(ScopeTest, ATaskInputTooDeepForJqInsideTaskFaultsEveryExpressionOfTheTask) {
  for (const char* expression : {"${ 1 }", "${ .[0] | length }", "${ $input | length }"}) {
    RunState state;
    StepOutput out = Start(std::string(R"(
document: {dsl: '1.0.3', namespace: scope, name: deep, version: '1.0.0'}
do:
  - first:
      set: '${ reduce range(127) as $i (1; [.]) }'
  - second:
      set:
        a: ')") + expression + "'\n" + R"(        b: '${ 2 }'
)",
                           Json::object(), state);
    ASSERT_EQ(state.status, RunStatus::kFailed) << expression;
    EXPECT_TRUE(HasSubstr(Stopped(out).error.detail,
                          "expression variable `$task` nests deeper than 128 levels"))
        << expression << ": " << Stopped(out).error.detail;
  }
}

}  // namespace
}  // namespace cairn::engine
