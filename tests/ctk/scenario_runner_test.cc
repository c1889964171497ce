// The runner checks itself: it fails what it must fail, skips only refusals of unsupported
// features, serves the services as the real ones answer, and never leaves this machine.
#include "tests/ctk/scenario_runner.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/assertions.h"

namespace cairn::ctk {
namespace {

using cairn::testing::HasSubstr;
using cairn::testing::Must;
using Kind = ScenarioOutcome::Kind;

// Runs the one scenario of a feature file's text.
ScenarioOutcome RunOne(const std::string& text) {
  Feature feature = Must(ParseFeature(text, "self.feature"));
  EXPECT_EQ(feature.scenarios.size(), 1u);
  return RunScenario(feature, feature.scenarios.at(0));
}

// A feature whose workflow is `do_yaml` (the tasks, indented for `do:`) and whose steps
// after "When the workflow is executed" are `then`.
std::string FeatureText(const std::string& do_yaml, const std::string& then,
                        const std::string& input = "{}") {
  return "Feature: Self\n"
         "  Scenario: One\n"
         "    Given a workflow with definition:\n"
         "    \"\"\"yaml\n"
         "    document: {dsl: '1.0.3', namespace: default, name: self, version: '1.0.0'}\n"
         "    do:\n" +
         do_yaml +
         "    \"\"\"\n"
         "    And given the workflow input is:\n"
         "    \"\"\"yaml\n    " +
         input +
         "\n    \"\"\"\n"
         "    When the workflow is executed\n" +
         then;
}

constexpr const char* kSetColors =
    "      - setRed:\n"
    "          set:\n"
    "            colors: ['red']\n"
    "      - setGreen:\n"
    "          set:\n"
    "            colors: '${ .colors + [\"green\"] }'\n";

TEST(CtkRunner, PassesWhatHolds) {
  ScenarioOutcome outcome =
      RunOne(FeatureText(kSetColors,
                         "    Then the workflow should complete with output:\n"
                         "    \"\"\"yaml\n"
                         "    colors: [red, green]\n"
                         "    \"\"\"\n"
                         "    And the workflow output should have a 'colors' "
                         "property containing 2 items\n"
                         "    And setRed should run first\n"
                         "    And setGreen should run last\n"
                         "    And setGreen should run after setRed\n"
                         "    And setRed should run before setGreen\n"
                         "    And setGreen should complete\n"));
  EXPECT_EQ(outcome.kind, Kind::kPassed) << outcome.message;
}

TEST(CtkRunner, FailsWhatDoesNotHoldNamingTheStepAndShowingTheEvents) {
  ScenarioOutcome outcome =
      RunOne(FeatureText(kSetColors,
                         "    Then the workflow should complete with output:\n"
                         "    \"\"\"yaml\n"
                         "    colors: [green, red]\n"
                         "    \"\"\"\n"));
  EXPECT_EQ(outcome.kind, Kind::kFailed);
  EXPECT_TRUE(HasSubstr(outcome.message,
                        "self.feature:19: Then the workflow should complete with output:\n"));
  EXPECT_TRUE(HasSubstr(outcome.message, "expected: {\"colors\":[\"green\",\"red\"]}"));
  EXPECT_TRUE(HasSubstr(outcome.message, "task_routed /do/1/setGreen [setGreen]"));

  for (const char* then :
       {"    Then setGreen should run first\n", "    Then setRed should run after setGreen\n",
        "    Then the workflow should fault\n",
        "    Then the workflow output should have properties 'colors', 'x.y'\n",
        "    Then the workflow output should have a 'colors' property "
        "containing 3 items\n",
        "    Then setGreen should fault\n"}) {
    SCOPED_TRACE(then);
    EXPECT_EQ(RunOne(FeatureText(kSetColors, then)).kind, Kind::kFailed);
  }
}

TEST(CtkRunner, ABadDocStringFailsWithItsPositionInTheFeatureFile) {
  ScenarioOutcome outcome =
      RunOne(FeatureText(kSetColors, "    Then the workflow should complete\n", "a: [1,"));
  EXPECT_EQ(outcome.kind, Kind::kFailed);
  EXPECT_TRUE(HasSubstr(outcome.message, "self.feature:14: And given the workflow input is:\n"));
  EXPECT_TRUE(HasSubstr(outcome.message, "self.feature:17:1: end of sequence flow"));
}

TEST(CtkRunner, AnUndefinedStepFailsBeforeAnythingRuns) {
  ScenarioOutcome outcome = RunOne(FeatureText(kSetColors, "    Then the moon should be full\n"));
  EXPECT_EQ(outcome.kind, Kind::kFailed);
  EXPECT_TRUE(
      HasSubstr(outcome.message, "self.feature:19: Then the moon should be full\nundefined step"));
}

TEST(CtkRunner, SkipsOnlyRefusalsOfUnsupportedFeatures) {
  ScenarioOutcome fork =
      RunOne(FeatureText("      - both:\n"
                         "          fork:\n"
                         "            branches: []\n",
                         "    Then the workflow should complete\n"));
  EXPECT_EQ(fork.kind, Kind::kSkipped) << fork.message;
  EXPECT_EQ(fork.short_reason, "`fork` tasks are not supported");
  EXPECT_TRUE(HasSubstr(fork.message, "outside cairn's subset"));
  // Positioned in the feature file, not in the doc string.
  EXPECT_TRUE(HasSubstr(fork.message, "self.feature:8:11: /do/0/both/fork"));

  // A mistake in the definition is not a feature cairn lacks.
  ScenarioOutcome typo =
      RunOne(FeatureText("      - setRed:\n"
                         "          sett: {a: 1}\n",
                         "    Then the workflow should complete\n"));
  EXPECT_EQ(typo.kind, Kind::kFailed) << typo.message;
  EXPECT_TRUE(HasSubstr(typo.message, "the definition was refused"));
}

TEST(CtkRunner, UnsupportedFeatureReasonNeedsEveryProblemToBeUnsupported) {
  EXPECT_EQ(UnsupportedFeatureReason(Status::InvalidArgument(
                "a.feature:9:11: /do/0/x/fork: `fork` tasks are not supported (supported: do)\n"
                "a.feature:19:11: /do/1/y/call: `call: openapi` is not supported yet (x)")),
            "`call: openapi` is not supported yet; `fork` tasks are not supported");
  EXPECT_EQ(UnsupportedFeatureReason(Status::InvalidArgument(
                "a.feature:9:11: /do/0/x/fork: `fork` tasks are not supported\n"
                "a.feature:10:1: /do/1/y: unknown field 'sett'")),
            "");
  EXPECT_EQ(UnsupportedFeatureReason(Status::Internal("x is not supported")), "");
}

TEST(CtkRunner, BasicAuthenticationIsCheckedByTheStub) {
  const std::string login =
      "      - login:\n"
      "          call: http\n"
      "          with:\n"
      "            method: get\n"
      "            endpoint:\n"
      "              uri: https://httpbin.org/basic-auth/{username}/{password}\n"
      "              authentication:\n"
      "                basic:\n"
      "                  username: ${ .username }\n"
      "                  password: wrong\n";
  ScenarioOutcome outcome = RunOne(FeatureText(login,
                                               "    Then the workflow should fault with error:\n"
                                               "    \"\"\"yaml\n"
                                               "    status: 401\n"
                                               "    \"\"\"\n",
                                               "{username: u, password: p}"));
  EXPECT_EQ(outcome.kind, Kind::kPassed) << outcome.message;
}

TEST(CtkRunner, RefusesToCallHostsItDoesNotServe) {
  ScenarioOutcome outcome =
      RunOne(FeatureText("      - get:\n"
                         "          call: http\n"
                         "          with:\n"
                         "            method: get\n"
                         "            endpoint: https://example.com/x\n",
                         "    Then the workflow should complete\n"));
  EXPECT_EQ(outcome.kind, Kind::kFailed);
  EXPECT_TRUE(HasSubstr(outcome.message, "example.com:443"));
  EXPECT_TRUE(HasSubstr(outcome.message, "refusing to leave this machine"));
  // The definition step failed: nothing was executed.
  EXPECT_FALSE(HasSubstr(outcome.message, "events of run"));
}

}  // namespace
}  // namespace cairn::ctk
