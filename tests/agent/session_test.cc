// Session: time, steps, usage caps, tool calls and the bounded transcripts.
#include <gtest/gtest.h>

#include <limits>

#include "agent/agent.h"
#include "base/limits.h"
#include "tests/agent/agent_test_util.h"
#include "tests/support/assertions.h"

namespace cairn::agent {
namespace {

using namespace std::chrono_literals;
using cairn::testing::IsError;
using testing::FakeAgentIo;
using testing::MakeRequest;

class SessionTest : public ::testing::Test {
 protected:
  DecisionRequest request_ = MakeRequest();
  FakeAgentIo io_;
  ManualClock clock_;
};

TEST_F(SessionTest, RemainingFollowsTheClock) {
  Session session(request_, io_, clock_);
  EXPECT_EQ(session.Remaining(), 10s);
  clock_.Advance(2'500'000'000);
  EXPECT_EQ(session.Remaining(), 7500ms);
  clock_.Advance(8'000'000'000);
  EXPECT_EQ(session.Remaining(), -500ms);
  EXPECT_FALSE(session.failed()) << "running out of time alone fails nothing";
  EXPECT_FALSE(session.BeginStep());
  EXPECT_EQ(session.failure()->first, Reason::kTimeout);
}

TEST_F(SessionTest, StepsUpToMaxSteps) {
  request_.limits.max_steps = 2;
  Session session(request_, io_, clock_);
  EXPECT_TRUE(session.BeginStep());
  EXPECT_TRUE(session.BeginStep());
  EXPECT_EQ(session.steps_used(), 2u);
  EXPECT_FALSE(session.BeginStep());
  EXPECT_EQ(session.steps_used(), 2u);
  ASSERT_TRUE(session.failed());
  EXPECT_EQ(session.failure()->first, Reason::kMaxStepsExceeded);
  EXPECT_FALSE(session.BeginStep()) << "a failed session makes no more steps";
}

TEST_F(SessionTest, FirstFailureWins) {
  Session session(request_, io_, clock_);
  session.Fail(Reason::kAgentError, "one");
  session.Fail(Reason::kTimeout, "two");
  EXPECT_EQ(session.failure(), std::make_pair(Reason::kAgentError, std::string("one")));
  EXPECT_FALSE(session.AddUsage(Usage{1, 1, 0, true, 1}));
  EXPECT_EQ(session.usage().calls, 1u) << "usage is added after a failure too";
}

TEST_F(SessionTest, ToolCallsGoThroughIoAndTheTranscripts) {
  io_.SetTool("crm.get_usage", [&](const Json& arguments, std::chrono::milliseconds timeout) {
    clock_.Advance(1'000'000'000);
    return Result<Json>(Json{{"seats", 12}, {"asked", arguments}});
  });
  Session session(request_, io_, clock_);
  clock_.Advance(3'000'000'000);
  Result<Json> result = session.CallTool("crm.get_usage", {{"account", "acme"}});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ((*result)["seats"], 12);
  ASSERT_EQ(io_.tool_calls().size(), 1u);
  EXPECT_EQ(io_.tool_calls()[0].timeout, 7s) << "the tool gets the time left";
  EXPECT_EQ(session.TakeRequestTranscript(), Json::parse(R"(
      [{"tool_call": {"name": "crm.get_usage", "arguments": {"account": "acme"}}}])"));
  EXPECT_EQ(session.TakeResponseTranscript(), Json::parse(R"(
      [{"tool_result": {"name": "crm.get_usage",
                        "result": {"seats": 12, "asked": {"account": "acme"}}}}])"));
}

TEST_F(SessionTest, AToolErrorIsTheAgentsToSee) {
  io_.SetTool("crm.get_usage", [](const Json&, std::chrono::milliseconds) {
    return Result<Json>(Status::Unavailable("crm is down"));
  });
  Session session(request_, io_, clock_);
  Result<Json> result = session.CallTool("crm.get_usage", Json::object());
  EXPECT_TRUE(IsError(result.status(), StatusCode::kUnavailable, {"crm is down"}));
  EXPECT_FALSE(session.failed());
  EXPECT_EQ(session.TakeResponseTranscript(), Json::parse(R"(
      [{"tool_error": {"name": "crm.get_usage", "code": "unavailable",
                       "message": "crm is down"}}])"));
}

TEST_F(SessionTest, ToolNotOfferedFailsTheDecision) {
  io_.SetTool("billing.change_plan",
              [](const Json&, std::chrono::milliseconds) { return Result<Json>(Json()); });
  Session session(request_, io_, clock_);
  Result<Json> result = session.CallTool("billing.change_plan", Json::object());
  EXPECT_TRUE(IsError(result.status(), StatusCode::kPermissionDenied, {"not offered"}));
  EXPECT_EQ(session.failure()->first, Reason::kToolNotAllowed);
  EXPECT_TRUE(io_.tool_calls().empty());
  // After the failure, even offered tools are refused.
  EXPECT_TRUE(IsError(session.CallTool("crm.get_usage", Json::object()).status(),
                      StatusCode::kFailedPrecondition, {"already ended"}));
  EXPECT_TRUE(io_.tool_calls().empty());
}

TEST_F(SessionTest, ToolCallOutOfTime) {
  Session session(request_, io_, clock_);
  clock_.Advance(10'000'000'000);
  EXPECT_TRUE(IsError(session.CallTool("crm.get_usage", Json::object()).status(),
                      StatusCode::kDeadlineExceeded));
  EXPECT_EQ(session.failure()->first, Reason::kTimeout);
  EXPECT_TRUE(io_.tool_calls().empty());
}

TEST_F(SessionTest, ToolCallsPerStepAreBounded) {
  io_.SetTool("crm.get_usage",
              [](const Json&, std::chrono::milliseconds) { return Result<Json>(Json(1)); });
  Session session(request_, io_, clock_);
  ASSERT_TRUE(session.BeginStep());
  for (uint32_t i = 0; i < limits::agent_tool_calls_per_step_max; ++i) {
    ASSERT_TRUE(session.CallTool("crm.get_usage", Json::object()).ok()) << i;
  }
  EXPECT_TRUE(IsError(session.CallTool("crm.get_usage", Json::object()).status(),
                      StatusCode::kResourceExhausted, {"tool calls in one step"}));
  EXPECT_FALSE(session.failed());
  ASSERT_TRUE(session.BeginStep());
  EXPECT_TRUE(session.CallTool("crm.get_usage", Json::object()).ok()) << "a new step, new calls";
  EXPECT_EQ(io_.tool_calls().size(), limits::agent_tool_calls_per_step_max + 1);
}

TEST_F(SessionTest, TranscriptsAreBoundedWithOneMarker) {
  Session session(request_, io_, clock_);
  const std::string chunk(1 << 20, 'x');  // four of these fit in 4 MiB, less the JSON
  for (int i = 0; i < 6; ++i) session.RecordRequest(Json{{"chunk", chunk}});
  session.RecordRequest(Json{{"small", 1}});
  session.RecordResponse(Json{{"answer", 1}});
  Json requests = session.TakeRequestTranscript();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[3], Json::parse(R"({"truncated": true})"));
  EXPECT_EQ(requests[2]["chunk"].get<std::string>().size(), chunk.size());
  EXPECT_EQ(session.TakeResponseTranscript(), Json::parse(R"([{"answer": 1}])"))
      << "each transcript has its own bound";
  EXPECT_LE(DumpJson(requests).size(), limits::agent_transcript_bytes_max + 100);
}

TEST_F(SessionTest, RestoreCountsWithoutChecking) {
  request_.limits.max_tokens = 10;
  Session session(request_, io_, clock_);
  session.Restore(7, Usage{50, 50, 9, true, 7});
  EXPECT_FALSE(session.failed());
  EXPECT_EQ(session.steps_used(), 7u);
  EXPECT_EQ(session.usage().tokens(), 100u);
}

TEST(UsageTest, TokenCountsSaturateInsteadOfWrapping) {
  Usage usage;
  usage.prompt_tokens = std::numeric_limits<uint64_t>::max();
  usage.completion_tokens = 5;
  EXPECT_EQ(usage.tokens(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(SaturatingAdd(std::numeric_limits<int64_t>::max(), int64_t{1}),
            std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace cairn::agent
