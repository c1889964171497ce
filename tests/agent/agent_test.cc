// Decide and the pieces around it: reason codes, usage, the task output, request
// validation, and every fail-closed rule, each asserted with its exact reason code.
#include "agent/agent.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "base/limits.h"
#include "tests/agent/agent_test_util.h"
#include "tests/support/assertions.h"

namespace cairn::agent {
namespace {

using namespace std::chrono_literals;
using cairn::testing::HasSubstr;
using cairn::testing::IsError;
using testing::Answers;
using testing::FakeAgentIo;
using testing::LambdaAgent;
using testing::MakeRequest;
using testing::Show;

class DecideTest : public ::testing::Test {
 protected:
  DecisionOutcome Run(LambdaAgent::Fn fn) {
    LambdaAgent agent(std::move(fn), "planner");
    return Decide(agent, request_, io_, clock_);
  }
  DecisionOutcome RunAnswer(Proposal proposal) { return Run(Answers(std::move(proposal))); }

  DecisionRequest request_ = MakeRequest();
  FakeAgentIo io_;
  ManualClock clock_;
};

TEST(ReasonTest, CodesRoundTrip) {
  const std::vector<std::pair<Reason, std::string_view>> expected = {
      {Reason::kDecided, "decided"},
      {Reason::kOptionNotAllowed, "option_not_allowed"},
      {Reason::kMalformedAnswer, "malformed_answer"},
      {Reason::kAnswerTooLarge, "answer_too_large"},
      {Reason::kToolNotAllowed, "tool_not_allowed"},
      {Reason::kMaxStepsExceeded, "max_steps_exceeded"},
      {Reason::kTimeout, "timeout"},
      {Reason::kTokenBudgetExceeded, "token_budget_exceeded"},
      {Reason::kCostBudgetExceeded, "cost_budget_exceeded"},
      {Reason::kAgentUnavailable, "agent_unavailable"},
      {Reason::kAgentError, "agent_error"},
      {Reason::kUnknownAgent, "unknown_agent"},
  };
  for (const auto& [reason, code] : expected) {
    EXPECT_EQ(ReasonCode(reason), code);
    EXPECT_EQ(ReasonFromCode(code), reason) << code;
  }
  EXPECT_EQ(ReasonFromCode("Decided"), std::nullopt);
  EXPECT_EQ(ReasonFromCode(""), std::nullopt);
  EXPECT_EQ(ReasonFromCode("timeout "), std::nullopt);
}

TEST(UsageTest, AddsAndKeepsUnknownCostUnknown) {
  Usage total;
  total += Usage{10, 5, 300, true, 1};
  total += Usage{1, 2, 4, true, 1};
  EXPECT_EQ(total.prompt_tokens, 11u);
  EXPECT_EQ(total.completion_tokens, 7u);
  EXPECT_EQ(total.tokens(), 18u);
  EXPECT_EQ(total.cost_micros, 304);
  EXPECT_TRUE(total.cost_known);
  EXPECT_EQ(total.calls, 2u);
  total += Usage{0, 0, 0, false, 1};
  EXPECT_FALSE(total.cost_known);
  total += Usage{0, 0, 5, true, 0};
  EXPECT_FALSE(total.cost_known) << "once unknown, a cost stays unknown";

  Usage big{std::numeric_limits<uint64_t>::max() - 1, 0, std::numeric_limits<int64_t>::max() - 1,
            true, std::numeric_limits<uint32_t>::max()};
  big += Usage{5, 0, 5, true, 5};
  EXPECT_EQ(big.prompt_tokens, std::numeric_limits<uint64_t>::max()) << "saturates";
  EXPECT_EQ(big.cost_micros, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(big.calls, std::numeric_limits<uint32_t>::max());
}

TEST(TaskOutputTest, ExactShape) {
  DecisionOutcome outcome;
  outcome.reason = Reason::kDecided;
  outcome.agent = "planner";
  outcome.model = "gpt-test";
  outcome.option = "business";
  outcome.rationale = "big team";
  outcome.confidence = 0.75;
  outcome.steps_used = 2;
  outcome.usage = Usage{812, 40, 1450, true, 2};
  EXPECT_EQ(outcome.ToTaskOutput(), Json::parse(R"({
      "option": "business", "rationale": "big team", "confidence": 0.75, "steps_used": 2,
      "agent": "planner", "model": "gpt-test",
      "usage": {"prompt_tokens": 812, "completion_tokens": 40, "cost": 0.00145, "calls": 2}})"));
  EXPECT_EQ(DumpJson(outcome.ToTaskOutput()["usage"]["cost"]), "0.00145");

  outcome.confidence.reset();
  outcome.usage.cost_known = false;
  Json output = outcome.ToTaskOutput();
  EXPECT_FALSE(output.contains("confidence"));
  EXPECT_TRUE(output["usage"]["cost"].is_null()) << "an unknown cost is null, never 0";
}

TEST(ValidateRequestTest, AcceptsASaneRequest) { EXPECT_TRUE(ValidateRequest(MakeRequest()).ok()); }

TEST(ValidateRequestTest, RefusesEachBadField) {
  auto check = [](std::function<void(DecisionRequest&)> change,
                  std::initializer_list<std::string_view> parts) {
    DecisionRequest request = MakeRequest();
    change(request);
    return IsError(ValidateRequest(request), StatusCode::kInvalidArgument, parts);
  };
  EXPECT_TRUE(check([](auto& r) { r.options.clear(); }, {"options", "empty"}));
  EXPECT_TRUE(check([](auto& r) { r.options.push_back(""); }, {"options[3]", "empty"}));
  EXPECT_TRUE(check([](auto& r) { r.options.push_back("business"); },
                    {"options[3]", "'business'", "twice"}));
  EXPECT_TRUE(check([](auto& r) { r.options.push_back(std::string(257, 'x')); },
                    {"options[3]", "257 bytes", "256"}));
  EXPECT_TRUE(check(
      [](auto& r) {
        r.options.clear();
        for (int i = 0; i < 65; ++i) r.options.push_back("o" + std::to_string(i));
      },
      {"65 options", "64"}));
  EXPECT_TRUE(check([](auto& r) { r.goal = std::string(limits::agent_goal_bytes_max + 1, 'g'); },
                    {"goal", std::to_string(limits::agent_goal_bytes_max + 1)}));
  EXPECT_TRUE(check(
      [](auto& r) {
        r.context = {{"blob", std::string(limits::agent_context_bytes_max, 'c')}};
      },
      {"context", "bytes of JSON"}));
  EXPECT_TRUE(check(
      [](auto& r) {
        r.tools.clear();
        for (int i = 0; i < 33; ++i) r.tools.push_back({"t" + std::to_string(i), "", {}});
      },
      {"33 tools", "32"}));
  EXPECT_TRUE(check([](auto& r) { r.tools.push_back(r.tools[0]); },
                    {"tools[1]", "crm.get_usage", "twice"}));
  EXPECT_TRUE(check([](auto& r) { r.tools.push_back({"", "", {}}); }, {"tools[1]", "name"}));
  EXPECT_TRUE(check([](auto& r) { r.limits.max_steps = 0; }, {"max_steps", "0"}));
  EXPECT_TRUE(check([](auto& r) { r.limits.max_steps = 33; }, {"max_steps", "33", "1 to 32"}));
  EXPECT_TRUE(check([](auto& r) { r.limits.timeout = 0ms; }, {"timeout", "0 ms"}));
  EXPECT_TRUE(check([](auto& r) { r.limits.timeout = -5ms; }, {"timeout"}));
  EXPECT_TRUE(check([](auto& r) { r.limits.timeout = 3'600'001ms; }, {"timeout", "3600001"}));
  EXPECT_TRUE(check([](auto& r) { r.limits.max_cost_micros = -1; }, {"max_cost"}));

  DecisionRequest edge = MakeRequest();
  edge.limits.max_steps = limits::agent_steps_max;
  edge.limits.timeout = std::chrono::milliseconds(limits::agent_timeout_ms_max);
  edge.options.push_back(std::string(limits::agent_option_bytes_max, 'x'));
  EXPECT_TRUE(ValidateRequest(edge).ok()) << ValidateRequest(edge).ToString();
}

TEST_F(DecideTest, DecidedFillsEverything) {
  DecisionOutcome outcome = Run([&](Session& session) -> std::optional<Proposal> {
    session.SetModel("m-1");
    EXPECT_TRUE(session.BeginStep());
    EXPECT_TRUE(session.AddUsage(Usage{100, 20, 250, true, 1}));
    session.RecordRequest({{"prompt", "p"}});
    session.RecordResponse({{"answer", "a"}});
    clock_.Advance(1'500'000'000);  // 1.5 s
    return Proposal{"business", "twelve people", 0.8};
  });
  ASSERT_EQ(outcome.reason, Reason::kDecided) << Show(outcome);
  EXPECT_TRUE(outcome.decided());
  EXPECT_EQ(outcome.detail, "");
  EXPECT_EQ(outcome.agent, "planner");
  EXPECT_EQ(outcome.model, "m-1");
  EXPECT_EQ(outcome.option, "business");
  EXPECT_EQ(outcome.rationale, "twelve people");
  EXPECT_EQ(outcome.confidence, 0.8);
  EXPECT_EQ(outcome.steps_used, 1u);
  EXPECT_EQ(outcome.usage.tokens(), 120u);
  EXPECT_EQ(outcome.usage.cost_micros, 250);
  EXPECT_EQ(outcome.usage.calls, 1u);
  EXPECT_EQ(outcome.request_transcript, Json::parse(R"([{"prompt": "p"}])"));
  EXPECT_EQ(outcome.response_transcript, Json::parse(R"([{"answer": "a"}])"));
  EXPECT_EQ(outcome.duration_ms, 1500u);
}

TEST_F(DecideTest, OptionMustMatchTheAllowlistExactly) {
  for (const std::string option : {"Business", "business ", " business", "", "premium"}) {
    DecisionOutcome outcome = RunAnswer({option, "r", std::nullopt});
    EXPECT_EQ(outcome.reason, Reason::kOptionNotAllowed) << "'" << option << "': " << Show(outcome);
    EXPECT_TRUE(HasSubstr(outcome.detail, "'" + option + "' is not one of the 3 allowed options"));
    EXPECT_EQ(outcome.option, "") << "no option is given out on a failure";
  }
  // A long option is quoted, cut.
  DecisionOutcome outcome = RunAnswer({std::string(5000, 'z'), "r", std::nullopt});
  EXPECT_EQ(outcome.reason, Reason::kOptionNotAllowed);
  EXPECT_TRUE(HasSubstr(outcome.detail, "...' (5000 bytes)"));
  EXPECT_LT(outcome.detail.size(), 200u);
}

TEST_F(DecideTest, NoProposalIsMalformed) {
  DecisionOutcome outcome = Run([](Session& session) -> std::optional<Proposal> {
    EXPECT_TRUE(session.BeginStep());
    return std::nullopt;
  });
  EXPECT_EQ(outcome.reason, Reason::kMalformedAnswer) << Show(outcome);
  EXPECT_EQ(outcome.detail, "the agent gave no answer");
  EXPECT_EQ(outcome.steps_used, 1u);
}

TEST_F(DecideTest, RationaleBound) {
  DecisionOutcome at_bound =
      RunAnswer({"starter", std::string(limits::agent_rationale_bytes_max, 'r'), std::nullopt});
  EXPECT_EQ(at_bound.reason, Reason::kDecided) << Show(at_bound);
  DecisionOutcome over =
      RunAnswer({"starter", std::string(limits::agent_rationale_bytes_max + 1, 'r'), std::nullopt});
  EXPECT_EQ(over.reason, Reason::kAnswerTooLarge) << Show(over);
  EXPECT_TRUE(HasSubstr(over.detail, "4097 bytes"));
}

TEST_F(DecideTest, ConfidenceWithinZeroAndOne) {
  for (double good : {0.0, 1.0, 0.5}) {
    EXPECT_EQ(RunAnswer({"starter", "r", good}).reason, Reason::kDecided) << good;
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {-0.01, 1.01, nan, inf, -inf}) {
    DecisionOutcome outcome = RunAnswer({"starter", "r", bad});
    EXPECT_EQ(outcome.reason, Reason::kMalformedAnswer) << bad << ": " << Show(outcome);
    EXPECT_TRUE(HasSubstr(outcome.detail, "is not within [0, 1]"));
  }
  EXPECT_TRUE(HasSubstr(RunAnswer({"starter", "r", nan}).detail, "confidence NaN"));
}

TEST_F(DecideTest, ToolNotOfferedFailsEvenIfTheAgentGoesOn) {
  DecisionOutcome outcome = Run([](Session& session) -> std::optional<Proposal> {
    EXPECT_TRUE(session.BeginStep());
    Result<Json> result = session.CallTool("billing.change_plan", {{"plan", "x"}});
    EXPECT_TRUE(IsError(result.status(), StatusCode::kPermissionDenied, {"not offered"}));
    return Proposal{"starter", "ignoring the refusal", std::nullopt};
  });
  EXPECT_EQ(outcome.reason, Reason::kToolNotAllowed) << Show(outcome);
  EXPECT_EQ(outcome.detail, "tool 'billing.change_plan' was not offered (offered: crm.get_usage)");
  EXPECT_EQ(outcome.option, "");
  EXPECT_TRUE(io_.tool_calls().empty()) << "the tool was never reached";
  EXPECT_EQ(outcome.request_transcript[0]["tool_call"]["name"], "billing.change_plan");
}

TEST_F(DecideTest, MaxSteps) {
  request_.limits.max_steps = 3;
  DecisionOutcome outcome = Run([](Session& session) -> std::optional<Proposal> {
    while (session.BeginStep()) {
    }
    return Proposal{"starter", "r", std::nullopt};
  });
  EXPECT_EQ(outcome.reason, Reason::kMaxStepsExceeded) << Show(outcome);
  EXPECT_EQ(outcome.detail, "needed more than max_steps (3) steps");
  EXPECT_EQ(outcome.steps_used, 3u);
}

TEST_F(DecideTest, TimeoutDuringAStep) {
  DecisionOutcome outcome = Run([&](Session& session) -> std::optional<Proposal> {
    EXPECT_TRUE(session.BeginStep());
    clock_.Advance(10'000'000'000);  // exactly the timeout
    EXPECT_FALSE(session.BeginStep());
    return std::nullopt;
  });
  EXPECT_EQ(outcome.reason, Reason::kTimeout) << Show(outcome);
  EXPECT_TRUE(HasSubstr(outcome.detail, "out of time before step 2"));
  EXPECT_EQ(outcome.steps_used, 1u);
  EXPECT_EQ(outcome.duration_ms, 10'000u);
}

TEST_F(DecideTest, AnswerAfterTheDeadlineIsATimeout) {
  DecisionOutcome outcome = Run([&](Session& session) -> std::optional<Proposal> {
    EXPECT_TRUE(session.BeginStep());
    clock_.Advance(10'001'000'000);
    return Proposal{"starter", "late", std::nullopt};
  });
  EXPECT_EQ(outcome.reason, Reason::kTimeout) << Show(outcome);
  EXPECT_EQ(outcome.detail, "the decision took longer than its timeout of 10000 ms");
  // A late answer is never looked at, even when it is bad.
  DecisionOutcome late_and_bad = Run([&](Session& session) -> std::optional<Proposal> {
    clock_.Advance(11'000'000'000);
    return Proposal{"not-an-option", "", std::nullopt};
  });
  EXPECT_EQ(late_and_bad.reason, Reason::kTimeout) << Show(late_and_bad);
}

TEST_F(DecideTest, JustInTimeIsDecided) {
  DecisionOutcome outcome = Run([&](Session& session) -> std::optional<Proposal> {
    EXPECT_TRUE(session.BeginStep());
    clock_.Advance(9'999'000'000);
    return Proposal{"starter", "r", std::nullopt};
  });
  EXPECT_EQ(outcome.reason, Reason::kDecided) << Show(outcome);
}

TEST_F(DecideTest, TokenBudget) {
  request_.limits.max_tokens = 1000;
  auto spend = [&](uint64_t prompt, uint64_t completion) {
    return Run([=](Session& session) -> std::optional<Proposal> {
      EXPECT_TRUE(session.BeginStep());
      if (!session.AddUsage(Usage{prompt, completion, 0, true, 1})) return std::nullopt;
      return Proposal{"starter", "r", std::nullopt};
    });
  };
  EXPECT_EQ(spend(900, 100).reason, Reason::kDecided) << "exactly the budget is fine";
  DecisionOutcome over = spend(900, 101);
  EXPECT_EQ(over.reason, Reason::kTokenBudgetExceeded) << Show(over);
  EXPECT_EQ(over.detail, "used 1001 tokens, more than the budget of 1000");
  EXPECT_EQ(over.usage.tokens(), 1001u) << "spent is spent";
}

TEST_F(DecideTest, CostBudget) {
  request_.limits.max_cost_micros = 10'000;  // 0.01
  auto spend = [&](int64_t micros, bool known) {
    return Run([=](Session& session) -> std::optional<Proposal> {
      EXPECT_TRUE(session.BeginStep());
      if (!session.AddUsage(Usage{1, 1, micros, known, 1})) return std::nullopt;
      return Proposal{"starter", "r", std::nullopt};
    });
  };
  EXPECT_EQ(spend(10'000, true).reason, Reason::kDecided);
  DecisionOutcome over = spend(10'001, true);
  EXPECT_EQ(over.reason, Reason::kCostBudgetExceeded) << Show(over);
  EXPECT_EQ(over.detail, "cost 0.010001, more than the budget of 0.01");

  DecisionOutcome unknown = spend(0, false);
  EXPECT_EQ(unknown.reason, Reason::kCostBudgetExceeded) << Show(unknown);
  EXPECT_TRUE(HasSubstr(unknown.detail, "cost unknown under a cost cap of 0.01"));
  EXPECT_FALSE(unknown.usage.cost_known);

  request_.limits.max_cost_micros = 0;  // no cap: an unknown cost is recorded as unknown
  DecisionOutcome uncapped = spend(0, false);
  EXPECT_EQ(uncapped.reason, Reason::kDecided) << Show(uncapped);
  EXPECT_TRUE(uncapped.ToTaskOutput()["usage"]["cost"].is_null());
}

TEST_F(DecideTest, AgentExceptionsBecomeAgentErrors) {
  DecisionOutcome thrown = Run([](Session& session) -> std::optional<Proposal> {
    EXPECT_TRUE(session.BeginStep());
    throw std::runtime_error("socket exploded");
  });
  EXPECT_EQ(thrown.reason, Reason::kAgentError) << Show(thrown);
  EXPECT_EQ(thrown.detail, "the agent failed with an exception: 'socket exploded'");
  EXPECT_EQ(thrown.steps_used, 1u);

  DecisionOutcome odd = Run([](Session&) -> std::optional<Proposal> { throw 42; });
  EXPECT_EQ(odd.reason, Reason::kAgentError) << Show(odd);
  EXPECT_EQ(odd.detail, "the agent failed with an unknown exception");

  // An exception after a failure keeps the first failure.
  DecisionOutcome after = Run([](Session& session) -> std::optional<Proposal> {
    session.Fail(Reason::kAgentUnavailable, "503 three times");
    throw std::runtime_error("and then this");
  });
  EXPECT_EQ(after.reason, Reason::kAgentUnavailable) << Show(after);
}

TEST_F(DecideTest, SessionFailureWinsOverAGoodProposal) {
  DecisionOutcome outcome = Run([](Session& session) -> std::optional<Proposal> {
    EXPECT_TRUE(session.BeginStep());
    session.Fail(Reason::kAgentUnavailable, "first");
    session.Fail(Reason::kAgentError, "second");
    return Proposal{"starter", "r", std::nullopt};
  });
  EXPECT_EQ(outcome.reason, Reason::kAgentUnavailable);
  EXPECT_EQ(outcome.detail, "first");
  EXPECT_EQ(outcome.option, "");
}

TEST_F(DecideTest, InvalidRequestIsAnAgentErrorAndTheAgentIsNotAsked) {
  request_.options.clear();
  bool asked = false;
  DecisionOutcome outcome = Run([&](Session&) -> std::optional<Proposal> {
    asked = true;
    return Proposal{"starter", "r", std::nullopt};
  });
  EXPECT_FALSE(asked);
  EXPECT_EQ(outcome.reason, Reason::kAgentError);
  EXPECT_EQ(outcome.detail, "invalid decision request: options: the allowlist is empty");
  EXPECT_EQ(outcome.agent, "planner");
  EXPECT_EQ(outcome.steps_used, 0u);
}

}  // namespace
}  // namespace cairn::agent
