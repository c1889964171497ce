// The Gherkin subset parser: the structure the CTK uses, doc strings, and refusals.
#include "tests/ctk/gherkin.h"

#include <gtest/gtest.h>

#include "tests/support/assertions.h"

namespace cairn::ctk {
namespace {

using cairn::testing::IsError;
using cairn::testing::Must;

constexpr const char* kFeature = R"(# a comment before the feature
@conformance
Feature: Composite Task
  As an implementer of the workflow DSL
  I want things

  # a comment between scenarios
  Scenario: Task With Sub Tasks
    Given a workflow with definition:
    """yaml
    document:
      dsl: '1.0.3'

    do: []
    """
    And given the workflow input is:
      """
      a: 1
      """
    When the workflow is executed
    Then the workflow should complete
    And setRed should run first

  @slow @other
  Example: Second
    * the workflow is executed
    But nothing else)";

TEST(Gherkin, ParsesFeaturesScenariosStepsAndDocStrings) {
  Feature feature = Must(ParseFeature(kFeature, "do.feature"));
  EXPECT_EQ(feature.source, "do.feature");
  EXPECT_EQ(feature.name, "Composite Task");
  EXPECT_EQ(feature.line, 3);
  EXPECT_EQ(feature.tags, std::vector<std::string>{"@conformance"});
  EXPECT_EQ(feature.description, "As an implementer of the workflow DSL\nI want things");
  ASSERT_EQ(feature.scenarios.size(), 2u);

  const Scenario& first = feature.scenarios[0];
  EXPECT_EQ(first.name, "Task With Sub Tasks");
  EXPECT_EQ(first.line, 8);
  ASSERT_EQ(first.steps.size(), 5u);
  EXPECT_EQ(first.steps[0].keyword, "Given");
  EXPECT_EQ(first.steps[0].text, "a workflow with definition:");
  EXPECT_EQ(first.steps[0].line, 9);
  ASSERT_TRUE(first.steps[0].doc_string.has_value());
  EXPECT_EQ(first.steps[0].doc_string->media_type, "yaml");
  EXPECT_EQ(first.steps[0].doc_string->line, 10);
  EXPECT_EQ(first.steps[0].doc_string->column, 5);
  // In place: the text's lines and columns are the file's.
  EXPECT_EQ(first.steps[0].doc_string->InPlace(),
            std::string(10, '\n') + "    document:\n      dsl: '1.0.3'\n\n    do: []\n");
  // The fence's indentation is removed, deeper indentation and blank lines are kept.
  EXPECT_EQ(first.steps[0].doc_string->content, "document:\n  dsl: '1.0.3'\n\ndo: []");
  EXPECT_EQ(first.steps[1].keyword, "And");
  EXPECT_EQ(first.steps[1].text, "given the workflow input is:");
  ASSERT_TRUE(first.steps[1].doc_string.has_value());
  EXPECT_EQ(first.steps[1].doc_string->media_type, "");
  EXPECT_EQ(first.steps[1].doc_string->content, "a: 1");
  EXPECT_EQ(first.steps[2].text, "the workflow is executed");
  EXPECT_FALSE(first.steps[2].doc_string.has_value());
  EXPECT_EQ(first.steps[4].text, "setRed should run first");

  const Scenario& second = feature.scenarios[1];
  EXPECT_EQ(second.name, "Second");
  EXPECT_EQ(second.tags, (std::vector<std::string>{"@slow", "@other"}));
  ASSERT_EQ(second.steps.size(), 2u);
  EXPECT_EQ(second.steps[0].keyword, "*");
  EXPECT_EQ(second.steps[1].keyword, "But");
  EXPECT_EQ(second.steps[1].text, "nothing else");
}

TEST(Gherkin, BacktickFencesLinesIndentedLessAndEscapedFences) {
  Feature feature =
      Must(ParseFeature("Feature: F\n"
                        "Scenario: S\n"
                        "  Given a text:\r\n"
                        "    ```json\n"
                        "      {\"a\": 1}\n"
                        "  less\n"
                        "    \\`\\`\\`\n"
                        "    ```\n",
                        "f.feature"));
  const DocString& doc = *feature.scenarios.at(0).steps.at(0).doc_string;
  EXPECT_EQ(doc.media_type, "json");
  EXPECT_EQ(doc.content, "  {\"a\": 1}\nless\n```");
}

TEST(Gherkin, RefusesWhatTheSubsetDoesNotHaveWithTheLine) {
  EXPECT_TRUE(IsError(ParseFeature("Feature: F\n  Background:\n", "f.feature").status(),
                      StatusCode::kInvalidArgument, {"f.feature:2:", "`Background`"}));
  EXPECT_TRUE(IsError(ParseFeature("Feature: F\nScenario Outline: O\n", "f.feature").status(),
                      StatusCode::kInvalidArgument, {"f.feature:2:", "`Scenario Outline`"}));
  EXPECT_TRUE(
      IsError(ParseFeature("Feature: F\nScenario: S\n  Given x\n  | a |\n", "f.feature").status(),
              StatusCode::kInvalidArgument, {"f.feature:4:", "data tables"}));
  EXPECT_TRUE(IsError(
      ParseFeature("Feature: F\nScenario: S\n  Given x\n  \"\"\"\n  open\n", "f.feature").status(),
      StatusCode::kInvalidArgument, {"f.feature:4:", "never closed"}));
  EXPECT_TRUE(IsError(ParseFeature("Feature: F\n  Given x\n", "f.feature").status(),
                      StatusCode::kInvalidArgument, {"f.feature:2:", "outside a scenario"}));
  EXPECT_TRUE(IsError(
      ParseFeature("Feature: F\nScenario: S\n  Given x\n  Whenn typo\n", "f.feature").status(),
      StatusCode::kInvalidArgument, {"f.feature:4:", "Whenn typo"}));
  EXPECT_TRUE(IsError(ParseFeature("Feature: F\nFeature: G\n", "f.feature").status(),
                      StatusCode::kInvalidArgument, {"second `Feature:`"}));
  EXPECT_TRUE(IsError(ParseFeature("# only a comment\n", "f.feature").status(),
                      StatusCode::kInvalidArgument, {"no `Feature:`"}));
  EXPECT_TRUE(
      IsError(ParseFeature("Feature: F\nScenario: S\n  \"\"\"\n  \"\"\"\n", "f.feature").status(),
              StatusCode::kInvalidArgument, {"f.feature:3:", "outside a step"}));
}

}  // namespace
}  // namespace cairn::ctk
