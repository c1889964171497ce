// The recorded agent: replay gets back exactly what was decided, failures included.
#include "agent/recorded_agent.h"

#include <gtest/gtest.h>

#include "agent/config.h"
#include "tests/agent/agent_test_util.h"
#include "tests/support/assertions.h"

namespace cairn::agent {
namespace {

using namespace std::chrono_literals;
using testing::FakeAgentIo;
using testing::LambdaAgent;
using testing::MakeRequest;
using testing::Show;

class RecordedAgentTest : public ::testing::Test {
 protected:
  // Records what `agent` decides for request_, under its decision key.
  DecisionOutcome Record(LambdaAgent::Fn fn) {
    LambdaAgent agent(std::move(fn), "planner");
    DecisionOutcome outcome = Decide(agent, request_, io_, clock_);
    recorded_[request_.decision_key] = outcome;
    return outcome;
  }
  DecisionOutcome Replay() {
    RecordedAgent agent("planner",
                        [this](const std::string& key) -> std::optional<DecisionOutcome> {
                          ++lookups_;
                          auto it = recorded_.find(key);
                          if (it == recorded_.end()) return std::nullopt;
                          return it->second;
                        });
    EXPECT_EQ(agent.kind(), "recorded");
    return Decide(agent, request_, io_, clock_);
  }

  static void ExpectSame(const DecisionOutcome& a, const DecisionOutcome& b) {
    EXPECT_EQ(a.reason, b.reason);
    EXPECT_EQ(a.detail, b.detail);
    EXPECT_EQ(a.agent, b.agent);
    EXPECT_EQ(a.model, b.model);
    EXPECT_EQ(a.option, b.option);
    EXPECT_EQ(a.rationale, b.rationale);
    EXPECT_EQ(a.confidence, b.confidence);
    EXPECT_EQ(a.steps_used, b.steps_used);
    EXPECT_EQ(a.usage.prompt_tokens, b.usage.prompt_tokens);
    EXPECT_EQ(a.usage.completion_tokens, b.usage.completion_tokens);
    EXPECT_EQ(a.usage.cost_micros, b.usage.cost_micros);
    EXPECT_EQ(a.usage.cost_known, b.usage.cost_known);
    EXPECT_EQ(a.usage.calls, b.usage.calls);
    EXPECT_EQ(a.request_transcript, b.request_transcript);
    EXPECT_EQ(a.response_transcript, b.response_transcript);
    EXPECT_EQ(a.ToTaskOutput(), b.ToTaskOutput());
  }

  DecisionRequest request_ = MakeRequest();
  FakeAgentIo io_;
  ManualClock clock_;
  std::map<std::string, DecisionOutcome> recorded_;
  int lookups_ = 0;
};

TEST_F(RecordedAgentTest, ReplaysADecision) {
  DecisionOutcome original = Record([](Session& session) -> std::optional<Proposal> {
    session.SetModel("gpt-test");
    for (int i = 0; i < 3; ++i) {
      if (!session.BeginStep()) return std::nullopt;
      session.AddUsage(Usage{100, 10, 40, true, 1});
      session.RecordRequest({{"turn", i}});
      session.RecordResponse({{"reply", i}});
    }
    return Proposal{"enterprise", "three turns", 0.4};
  });
  ASSERT_EQ(original.reason, Reason::kDecided) << Show(original);
  DecisionOutcome replayed = Replay();
  EXPECT_EQ(lookups_, 1);
  ExpectSame(replayed, original);
}

TEST_F(RecordedAgentTest, ReplaysFailuresWithTheirReasonAndDetail) {
  request_.limits.max_tokens = 50;
  DecisionOutcome original = Record([](Session& session) -> std::optional<Proposal> {
    session.SetModel("gpt-test");
    session.BeginStep();
    session.AddUsage(Usage{40, 20, 0, false, 1});
    return std::nullopt;
  });
  ASSERT_EQ(original.reason, Reason::kTokenBudgetExceeded) << Show(original);
  ExpectSame(Replay(), original);

  request_.limits.max_steps = 2;
  request_.decision_key = "run-1#2";
  DecisionOutcome steps = Record([](Session& session) -> std::optional<Proposal> {
    while (session.BeginStep()) {
    }
    return std::nullopt;
  });
  ASSERT_EQ(steps.reason, Reason::kMaxStepsExceeded);
  ExpectSame(Replay(), steps);
}

TEST_F(RecordedAgentTest, AMissingRecordIsAnAgentError) {
  DecisionOutcome outcome = Replay();
  EXPECT_EQ(outcome.reason, Reason::kAgentError) << Show(outcome);
  EXPECT_EQ(outcome.detail, "recorded agent 'planner': no recorded decision for key 'run-1#1'");
}

TEST_F(RecordedAgentTest, TheRecordIsValidatedLikeAnyAnswer) {
  // A recorded decision replayed against a definition whose allowlist changed.
  Record(testing::Answers({"business", "r", std::nullopt}));
  request_.options = {"starter", "enterprise"};
  DecisionOutcome outcome = Replay();
  EXPECT_EQ(outcome.reason, Reason::kOptionNotAllowed) << Show(outcome);
}

TEST_F(RecordedAgentTest, RegistersInCodeUnderTheOriginalName) {
  AgentRegistry registry;
  auto agent = std::make_shared<RecordedAgent>(
      "planner", [](const std::string&) { return std::optional<DecisionOutcome>(); });
  ASSERT_TRUE(registry.Add(agent).ok());
  EXPECT_EQ(registry.Find("planner"), agent);
  EXPECT_EQ(registry.Add(agent).code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace cairn::agent
