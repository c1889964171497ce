// The tree LoadDefinition builds: every supported construct, paths, ids, references.
#include <gtest/gtest.h>

#include <string>

#include "engine/definition/definition.h"
#include "tests/definition/definition_test_util.h"

namespace cairn::engine {
namespace {

using testing::Doc;
using testing::Load;
using testing::MustLoad;
using testing::ReadTestData;
using testing::Refused;

class FullDefinitionTest : public ::testing::Test {
 protected:
  void SetUp() override { definition_ = MustLoad(ReadTestData("full.yaml")); }
  const Task& Top(size_t index) const { return definition_->do_.at(index); }
  std::shared_ptr<const Definition> definition_;
};

TEST_F(FullDefinitionTest, Header) {
  EXPECT_EQ(definition_->dsl, "1.0.3");
  EXPECT_EQ(definition_->namespace_, "billing");
  EXPECT_EQ(definition_->name, "change-plan");
  EXPECT_EQ(definition_->version, "1.2.0");
  EXPECT_EQ(definition_->title, "Change a team's plan");
  EXPECT_EQ(definition_->summary, "Picks a plan, charges, and waits for approval.");
  EXPECT_EQ(definition_->source_name, "test.yaml");
}

TEST_F(FullDefinitionTest, WorkflowInputOutputAndTimeout) {
  ASSERT_TRUE(definition_->input.schema.has_value());
  EXPECT_EQ(definition_->input.schema->document.at("required"), Json::array({"team"}));
  EXPECT_EQ(definition_->input.transform, Json("${ $workflow.input }"));
  EXPECT_FALSE(definition_->output.schema.has_value());
  EXPECT_EQ(definition_->output.transform, Json(".result"));
  ASSERT_TRUE(definition_->timeout.has_value());
  EXPECT_EQ(definition_->timeout->ms, 3'600'000u);
}

TEST_F(FullDefinitionTest, SetExportAndNamedTimeout) {
  const Task& init = Top(0);
  EXPECT_EQ(init.name, "init");
  EXPECT_EQ(init.KindName(), "set");
  EXPECT_EQ(std::get<SetBody>(init.body).value,
            Json::parse(R"({"attempts":0,"team":"${ .team }"})"));
  EXPECT_EQ(init.export_.transform, Json("$context + { started: true }"));
  EXPECT_EQ(init.pos.line, 65u);
  EXPECT_EQ(init.pos.column, 5u);
  const Task& lookup = Top(1);
  ASSERT_TRUE(lookup.timeout.has_value());
  EXPECT_EQ(lookup.timeout->ms, 30'000u);
  EXPECT_EQ(lookup.output.transform, Json("{ team: . }"));
}

TEST_F(FullDefinitionTest, CallKinds) {
  const auto& function = std::get<CallBody>(Top(1).body);
  EXPECT_EQ(function.kind, CallBody::Kind::kFunction);
  EXPECT_EQ(function.function, "fetchTeam");
  EXPECT_EQ(function.with, Json::parse(R"({"id":"${ .team.id }"})"));
  const auto& tool = std::get<CallBody>(Top(3).body);
  EXPECT_EQ(tool.kind, CallBody::Kind::kTool);
  EXPECT_EQ(tool.function, "billing.choose_plan");
  EXPECT_EQ(Top(3).if_, Json(".team.active"));
  const auto& mcp = std::get<CallBody>(std::get<ForBody>(Top(6).body).tasks.at(0).body);
  EXPECT_EQ(mcp.kind, CallBody::Kind::kMcp);
  EXPECT_EQ(mcp.with.at("method"), "tools/call");
  const auto& http = std::get<CallBody>(definition_->functions.at("fetchTeam").body);
  EXPECT_EQ(http.kind, CallBody::Kind::kHttp);
  EXPECT_EQ(http.with.at("endpoint").at("uri"), "https://crm.example.com/teams/{id}");
}

TEST_F(FullDefinitionTest, SwitchCasesResolveToSiblingIndexes) {
  const auto& body = std::get<SwitchBody>(Top(2).body);
  ASSERT_EQ(body.cases.size(), 2u);
  EXPECT_EQ(body.cases[0].name, "big");
  EXPECT_EQ(body.cases[0].when, Json(".team.size > 100"));
  EXPECT_EQ(body.cases[0].then.kind, FlowDirective::Kind::kGoto);
  EXPECT_EQ(body.cases[0].then.target, "enterprise");
  EXPECT_EQ(body.cases[0].then.target_index, 4u);
  EXPECT_FALSE(body.cases[1].when.has_value());
  EXPECT_EQ(body.cases[1].then.kind, FlowDirective::Kind::kContinue);
}

TEST_F(FullDefinitionTest, TryCatchWithNamedRetry) {
  const Task& task = Top(4);
  const auto& body = std::get<TryBody>(task.body);
  ASSERT_EQ(body.tasks.size(), 1u);
  EXPECT_EQ(body.tasks[0].path, "/do/4/enterprise/try/0/charge");
  const Catch& handler = body.catch_;
  EXPECT_EQ(handler.errors.with, Json::parse(R"({"status":503})"));
  EXPECT_EQ(handler.as, "failure");
  EXPECT_EQ(handler.when, Json("$failure.status == 503"));
  ASSERT_TRUE(handler.retry.has_value());
  const RetryPolicy& retry = *handler.retry;
  EXPECT_EQ(retry.when, Json("${ $failure.status >= 500 }"));
  EXPECT_EQ(retry.delay.ms, 2000u);
  EXPECT_EQ(retry.backoff.kind, Backoff::Kind::kExponential);
  EXPECT_EQ(retry.attempt_count, 5u);
  EXPECT_EQ(retry.attempt_duration->ms, 60'000u);
  EXPECT_EQ(retry.total_duration->ms, 600'000u);
  EXPECT_EQ(retry.jitter_from->ms, 100u);
  EXPECT_EQ(retry.jitter_to->ms, 500u);
  ASSERT_EQ(handler.do_.size(), 1u);
  EXPECT_EQ(handler.do_[0].path, "/do/4/enterprise/catch/do/0/note");
}

TEST_F(FullDefinitionTest, ListenForWaitRunRaise) {
  const auto& listen = std::get<ListenBody>(Top(5).body);
  EXPECT_EQ(listen.mode, ListenBody::Mode::kAny);
  EXPECT_EQ(listen.read, ListenBody::Read::kEnvelope);
  ASSERT_EQ(listen.filters.size(), 1u);
  EXPECT_EQ(listen.filters[0].with.at("data"), "${ .approved == true }");

  const auto& loop = std::get<ForBody>(Top(6).body);
  EXPECT_EQ(loop.each, "item");
  EXPECT_EQ(loop.at, "index");
  EXPECT_EQ(loop.in, Json(".team.members"));
  EXPECT_EQ(loop.while_, Json("$index < 10"));
  EXPECT_EQ(loop.tasks.at(0).path, "/do/6/notify/do/0/mail");

  EXPECT_EQ(std::get<WaitBody>(Top(7).body).duration.ms, 300'000u);

  const auto& run = std::get<RunShellBody>(Top(8).body);
  EXPECT_EQ(run.command, "logger");
  EXPECT_EQ(run.arguments, Json::parse(R"(["cairn","${ .team.id }"])"));
  EXPECT_EQ(run.environment, Json::parse(R"({"LEVEL":"info"})"));
  EXPECT_EQ(run.stdin_value, "${ tostring }");
  EXPECT_FALSE(run.await);
  EXPECT_EQ(run.return_mode, RunShellBody::Return::kStdout);
  const auto& count = std::get<RunShellBody>(definition_->functions.at("countSeats").body);
  EXPECT_EQ(count.return_mode, RunShellBody::Return::kAll);
  EXPECT_EQ(count.arguments, Json::array({"-l"}));
  EXPECT_TRUE(count.environment.is_null());
  EXPECT_TRUE(count.stdin_value.is_null());

  const Task& check = Top(9);
  EXPECT_EQ(check.then.kind, FlowDirective::Kind::kEnd);
  const TaskList& inner = std::get<DoBody>(check.body).tasks;
  const ErrorTemplate& named = std::get<RaiseBody>(inner.at(0).body).error;
  EXPECT_EQ(named.type, "https://example.com/errors/not-found");
  EXPECT_EQ(named.status, 404);
  EXPECT_EQ(named.title, "${ \"No team \" + $input.team.id }");
  EXPECT_TRUE(named.detail.is_null());
  EXPECT_TRUE(named.instance.is_null());
  const ErrorTemplate& inline_error = std::get<RaiseBody>(inner.at(1).body).error;
  EXPECT_EQ(inline_error.status, 400);
  EXPECT_TRUE(inline_error.title.is_null());
}

TEST_F(FullDefinitionTest, IdsArePreOrderOverDoThenFunctions) {
  const auto& tasks = definition_->tasks;
  ASSERT_EQ(tasks.size(), 18u);
  for (size_t i = 0; i < tasks.size(); ++i) EXPECT_EQ(tasks[i]->id, i);
  std::vector<std::string> paths;
  for (const Task* task : tasks) paths.push_back(task->path);
  std::vector<std::string> expected = {"/do/0/init",
                                       "/do/1/lookup",
                                       "/do/2/pick",
                                       "/do/3/choose",
                                       "/do/4/enterprise",
                                       "/do/4/enterprise/try/0/charge",
                                       "/do/4/enterprise/catch/do/0/note",
                                       "/do/5/approve",
                                       "/do/6/notify",
                                       "/do/6/notify/do/0/mail",
                                       "/do/7/pause",
                                       "/do/8/audit",
                                       "/do/9/check",
                                       "/do/9/check/do/0/missing",
                                       "/do/9/check/do/1/invalid",
                                       "/do/10/unreachable",
                                       "/use/functions/countSeats",
                                       "/use/functions/fetchTeam"};
  EXPECT_EQ(paths, expected);
  EXPECT_EQ(&definition_->functions.at("fetchTeam"), tasks[17]);
  EXPECT_EQ(&Top(0), tasks[0]);
}

TEST(LoaderTest, MinimalWorkflowWithEmptyTaskList) {
  auto definition = MustLoad(Doc("do: []\n"));
  EXPECT_TRUE(definition->do_.empty());
  EXPECT_TRUE(definition->tasks.empty());
  EXPECT_FALSE(definition->hash.IsZero());
}

TEST(LoaderTest, JsonDocumentsLoad) {
  auto definition = MustLoad(R"({"document": {"dsl": "1.0.1", "namespace": "n", "name": "x",
      "version": "1.0.0"}, "do": [{"a": {"set": {"b": 1}}}]})");
  EXPECT_EQ(definition->do_.at(0).pos.line, 2u);
  EXPECT_EQ(definition->do_.at(0).pos.column, 36u);  // the opening quote of "a"
}

TEST(LoaderTest, AcceptedDslVersionsAndHeaderPatterns) {
  for (std::string_view dsl : {"1.0.0", "1.0.3", "1.0.12", "1.0.0-alpha1", "1.0.3+build.7"}) {
    std::string text = "document: {dsl: '" + std::string(dsl) +
                       "', namespace: a-b-1, name: X9, version: 0.1.0-rc.1}\ndo: []\n";
    EXPECT_TRUE(Load(text).ok()) << dsl << ": " << Load(text).status().ToString();
  }
}

TEST(LoaderTest, ExpressionsAreCheckedImplicitlyOrInDollarBraces) {
  // A `set` string that is not `${ }` is a literal; an always-an-expression field is jq.
  EXPECT_TRUE(Load(Doc("do:\n  - a:\n      set:\n        x: 'not (jq'\n")).ok());
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set:\n        x: ${ not (jq }\n"),
                      {"test.yaml:9:12: /do/0/a/set/x: invalid expression `not (jq`"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {x: 1}\n      output:\n        as: not (jq\n"),
                      {"test.yaml:10:13: /do/0/a/output/as: invalid expression `not (jq`"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {x: 1}\n      if: ${ ) }\n"),
                      {"/do/0/a/if: invalid expression `)`"}));
}

TEST(LoaderTest, VariablesFollowTheSpecTable) {
  // $input is not bound in `if` and `input.from` (they run before the input exists).
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {x: 1}\n      if: $input.ok\n"),
                      {"/do/0/a/if", "$input",
                       "variables here: $context, $task, $workflow, "
                       "$runtime"}));
  // $output only in export.as.
  EXPECT_TRUE(
      Load(Doc("do:\n  - a:\n      set: {x: 1}\n      export:\n        as: $output\n")).ok());
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {x: 1}\n      output:\n        as: $output\n"),
                      {"/do/0/a/output/as"}));
  // The workflow's input.from sees neither $context nor $input.
  EXPECT_TRUE(Refused(Doc("input:\n  from: $context\ndo: []\n"), {"/input/from"}));
  EXPECT_TRUE(Load(Doc("input:\n  from: $workflow.input\noutput:\n  as: $context\ndo: []\n")).ok());
}

TEST(LoaderTest, LoopAndCatchVariablesAreInScopeOnlyInside) {
  std::string loop = Doc(R"(do:
  - loop:
      for:
        each: pet
        at: i
        in: .pets
      while: $i < 3
      do:
        - a:
            set:
              x: ${ [$pet, $i] }
  - after:
      set:
        x: ${ $pet }
)");
  EXPECT_TRUE(Refused(loop, {"test.yaml:19:12: /do/1/after/set/x: invalid expression `$pet`"}));
  std::string handler = Doc(R"(do:
  - t:
      try:
        - a:
            call: tool.x
      catch:
        as: oops
        do:
          - b:
              set:
                x: ${ $oops.status }
)");
  EXPECT_TRUE(Load(handler).ok()) << Load(handler).status().ToString();
}

TEST(LoaderTest, ForInAcceptsAnInlineArray) {
  auto definition = MustLoad(Doc(R"(do:
  - loop:
      for:
        in: [{a: 1}, {a: '${ .x }'}]
      do:
        - a:
            wait: PT1S
)"));
  EXPECT_EQ(std::get<ForBody>(definition->do_[0].body).in,
            Json::parse(R"([{"a":1},{"a":"${ .x }"}])"));
}

TEST(LoaderTest, ToolExistenceIsCheckedWhenTheCatalogIsGiven) {
  LoadOptions options;
  options.tool_exists = [](std::string_view name) { return name == "crm.lookup"; };
  EXPECT_TRUE(Load(Doc("do:\n  - a:\n      call: crm.lookup\n"), options).ok());
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: crm.bill\n"),
                      {"test.yaml:8:13: /do/0/a/call: unknown function 'crm.bill' (expected "
                       "http, mcp, agent, a use.functions name or a registered tool)"},
                      options));
  // Without a catalog every name is accepted.
  EXPECT_TRUE(Load(Doc("do:\n  - a:\n      call: crm.bill\n")).ok());
}

TEST(LoaderTest, SetAsARuntimeExpression) {
  auto definition = MustLoad(Doc("do:\n  - a:\n      set: ${ .x }\n"));
  EXPECT_EQ(std::get<SetBody>(definition->do_[0].body).value, "${ .x }");
}

TEST(LoaderTest, TaskMetadataAndDocumentTagsAreKeptInTheCanonicalForm) {
  auto definition = MustLoad(Doc("do:\n  - a:\n      wait: PT1S\n      metadata:\n        k: v\n"));
  EXPECT_NE(definition->canonical.find(R"("metadata":{"k":"v"})"), std::string::npos);
}

TEST(LoaderTest, EvaluateWithTheDefaultsIsAccepted) {
  EXPECT_TRUE(Load(Doc("evaluate:\n  language: jq\n  mode: strict\ndo: []\n")).ok());
}

TEST(LoaderTest, CyclesWithAWayOutAreLegal) {
  // A polling loop: the switch can leave.
  EXPECT_TRUE(Load(Doc(R"(do:
  - poll:
      call: status.get
  - decide:
      switch:
        - done:
            when: .done
            then: end
        - again:
            then: pause
  - pause:
      wait: PT10S
      then: poll
)"))
                  .ok());
  // Conditional task on the cycle.
  EXPECT_TRUE(Load(Doc(R"(do:
  - a:
      set: {x: 1}
  - b:
      if: .x
      set: {y: 1}
      then: a
)"))
                  .ok());
  // A set whose value is an expression may fail.
  EXPECT_TRUE(Load(Doc("do:\n  - a:\n      set: {x: '${ .x + 1 }'}\n      then: a\n")).ok());
}

TEST(LoaderTest, FlowDirectivesExitAndContinue) {
  auto definition = MustLoad(Doc(R"(do:
  - a:
      do:
        - b:
            set: {x: 1}
            then: exit
        - c:
            set: {x: 2}
            then: continue
)"));
  const TaskList& inner = std::get<DoBody>(definition->do_[0].body).tasks;
  EXPECT_EQ(inner[0].then.kind, FlowDirective::Kind::kExit);
  EXPECT_EQ(inner[1].then.kind, FlowDirective::Kind::kContinue);
}

TEST(LoaderTest, EscapesTaskNamesInPaths) {
  auto definition = MustLoad(Doc("do:\n  - a/b~c:\n      wait: PT1S\n"));
  EXPECT_EQ(definition->do_[0].path, "/do/0/a~1b~0c");
  EXPECT_EQ(definition->do_[0].name, "a/b~c");
}

TEST(LoaderTest, HttpEndpointAsAString) {
  auto definition = MustLoad(
      Doc("do:\n  - a:\n      call: http\n      with:\n        method: get\n        endpoint: "
          "https://x.example/{id}\n        output: response\n        redirect: true\n"));
  EXPECT_EQ(std::get<CallBody>(definition->do_[0].body).with.at("redirect"), true);
}

}  // namespace
}  // namespace cairn::engine
