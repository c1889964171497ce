// The scripted agent, loaded from an agents file and run through Decide.
#include "agent/scripted_agent.h"

#include <gtest/gtest.h>

#include "agent/config.h"
#include "tests/agent/agent_test_util.h"
#include "tests/support/assertions.h"

namespace cairn::agent {
namespace {

using namespace std::chrono_literals;
using cairn::testing::Must;
using testing::FakeAgentIo;
using testing::MakeRequest;
using testing::Show;

constexpr const char* kPlanner = R"(
default: planner
agents:
  planner:
    kind: scripted
    rules:
      - when: [{path: /context/team_size, gte: 50}]
        option: enterprise
        rationale: Fifty or more.
      - when: [{path: /context/team_size, gte: 10}, {path: /context/plan, eq: starter}]
        option: business
        rationale: Teams of ten or more need shared billing.
        confidence: 0.9
    otherwise: {option: starter, rationale: Small teams start small.}
  strict:
    kind: scripted
    rules:
      - when: [{path: /workflow, eq: "acme/plans:1.0.0"}, {path: /run_id, eq: run-1},
               {path: /task_path, eq: /do/0/choosePlan}, {path: /goal, eq: pick a plan},
               {path: /options/0, eq: starter}]
        option: starter
        rationale: Everything in the document is visible.
  reader:
    kind: scripted
    call_tools:
      - {tool: crm.get_usage, arguments: {account: acme}}
    rules:
      - when: [{path: /tool_results/0/result/seats, gt: 100}]
        option: enterprise
        rationale: The CRM says so.
      - when: [{path: /tool_results/0/error, exists: true}]
        option: starter
        rationale: The CRM failed.
    otherwise: {option: business, rationale: Default.}
  sneaky:
    kind: scripted
    call_tools: [{tool: billing.change_plan}]
    otherwise: {option: starter, rationale: Never reached.}
  wrong:
    kind: scripted
    otherwise: {option: platinum, rationale: Not an option.}
)";

class ScriptedAgentTest : public ::testing::Test {
 protected:
  DecisionOutcome Run(std::string_view agent) {
    std::shared_ptr<Agent> found = registry_->Find(agent);
    EXPECT_NE(found, nullptr) << agent;
    if (found == nullptr) return {};
    EXPECT_EQ(found->kind(), "scripted");
    return Decide(*found, request_, io_, clock_);
  }

  std::shared_ptr<AgentRegistry> registry_ = Must(AgentRegistry::Load(kPlanner, "agents.yaml"));
  DecisionRequest request_ = MakeRequest();
  FakeAgentIo io_;
  ManualClock clock_;
};

TEST_F(ScriptedAgentTest, RulesInOrderThenOtherwise) {
  request_.context = {{"team_size", 12}, {"plan", "starter"}};
  DecisionOutcome outcome = Run("planner");
  ASSERT_EQ(outcome.reason, Reason::kDecided) << Show(outcome);
  EXPECT_EQ(outcome.option, "business");
  EXPECT_EQ(outcome.rationale, "Teams of ten or more need shared billing.");
  EXPECT_EQ(outcome.confidence, 0.9);

  request_.context = {{"team_size", 80}, {"plan", "starter"}};
  EXPECT_EQ(Run("planner").option, "enterprise") << "the first rule that holds wins";
  EXPECT_EQ(Run("planner").confidence, std::nullopt);

  request_.context = {{"team_size", 12}, {"plan", "business"}};
  EXPECT_EQ(Run("planner").option, "starter") << "every condition of a rule must hold";
  request_.context = Json::object();
  EXPECT_EQ(Run("planner").option, "starter");
}

TEST_F(ScriptedAgentTest, OneStepNoTokensKnownZeroCost) {
  request_.limits.max_cost_micros = 1;  // a cost cap: a scripted agent's cost is known
  request_.limits.max_tokens = 1;
  DecisionOutcome outcome = Run("planner");
  ASSERT_EQ(outcome.reason, Reason::kDecided) << Show(outcome);
  EXPECT_EQ(outcome.model, "scripted");
  EXPECT_EQ(outcome.steps_used, 1u);
  EXPECT_EQ(outcome.usage.tokens(), 0u);
  EXPECT_TRUE(outcome.usage.cost_known);
  EXPECT_EQ(outcome.usage.cost_micros, 0);
  EXPECT_EQ(outcome.usage.calls, 1u);
  EXPECT_EQ(outcome.agent, "planner");
  EXPECT_EQ(outcome.response_transcript[0]["scripted"]["answer"]["option"], "business");
  EXPECT_EQ(outcome.request_transcript[0]["scripted"]["document"]["context"]["team_size"], 12);
}

TEST_F(ScriptedAgentTest, TheWholeDocumentIsVisible) {
  DecisionOutcome outcome = Run("strict");
  EXPECT_EQ(outcome.reason, Reason::kDecided) << Show(outcome);
}

TEST_F(ScriptedAgentTest, NoMatchAndNoOtherwiseIsMalformed) {
  request_.run_id = "run-2";
  DecisionOutcome outcome = Run("strict");
  EXPECT_EQ(outcome.reason, Reason::kMalformedAnswer) << Show(outcome);
  EXPECT_EQ(outcome.detail, "scripted agent 'strict': no rule matched and there is no 'otherwise'");
  EXPECT_EQ(outcome.steps_used, 1u);
}

TEST_F(ScriptedAgentTest, ToolResultsFeedTheRules) {
  io_.SetTool("crm.get_usage", [](const Json& arguments, std::chrono::milliseconds) {
    return Result<Json>(Json{{"seats", arguments["account"] == "acme" ? 250 : 1}});
  });
  DecisionOutcome outcome = Run("reader");
  ASSERT_EQ(outcome.reason, Reason::kDecided) << Show(outcome);
  EXPECT_EQ(outcome.option, "enterprise");
  ASSERT_EQ(io_.tool_calls().size(), 1u);
  EXPECT_EQ(io_.tool_calls()[0].arguments, Json::parse(R"({"account": "acme"})"));
  EXPECT_EQ(outcome.request_transcript[0]["tool_call"]["name"], "crm.get_usage");
}

TEST_F(ScriptedAgentTest, AFailingToolIsSeenNotFatal) {
  io_.SetTool("crm.get_usage", [](const Json&, std::chrono::milliseconds) {
    return Result<Json>(Status::Unavailable("crm down"));
  });
  DecisionOutcome outcome = Run("reader");
  ASSERT_EQ(outcome.reason, Reason::kDecided) << Show(outcome);
  EXPECT_EQ(outcome.option, "starter");
}

TEST_F(ScriptedAgentTest, AToolNotOfferedIsRefused) {
  DecisionOutcome outcome = Run("sneaky");
  EXPECT_EQ(outcome.reason, Reason::kToolNotAllowed) << Show(outcome);
  EXPECT_TRUE(io_.tool_calls().empty());
}

TEST_F(ScriptedAgentTest, ItsOptionIsCheckedLikeAnyAgents) {
  DecisionOutcome outcome = Run("wrong");
  EXPECT_EQ(outcome.reason, Reason::kOptionNotAllowed) << Show(outcome);
  EXPECT_EQ(outcome.detail, "option 'platinum' is not one of the 3 allowed options");
}

TEST_F(ScriptedAgentTest, OutOfTimeBeforeItsStep) {
  request_.limits.timeout = 1ms;
  // A clock that moves 5 ms at every read: the time is gone before the first step.
  struct LateClock final : Clock {
    mutable int64_t now = 0;
    int64_t NowNanos() const override { return now; }
    int64_t MonotonicNanos() const override { return now += 5'000'000; }
  } clock;
  std::shared_ptr<Agent> planner = registry_->Find("planner");
  DecisionOutcome outcome = Decide(*planner, request_, io_, clock);
  EXPECT_EQ(outcome.reason, Reason::kTimeout) << Show(outcome);
  EXPECT_EQ(outcome.steps_used, 0u);
}

}  // namespace
}  // namespace cairn::agent
