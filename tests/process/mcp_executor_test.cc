// McpExecutor end to end, against mcp_stub (tests/process/mcp_stub.cc) over real pipes.
#include "engine/process/mcp_executor.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/random.h"
#include "tests/process/process_test_util.h"
#include "tests/support/assertions.h"
#include "tests/support/seed.h"

namespace cairn::engine::process {
namespace {

using namespace std::chrono_literals;
using cairn::testing::HasSubstr;
using testing::CallAndWait;
using testing::ExitsWithin;
using testing::IoPool;
using testing::PendingCall;

ToolRequest Mcp(const std::string& method, Json parameters,
                const std::vector<std::string>& stub_arguments = {},
                std::chrono::milliseconds timeout = 30s) {
  ToolRequest request;
  request.tool = "mcp";
  request.arguments = {
      {"method", method},
      {"transport", {{"stdio", {{"command", CAIRN_MCP_STUB}, {"arguments", stub_arguments}}}}}};
  if (!parameters.is_null()) request.arguments["parameters"] = std::move(parameters);
  request.idempotency_key = "key-1";
  request.run_id = RunId::FromTrusted("run-1");
  request.task_path = "/do/0/mcp";
  request.timeout = timeout;
  return request;
}

ToolRequest Tool(const std::string& name, Json arguments = Json::object(),
                 const std::vector<std::string>& stub_arguments = {},
                 std::chrono::milliseconds timeout = 30s) {
  return Mcp("tools/call", {{"name", name}, {"arguments", std::move(arguments)}}, stub_arguments,
             timeout);
}

std::string Show(const ToolResponse& response) {
  return "status=" + std::to_string(static_cast<int>(response.status)) +
         " output=" + DumpJson(response.output).substr(0, 500) + " type=" + response.error.type +
         " title=" + response.error.title + " detail=" + response.error.detail;
}

// The stub's pid, from its `pid` tool; -1 if the call failed.
pid_t StubPid(ToolExecutor& executor, const std::vector<std::string>& stub_arguments = {}) {
  ToolResponse response = CallAndWait(executor, Tool("pid", Json::object(), stub_arguments));
  EXPECT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
  if (response.status != ToolResponse::Status::kOk) return -1;
  return response.output["structuredContent"]["pid"].get<pid_t>();
}

class McpExecutorTest : public ::testing::Test {
 protected:
  McpOptions Options() {
    McpOptions options;
    options.shutdown_grace = 2s;
    return options;
  }
  IoPool pool_;
};

TEST_F(McpExecutorTest, InitializeHandshake) {
  McpExecutor executor(pool_.executor(), Options());
  ToolResponse response = CallAndWait(executor, Tool("state"));
  ASSERT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
  const Json& state = response.output["structuredContent"];
  EXPECT_EQ(state["initialize"]["protocolVersion"], "2025-06-18");
  EXPECT_EQ(state["initialize"]["capabilities"], Json::object());
  EXPECT_EQ(state["initialize"]["clientInfo"], (Json{{"name", "cairn"}, {"version", "0.1.0"}}));
  EXPECT_TRUE(state["initialized"].get<bool>());  // the notification came before the call

  // Another protocol version and client: another server, told so.
  ToolRequest custom = Tool("state");
  custom.arguments["protocolVersion"] = "2025-03-26";
  custom.arguments["client"] = {{"name", "billing-flow"}, {"version", "7"}};
  ToolResponse other = CallAndWait(executor, custom);
  ASSERT_EQ(other.status, ToolResponse::Status::kOk) << Show(other);
  EXPECT_EQ(other.output["structuredContent"]["initialize"]["protocolVersion"], "2025-03-26");
  EXPECT_EQ(other.output["structuredContent"]["initialize"]["clientInfo"]["name"], "billing-flow");
  EXPECT_EQ(executor.LiveChildren(), 2u);
}

TEST_F(McpExecutorTest, ToolsList) {
  McpExecutor executor(pool_.executor(), Options());
  ToolResponse response = CallAndWait(executor, Mcp("tools/list", nullptr));
  ASSERT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
  ASSERT_TRUE(response.output["tools"].is_array());
  EXPECT_EQ(response.output["tools"][0]["name"], "echo");
}

TEST_F(McpExecutorTest, ToolsCallResultIsTheJsonRpcResult) {
  McpExecutor executor(pool_.executor(), Options());
  Json arguments = {{"text", "héllo\nworld"}, {"list", {1, 2.5, nullptr, true}}};
  ToolResponse response = CallAndWait(executor, Tool("echo", arguments));
  ASSERT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
  EXPECT_EQ(response.output["structuredContent"], arguments);
  EXPECT_EQ(response.output["content"][0]["type"], "text");
}

TEST_F(McpExecutorTest, IdempotencyKeyGoesInMetaNextToTheCallersMeta) {
  McpExecutor executor(pool_.executor(), Options());
  ToolRequest request = Mcp("tools/call", {{"name", "meta"}, {"_meta", {{"progressToken", 7}}}});
  request.idempotency_key = "run-1/effect-42";
  ToolResponse response = CallAndWait(executor, request);
  ASSERT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
  EXPECT_EQ(response.output["structuredContent"],
            (Json{{"io.cairn/idempotency-key", "run-1/effect-42"}, {"progressToken", 7}}));
}

TEST_F(McpExecutorTest, ToolIsErrorFails) {
  McpExecutor executor(pool_.executor(), Options());
  ToolResponse response = CallAndWait(executor, Tool("fail"));
  ASSERT_EQ(response.status, ToolResponse::Status::kFailed) << Show(response);
  EXPECT_EQ(response.error.type, error_type::kRuntime);
  EXPECT_EQ(response.error.status, 500);
  EXPECT_EQ(response.error.title, "MCP tool failed");
  EXPECT_TRUE(HasSubstr(response.error.detail, "tools/call 'fail': the tool failed on purpose"));
}

TEST_F(McpExecutorTest, JsonRpcErrorFails) {
  McpExecutor executor(pool_.executor(), Options());
  ToolResponse unknown_tool = CallAndWait(executor, Tool("nope"));
  ASSERT_EQ(unknown_tool.status, ToolResponse::Status::kFailed) << Show(unknown_tool);
  EXPECT_EQ(unknown_tool.error.type, error_type::kRuntime);
  EXPECT_EQ(unknown_tool.error.status, 400);
  EXPECT_TRUE(HasSubstr(unknown_tool.error.detail, "error -32602: Unknown tool: nope"));
  ToolResponse unknown_method = CallAndWait(executor, Mcp("prompts/list", nullptr));
  EXPECT_EQ(unknown_method.error.status, 404) << Show(unknown_method);
  EXPECT_TRUE(HasSubstr(unknown_method.error.detail, "answered prompts/list with error -32601"));
  // Errors are answers: the server was not restarted.
  EXPECT_EQ(executor.LiveChildren(), 1u);
}

TEST_F(McpExecutorTest, ServerIsReusedAcrossCalls) {
  McpExecutor executor(pool_.executor(), Options());
  pid_t first = StubPid(executor);
  pid_t second = StubPid(executor);
  EXPECT_EQ(first, second);
  EXPECT_EQ(executor.LiveChildren(), 1u);
  ToolResponse state = CallAndWait(executor, Tool("state"));
  EXPECT_EQ(state.output["structuredContent"]["calls"], 3);
}

TEST_F(McpExecutorTest, ServerDyingMidCallFailsItAndTheNextCallRestartsIt) {
  McpExecutor executor(pool_.executor(), Options());
  pid_t first = StubPid(executor);
  ToolResponse died = CallAndWait(executor, Tool("die"));
  ASSERT_EQ(died.status, ToolResponse::Status::kFailed) << Show(died);
  EXPECT_EQ(died.error.status, 502);
  EXPECT_EQ(died.error.title, "MCP server failed");
  EXPECT_TRUE(HasSubstr(died.error.detail, "mcp_stub'"));
  EXPECT_TRUE(HasSubstr(died.error.detail, "exited with code 3 during tools/call 'die'"));
  EXPECT_TRUE(HasSubstr(died.error.detail, "stderr: mcp_stub: dying: asked to"));
  EXPECT_FALSE(testing::ProcessExists(first) && !ExitsWithin(first));
  pid_t second = StubPid(executor);
  EXPECT_NE(second, -1);
  EXPECT_NE(first, second);
}

TEST_F(McpExecutorTest, DieOnTheNthCall) {
  McpExecutor executor(pool_.executor(), Options());
  std::vector<std::string> stub = {"--die-on-call", "3"};
  pid_t first = StubPid(executor, stub);
  EXPECT_EQ(StubPid(executor, stub), first);
  ToolResponse third = CallAndWait(executor, Tool("echo", {{"n", 3}}, stub));
  EXPECT_TRUE(HasSubstr(third.error.detail, "exited with code 3 during tools/call 'echo'"))
      << Show(third);
  EXPECT_TRUE(HasSubstr(third.error.detail, "dying: call 3"));
  pid_t fourth = StubPid(executor, stub);
  EXPECT_NE(fourth, first);
}

TEST_F(McpExecutorTest, GarbageLineFailsTheCallAndRestartsTheServer) {
  McpExecutor executor(pool_.executor(), Options());
  pid_t first = StubPid(executor);
  ToolResponse garbage = CallAndWait(executor, Tool("garbage"));
  ASSERT_EQ(garbage.status, ToolResponse::Status::kFailed) << Show(garbage);
  EXPECT_EQ(garbage.error.status, 502);
  EXPECT_TRUE(HasSubstr(garbage.error.detail, "wrote a line that is not JSON-RPC"));
  EXPECT_TRUE(HasSubstr(garbage.error.detail, "garbage \xEF\xBF\xBD\xEF\xBF\xBD{"));
  EXPECT_TRUE(HasSubstr(garbage.error.detail, "during tools/call 'garbage'"));
  EXPECT_NO_THROW(static_cast<void>(Json(garbage.error.detail).dump()));
  EXPECT_TRUE(ExitsWithin(first));  // killed
  pid_t second = StubPid(executor);
  EXPECT_NE(second, first);
  // --garbage-on-call: the same, with valid JSON around it.
  ToolResponse on_call =
      CallAndWait(executor, Tool("echo", Json::object(), {"--garbage-on-call", "1"}));
  EXPECT_TRUE(HasSubstr(on_call.error.detail, "this is not JSON-RPC")) << Show(on_call);
}

TEST_F(McpExecutorTest, HungServerTimesOutAndIsReplaced) {
  McpExecutor executor(pool_.executor(), Options());
  pid_t first = StubPid(executor);
  ToolResponse hung = CallAndWait(executor, Tool("hang", Json::object(), {}, 300ms));
  ASSERT_EQ(hung.status, ToolResponse::Status::kTimedOut) << Show(hung);
  EXPECT_EQ(hung.error.type, error_type::kTimeout);
  EXPECT_TRUE(HasSubstr(hung.error.detail, "did not answer tools/call 'hang' within 300 ms"));
  EXPECT_TRUE(HasSubstr(hung.error.detail, "the server was killed"));
  EXPECT_TRUE(ExitsWithin(first));
  EXPECT_NE(StubPid(executor), first);
}

TEST_F(McpExecutorTest, SlowCallAmongOthersIsCancelledNotKilled) {
  McpExecutor executor(pool_.executor(), Options());
  pid_t first = StubPid(executor);
  PendingCall long_hang(executor, Tool("hang", Json::object(), {}, 60s));
  ToolResponse short_hang = CallAndWait(executor, Tool("hang", Json::object(), {}, 300ms));
  ASSERT_EQ(short_hang.status, ToolResponse::Status::kTimedOut) << Show(short_hang);
  EXPECT_FALSE(HasSubstr(short_hang.error.detail, "killed"));
  EXPECT_EQ(StubPid(executor), first);  // still the same server
  executor.Shutdown();
  EXPECT_EQ(long_hang.Get().error.title, "MCP executor shutting down");
}

TEST_F(McpExecutorTest, InitializeNeverAnsweredTimesOut) {
  McpExecutor executor(pool_.executor(), Options());
  ToolResponse response =
      CallAndWait(executor, Tool("pid", Json::object(), {"--hang-on-init"}, 300ms));
  ASSERT_EQ(response.status, ToolResponse::Status::kTimedOut) << Show(response);
  EXPECT_TRUE(HasSubstr(response.error.detail, "(it had not finished initialize)"));
  EXPECT_TRUE(testing::Eventually([&] { return executor.LiveChildren() == 0; }));
}

TEST_F(McpExecutorTest, InitializeRefused) {
  McpExecutor executor(pool_.executor(), Options());
  ToolResponse response = CallAndWait(executor, Tool("pid", Json::object(), {"--init-error"}));
  ASSERT_EQ(response.status, ToolResponse::Status::kFailed) << Show(response);
  EXPECT_EQ(response.error.status, 502);
  EXPECT_TRUE(HasSubstr(response.error.detail,
                        "refused initialize with error -32603: initialization refused on purpose"));
}

TEST_F(McpExecutorTest, CallsDuringASlowStartWaitForTheHandshake) {
  McpExecutor executor(pool_.executor(), Options());
  std::vector<std::string> stub = {"--start-delay-ms", "200"};
  std::vector<std::unique_ptr<PendingCall>> calls;
  for (int i = 0; i < 5; ++i) {
    calls.push_back(std::make_unique<PendingCall>(executor, Tool("pid", Json::object(), stub)));
  }
  std::vector<pid_t> pids;
  for (auto& call : calls) {
    ToolResponse response = call->Get();
    ASSERT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
    pids.push_back(response.output["structuredContent"]["pid"].get<pid_t>());
  }
  for (pid_t pid : pids) EXPECT_EQ(pid, pids[0]);
  EXPECT_EQ(executor.LiveChildren(), 1u);
}

TEST_F(McpExecutorTest, SlowStartBeyondTheTimeout) {
  McpExecutor executor(pool_.executor(), Options());
  ToolResponse response =
      CallAndWait(executor, Tool("pid", Json::object(), {"--start-delay-ms", "5000"}, 200ms));
  ASSERT_EQ(response.status, ToolResponse::Status::kTimedOut) << Show(response);
  EXPECT_TRUE(HasSubstr(response.error.detail, "had not finished initialize"));
}

TEST_F(McpExecutorTest, RestartLimit) {
  McpOptions options = Options();
  options.restarts_max = 2;
  McpExecutor executor(pool_.executor(), options);
  std::vector<std::string> stub = {"--die-on-call", "1"};
  for (int i = 0; i < 3; ++i) {  // the first start and 2 restarts
    ToolResponse response = CallAndWait(executor, Tool("pid", Json::object(), stub));
    EXPECT_TRUE(HasSubstr(response.error.detail, "exited with code 3")) << i << Show(response);
  }
  ToolResponse refused = CallAndWait(executor, Tool("pid", Json::object(), stub));
  ASSERT_EQ(refused.status, ToolResponse::Status::kFailed) << Show(refused);
  EXPECT_EQ(refused.error.status, 503);
  EXPECT_EQ(refused.error.title, "MCP server unavailable");
  EXPECT_TRUE(HasSubstr(refused.error.detail, "failed 3 times in a row"));
  EXPECT_TRUE(HasSubstr(refused.error.detail, "last: MCP server"));
  EXPECT_TRUE(HasSubstr(refused.error.detail, "not restarting it for another 60 s"));
  EXPECT_TRUE(testing::Eventually([&] { return executor.LiveChildren() == 0; }));
}

TEST_F(McpExecutorTest, RestartLimitCooldownAllowsANewTry) {
  McpOptions options = Options();
  options.restarts_max = 0;
  options.restart_cooldown = 0ms;
  McpExecutor executor(pool_.executor(), options);
  std::vector<std::string> stub = {"--die-on-call", "1"};
  for (int i = 0; i < 3; ++i) {  // each call gets its one try after the (empty) cooldown
    ToolResponse response = CallAndWait(executor, Tool("pid", Json::object(), stub));
    EXPECT_TRUE(HasSubstr(response.error.detail, "exited with code 3")) << Show(response);
  }
}

TEST_F(McpExecutorTest, AnAnsweredCallResetsTheRestartCount) {
  McpOptions options = Options();
  options.restarts_max = 1;
  McpExecutor executor(pool_.executor(), options);
  std::vector<std::string> stub = {"--die-on-call", "2"};  // every process answers once
  for (int i = 0; i < 4; ++i) {
    EXPECT_NE(StubPid(executor, stub), -1) << i;
    ToolResponse died = CallAndWait(executor, Tool("pid", Json::object(), stub));
    EXPECT_TRUE(HasSubstr(died.error.detail, "exited with code 3")) << i << Show(died);
  }
}

TEST_F(McpExecutorTest, ServerRequestsAndNotificationsAreHandled) {
  McpExecutor executor(pool_.executor(), Options());
  std::vector<std::string> stub = {"--noisy"};
  ToolResponse response = CallAndWait(executor, Tool("ping_client", Json::object(), stub));
  ASSERT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
  const Json& answers = response.output["structuredContent"];
  EXPECT_EQ(answers["srv-ping"]["result"], Json::object());
  EXPECT_EQ(answers["srv-sampling"]["error"]["code"], -32601);
  // stderr logging is kept for error details, never parsed.
  ToolResponse died = CallAndWait(executor, Tool("die", Json::object(), stub));
  EXPECT_TRUE(HasSubstr(died.error.detail, "mcp_stub: got tools/call")) << Show(died);
}

TEST_F(McpExecutorTest, OversizedMessageFailsAndRestarts) {
  McpOptions options = Options();
  options.message_bytes_max = 64 << 10;
  McpExecutor executor(pool_.executor(), options);
  ToolResponse small = CallAndWait(executor, Tool("big", {{"bytes", 10'000}}));
  ASSERT_EQ(small.status, ToolResponse::Status::kOk) << Show(small);
  EXPECT_EQ(small.output["content"][0]["text"].get_ref<const std::string&>().size(), 10'000u);
  ToolResponse big = CallAndWait(executor, Tool("big", {{"bytes", 1 << 20}}));
  ASSERT_EQ(big.status, ToolResponse::Status::kFailed) << Show(big);
  EXPECT_TRUE(HasSubstr(big.error.detail, "wrote a line longer than 65536 bytes"));
  EXPECT_NE(StubPid(executor), -1);
}

TEST_F(McpExecutorTest, InvalidArgumentsAreConfigurationErrors) {
  McpExecutor executor(pool_.executor(), Options());
  auto with = [](Json changes) {
    Json arguments = Mcp("tools/list", nullptr).arguments;
    arguments.merge_patch(changes);
    return arguments;
  };
  struct Case {
    Json arguments;
    const char* expected;
  };
  std::vector<Case> cases = {
      {"tools/list", "expected an object, got string"},
      {with({{"method", nullptr}}), "method: required"},
      {with({{"method", "initialize"}}), "sent by cairn itself"},
      {with({{"parameters", "x"}}), "parameters: expected an object"},
      {with({{"transport", nullptr}}), "transport: required"},
      {with({{"transport", {{"stdio", nullptr}, {"http", {{"endpoint", "http://x"}}}}}}),
       "HTTP transport is not supported"},
      {with({{"transport", {{"stdio", {{"command", nullptr}}}}}}),
       "transport.stdio: command: required"},
      {with({{"transport", {{"stdio", {{"arguments", {{{"a", 1}}}}}}}}}),
       "transport.stdio: arguments[0]"},
      {with({{"protocolVersion", 3}}), "protocolVersion: expected a non-empty string"},
      {with({{"client", {{"name", "x"}}}}), "version: required"},
  };
  for (const Case& c : cases) {
    ToolRequest request = Mcp("tools/list", nullptr);
    request.arguments = c.arguments;
    ToolResponse response = CallAndWait(executor, request);
    ASSERT_EQ(response.status, ToolResponse::Status::kFailed) << DumpJson(c.arguments);
    EXPECT_EQ(response.error.type, error_type::kConfiguration);
    EXPECT_EQ(response.error.status, 400);
    EXPECT_TRUE(HasSubstr(response.error.detail, c.expected)) << DumpJson(c.arguments);
  }
  EXPECT_EQ(executor.LiveChildren(), 0u);
}

TEST_F(McpExecutorTest, ServerThatCannotStart) {
  McpExecutor executor(pool_.executor(), Options());
  ToolRequest request = Mcp("tools/list", nullptr);
  request.arguments["transport"]["stdio"]["command"] = "/nonexistent/mcp-server";
  ToolResponse response = CallAndWait(executor, request);
  ASSERT_EQ(response.status, ToolResponse::Status::kFailed) << Show(response);
  EXPECT_EQ(response.error.title, "MCP server could not be started");
  EXPECT_TRUE(HasSubstr(response.error.detail, "No such file or directory"));
  // A bare name is looked up in $PATH.
  request.arguments["transport"]["stdio"]["command"] = "cairn-no-such-mcp-server";
  EXPECT_TRUE(HasSubstr(CallAndWait(executor, request).error.detail, "No such file"));
}

TEST_F(McpExecutorTest, ManyConcurrentCallsOnOneServer) {
  McpOptions options = Options();
  options.requests_per_server_max = 200;
  McpExecutor executor(pool_.executor(), options);
  uint64_t seed = cairn::testing::TestSeed();
  Random random(seed);
  std::vector<Json> payloads;
  std::vector<std::unique_ptr<PendingCall>> calls;
  for (int i = 0; i < 150; ++i) {
    payloads.push_back({{"i", i}, {"r", random.Next64()}, {"s", random.Bytes(8).size()}});
    calls.push_back(std::make_unique<PendingCall>(executor, Tool("echo", payloads.back())));
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    ToolResponse response = calls[i]->Get();
    ASSERT_EQ(response.status, ToolResponse::Status::kOk) << "seed=" << seed << Show(response);
    EXPECT_EQ(response.output["structuredContent"], payloads[i]) << "seed=" << seed;
    EXPECT_EQ(calls[i]->done_calls(), 1);
  }
  EXPECT_EQ(executor.LiveChildren(), 1u);
  EXPECT_TRUE(testing::Eventually([&] { return executor.InFlight() == 0; }));
}

TEST_F(McpExecutorTest, RequestsPerServerAreBounded) {
  McpOptions options = Options();
  options.requests_per_server_max = 2;
  McpExecutor executor(pool_.executor(), options);
  PendingCall first(executor, Tool("hang"));
  PendingCall second(executor, Tool("hang"));
  ToolResponse third = CallAndWait(executor, Tool("hang"));
  ASSERT_EQ(third.status, ToolResponse::Status::kFailed) << Show(third);
  EXPECT_EQ(third.error.status, 503);
  EXPECT_TRUE(HasSubstr(third.error.detail, "already has 2 requests waiting"));
  executor.Shutdown();
  EXPECT_EQ(first.Get().error.status, 503);
  EXPECT_EQ(second.Get().error.status, 503);
}

TEST_F(McpExecutorTest, IdleServersAreEvictedBeyondTheBound) {
  McpOptions options = Options();
  options.servers_max = 1;
  McpExecutor executor(pool_.executor(), options);
  pid_t a = StubPid(executor);
  pid_t b = StubPid(executor, {"--noisy"});  // another transport: `a` is closed
  EXPECT_NE(a, b);
  EXPECT_TRUE(ExitsWithin(a));  // it exited when its stdin closed
  // A busy server is not evicted: the new one is refused instead.
  PendingCall busy(executor, Tool("hang", Json::object(), {"--noisy"}));
  ToolResponse refused = CallAndWait(executor, Tool("pid"));
  EXPECT_EQ(refused.error.status, 503) << Show(refused);
  EXPECT_TRUE(HasSubstr(refused.error.detail, "all 1 MCP servers are busy"));
  executor.Shutdown();
  EXPECT_EQ(busy.Get().error.title, "MCP executor shutting down");
}

TEST_F(McpExecutorTest, ShutdownWithCallsInFlight) {
  McpExecutor executor(pool_.executor(), Options());
  pid_t pid = StubPid(executor);
  std::vector<std::unique_ptr<PendingCall>> calls;
  for (int i = 0; i < 3; ++i) {
    calls.push_back(std::make_unique<PendingCall>(executor, Tool("hang")));
  }
  executor.Shutdown();
  EXPECT_EQ(executor.InFlight(), 0u);
  EXPECT_EQ(executor.LiveChildren(), 0u);
  for (auto& call : calls) {
    ASSERT_TRUE(call->Ready());
    ToolResponse response = call->Get();
    EXPECT_EQ(response.status, ToolResponse::Status::kFailed);
    EXPECT_EQ(response.error.status, 503);
    EXPECT_TRUE(HasSubstr(response.error.detail, "shutting down")) << Show(response);
    EXPECT_EQ(call->done_calls(), 1);
  }
  EXPECT_FALSE(testing::ProcessExists(pid));  // exited on end of input, and reaped

  PendingCall late(executor, Tool("pid"));
  EXPECT_EQ(late.Get().error.title, "MCP executor shutting down");
  EXPECT_NE(late.thread(), std::this_thread::get_id());
  executor.Shutdown();  // idempotent
}

TEST_F(McpExecutorTest, ShutdownKillsAServerThatIgnoresEndOfInput) {
  McpOptions options = Options();
  options.shutdown_grace = 200ms;
  McpExecutor executor(pool_.executor(), options);
  pid_t pid = StubPid(executor, {"--ignore-eof"});
  auto started = std::chrono::steady_clock::now();
  executor.Shutdown();
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);
  EXPECT_FALSE(testing::ProcessExists(pid));
}

}  // namespace
}  // namespace cairn::engine::process
