// The `openai` agent end to end: agent::Decide over the real ExecutorAgentIo and engine
// HttpExecutor against the loopback OpenAI stub (tests/agent/openai_stub.h). Also the
// agents-file keys (ParseOpenAiConfig) and ExecutorAgentIo::PostJson on its own.
#include "agent/openai_agent.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/executor_io.h"
#include "engine/http/http_executor.h"
#include "tests/agent/openai_stub.h"
#include "tests/support/assertions.h"

namespace cairn::agent {
namespace {

using cairn::testing::HasSubstr;
using cairn::testing::IsError;
using cairn::testing::Must;
using cairn::testing::OpenAiStub;
using cairn::testing::StubResponse;
using std::chrono::milliseconds;
namespace net = boost::asio;

const std::vector<std::string> kOptions = {"approve", "reject", "escalate"};

// The agents-file keys of an `openai` agent, parsed; the problems when they are refused.
struct Parsed {
  std::optional<std::shared_ptr<const OpenAiConfig>> config;
  std::string problems;
};

Parsed ParseConfig(const std::string& yaml) {
  YamlProblems problems("agents.yaml");
  Parsed parsed;
  std::optional<YAML::Node> node = ParseYamlText(problems, yaml, "agents file", 1 << 20);
  if (node) {
    YamlContext ctx{problems, "agent 'gpt'", nullptr};
    parsed.config = ParseOpenAiConfig(ctx, *node);
  }
  if (!problems.empty()) parsed.problems = problems.ToStatus().message();
  return parsed;
}

class OpenAiAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stub_ = Must(OpenAiStub::Start());
    work_.emplace(io_.get_executor());
    io_thread_ = std::thread([this] { io_.run(); });
    http_ = Must(engine::http::HttpExecutor::Create(io_.get_executor(), {}));
    io_io_ = std::make_unique<ExecutorAgentIo>(
        http_.get(), nullptr,
        [this](const std::string& name, const Json& arguments, milliseconds) -> Result<Json> {
          std::lock_guard lock(mu_);
          tool_calls_.emplace_back(name, arguments);
          if (name == "crm.get_account")
            return Json{{"id", arguments.value("id", 0)}, {"tier", "gold"}};
          return Status::NotFound("no such account");
        });
    request_.run_id = "run-1";
    request_.task_path = "/do/0/triage";
    request_.workflow = "ops/refunds:1.0.0";
    request_.decision_key = "run-1#1";
    request_.goal = "Decide what to do with the refund request.";
    request_.options = kOptions;
    request_.context = {{"amount", 120}, {"customer", "c-42"}};
    request_.limits.max_steps = 4;
    request_.limits.timeout = milliseconds(10'000);
  }

  void TearDown() override {
    http_->Shutdown();
    work_.reset();
    io_thread_.join();
    stub_->Stop();
  }

  // An openai agent for the stub with the given extra keys.
  std::shared_ptr<Agent> MakeAgent(const std::string& extra_keys = "",
                                   const std::string& base_url = "") {
    Parsed parsed =
        ParseConfig("kind: openai\nbase_url: " + (base_url.empty() ? stub_->BaseUrl() : base_url) +
                    "\nmodel: gpt-test\n" + extra_keys);
    if (!parsed.config) {
      ADD_FAILURE() << parsed.problems;
      throw std::runtime_error("bad agent configuration");
    }
    return MakeOpenAiAgent("gpt", *parsed.config,
                           [this](const std::string& name) -> std::optional<std::string> {
                             auto it = env_.find(name);
                             if (it == env_.end()) return std::nullopt;
                             return it->second;
                           });
  }

  DecisionOutcome Run(Agent& agent) { return Decide(agent, request_, *io_io_, clock_); }

  void OfferCrmTool() {
    request_.tools.push_back({"crm.get_account", "Reads an account",
                              Json{{"type", "object"},
                                   {"properties", {{"id", {{"type", "integer"}}}}},
                                   {"required", {"id"}}}});
  }

  std::vector<std::pair<std::string, Json>> ToolCalls() {
    std::lock_guard lock(mu_);
    return tool_calls_;
  }

  std::unique_ptr<OpenAiStub> stub_;
  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::unique_ptr<engine::http::HttpExecutor> http_;
  std::unique_ptr<ExecutorAgentIo> io_io_;
  SystemClock clock_;
  DecisionRequest request_;
  std::map<std::string, std::string> env_;
  std::mutex mu_;
  std::vector<std::pair<std::string, Json>> tool_calls_;
};

const Json kApprove = {{"option", "approve"}, {"rationale", "Small amount."}, {"confidence", 0.8}};

// ---------------------------------------------------------------------------------------
// Answers.

TEST_F(OpenAiAgentTest, ValidAnswerIsDecided) {
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  auto agent = MakeAgent();
  EXPECT_EQ(agent->name(), "gpt");
  EXPECT_EQ(agent->kind(), "openai");
  DecisionOutcome outcome = Run(*agent);
  ASSERT_TRUE(outcome.decided()) << ReasonCode(outcome.reason) << ": " << outcome.detail;
  EXPECT_EQ(outcome.option, "approve");
  EXPECT_EQ(outcome.rationale, "Small amount.");
  EXPECT_EQ(outcome.confidence, 0.8);
  EXPECT_EQ(outcome.steps_used, 1u);
  EXPECT_EQ(outcome.model, "stub-model-1");  // the response's model
  EXPECT_EQ(outcome.usage.prompt_tokens, 100u);
  EXPECT_EQ(outcome.usage.completion_tokens, 20u);
  EXPECT_EQ(outcome.usage.calls, 1u);
  ASSERT_EQ(stub_->CallCount(), 1u);
}

TEST_F(OpenAiAgentTest, RequestBodyHasTheOptionsAsTheSchemaEnum) {
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  auto agent = MakeAgent();
  ASSERT_TRUE(Run(*agent).decided());
  ASSERT_EQ(stub_->CallCount(), 1u);
  const OpenAiStub::Call call = stub_->Calls()[0];
  EXPECT_EQ(call.request.path, "/v1/chat/completions");
  EXPECT_EQ(call.request.Header("content-type"), "application/json");
  EXPECT_EQ(call.request.Header("authorization"), "");
  const Json& body = call.body;
  EXPECT_EQ(body["model"], "gpt-test");
  const Json expected_format = {{"type", "json_schema"},
                                {"json_schema",
                                 {{"name", "decision"},
                                  {"strict", true},
                                  {"schema",
                                   {{"type", "object"},
                                    {"properties",
                                     {{"option", {{"type", "string"}, {"enum", kOptions}}},
                                      {"rationale", {{"type", "string"}}},
                                      {"confidence", {{"type", "number"}}}}},
                                    {"required", {"option", "rationale", "confidence"}},
                                    {"additionalProperties", false}}}}}};
  EXPECT_EQ(body["response_format"], expected_format);
  EXPECT_FALSE(body.contains("tools"));  // none offered
  EXPECT_FALSE(body.contains("temperature"));
  EXPECT_FALSE(body.contains("max_completion_tokens"));
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_TRUE(HasSubstr(body["messages"][0]["content"].get<std::string>(), "exactly one"));
  EXPECT_EQ(body["messages"][1]["role"], "user");
  Json user = Must(ParseJson(body["messages"][1]["content"].get<std::string>(), "user message"));
  EXPECT_EQ(user["goal"], request_.goal);
  EXPECT_EQ(user["options"], Json(kOptions));
  EXPECT_EQ(user["context"], request_.context);
  EXPECT_EQ(user["workflow"], "ops/refunds:1.0.0");
  EXPECT_EQ(user["task"], "/do/0/triage");
}

TEST_F(OpenAiAgentTest, ConfiguredSettingsAreSent) {
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  auto agent = MakeAgent(
      "temperature: 0.2\nmax_completion_tokens: 256\nsystem_prompt: Be terse.\n"
      "headers: {OpenAI-Organization: org-1}\n");
  ASSERT_TRUE(Run(*agent).decided());
  const OpenAiStub::Call call = stub_->Calls().at(0);
  EXPECT_EQ(call.body["temperature"], 0.2);
  EXPECT_EQ(call.body["max_completion_tokens"], 256);
  EXPECT_EQ(call.body["messages"][0]["content"], "Be terse.");
  EXPECT_EQ(call.request.Header("openai-organization"), "org-1");
}

TEST_F(OpenAiAgentTest, TranscriptsHoldTheRequestAndTheRawResponse) {
  StubResponse answer = OpenAiStub::Answer(kApprove);
  const std::string raw = answer.body;
  stub_->Enqueue(answer);
  auto agent = MakeAgent();
  DecisionOutcome outcome = Run(*agent);
  ASSERT_TRUE(outcome.decided());
  ASSERT_EQ(outcome.request_transcript.size(), 1u);
  const Json& sent = outcome.request_transcript[0];
  EXPECT_EQ(sent["url"], stub_->BaseUrl() + "/chat/completions");
  EXPECT_EQ(sent["body"], stub_->Calls()[0].body);
  EXPECT_EQ(sent["step"], 1);
  ASSERT_EQ(outcome.response_transcript.size(), 1u);
  EXPECT_EQ(outcome.response_transcript[0]["status"], 200);
  EXPECT_EQ(outcome.response_transcript[0]["body"], raw);
}

TEST_F(OpenAiAgentTest, ModelFallsBackToTheConfiguredOne) {
  StubResponse answer = OpenAiStub::Answer(kApprove);
  Json body = Must(ParseJson(answer.body, "stub"));
  body.erase("model");
  stub_->Enqueue(StubResponse::Json(200, body));
  DecisionOutcome outcome = Run(*MakeAgent());
  ASSERT_TRUE(outcome.decided());
  EXPECT_EQ(outcome.model, "gpt-test");
}

TEST_F(OpenAiAgentTest, AnswerInACodeFenceIsAccepted) {
  stub_->Enqueue(OpenAiStub::Content("```json\n" + DumpJson(kApprove) + "\n```\n"));
  DecisionOutcome outcome = Run(*MakeAgent());
  ASSERT_TRUE(outcome.decided()) << outcome.detail;
  EXPECT_EQ(outcome.option, "approve");
}

TEST_F(OpenAiAgentTest, OptionOutsideTheEnumIsNotAllowed) {
  stub_->Enqueue(OpenAiStub::Answer({{"option", "refund_twice"}, {"rationale", "why not"}}));
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kOptionNotAllowed);
  EXPECT_TRUE(HasSubstr(outcome.detail, "refund_twice"));
  EXPECT_TRUE(outcome.option.empty());
  EXPECT_EQ(outcome.steps_used, 1u);
}

TEST_F(OpenAiAgentTest, OptionIsMatchedExactly) {
  stub_->Enqueue(OpenAiStub::Answer({{"option", "Approve"}, {"rationale", "case"}}));
  EXPECT_EQ(Run(*MakeAgent()).reason, Reason::kOptionNotAllowed);
}

TEST_F(OpenAiAgentTest, ContentThatIsNotJsonIsMalformed) {
  stub_->Enqueue(OpenAiStub::Content("I think we should approve it."));
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kMalformedAnswer);
  EXPECT_TRUE(HasSubstr(outcome.detail, "invalid JSON"));
  EXPECT_TRUE(HasSubstr(outcome.detail, "I think we should approve it."));
}

TEST_F(OpenAiAgentTest, WrongShapesAreMalformed) {
  struct Case {
    std::string content;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {R"(["approve"])", "not an object"},
      {R"({"rationale": "r"})", "option is missing"},
      {R"({"option": 3, "rationale": "r"})", "option is a number"},
      {R"({"option": "approve"})", "rationale is missing"},
      {R"({"option": "approve", "rationale": "r", "confidence": "high"})",
       "confidence is a string"},
  };
  auto agent = MakeAgent();
  for (const Case& c : cases) {
    stub_->Enqueue(OpenAiStub::Content(c.content));
    DecisionOutcome outcome = Run(*agent);
    EXPECT_EQ(outcome.reason, Reason::kMalformedAnswer) << c.content;
    EXPECT_TRUE(HasSubstr(outcome.detail, c.detail)) << c.content;
  }
}

TEST_F(OpenAiAgentTest, ConfidenceOutOfRangeIsMalformed) {
  stub_->Enqueue(
      OpenAiStub::Answer({{"option", "approve"}, {"rationale", "r"}, {"confidence", 7}}));
  EXPECT_EQ(Run(*MakeAgent()).reason, Reason::kMalformedAnswer);
}

TEST_F(OpenAiAgentTest, RefusalIsMalformed) {
  stub_->Enqueue(OpenAiStub::Completion(
      {{"role", "assistant"}, {"content", nullptr}, {"refusal", "I cannot help with that."}}));
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kMalformedAnswer);
  EXPECT_TRUE(HasSubstr(outcome.detail, "refused: I cannot help with that."));
}

TEST_F(OpenAiAgentTest, CutOffAnswerSaysSo) {
  stub_->Enqueue(OpenAiStub::Completion({{"role", "assistant"}, {"content", R"({"option": "app)"}},
                                        OpenAiStub::DefaultUsage(), "stub-model-1", "length"));
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kMalformedAnswer);
  EXPECT_TRUE(HasSubstr(outcome.detail, "cut off"));
}

TEST_F(OpenAiAgentTest, OversizedAnswerIsTooLarge) {
  Json big = kApprove;
  big["rationale"] = std::string(limits::agent_answer_bytes_max, 'x');
  stub_->Enqueue(OpenAiStub::Answer(big));
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kAnswerTooLarge);
}

TEST_F(OpenAiAgentTest, ResponseThatIsNotAChatCompletionIsAnAgentError) {
  stub_->Enqueue(StubResponse::Json(200, {{"hello", "world"}}));
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kAgentError);
  EXPECT_TRUE(HasSubstr(outcome.detail, "not a chat completion"));
}

// ---------------------------------------------------------------------------------------
// Time, retries, HTTP failures.

TEST_F(OpenAiAgentTest, SlowServerTimesTheDecisionOut) {
  request_.limits.timeout = milliseconds(400);
  stub_->Enqueue(OpenAiStub::Answer(kApprove).WithDelay(milliseconds(3'000)));
  auto start = std::chrono::steady_clock::now();
  DecisionOutcome outcome = Run(*MakeAgent());
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(outcome.reason, Reason::kTimeout) << outcome.detail;
  EXPECT_LT(elapsed, milliseconds(2'500));
  EXPECT_EQ(stub_->CallCount(), 1u);
}

TEST_F(OpenAiAgentTest, HangingServerTimesTheDecisionOutEvenWithRetriesLeft) {
  request_.limits.timeout = milliseconds(600);
  stub_->SetHandler([](const OpenAiStub::Call&) { return StubResponse::Hang(); });
  // Each request may take 200 ms; the retries run until the decision's time is gone.
  DecisionOutcome outcome =
      Run(*MakeAgent("request_timeout: 200ms\nretries: {attempts: 10, backoff: 10ms}\n"));
  EXPECT_EQ(outcome.reason, Reason::kTimeout) << outcome.detail;
  EXPECT_GE(stub_->CallCount(), 2u);
}

TEST_F(OpenAiAgentTest, ServerErrorsAreRetriedThenSucceed) {
  stub_->Enqueue(StubResponse::Json(503, {{"error", {{"message", "overloaded"}}}}));
  stub_->Enqueue(StubResponse::Json(429, {{"error", {{"message", "slow down"}}}}));
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  DecisionOutcome outcome = Run(*MakeAgent("retries: {attempts: 3, backoff: 10ms}\n"));
  ASSERT_TRUE(outcome.decided()) << outcome.detail;
  EXPECT_EQ(stub_->CallCount(), 3u);
  EXPECT_EQ(outcome.steps_used, 1u);  // retries are not steps
  EXPECT_EQ(outcome.usage.calls, 1u);
  // Every attempt is in the transcripts, the body only once.
  ASSERT_EQ(outcome.request_transcript.size(), 3u);
  EXPECT_EQ(outcome.request_transcript[2]["attempt"], 3);
  EXPECT_FALSE(outcome.request_transcript[2].contains("body"));
  ASSERT_EQ(outcome.response_transcript.size(), 3u);
  EXPECT_EQ(outcome.response_transcript[0]["status"], 503);
  EXPECT_EQ(outcome.response_transcript[1]["status"], 429);
}

TEST_F(OpenAiAgentTest, RetriesExhaustedMakeTheAgentUnavailable) {
  stub_->Enqueue(StubResponse::Json(500, {{"error", "boom"}}));
  stub_->Enqueue(StubResponse::Json(502, {{"error", "still down"}}));
  DecisionOutcome outcome = Run(*MakeAgent("retries: {attempts: 2, backoff: 10ms}\n"));
  EXPECT_EQ(outcome.reason, Reason::kAgentUnavailable);
  EXPECT_TRUE(HasSubstr(outcome.detail, "after 2 attempts"));
  EXPECT_TRUE(HasSubstr(outcome.detail, "HTTP 502"));
  EXPECT_TRUE(HasSubstr(outcome.detail, "still down"));
  EXPECT_EQ(stub_->CallCount(), 2u);
}

TEST_F(OpenAiAgentTest, BackoffGrowsExponentially) {
  for (int i = 0; i < 3; ++i) stub_->Enqueue(StubResponse::Json(503, {{"error", "busy"}}));
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  DecisionOutcome outcome =
      Run(*MakeAgent("retries: {attempts: 4, backoff: 100ms, max_backoff: 300ms}\n"));
  ASSERT_TRUE(outcome.decided()) << outcome.detail;
  std::vector<OpenAiStub::Call> calls = stub_->Calls();
  ASSERT_EQ(calls.size(), 4u);
  // Waits of 100, 200 and 300 (capped) ms.
  EXPECT_GE(calls[1].arrived - calls[0].arrived, milliseconds(100));
  EXPECT_GE(calls[2].arrived - calls[1].arrived, milliseconds(200));
  EXPECT_GE(calls[3].arrived - calls[2].arrived, milliseconds(300));
  EXPECT_LT(calls[3].arrived - calls[2].arrived, milliseconds(2'000));
}

TEST_F(OpenAiAgentTest, RetryAfterIsHonoured) {
  stub_->Enqueue(
      StubResponse::Json(429, {{"error", "rate limited"}}).WithHeader("Retry-After", "1"));
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  DecisionOutcome outcome = Run(*MakeAgent("retries: {attempts: 2, backoff: 10ms}\n"));
  ASSERT_TRUE(outcome.decided()) << outcome.detail;
  std::vector<OpenAiStub::Call> calls = stub_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_GE(calls[1].arrived - calls[0].arrived, milliseconds(1'000));
}

TEST_F(OpenAiAgentTest, RetryAfterPastTheDeadlineTimesOutAtOnce) {
  request_.limits.timeout = milliseconds(2'000);
  stub_->Enqueue(
      StubResponse::Json(429, {{"error", "rate limited"}}).WithHeader("Retry-After", "30"));
  auto start = std::chrono::steady_clock::now();
  DecisionOutcome outcome = Run(*MakeAgent("retries: {attempts: 3, backoff: 10ms}\n"));
  EXPECT_EQ(outcome.reason, Reason::kTimeout);
  EXPECT_TRUE(HasSubstr(outcome.detail, "30000 ms"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1'500));
  EXPECT_EQ(stub_->CallCount(), 1u);
}

TEST_F(OpenAiAgentTest, ClientErrorsAreNotRetried) {
  stub_->Enqueue(StubResponse::Json(400, {{"error", {{"message", "model gpt-test not found"}}}}));
  DecisionOutcome outcome = Run(*MakeAgent("retries: {attempts: 3, backoff: 10ms}\n"));
  EXPECT_EQ(outcome.reason, Reason::kAgentError);
  EXPECT_TRUE(HasSubstr(outcome.detail, "HTTP 400"));
  EXPECT_TRUE(HasSubstr(outcome.detail, "model gpt-test not found"));
  EXPECT_EQ(stub_->CallCount(), 1u);
}

TEST_F(OpenAiAgentTest, UnreachableServerIsUnavailable) {
  cairn::testing::RefusingPort refusing;
  ASSERT_NE(refusing.port(), 0);
  auto agent = MakeAgent("retries: {attempts: 2, backoff: 10ms}\n",
                         "http://127.0.0.1:" + std::to_string(refusing.port()) + "/v1");
  DecisionOutcome outcome = Run(*agent);
  EXPECT_EQ(outcome.reason, Reason::kAgentUnavailable);
  EXPECT_TRUE(HasSubstr(outcome.detail, "after 2 attempts"));
  EXPECT_EQ(outcome.usage.calls, 0u);
}

// ---------------------------------------------------------------------------------------
// Tools.

TEST_F(OpenAiAgentTest, ToolCallsThenAnswer) {
  OfferCrmTool();
  // Dots are not allowed in OpenAI function names: crm.get_account is crm_get_account.
  stub_->Enqueue(OpenAiStub::ToolCalls({{"crm_get_account", {{"id", 7}}}}));
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  DecisionOutcome outcome = Run(*MakeAgent());
  ASSERT_TRUE(outcome.decided()) << outcome.detail;
  EXPECT_EQ(outcome.steps_used, 2u);
  EXPECT_EQ(outcome.usage.calls, 2u);
  EXPECT_EQ(outcome.usage.prompt_tokens, 200u);
  ASSERT_EQ(ToolCalls().size(), 1u);
  EXPECT_EQ(ToolCalls()[0].first, "crm.get_account");
  EXPECT_EQ(ToolCalls()[0].second, Json({{"id", 7}}));

  std::vector<OpenAiStub::Call> calls = stub_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  const Json tools = calls[0].body["tools"];
  ASSERT_EQ(tools.size(), 1u);
  EXPECT_EQ(tools[0]["type"], "function");
  EXPECT_EQ(tools[0]["function"]["name"], "crm_get_account");
  EXPECT_EQ(tools[0]["function"]["description"], "Reads an account");
  EXPECT_EQ(tools[0]["function"]["parameters"], request_.tools[0].input_schema);
  // The second turn carries the assistant's call and the tool's result.
  const Json& messages = calls[1].body["messages"];
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[2]["role"], "assistant");
  EXPECT_EQ(messages[2]["tool_calls"][0]["id"], "call_1");
  EXPECT_EQ(messages[2]["tool_calls"][0]["function"]["name"], "crm_get_account");
  EXPECT_EQ(messages[3]["role"], "tool");
  EXPECT_EQ(messages[3]["tool_call_id"], "call_1");
  EXPECT_EQ(Must(ParseJson(messages[3]["content"].get<std::string>(), "tool content")),
            Json({{"id", 7}, {"tier", "gold"}}));
}

TEST_F(OpenAiAgentTest, ToolErrorsAreShownToTheModel) {
  request_.tools.push_back({"crm.find", "", Json::object()});
  stub_->Enqueue(OpenAiStub::ToolCalls({{"crm_find", {{"q", "x"}}}}));
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  DecisionOutcome outcome = Run(*MakeAgent());
  ASSERT_TRUE(outcome.decided()) << outcome.detail;
  std::vector<OpenAiStub::Call> calls = stub_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  // An empty input schema is sent as an object without properties.
  EXPECT_EQ(calls[0].body["tools"][0]["function"]["parameters"],
            Json({{"type", "object"}, {"properties", Json::object()}}));
  Json content =
      Must(ParseJson(calls[1].body["messages"][3]["content"].get<std::string>(), "tool content"));
  EXPECT_TRUE(HasSubstr(content.value("error", ""), "no such account"));
}

TEST_F(OpenAiAgentTest, ToolLoopBeyondMaxStepsFails) {
  OfferCrmTool();
  request_.limits.max_steps = 3;
  stub_->SetHandler([](const OpenAiStub::Call&) {
    return OpenAiStub::ToolCalls({{"crm_get_account", {{"id", 1}}}});
  });
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kMaxStepsExceeded);
  EXPECT_EQ(outcome.steps_used, 3u);
  EXPECT_EQ(stub_->CallCount(), 3u);
  EXPECT_EQ(ToolCalls().size(), 3u);
}

TEST_F(OpenAiAgentTest, ToolNotOfferedIsNotAllowed) {
  OfferCrmTool();
  stub_->Enqueue(OpenAiStub::ToolCalls({{"billing_refund", {{"amount", 120}}}}));
  stub_->Enqueue(OpenAiStub::Answer(kApprove));  // never asked for
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kToolNotAllowed);
  EXPECT_TRUE(HasSubstr(outcome.detail, "billing_refund"));
  EXPECT_TRUE(ToolCalls().empty());
  EXPECT_EQ(stub_->CallCount(), 1u);
}

TEST_F(OpenAiAgentTest, ToolCallWithoutToolsOfferedIsNotAllowed) {
  stub_->Enqueue(OpenAiStub::ToolCalls({{"crm_get_account", {{"id", 1}}}}));
  EXPECT_EQ(Run(*MakeAgent()).reason, Reason::kToolNotAllowed);
  EXPECT_TRUE(ToolCalls().empty());
}

TEST_F(OpenAiAgentTest, TooManyToolCallsInOneStepAreMalformed) {
  OfferCrmTool();
  std::vector<OpenAiStub::ToolCall> calls(limits::agent_tool_calls_per_step_max + 1,
                                          {"crm_get_account", {{"id", 1}}});
  stub_->Enqueue(OpenAiStub::ToolCalls(calls));
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kMalformedAnswer);
  EXPECT_TRUE(HasSubstr(outcome.detail, "tool calls in one step"));
  EXPECT_TRUE(ToolCalls().empty());
}

TEST_F(OpenAiAgentTest, ToolArgumentsThatAreNotJsonAreMalformed) {
  OfferCrmTool();
  Json call = {{"id", "call_1"}, {"type", "function"}};
  call["function"] = {{"name", "crm_get_account"}, {"arguments", "{id: 1"}};
  Json message = {{"role", "assistant"}, {"content", nullptr}};
  message["tool_calls"] = Json::array({call});
  stub_->Enqueue(OpenAiStub::Completion(message));
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kMalformedAnswer);
  EXPECT_TRUE(HasSubstr(outcome.detail, "tool call 1 (crm_get_account)"));
  EXPECT_TRUE(ToolCalls().empty());
}

// ---------------------------------------------------------------------------------------
// Usage, cost and budgets.

TEST_F(OpenAiAgentTest, CostComesFromThePrices) {
  OfferCrmTool();
  const Json usage = {{"prompt_tokens", 1000}, {"completion_tokens", 200}};
  stub_->Enqueue(OpenAiStub::ToolCalls({{"crm_get_account", {{"id", 1}}}}, usage));
  stub_->Enqueue(OpenAiStub::Answer(kApprove, usage));
  DecisionOutcome outcome =
      Run(*MakeAgent("prices: {prompt_per_million: 2.50, completion_per_million: 10}\n"));
  ASSERT_TRUE(outcome.decided()) << outcome.detail;
  EXPECT_EQ(outcome.usage.prompt_tokens, 2000u);
  EXPECT_EQ(outcome.usage.completion_tokens, 400u);
  EXPECT_TRUE(outcome.usage.cost_known);
  // Per call: 1000 * 2.50 / 1e6 + 200 * 10 / 1e6 = 0.0025 + 0.002 = 4500 micros.
  EXPECT_EQ(outcome.usage.cost_micros, 9'000);
  EXPECT_EQ(outcome.ToTaskOutput()["usage"]["cost"], 0.009);
}

TEST_F(OpenAiAgentTest, CostIsRoundedUp) {
  stub_->Enqueue(OpenAiStub::Answer(kApprove, {{"prompt_tokens", 1}, {"completion_tokens", 1}}));
  DecisionOutcome outcome =
      Run(*MakeAgent("prices: {prompt_per_million: 0.15, completion_per_million: 0.6}\n"));
  ASSERT_TRUE(outcome.decided());
  EXPECT_EQ(outcome.usage.cost_micros, 2);  // 0.15 and 0.6 micros, each rounded up
}

TEST_F(OpenAiAgentTest, CostIsUnknownWithoutPrices) {
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  DecisionOutcome outcome = Run(*MakeAgent());
  ASSERT_TRUE(outcome.decided());
  EXPECT_FALSE(outcome.usage.cost_known);
  EXPECT_TRUE(outcome.ToTaskOutput()["usage"]["cost"].is_null());
}

TEST_F(OpenAiAgentTest, CostIsUnknownWithoutUsage) {
  stub_->Enqueue(OpenAiStub::Answer(kApprove, nullptr));
  DecisionOutcome outcome =
      Run(*MakeAgent("prices: {prompt_per_million: 1, completion_per_million: 1}\n"));
  ASSERT_TRUE(outcome.decided());
  EXPECT_FALSE(outcome.usage.cost_known);
  EXPECT_EQ(outcome.usage.tokens(), 0u);
}

TEST_F(OpenAiAgentTest, UnknownCostUnderACostCapFails) {
  request_.limits.max_cost_micros = 1'000'000;
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  EXPECT_EQ(Run(*MakeAgent()).reason, Reason::kCostBudgetExceeded);
}

TEST_F(OpenAiAgentTest, CostOverTheCapFails) {
  request_.limits.max_cost_micros = 1'000;
  stub_->Enqueue(OpenAiStub::Answer(kApprove));  // 100 + 20 tokens at 10 per million
  DecisionOutcome outcome =
      Run(*MakeAgent("prices: {prompt_per_million: 10, completion_per_million: 10}\n"));
  EXPECT_EQ(outcome.reason, Reason::kCostBudgetExceeded);
  EXPECT_EQ(outcome.usage.cost_micros, 1'200);
}

TEST_F(OpenAiAgentTest, TokensOverTheBudgetFail) {
  request_.limits.max_tokens = 50;
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  DecisionOutcome outcome = Run(*MakeAgent());
  EXPECT_EQ(outcome.reason, Reason::kTokenBudgetExceeded);
  EXPECT_EQ(outcome.usage.tokens(), 120u);
}

// ---------------------------------------------------------------------------------------
// The API key.

TEST_F(OpenAiAgentTest, ApiKeyIsSentAsBearerAndNeverRecorded) {
  env_["CAIRN_TEST_OPENAI_KEY"] = "sk-test-secret-123";
  stub_->Enqueue(OpenAiStub::Answer(kApprove));
  DecisionOutcome outcome =
      Run(*MakeAgent("api_key_env: CAIRN_TEST_OPENAI_KEY\nheaders: {X-Api-Key: other-secret}\n"));
  ASSERT_TRUE(outcome.decided()) << outcome.detail;
  const OpenAiStub::Call call = stub_->Calls().at(0);
  EXPECT_EQ(call.request.Header("authorization"), "Bearer sk-test-secret-123");
  EXPECT_EQ(call.request.Header("x-api-key"), "other-secret");
  const std::string transcripts =
      DumpJson(outcome.request_transcript) + DumpJson(outcome.response_transcript);
  EXPECT_FALSE(HasSubstr(transcripts, "sk-test-secret-123"));
  EXPECT_FALSE(HasSubstr(transcripts, "other-secret"));
  EXPECT_EQ(outcome.request_transcript[0]["headers"]["Authorization"], "<redacted>");
  EXPECT_EQ(outcome.request_transcript[0]["headers"]["Content-Type"], "application/json");
}

TEST_F(OpenAiAgentTest, MissingApiKeyIsAnAgentError) {
  auto agent = MakeAgent("api_key_env: CAIRN_TEST_OPENAI_KEY\n");
  DecisionOutcome outcome = Run(*agent);
  EXPECT_EQ(outcome.reason, Reason::kAgentError);
  EXPECT_EQ(outcome.detail, "API key variable CAIRN_TEST_OPENAI_KEY is not set");
  EXPECT_EQ(outcome.steps_used, 0u);
  env_["CAIRN_TEST_OPENAI_KEY"] = "";
  EXPECT_EQ(Run(*agent).reason, Reason::kAgentError);
  EXPECT_EQ(stub_->CallCount(), 0u);
}

// ---------------------------------------------------------------------------------------
// ExecutorAgentIo::PostJson.

TEST_F(OpenAiAgentTest, PostJsonReturnsEveryStatusWithItsHeadersAndBody) {
  stub_->Enqueue(StubResponse::Text(429, "too many", "text/plain").WithHeader("Retry-After", "7"));
  HttpReply reply = Must(io_io_->PostJson(stub_->BaseUrl() + "/chat/completions",
                                          {{"X-Trace", "t-1"}}, R"({"a":1})", milliseconds(5'000)));
  EXPECT_EQ(reply.status, 429);
  EXPECT_EQ(reply.body, "too many");
  bool retry_after = false;
  for (const auto& [name, value] : reply.headers)
    retry_after |= name == "retry-after" && value == "7";
  EXPECT_TRUE(retry_after);
  const OpenAiStub::Call call = stub_->Calls().at(0);
  EXPECT_EQ(call.request.body, R"({"a":1})");  // sent as is
  EXPECT_EQ(call.request.Header("content-type"), "application/json");
  EXPECT_EQ(call.request.Header("x-trace"), "t-1");
}

TEST_F(OpenAiAgentTest, PostJsonErrors) {
  stub_->Enqueue(OpenAiStub::Answer(kApprove).WithDelay(milliseconds(2'000)));
  EXPECT_TRUE(
      IsError(io_io_->PostJson(stub_->BaseUrl() + "/chat/completions", {}, "{}", milliseconds(200))
                  .status(),
              StatusCode::kDeadlineExceeded));
  cairn::testing::RefusingPort refusing;
  EXPECT_TRUE(IsError(io_io_
                          ->PostJson("http://127.0.0.1:" + std::to_string(refusing.port()) + "/",
                                     {}, "{}", milliseconds(2'000))
                          .status(),
                      StatusCode::kUnavailable));
  EXPECT_TRUE(IsError(
      io_io_->PostJson(stub_->BaseUrl(), {{"Content-Length", "3"}}, "{}", milliseconds(2'000))
          .status(),
      StatusCode::kInvalidArgument));
  ExecutorAgentIo without_http(nullptr, nullptr, nullptr);
  EXPECT_TRUE(IsError(without_http.PostJson(stub_->BaseUrl(), {}, "{}", milliseconds(100)).status(),
                      StatusCode::kFailedPrecondition));
}

// ---------------------------------------------------------------------------------------
// The agents-file keys.

TEST(OpenAiConfigTest, AcceptsEveryKey) {
  Parsed parsed = ParseConfig(R"(
kind: openai
base_url: https://api.openai.com/v1/
model: gpt-4o-mini
api_key_env: OPENAI_API_KEY
headers: {OpenAI-Organization: org-1}
temperature: 0
max_completion_tokens: 512
request_timeout: 30s
retries: {attempts: 3, backoff: 500ms, max_backoff: 8s}
prices: {prompt_per_million: 0.15, completion_per_million: 0.60}
system_prompt: "Choose wisely."
)");
  EXPECT_TRUE(parsed.config.has_value()) << parsed.problems;
}

TEST(OpenAiConfigTest, RefusesBadKeysNamingThem) {
  struct Case {
    std::string yaml;
    std::string problem;
  };
  const std::string base = "kind: openai\nbase_url: http://127.0.0.1:1/v1\nmodel: m\n";
  const std::vector<Case> cases = {
      {base + "modle: x\n", "agent 'gpt': agent: unknown key 'modle'"},
      {"kind: openai\nmodel: m\n", "missing 'base_url'"},
      {"kind: openai\nbase_url: http://h/v1\n", "missing 'model'"},
      {"kind: openai\nbase_url: ftp://h/v1\nmodel: m\n", "not an http:// or https:// URL"},
      {"kind: openai\nbase_url: http://h\nmodel: ''\n", "model: must not be empty"},
      {base + "api_key_env: 'OPENAI KEY'\n", "not an environment variable name"},
      {base + "api_key_env: K\nheaders: {Authorization: x}\n", "api_key_env already sends"},
      {base + "headers: {Content-Type: text/plain}\n", "is set by cairn"},
      {base + "temperature: 3\n", "temperature"},
      {base + "temperature: -1\n", "temperature"},
      {base + "max_completion_tokens: 0\n", "max_completion_tokens"},
      {base + "request_timeout: soon\n", "request_timeout"},
      {base + "retries: {attempts: 0}\n", "retries.attempts"},
      {base + "retries: {attempts: 11}\n", "retries.attempts"},
      {base + "retries: {tries: 2}\n", "unknown key 'tries'"},
      {base + "retries: {backoff: 2s, max_backoff: 1s}\n", "max_backoff (1000 ms) is less"},
      {base + "prices: {prompt_per_million: 1}\n", "missing 'completion_per_million'"},
      {base + "prices: {prompt_per_million: cheap, completion_per_million: 1}\n",
       "prices.prompt_per_million"},
      {base + "system_prompt: ''\n", "system_prompt: must not be empty"},
  };
  for (const Case& c : cases) {
    Parsed parsed = ParseConfig(c.yaml);
    EXPECT_FALSE(parsed.config.has_value()) << c.yaml;
    EXPECT_TRUE(HasSubstr(parsed.problems, c.problem)) << c.yaml;
  }
}

}  // namespace
}  // namespace cairn::agent
