// Tools that misbehave during a run -- shell commands and catalog command tools that exit
// non-zero, crash, hang or print garbage; HTTP endpoints that refuse, fail, cut the
// response or send bad JSON; MCP servers that die, print garbage or report errors.
//
// Every run here records a few events first and then parks on a `listen` gate; the test
// keeps those events, opens the gate, and checks that the run ends (never hangs) with
// the exact error, that try/catch can catch it, and that the events recorded before the
// failure are unchanged and the chain verifies.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/limits.h"
#include "engine/tools/tool.h"
#include "tests/badinput/bad_input_util.h"
#include "tests/http/http_stub.h"

namespace cairn::engine::badinput {
namespace {

using cairn::testing::HasSubstr;
using cairn::testing::Must;
using cairn::testing::RefusingPort;
using cairn::testing::StubRequest;
using cairn::testing::StubResponse;
using cairn::testing::StubServer;
using storage::RunStatus;
using storage::StopReason;

constexpr std::string_view kMcpStub = CAIRN_MCP_STUB;
constexpr std::string_view kTaskPath = "/do/2/misbehave";

// A workflow that sets a value, waits for a `go` event, then runs `task` (the YAML of
// one task body, indented by 6 spaces) as /do/2/misbehave.
std::string Gated(std::string_view name, std::string_view task) {
  return "document: {dsl: '1.0.3', namespace: bad, name: " + std::string(name) +
         ", version: '1.0.0'}\n"
         "do:\n"
         "  - before:\n"
         "      set: {step: before}\n"
         "  - gate:\n"
         "      listen:\n"
         "        to:\n"
         "          one:\n"
         "            with: {type: go}\n"
         "  - misbehave:\n" +
         std::string(task);
}

std::string Shell(std::string_view command) {
  return "      run:\n        shell:\n          command: '" + std::string(command) + "'\n";
}

std::string McpCall(std::string_view tool, std::string_view stub_arguments = "[]") {
  return "      call: mcp\n"
         "      with:\n"
         "        method: tools/call\n"
         "        parameters: {name: " +
         std::string(tool) +
         ", arguments: {}}\n"
         "        transport:\n"
         "          stdio:\n"
         "            command: '" +
         std::string(kMcpStub) +
         "'\n"
         "            arguments: " +
         std::string(stub_arguments) + "\n";
}

std::string HttpGet(const std::string& uri) {
  return "      call: http\n      with:\n        method: get\n        endpoint: '" + uri + "'\n";
}

bool ValidUtf8(const std::string& text) {
  try {
    static_cast<void>(Json(text).dump());
    return true;
  } catch (const Json::exception&) {
    return false;
  }
}

struct Gate {
  RunId run;
  std::vector<storage::Event> before;  // recorded before the gate opened
};

class BadToolTest : public EngineFixture {
 protected:
  // Starts `workflow`, waits until it is parked on the gate, keeps its history.
  Gate StartGated(const std::string& workflow) {
    Gate gate{Start(workflow).run_id, {}};
    RunInfo parked = WaitFor(gate.run);
    EXPECT_EQ(parked.header.status, RunStatus::kWaiting) << Show(parked);
    gate.before = History(gate.run);
    EXPECT_EQ(KindsOf(gate.before), (std::vector<std::string>{"run_started", "task_routed",
                                                              "task_completed", "task_routed"}));
    return gate;
  }

  // Opens the gate and waits (bounded) for the run to stop; then checks that nothing
  // recorded before is lost.
  RunInfo Open(const Gate& gate, std::chrono::milliseconds timeout = 30s) {
    Must(engine_->SendSignal(gate.run, {"go", "test", "", Json::object(), {}}));
    Result<RunInfo> info = engine_->Wait(gate.run, timeout);
    EXPECT_TRUE(info.ok()) << "the run did not stop: " << info.status().ToString();
    ExpectHistoryStartsWith(gate.run, gate.before);
    ExpectVerifies(gate.run);
    if (!info.ok()) throw std::runtime_error("run did not stop");
    return std::move(info).value();
  }

  RunInfo RunGated(const std::string& workflow, std::chrono::milliseconds timeout = 30s) {
    return Open(StartGated(workflow), timeout);
  }

  // The run faulted at /do/2/misbehave with this error, recorded as the effect's outcome,
  // the task's fault and the run's stop, after exactly the events a failed call makes.
  void ExpectFaulted(
      const RunInfo& info, std::string_view type, int status, std::string_view title,
      std::initializer_list<std::string_view> detail,
      storage::EffectOutcome::Status outcome = storage::EffectOutcome::Status::kFailed) {
    EXPECT_EQ(info.header.status, RunStatus::kFailed) << Show(info);
    EXPECT_EQ(info.header.stop_reason, StopReason::kFaulted) << Show(info);
    EXPECT_EQ(info.error.type, type) << Show(info);
    EXPECT_EQ(info.error.status, status) << Show(info);
    EXPECT_EQ(info.error.title, title) << Show(info);
    EXPECT_EQ(info.error.instance, kTaskPath) << Show(info);
    for (std::string_view part : detail) EXPECT_TRUE(HasSubstr(info.error.detail, part));
    EXPECT_TRUE(ValidUtf8(info.error.detail));
    std::vector<storage::Event> events = History(info.header.run_id);
    EXPECT_EQ(KindsOf(events),
              (std::vector<std::string>{"run_started", "task_routed", "task_completed",
                                        "task_routed", "event_received", "task_completed",
                                        "task_routed", "policy_verdict", "effect_intent", "effect_outcome",
                                        "task_completed", "run_stopped"}));
    if (events.size() != 11) return;
    const auto* effect = std::get_if<storage::EffectOutcome>(&events[8].body);
    ASSERT_NE(effect, nullptr);
    EXPECT_EQ(effect->status, outcome);
    EXPECT_EQ(effect->error.type, info.error.type);
    EXPECT_EQ(effect->error.title, info.error.title);
    EXPECT_EQ(effect->error.detail, info.error.detail);
    EXPECT_EQ(events[8].task_path, kTaskPath);
    const auto* task = std::get_if<storage::TaskCompleted>(&events[9].body);
    ASSERT_NE(task, nullptr);
    EXPECT_EQ(task->status, storage::TaskCompleted::Status::kFaulted);
    EXPECT_EQ(task->error, info.error);
  }

  // The run stopped with a timeout error at /do/2/misbehave: either the task's own timeout
  // fired or the call's deadline (capped by it) did first.
  void ExpectTimedOut(const RunInfo& info) {
    EXPECT_EQ(info.header.status, RunStatus::kFailed) << Show(info);
    EXPECT_EQ(info.header.stop_reason, StopReason::kFaulted) << Show(info);
    EXPECT_EQ(info.error.type, error_type::kTimeout) << Show(info);
    EXPECT_EQ(info.error.status, 408) << Show(info);
    EXPECT_TRUE(info.error.title == "Task timed out" || info.error.title == "Tool call timed out")
        << Show(info);
    EXPECT_EQ(info.error.instance, kTaskPath) << Show(info);
  }

  void RegisterCommandTool(const std::string& name, const std::string& command,
                           uint64_t timeout_ms = 0) {
    ToolSpec spec;
    spec.name = name;
    spec.executor = "command";
    spec.config = Json{{"command", command}};
    spec.timeout_ms = timeout_ms;
    Must(engine_->RegisterTool(spec));
  }
};

// ---- shell commands --------------------------------------------------------------------

TEST_F(BadToolTest, ShellExitingNonZeroFaultsWithTheCodeAndStderr) {
  Apply(Gated("exit7", Shell("echo partial; echo \"boom: disk full\" >&2; exit 7")));
  RunInfo info = RunGated("exit7");
  ExpectFaulted(info, error_type::kRuntime, 500, "Command failed",
                {"command 'echo partial; echo \"boom: disk full\" >&2; exit 7' exited with code 7",
                 "; stderr: boom: disk full"});
}

TEST_F(BadToolTest, ShellStderrIsQuotedByItsTailOnly) {
  // 300 KB of stderr, then the line that explains the failure.
  Apply(Gated("noisy", Shell("head -c 300000 /dev/zero | tr \"\\\\000\" e >&2; "
                             "echo \" LAST: the real cause\" >&2; exit 1")));
  RunInfo info = RunGated("noisy");
  ExpectFaulted(info, error_type::kRuntime, 500, "Command failed",
                {"exited with code 1", "; stderr: ... eee", "eee LAST: the real cause"});
  EXPECT_LE(info.error.detail.size(), limits::tool_stderr_bytes_max + 512);
}

TEST_F(BadToolTest, ShellCrashingBySignalFaultsNamingTheSignal) {
  Apply(Gated("segv", Shell("echo about to crash >&2; kill -SEGV $$")));
  ExpectFaulted(RunGated("segv"), error_type::kRuntime, 500, "Command failed",
                {"was killed by signal 11 (SIGSEGV)", "; stderr: about to crash"});
  Apply(Gated("abrt", Shell("kill -ABRT $$")));
  ExpectFaulted(RunGated("abrt"), error_type::kRuntime, 500, "Command failed",
                {"was killed by signal 6 (SIGABRT); stderr was empty"});
}

TEST_F(BadToolTest, ShellGarbageOutputBecomesValidText) {
  // Invalid UTF-8 and a NUL on stdout of a command that succeeds: a string with U+FFFD.
  Apply(Gated("garbage", Shell("printf \"ok \\\\377\\\\376 x\\\\000y\"")));
  RunInfo info = RunGated("garbage");
  ASSERT_EQ(info.header.status, RunStatus::kCompleted) << Show(info);
  EXPECT_EQ(*info.output, Json(std::string("ok \xEF\xBF\xBD\xEF\xBF\xBD x\0y", 13)));
  // On stderr of a command that fails: the detail stays valid UTF-8.
  Apply(Gated("garbage2", Shell("printf \"bad \\\\377 bytes\" >&2; exit 2")));
  ExpectFaulted(RunGated("garbage2"), error_type::kRuntime, 500, "Command failed",
                {"exited with code 2; stderr: bad \xEF\xBF\xBD bytes"});
}

TEST_F(BadToolTest, ShellOutputOverTheToolCapIsCutAndFaults) {
  Apply(Gated("flood", Shell("head -c 20000000 /dev/zero")));
  ExpectFaulted(RunGated("flood"), error_type::kRuntime, 500, "Command output too large",
                {"wrote more than 16777216 bytes to stdout; its process group was killed"});
}

TEST_F(BadToolTest, ShellOutputOverTheRunDataBoundFaults) {
  // 5 MB: under the tool's cap, over what a run may hold as a task's output.
  Apply(Gated("fivemb", Shell("head -c 5000000 /dev/zero | tr \"\\\\000\" x")));
  RunInfo info = RunGated("fivemb");
  EXPECT_EQ(info.header.status, RunStatus::kFailed) << Show(info);
  EXPECT_EQ(info.error.type, error_type::kRuntime);
  EXPECT_EQ(info.error.title, "Output too large");
  EXPECT_TRUE(HasSubstr(info.error.detail,
                        "larger than " + std::to_string(limits::run_data_bytes_max) + " bytes"));
  EXPECT_EQ(info.error.instance, kTaskPath);
}

TEST_F(BadToolTest, ShellOutputOverTheTransitionBoundFaultsInsteadOfHanging) {
  // 12 MB: under the tool's cap (16 MB), over what one transition may hold (8 MB): the
  // run faults ("too large") instead of waiting for an outcome it could not record.
  Apply(Gated("twelvemb", Shell("head -c 12000000 /dev/zero | tr \"\\\\000\" x")));
  Gate gate = StartGated("twelvemb");
  Must(engine_->SendSignal(gate.run, {"go", "test", "", Json::object(), {}}));
  Result<RunInfo> info = engine_->Wait(gate.run, 30s);
  ExpectHistoryStartsWith(gate.run, gate.before);
  ExpectVerifies(gate.run);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->header.status, RunStatus::kFailed) << Show(*info);
  EXPECT_EQ(info->error.type, error_type::kRuntime) << Show(*info);
  EXPECT_TRUE(HasSubstr(info->error.title, "too large")) << Show(*info);
}

TEST_F(BadToolTest, ShellOutputWithinTheRunDataBoundIsKept) {
  // 900 kB: within limits::run_data_bytes_max (1 MiB), so the run must carry it on
  // through a timer (the run parks with it as its data; the state, holding it several
  // times, goes to a blob) and complete.
  Apply(Gated("twomb", Shell("head -c 900000 /dev/zero | tr \"\\\\000\" x") +
                           "  - pause:\n"
                           "      wait: {milliseconds: 20}\n"
                           "  - measure:\n"
                           "      set: {length: '${ length }'}\n"));
  Gate gate = StartGated("twomb");
  Must(engine_->SendSignal(gate.run, {"go", "test", "", Json::object(), {}}));
  Result<RunInfo> info = engine_->Wait(gate.run, 30s);
  ExpectHistoryStartsWith(gate.run, gate.before);
  ExpectVerifies(gate.run);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_EQ(info->header.status, RunStatus::kCompleted) << Show(*info);
  EXPECT_EQ(*info->output, (Json{{"length", 900'000}}));
}

TEST_F(BadToolTest, ShellHangingIsStoppedByTheTaskTimeoutAndKilled) {
  const std::string pids = dir_.Sub("hang.pid");
  Apply(Gated("hang", Shell("echo $$ > " + pids + ".sh; sleep 60 & echo $! > " + pids + "; wait") +
                          "      timeout:\n        after: {milliseconds: 1000}\n"));
  const auto started = std::chrono::steady_clock::now();
  RunInfo info = RunGated("hang");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 20s);
  ExpectTimedOut(info);
  int shell = ReadPid(pids + ".sh", 1s);
  int sleeper = ReadPid(pids, 1s);
  ASSERT_GT(shell, 0);
  ASSERT_GT(sleeper, 0);
  EXPECT_TRUE(ProcessGone(shell, 10s)) << "the shell " << shell << " is still running";
  EXPECT_TRUE(ProcessGone(sleeper, 10s)) << "its child " << sleeper << " is still running";
}

TEST_F(BadToolTest, CommandToolHangingIsStoppedByTheToolTimeout) {
  const std::string pid_file = dir_.Sub("tool.pid");
  RegisterCommandTool("slow.tool", "echo $$ > " + pid_file + "; exec sleep 60", 1000);
  Apply(Gated("slowtool", "      call: slow.tool\n      with: {n: 1}\n"));
  ExpectFaulted(RunGated("slowtool"), error_type::kTimeout, 408, "Tool call timed out",
                {"command 'echo $$ > " + pid_file +
                 "; exec sleep 60' did not finish within 1000 "
                 "ms; its process group was killed"},
                storage::EffectOutcome::Status::kTimedOut);
  int pid = ReadPid(pid_file, 1s);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(ProcessGone(pid, 10s)) << "the tool " << pid << " is still running";
}

TEST_F(BadToolTest, CommandToolExitingNonZeroFaultsWithTheCodeAndStderr) {
  RegisterCommandTool("quota.tool", "cat > /dev/null; echo \"quota exceeded\" >&2; exit 4");
  Apply(Gated("quota", "      call: quota.tool\n      with: {user: ana}\n"));
  ExpectFaulted(RunGated("quota"), error_type::kRuntime, 500, "Command failed",
                {"exited with code 4; stderr: quota exceeded"});
}

TEST_F(BadToolTest, CommandToolPrintingInvalidJsonFaults) {
  // A command tool answers JSON on stdout (catalog.h); anything else is a broken tool.
  // BUG: the text is returned as a JSON string (run.shell's rule for stdout) and the run
  // completes as if the tool had answered.
  RegisterCommandTool("text.tool", "cat > /dev/null; echo \"this is {not json\"");
  Apply(Gated("notjson", "      call: text.tool\n      with: {}\n"));
  RunInfo info = RunGated("notjson");
  EXPECT_EQ(info.header.status, RunStatus::kFailed) << Show(info);
  EXPECT_EQ(info.error.type, error_type::kRuntime) << Show(info);
  EXPECT_TRUE(HasSubstr(info.error.detail, "JSON")) << Show(info);
  EXPECT_TRUE(HasSubstr(info.error.detail, "this is {not json")) << Show(info);
  EXPECT_EQ(info.error.instance, kTaskPath);

  RegisterCommandTool("bytes.tool", "cat > /dev/null; printf \"\\\\377\\\\376{\"");
  Apply(Gated("bytes", "      call: bytes.tool\n      with: {}\n"));
  RunInfo bytes = RunGated("bytes");
  EXPECT_EQ(bytes.header.status, RunStatus::kFailed) << Show(bytes);
  EXPECT_TRUE(HasSubstr(bytes.error.detail, "JSON")) << Show(bytes);
  EXPECT_TRUE(ValidUtf8(bytes.error.detail));
}

// ---- try/catch -------------------------------------------------------------------------

TEST_F(BadToolTest, TryCatchesAFailedCommandAndSeesItsError) {
  Apply(Gated("caught", R"(      try:
        - failing:
            run:
              shell:
                command: 'echo "no space left" >&2; exit 28'
      catch:
        errors:
          with: {type: https://open-workflow-specification.org/spec/1.0.0/errors/runtime}
        as: failure
        do:
          - recover:
              set:
                status: '${ $failure.status }'
                detail: '${ $failure.detail }'
                instance: '${ $failure.instance }'
)"));
  RunInfo info = RunGated("caught");
  ASSERT_EQ(info.header.status, RunStatus::kCompleted) << Show(info);
  EXPECT_EQ(*info.output,
            (Json{{"status", 500},
                  {"detail",
                   "command 'echo \"no space left\" >&2; exit 28' exited with code 28; "
                   "stderr: no space left"},
                  {"instance", "/do/2/misbehave/try/0/failing"}}));
}

TEST_F(BadToolTest, TryCatchesATimeoutAndTheHungProcessIsKilled) {
  const std::string pid_file = dir_.Sub("caught.pid");
  Apply(Gated("caughttimeout", R"(      try:
        - slow:
            run:
              shell:
                command: 'echo $$ > )" +
                                   pid_file + R"(; exec sleep 60'
            timeout:
              after: {milliseconds: 1000}
      catch:
        errors:
          with: {type: https://open-workflow-specification.org/spec/1.0.0/errors/timeout}
        do:
          - fallback:
              set: {fallback: true}
)"));
  RunInfo info = RunGated("caughttimeout");
  ASSERT_EQ(info.header.status, RunStatus::kCompleted) << Show(info);
  EXPECT_EQ(*info.output, (Json{{"fallback", true}}));
  int pid = ReadPid(pid_file, 1s);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(ProcessGone(pid, 10s)) << "the command " << pid << " outlived its timeout";
}

TEST_F(BadToolTest, ACatchForAnotherErrorTypeLetsTheFaultThrough) {
  Apply(Gated("uncaught", R"(      try:
        - failing:
            run:
              shell:
                command: 'exit 9'
      catch:
        errors:
          with: {type: https://open-workflow-specification.org/spec/1.0.0/errors/communication}
        do:
          - never:
              set: {caught: true}
)"));
  RunInfo info = RunGated("uncaught");
  EXPECT_EQ(info.header.status, RunStatus::kFailed) << Show(info);
  EXPECT_EQ(info.error.type, error_type::kRuntime);
  EXPECT_EQ(info.error.title, "Command failed");
  EXPECT_TRUE(HasSubstr(info.error.detail, "'exit 9' exited with code 9; stderr was empty"));
  EXPECT_EQ(info.error.instance, "/do/2/misbehave/try/0/failing");
}

// ---- HTTP ------------------------------------------------------------------------------

class BadHttpTest : public BadToolTest {
 protected:
  void SetUp() override {
    BadToolTest::SetUp();
    server_ = Must(StubServer::Start());
  }
  void TearDown() override {
    server_->Stop();
    BadToolTest::TearDown();
  }
  std::string Url(std::string_view path) const { return server_->BaseUrl() + std::string(path); }

  std::unique_ptr<StubServer> server_;
};

TEST_F(BadHttpTest, ConnectionRefused) {
  RefusingPort closed;
  ASSERT_NE(closed.port(), 0);
  const std::string uri = "http://127.0.0.1:" + std::to_string(closed.port()) + "/orders";
  Apply(Gated("refused", HttpGet(uri)));
  ExpectFaulted(RunGated("refused"), error_type::kCommunication, 503, "Service unavailable",
                {"cannot connect", "refused"});
}

TEST_F(BadHttpTest, ServerError) {
  server_->Route("GET", "/orders", [](const StubRequest&) {
    return StubResponse::Text(500, "database exploded: " + std::string(2000, 'x'));
  });
  Apply(Gated("http500", HttpGet(Url("/orders"))));
  RunInfo info = RunGated("http500");
  ExpectFaulted(info, error_type::kCommunication, 500, "Internal Server Error",
                {"GET " + Url("/orders"), "returned 500", "database exploded: xxx"});
  EXPECT_LT(info.error.detail.size(), 1000u);
}

TEST_F(BadHttpTest, ServerClosingMidResponse) {
  server_->Route("GET", "/orders", [](const StubRequest&) {
    return StubResponse::Truncate(200, std::string(1000, 'a'), "application/json");
  });
  Apply(Gated("truncated", HttpGet(Url("/orders"))));
  ExpectFaulted(RunGated("truncated"), error_type::kCommunication, 502,
                "Connection closed mid-response", {"before the response was complete"});
}

TEST_F(BadHttpTest, ServerClosingWithoutAnswering) {
  server_->Route("GET", "/orders", [](const StubRequest&) { return StubResponse::Close(); });
  Apply(Gated("closed", HttpGet(Url("/orders"))));
  RunInfo info = RunGated("closed");
  EXPECT_EQ(info.error.type, error_type::kCommunication) << Show(info);
  EXPECT_EQ(info.error.status, 502) << Show(info);
  EXPECT_TRUE(HasSubstr(info.error.detail, "without answering")) << Show(info);
}

TEST_F(BadHttpTest, InvalidJsonWithAJsonContentType) {
  server_->Route("GET", "/orders", [](const StubRequest&) {
    return StubResponse::Text(200, "{\"id\": 1,", "application/json");
  });
  Apply(Gated("badjson", HttpGet(Url("/orders"))));
  ExpectFaulted(RunGated("badjson"), error_type::kCommunication, 502,
                "Invalid JSON in HTTP response",
                {"application/json", "invalid JSON", "{\"id\": 1,"});
}

TEST_F(BadHttpTest, HangingServerIsStoppedByTheTaskTimeout) {
  server_->Route("GET", "/orders", [](const StubRequest&) { return StubResponse::Hang(); });
  Apply(Gated("httphang",
              HttpGet(Url("/orders")) + "      timeout:\n        after: {milliseconds: 300}\n"));
  ExpectTimedOut(RunGated("httphang"));
}

TEST_F(BadHttpTest, CatalogHttpToolGettingAServerError) {
  server_->Route("POST", "/charge", [](const StubRequest&) {
    return StubResponse::Json(500, {{"error", "card processor down"}});
  });
  ToolSpec spec;
  spec.name = "billing.charge";
  spec.executor = "http";
  spec.config = Json{{"method", "post"}, {"endpoint", Url("/charge")}};
  Must(engine_->RegisterTool(spec));
  Apply(Gated("charge", "      call: billing.charge\n      with: {amount: 5}\n"));
  ExpectFaulted(RunGated("charge"), error_type::kCommunication, 500, "Internal Server Error",
                {"POST " + Url("/charge"), "returned 500", "card processor down"});
  EXPECT_EQ(server_->Count("POST", "/charge"), 1u);
}

// ---- MCP -------------------------------------------------------------------------------

TEST_F(BadToolTest, McpServerDyingMidCallFaultsAndTheNextCallRestartsIt) {
  Apply(Gated("mcpdie", McpCall("die")));
  ExpectFaulted(
      RunGated("mcpdie"), error_type::kRuntime, 502, "MCP server failed",
      {"exited with code 3 during tools/call 'die'", "stderr: mcp_stub: dying: asked to"});
  // The same server (same transport) serves the next run: a fresh process answers.
  Apply(Gated("mcpecho", McpCall("echo")));
  RunInfo next = RunGated("mcpecho");
  EXPECT_EQ(next.header.status, RunStatus::kCompleted) << Show(next);
}

TEST_F(BadToolTest, McpServerDyingOnItsFirstCall) {
  Apply(Gated("mcpdie1", McpCall("echo", "['--die-on-call', '1']")));
  ExpectFaulted(RunGated("mcpdie1"), error_type::kRuntime, 502, "MCP server failed",
                {"exited with code 3 during tools/call 'echo'", "dying: call 1"});
}

TEST_F(BadToolTest, McpServerPrintingGarbage) {
  Apply(Gated("mcpgarbage", McpCall("garbage")));
  ExpectFaulted(RunGated("mcpgarbage"), error_type::kRuntime, 502, "MCP server failed",
                {"wrote a line that is not JSON-RPC", "garbage \xEF\xBF\xBD\xEF\xBF\xBD{",
                 "during tools/call 'garbage'"});
  Apply(Gated("mcpgarbage1", McpCall("echo", "['--garbage-on-call', '1']")));
  ExpectFaulted(RunGated("mcpgarbage1"), error_type::kRuntime, 502, "MCP server failed",
                {"this is not JSON-RPC"});
}

TEST_F(BadToolTest, McpToolReportingIsError) {
  Apply(Gated("mcpfail", McpCall("fail")));
  ExpectFaulted(RunGated("mcpfail"), error_type::kRuntime, 500, "MCP tool failed",
                {"tools/call 'fail': the tool failed on purpose"});
}

TEST_F(BadToolTest, McpToolHangingIsStoppedAndTheServerKilled) {
  Apply(R"(document: {dsl: '1.0.3', namespace: bad, name: mcphang, version: '1.0.0'}
do:
  - pid:
      call: mcp
      with:
        method: tools/call
        parameters: {name: pid, arguments: {}}
        transport:
          stdio:
            command: ')" +
        std::string(kMcpStub) + R"('
      output:
        as: .structuredContent.pid
  - gate:
      listen:
        to:
          one:
            with: {type: go}
  - misbehave:
      call: mcp
      with:
        method: tools/call
        parameters: {name: hang, arguments: {}}
        transport:
          stdio:
            command: ')" +
        std::string(kMcpStub) + R"('
      timeout:
        after: {milliseconds: 1000}
)");
  StartResult started = Start("mcphang");
  RunInfo parked = WaitFor(started.run_id);
  ASSERT_EQ(parked.header.status, RunStatus::kWaiting) << Show(parked);
  std::vector<storage::Event> before = History(started.run_id);
  // The pid task's output is in its task_completed event.
  int pid = -1;
  for (const storage::Event& e : before) {
    if (const auto* done = std::get_if<storage::TaskCompleted>(&e.body)) {
      if (done->task_name == "pid") pid = Json::parse(done->output.json).get<int>();
    }
  }
  ASSERT_GT(pid, 0);
  Must(engine_->SendSignal(started.run_id, {"go", "test", "", Json::object(), {}}));
  RunInfo info = WaitFor(started.run_id);
  ExpectTimedOut(info);
  ExpectHistoryStartsWith(started.run_id, before);
  ExpectVerifies(started.run_id);
  EXPECT_TRUE(ProcessGone(pid, 10s)) << "the hung MCP server " << pid << " is still running";
}

TEST_F(BadToolTest, CatalogMcpToolWhoseServerDies) {
  ToolSpec spec;
  spec.name = "crm.lookup";
  spec.executor = "mcp";
  spec.config = Json{
      {"transport",
       {{"stdio", {{"command", std::string(kMcpStub)}, {"arguments", {"--die-on-call", "1"}}}}}},
      {"tool", "echo"}};
  Must(engine_->RegisterTool(spec));
  Apply(Gated("crm", "      call: crm.lookup\n      with: {id: 7}\n"));
  ExpectFaulted(RunGated("crm"), error_type::kRuntime, 502, "MCP server failed",
                {"exited with code 3 during tools/call 'echo'", "dying: call 1"});
}

}  // namespace
}  // namespace cairn::engine::badinput
