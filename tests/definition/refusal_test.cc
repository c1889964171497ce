// Everything outside the subset is refused by name, with its line, column and path; wrong
// shapes and types say what was expected.
#include <gtest/gtest.h>

#include <string>

#include "engine/definition/definition.h"
#include "tests/definition/definition_test_util.h"

namespace cairn::engine {
namespace {

using testing::Doc;
using testing::Load;
using testing::Refused;

TEST(RefusalTest, UnsupportedTaskTypes) {
  EXPECT_TRUE(Refused(Doc("do:\n  - f:\n      fork:\n        branches: []\n"),
                      {"test.yaml:8:7: /do/0/f/fork: `fork` tasks are not supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - e:\n      emit:\n        event: {with: {type: t}}\n"),
                      {"test.yaml:8:7: /do/0/e/emit: `emit` tasks are not supported"}));
}

TEST(RefusalTest, UnsupportedRunProcesses) {
  EXPECT_TRUE(Refused(Doc("do:\n  - r:\n      run:\n        container:\n          image: x\n"),
                      {"test.yaml:9:9: /do/0/r/run/container: `run.container` is not "
                       "supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - r:\n      run:\n        script: {language: js, code: x}\n"),
                      {"test.yaml:9:9: /do/0/r/run/script: `run.script` is not supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - r:\n      run:\n        workflow: {namespace: a, name: b, "
                          "version: '1.0.0'}\n"),
                      {"/do/0/r/run/workflow: `run.workflow` is not supported yet"}));
}

TEST(RefusalTest, UnsupportedCalls) {
  for (std::string_view name : {"openapi", "asyncapi", "grpc", "a2a"}) {
    std::string text = Doc("do:\n  - c:\n      call: " + std::string(name) + "\n      with: {}\n");
    EXPECT_TRUE(Refused(text, {"test.yaml:8:13: /do/0/c/call: `call: " + std::string(name) +
                               "` is not supported yet"}));
  }
  EXPECT_TRUE(Refused(Doc("do:\n  - c:\n      call: log:0.5.2@global\n"),
                      {"/do/0/c/call", "catalogs are not supported"}));
}

TEST(AgentCallTest, LoadsItsWithIntoBoundsAndTemplates) {
  auto definition = testing::MustLoad(
      Doc("do:\n  - pick:\n      call: agent\n      with:\n        goal: Pick a plan\n"
          "        options: [starter, team]\n        context: ${ .account }\n"
          "        tools: [crm.get]\n        max_steps: 3\n        timeout: PT20S\n"
          "        budget: {tokens: 5000, cost: 0.25}\n        agent: planner\n"),
      LoadOptions{[](std::string_view name) { return name == "crm.get"; }});
  const auto& call = std::get<CallBody>(definition->do_.at(0).body);
  EXPECT_EQ(call.kind, CallBody::Kind::kAgent);
  EXPECT_EQ(call.agent.goal, Json("Pick a plan"));
  EXPECT_EQ(call.agent.options, Json::parse(R"(["starter", "team"])"));
  EXPECT_EQ(call.agent.context, Json("${ .account }"));
  EXPECT_EQ(call.agent.tools, std::vector<std::string>{"crm.get"});
  EXPECT_EQ(call.agent.max_steps, 3u);
  EXPECT_EQ(call.agent.timeout_ms, 20'000u);
  EXPECT_EQ(call.agent.budget_tokens, 5000u);
  EXPECT_EQ(call.agent.budget_cost_micros, 250'000);
  EXPECT_EQ(call.agent.agent, "planner");
}

TEST(AgentCallTest, RefusesBadWithByField) {
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: agent\n"),
                      {"/do/0/a/with: `call: agent` needs `with`"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: agent\n      with: {goal: g}\n"),
                      {"/do/0/a/with", "options"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: agent\n      with: {goal: g, options: []}\n"),
                      {"/do/0/a/with/options: expected 1 to 64 options, got 0"}));
  EXPECT_TRUE(
      Refused(Doc("do:\n  - a:\n      call: agent\n      with: {goal: g, options: [x, 2]}\n"),
              {"/do/0/a/with/options/1: an option must be a string"}));
  EXPECT_TRUE(Refused(
      Doc("do:\n  - a:\n      call: agent\n      with: {goal: g, options: [x], max_steps: 99}\n"),
      {"/do/0/a/with/max_steps: expected an integer from 1 to 32, got"}));
  EXPECT_TRUE(Refused(
      Doc("do:\n  - a:\n      call: agent\n      with: {goal: g, options: [x], max_steps: -1}\n"),
      {"/do/0/a/with/max_steps: expected an integer from 1 to 32, got"}));
  EXPECT_TRUE(Refused(
      Doc("do:\n  - a:\n      call: agent\n      with: {goal: g, options: [x], tools: [nope]}\n"),
      {"/do/0/a/with/tools/0: unknown tool 'nope'"},
      LoadOptions{[](std::string_view) { return false; }}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: agent\n      with: {goal: g, options: [x], "
                          "budget: {cost: -1}}\n"),
                      {"/do/0/a/with/budget/cost: expected a positive amount of money"}));
  EXPECT_TRUE(Refused(
      Doc("do:\n  - a:\n      call: agent\n      with: {goal: g, options: [x], model: m}\n"),
      {"/do/0/a/with", "model"}));
}

TEST(RefusalTest, UnsupportedTopLevelAndUse) {
  EXPECT_TRUE(Refused(Doc("schedule:\n  every: PT1H\ndo: []\n"),
                      {"test.yaml:6:1: /schedule: `schedule` is not supported"}));
  EXPECT_TRUE(Refused(Doc("use:\n  secrets: [a]\ndo: []\n"),
                      {"test.yaml:7:3: /use/secrets: use.secrets is not supported"}));
  EXPECT_TRUE(Refused(Doc("use:\n  authentications: {}\ndo: []\n"),
                      {"/use/authentications: use.authentications is not supported"}));
  EXPECT_TRUE(Refused(Doc("use:\n  extensions: []\ndo: []\n"),
                      {"/use/extensions: use.extensions is not supported"}));
  EXPECT_TRUE(Refused(Doc("use:\n  catalogs: {}\ndo: []\n"),
                      {"/use/catalogs: use.catalogs is not supported"}));
  EXPECT_TRUE(Refused(Doc("evaluate:\n  mode: loose\ndo: []\n"),
                      {"test.yaml:7:9: /evaluate/mode: evaluate.mode 'loose' is not supported"}));
  EXPECT_TRUE(Refused(Doc("evaluate:\n  language: js\ndo: []\n"),
                      {"/evaluate/language: evaluate.language 'js' is not supported"}));
}

TEST(RefusalTest, UnsupportedListenAndCatchFeatures) {
  EXPECT_TRUE(Refused(Doc("do:\n  - l:\n      listen:\n        to:\n          any: []\n"
                          "          until: .done\n"),
                      {"test.yaml:11:11: /do/0/l/listen/to/until: listen.to.until is not "
                       "supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - l:\n      listen:\n        to:\n          one: {with: {type: "
                          "t}}\n      foreach:\n        do: []\n"),
                      {"test.yaml:11:7: /do/0/l/foreach: listen `foreach` is not supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - l:\n      listen:\n        to:\n          one:\n            "
                          "with: {type: t}\n            correlate: {}\n"),
                      {"/do/0/l/listen/to/one/correlate: event correlation (correlate) is not "
                       "supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - t:\n      try: []\n      catch:\n        then: end\n"),
                      {"test.yaml:10:9: /do/0/t/catch/then: catch.then is not supported yet"}));
}

TEST(RefusalTest, ExternalSchemasSecretsAndExpressionDurations) {
  EXPECT_TRUE(Refused(Doc("input:\n  schema:\n    format: json\n    resource:\n      endpoint: "
                          "https://x/s.json\ndo: []\n"),
                      {"test.yaml:9:5: /input/schema/resource: external schemas "
                       "(schema.resource) are not supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set:\n        token: ${ $secrets.api }\n"),
                      {"test.yaml:9:16: /do/0/a/set/token",
                       "uses $secrets, which is not "
                       "supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: ${ .delay }\n"),
                      {"test.yaml:8:13: /do/0/w/wait: a duration given as a runtime expression "
                       "is not supported"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: http\n      with:\n        method: get\n"
                          "        endpoint:\n          uri: https://x\n          "
                          "authentication:\n            use: petStore\n"),
                      {"/do/0/a/with/endpoint/authentication/use: authentication by name (use) "
                       "is not supported"}));
}

TEST(RefusalTest, UnknownPropertiesListWhatIsExpected) {
  EXPECT_TRUE(Refused(Doc("do:\n  - s:\n      set: {a: 1}\n      foo: 2\n"),
                      {"test.yaml:9:7: /do/0/s/foo: unknown property 'foo' in set task "
                       "(expected one of: export, if, input, metadata, output, set, then, "
                       "timeout)"}));
  EXPECT_TRUE(Refused(Doc("do: []\nfoo: 1\n"),
                      {"test.yaml:7:1: /foo: unknown property 'foo' in the workflow (expected "
                       "one of: do, document, evaluate, input, output, timeout, use)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - t:\n      try: []\n      catch:\n        bogus: 1\n"),
                      {"/do/0/t/catch/bogus: unknown property 'bogus' in catch"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: http\n      with:\n        method: get\n"
                          "        endpoint: https://x\n        body2: {}\n"),
                      {"/do/0/a/with/body2: unknown property 'body2' in an http call's `with`"}));
  EXPECT_TRUE(
      Refused("document:\n  dsl: '1.0.0'\n  namespace: a\n  name: b\n  version: '1.0.0'\n"
              "  author: me\ndo: []\n",
              {"test.yaml:6:3: /document/author: unknown property 'author' in "
               "document"}));
}

TEST(RefusalTest, TaskEntryShapes) {
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {x: 1}\n    b:\n      set: {x: 2}\n"),
                      {"test.yaml:7:5: /do/0: a task list entry must be a mapping with exactly "
                       "one key, the task's name (got 2 keys)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - just-a-string\n"),
                      {"/do/0: a task list entry must be a mapping with exactly one key, the "
                       "task's name (got a string)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      then: end\n"),
                      {"test.yaml:7:5: /do/0/a: task 'a' has no task type (expected one of: "
                       "call, do, for, listen, raise, run, set, switch, try, wait)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      sett: {x: 1}\n"),
                      {"/do/0/a: task 'a' has no task type",
                       "test.yaml:8:7: /do/0/a/sett: unknown property 'sett' in task 'a'"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {x: 1}\n      wait: PT1S\n"),
                      {"test.yaml:7:5: /do/0/a: task 'a' has several task types: set, wait "
                       "(expected exactly one)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a: 3\n"), {"/do/0/a: expected a mapping, got an integer"}));
  EXPECT_TRUE(Refused(Doc("do: {a: 1}\n"), {"test.yaml:6:5: /do: expected a sequence, got a "
                                            "mapping"}));
}

TEST(RefusalTest, WrongTypesSayWhatWasExpected) {
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: [http]\n"),
                      {"test.yaml:8:13: /do/0/a/call: expected a string, got a sequence"}));
  EXPECT_TRUE(
      Refused("document:\n  dsl: 1.0\n  namespace: a\n  name: b\n  version: '1.0.0'\n"
              "do: []\n",
              {"test.yaml:2:8: /document/dsl: expected a string, got a number (quote "
               "it: '1.0')"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      run:\n        shell:\n          command: ls\n"
                          "        await: 'no'\n"),
                      {"/do/0/a/run/await: expected a boolean, got a string"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      raise:\n        error:\n          type: t\n"
                          "          status: '500'\n"),
                      {"/do/0/a/raise/error/status: expected an integer or a runtime "
                       "expression, got a string"}));
}

TEST(RefusalTest, HeaderChecks) {
  EXPECT_TRUE(
      Refused("document:\n  dsl: '1.1.0'\n  namespace: a\n  name: b\n  version: "
              "'1.0.0'\ndo: []\n",
              {"test.yaml:2:8: /document/dsl: dsl '1.1.0' is not supported (expected "
               "1.0.x"}));
  EXPECT_TRUE(
      Refused("document:\n  dsl: '1.0.0'\n  namespace: a_b\n  name: -b\n  version: "
              "'1.0'\ndo: []\n",
              {"/document/namespace: invalid namespace 'a_b'", "/document/name: invalid name '-b'",
               "/document/version: version '1.0' is not a semantic version"}));
  EXPECT_TRUE(Refused("document:\n  dsl: '1.0.0'\ndo: []\n",
                      {"test.yaml:2:3: /document: document is missing its 'namespace' property",
                       "document is missing its 'name' property"}));
  EXPECT_TRUE(Refused("document: {dsl: '1.0.0', namespace: a, name: b, version: '1.0.0'}\n",
                      {"test.yaml:1:1: the workflow is missing its 'do' property"}));
  EXPECT_TRUE(Refused("- a\n- b\n", {"test.yaml:1:1: expected a mapping, got a sequence"}));
}

TEST(RefusalTest, DuplicateTaskNamesInOneList) {
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      wait: PT1S\n  - a:\n      wait: PT2S\n"),
                      {"test.yaml:9:5: /do/1/a: duplicate task name 'a' in this list (first at "
                       "line 7, column 5)"}));
  // The same name in different lists is fine.
  EXPECT_TRUE(Load(Doc("do:\n  - a:\n      do:\n        - a:\n            wait: PT1S\n")).ok());
}

TEST(RefusalTest, UnknownThenTargetListsTheSiblings) {
  EXPECT_TRUE(
      Refused(Doc("do:\n  - a:\n      wait: PT1S\n      then: c\n  - b:\n      wait: PT1S\n"),
              {"test.yaml:9:13: /do/0/a/then: unknown task 'c' in `then` (expected "
               "continue, exit, end or a task of the same list: a, b)"}));
  // A target at another depth is not visible.
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      do:\n        - b:\n            wait: PT1S\n"
                          "            then: c\n  - c:\n      wait: PT1S\n"),
                      {"/do/0/a/do/0/b/then: unknown task 'c'"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - s:\n      switch:\n        - x:\n            then: nowhere\n"),
                      {"/do/0/s/switch/0/x/then: unknown task 'nowhere'"}));
}

TEST(RefusalTest, UnconditionalThenCycles) {
  EXPECT_TRUE(Refused(Doc(R"(do:
  - a:
      set: {x: 1}
  - b:
      wait: PT1S
      then: a
  - c:
      set: {y: 1}
)"),
                      {"test.yaml:7:5: /do/0/a: tasks a -> b -> a loop forever: none of them can "
                       "fail, branch or leave the loop"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - self:\n      set: {x: 1}\n      then: self\n"),
                      {"tasks self -> self loop forever"}));
  // Inside a nested list, and through an inert `do`.
  EXPECT_TRUE(Refused(Doc(R"(do:
  - outer:
      do:
        - a:
            do:
              - inner:
                  set: {x: 1}
        - b:
            wait: PT1S
            then: a
)"),
                      {"test.yaml:9:11: /do/0/outer/do/0/a: tasks a -> b -> a loop forever"}));
  // A switch with only a default case cannot branch.
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      set: {x: 1}\n  - s:\n      switch:\n        - "
                          "always:\n            then: a\n"),
                      {"test.yaml:7:5: /do/0/a: tasks a -> s -> a loop forever"}));
  // `then: end` inside the `do` leaves the loop.
  EXPECT_TRUE(Load(Doc(R"(do:
  - a:
      do:
        - inner:
            set: {x: 1}
            then: end
      then: a
)"))
                  .ok());
}

TEST(RefusalTest, NamedReferencesMustExist) {
  EXPECT_TRUE(Refused(Doc("use:\n  timeouts:\n    t1: {after: PT1S}\ndo:\n  - a:\n      wait: "
                          "PT1S\n      timeout: t2\n"),
                      {"/do/0/a/timeout: unknown timeout 't2' (expected one of the "
                       "use.timeouts: t1)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - t:\n      try: []\n      catch:\n        retry: again\n"),
                      {"/do/0/t/catch/retry: unknown retry policy 'again' (no use.retries are "
                       "defined)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - r:\n      raise:\n        error: oops\n"),
                      {"test.yaml:9:16: /do/0/r/raise/error: unknown error 'oops' (no "
                       "use.errors are defined)"}));
}

TEST(RefusalTest, NamedErrorExpressionsAreCheckedWhereTheyAreUsed) {
  std::string text = Doc(R"(use:
  errors:
    e:
      type: t
      status: 400
      detail: ${ $pet.name }
do:
  - loop:
      for:
        each: pet
        in: .pets
      do:
        - r:
            raise:
              error: e
  - outside:
      raise:
        error: e
)");
  auto result = Load(text);
  ASSERT_FALSE(result.ok());
  // Reported once, at the error's definition, for the use outside the loop.
  EXPECT_TRUE(cairn::testing::HasSubstr(result.status().message(),
                                        "test.yaml:11:15: /use/errors/e/detail: invalid "
                                        "expression `$pet.name`"));
  EXPECT_EQ(std::count(result.status().message().begin(), result.status().message().end(), '\n'),
            0);
}

TEST(RefusalTest, FunctionsMustBeCallOrRunAndCannotCallFunctions) {
  EXPECT_TRUE(Refused(Doc("use:\n  functions:\n    f:\n      set: {x: 1}\ndo: []\n"),
                      {"test.yaml:8:5: /use/functions/f: a use.functions entry must be a call or "
                       "run task, got a set task"}));
  EXPECT_TRUE(Refused(Doc("use:\n  functions:\n    f:\n      call: g\n    g:\n      call: "
                          "tool.x\ndo: []\n"),
                      {"/use/functions/f/call: a use.functions entry cannot call another "
                       "function ('g')"}));
  EXPECT_TRUE(Refused(Doc("use:\n  functions:\n    http:\n      call: tool.x\ndo: []\n"),
                      {"/use/functions/http: a use.functions entry cannot be named 'http'"}));
  EXPECT_TRUE(
      Refused(Doc("use:\n  functions:\n    f:\n      call: tool.x\n      then: g\ndo: []\n"),
              {"/use/functions/f/then: `then: g` cannot go to a task"}));
}

TEST(RefusalTest, BadDurationsNameTheText) {
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: P1Y\n"),
                      {"test.yaml:8:13: /do/0/w/wait: invalid ISO 8601 duration 'P1Y': years and "
                       "months have no fixed length"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: 10s\n"),
                      {"/do/0/w/wait: invalid ISO 8601 duration '10s'"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: {seconds: -1}\n"),
                      {"/do/0/w/wait: duration property 'seconds' must be a non-negative "
                       "integer, got -1"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: P400D\n"),
                      {"duration 'P400D' is longer than the maximum, 366d"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - w:\n      wait: 30\n"),
                      {"/do/0/w/wait: expected a duration (ISO 8601 text or {days, hours, "
                       "minutes, seconds, milliseconds}), got an integer"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - t:\n      try: []\n      catch:\n        retry:\n          "
                          "delay: P8D\n"),
                      {"/do/0/t/catch/retry/delay: duration 'P8D' is longer than the maximum, "
                       "7d"}));
  EXPECT_TRUE(Refused(Doc("timeout:\n  after: PT0S\ndo: []\n"),
                      {"/timeout/after: a timeout must be longer than zero"}));
}

TEST(RefusalTest, RetryPolicyChecks) {
  EXPECT_TRUE(Refused(Doc(R"(do:
  - t:
      try: []
      catch:
        retry:
          backoff: {linear: {}, constant: {}}
          limit:
            attempt:
              count: 5000
          jitter:
            from: PT2S
            to: PT1S
)"),
                      {"/do/0/t/catch/retry/backoff: backoff needs exactly one of constant, "
                       "linear, exponential",
                       "/do/0/t/catch/retry/limit/attempt/count: expected an integer from 0 to "
                       "1000, got 5000",
                       "/do/0/t/catch/retry/jitter: jitter.from is longer than jitter.to"}));
}

TEST(RefusalTest, CatchAndSwitchChecks) {
  EXPECT_TRUE(Refused(Doc("do:\n  - t:\n      try: []\n      catch:\n        errors:\n          "
                          "with:\n            status: ${ .s }\n"),
                      {"/do/0/t/catch/errors/with/status: expected an integer, got a string"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - t:\n      try: []\n      catch:\n        errors:\n          "
                          "with:\n            type: ${ .t }\n"),
                      {"catch.errors.with takes literal values"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - t:\n      try: []\n      catch:\n        as: input\n"),
                      {"/do/0/t/catch/as: 'input' would hide the runtime's $input"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - s:\n      switch:\n        - a:\n            then: end\n"
                          "        - b:\n            then: exit\n"),
                      {"test.yaml:11:11: /do/0/s/switch/1/b: a switch has at most one default "
                       "case (without `when`); 'a' is one already"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - s:\n      switch: []\n"),
                      {"/do/0/s/switch: a switch needs at least one case"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - t:\n      try: []\n"),
                      {"/do/0/t: try task is missing its 'catch' property"}));
}

TEST(RefusalTest, CallWithChecks) {
  EXPECT_TRUE(
      Refused(Doc("do:\n  - a:\n      call: http\n"), {"/do/0/a: `call: http` needs `with`"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: http\n      with:\n        endpoint: x\n"),
                      {"/do/0/a/with: an http call's `with` is missing its 'method' property"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: http\n      with:\n        method: get\n"
                          "        endpoint: x\n        output: json\n"),
                      {"unknown http output 'json' (expected raw, content or response)"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: mcp\n      with:\n        method: tools/list\n"
                          "        transport: {}\n"),
                      {"/do/0/a/with/transport: an mcp transport needs exactly one of http, "
                       "stdio"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: tool.x\n      with: [1]\n"),
                      {"/do/0/a/with: expected a mapping, got a sequence"}));
}

TEST(RefusalTest, SchemasGoThroughTheValidatorsChecks) {
  EXPECT_TRUE(Load(Doc("input:\n  schema:\n    document:\n      type: object\ndo: []\n")).ok());
  EXPECT_TRUE(Refused(Doc("input:\n  schema:\n    format: json\n    document:\n      type: "
                          "object\n      patternProperties: {}\ndo: []\n"),
                      {"test.yaml:10:7: /input/schema/document: invalid schema:"}));
  EXPECT_TRUE(Refused(Doc("input:\n  schema:\n    format: avro\n    document: {}\ndo: []\n"),
                      {"/input/schema/format: schema format 'avro' is not supported (expected "
                       "json)"}));
}

TEST(RefusalTest, NamesThatAreNotNames) {
  EXPECT_TRUE(Refused(Doc("do:\n  - a:\n      call: ${ .tool }\n"),
                      {"/do/0/a/call: the function to call cannot be a runtime expression"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - l:\n      for:\n        each: if\n        in: .x\n"
                          "      do: []\n"),
                      {"/do/0/l/for/each: 'if' is a jq keyword and cannot name a variable"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - l:\n      for:\n        each: 1x\n        in: .x\n"
                          "      do: []\n"),
                      {"/do/0/l/for/each: '1x' is not a valid variable name"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - l:\n      for:\n        each: v\n        at: v\n"
                          "        in: .x\n      do: []\n"),
                      {"/do/0/l/for: for.each and for.at are both 'v'"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - r:\n      run:\n        shell:\n          command: ls\n"
                          "          arguments: ${ .args }\n"),
                      {"/do/0/r/run/shell/arguments: expected a sequence, got a string"}));
  EXPECT_TRUE(Refused(Doc("do:\n  - r:\n      run:\n        shell:\n          command: ls\n"
                          "          environment: {A: [1]}\n"),
                      {"/do/0/r/run/shell/environment/A: expected a string, number or boolean, "
                       "got a sequence"}));
}

TEST(RefusalTest, ErrorsAreCollectedInDocumentOrderUpToTwenty) {
  std::string text = Doc("do:\n");
  for (int i = 0; i < 30; ++i) {
    text += "  - t" + std::to_string(i) + ":\n      wait: bad" + std::to_string(i) + "\n";
  }
  auto result = Load(text);
  ASSERT_FALSE(result.ok());
  const std::string& message = result.status().message();
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 20);
  EXPECT_EQ(message.find("test.yaml:8:13: /do/0/t0/wait"), 0u);
  EXPECT_LT(message.find("'bad1'"), message.find("'bad2'"));
  EXPECT_NE(message.find("test.yaml: more errors not shown (stopped after 20)"), std::string::npos);
  EXPECT_EQ(message.find("'bad20'"), std::string::npos);
}

TEST(RefusalTest, SeveralErrorsInOneDocumentAreAllReported) {
  auto result = Load(Doc(R"(do:
  - a:
      wait: nope
  - b:
      set: {x: '${ (( }'}
  - c:
      call: openapi
)"));
  ASSERT_FALSE(result.ok());
  const std::string& message = result.status().message();
  EXPECT_NE(message.find("test.yaml:8:13: /do/0/a/wait"), std::string::npos);
  EXPECT_NE(message.find("test.yaml:10:16: /do/1/b/set/x"), std::string::npos);
  EXPECT_NE(message.find("test.yaml:12:13: /do/2/c/call"), std::string::npos);
  EXPECT_LT(message.find("/do/0/a"), message.find("/do/1/b"));
  EXPECT_LT(message.find("/do/1/b"), message.find("/do/2/c"));
}

}  // namespace
}  // namespace cairn::engine
