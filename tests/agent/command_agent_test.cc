// The command agent against real programs, through ExecutorAgentIo and the engine's shell
// executor (process groups, bounded output, kills at the deadline).
#include "agent/command_agent.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "agent/config.h"
#include "agent/executor_io.h"
#include "engine/process/shell_executor.h"
#include "tests/agent/agent_test_util.h"
#include "tests/process/process_test_util.h"
#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::agent {
namespace {

using namespace std::chrono_literals;
using cairn::testing::HasSubstr;
using cairn::testing::IsError;
using cairn::testing::Must;
using engine::process::testing::ExitsWithin;
using engine::process::testing::IoPool;
using testing::MakeRequest;
using testing::Show;

// Reads its request, keeps what it saw in $SEEN, answers options[1].
constexpr const char* kGoodAgent = R"(#!/usr/bin/env python3
import json, os, sys
request = json.load(sys.stdin)
with open(os.environ["SEEN"], "w") as seen:
    json.dump({"stdin": request, "argv": sys.argv[1:], "mode": os.environ.get("MODE")}, seen)
print(json.dumps({"option": request["options"][1], "rationale": "picked by a program",
                  "confidence": 0.6, "model": "triage-v2", "extra": "ignored",
                  "usage": {"prompt_tokens": 10, "completion_tokens": 2, "cost": 0.0015}}))
)";

void WriteFile(const std::string& path, std::string_view text, bool executable = false) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  ASSERT_TRUE(out) << path;
  if (executable) {
    ASSERT_EQ(::chmod(path.c_str(), 0755), 0) << path;
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class CommandAgentTest : public ::testing::Test {
 protected:
  CommandAgentTest() {
    engine::process::ShellOptions options;
    options.output_bytes_max = 1 << 20;  // so that the executor's own cap is cheap to reach
    shell_ = std::make_unique<engine::process::ShellExecutor>(pool_.executor(), options);
    io_ = std::make_unique<ExecutorAgentIo>(nullptr, shell_.get(), nullptr);
  }
  ~CommandAgentTest() override { shell_->Shutdown(); }

  DecisionOutcome Run(std::string command, std::optional<std::chrono::milliseconds> timeout = {},
                      std::map<std::string, std::string> environment = {}) {
    CommandAgentConfig config;
    config.command.command = std::move(command);
    config.command.environment = std::move(environment);
    config.timeout = timeout;
    std::shared_ptr<Agent> agent = MakeCommandAgent("triage", std::move(config));
    EXPECT_EQ(agent->kind(), "command");
    return Decide(*agent, request_, *io_, clock_);
  }

  cairn::testing::TempDir dir_{"cairn-agent-"};
  IoPool pool_{2};
  std::unique_ptr<engine::process::ShellExecutor> shell_;
  std::unique_ptr<ExecutorAgentIo> io_;
  DecisionRequest request_ = MakeRequest();
  SystemClock clock_;
};

TEST_F(CommandAgentTest, AgentsFileResolvesTheProgramAndPassesEverything) {
  std::filesystem::create_directories(dir_.Sub("agents"));
  WriteFile(dir_.Sub("agents/good.py"), kGoodAgent, true);
  WriteFile(dir_.Sub("agents.yaml"), R"(
agents:
  triage:
    kind: command
    command: ./agents/good.py "$@"
    arguments: [--strict, "two words"]
    environment: {MODE: prod, SEEN: )" + dir_.Sub("seen.json") +
                                         R"(}
    timeout: 20s
)");
  auto registry = Must(AgentRegistry::LoadFile(dir_.Sub("agents.yaml")));
  std::shared_ptr<Agent> agent = registry->Find("triage");
  ASSERT_NE(agent, nullptr);
  EXPECT_EQ(registry->Find(""), nullptr) << "no default";

  request_.limits.max_cost_micros = 2000;
  request_.limits.max_tokens = 100;
  DecisionOutcome outcome = Decide(*agent, request_, *io_, clock_);
  ASSERT_EQ(outcome.reason, Reason::kDecided) << Show(outcome);
  EXPECT_EQ(outcome.option, "business");
  EXPECT_EQ(outcome.rationale, "picked by a program");
  EXPECT_EQ(outcome.confidence, 0.6);
  EXPECT_EQ(outcome.model, "triage-v2");
  EXPECT_EQ(outcome.steps_used, 1u);
  EXPECT_EQ(outcome.usage.prompt_tokens, 10u);
  EXPECT_EQ(outcome.usage.completion_tokens, 2u);
  EXPECT_TRUE(outcome.usage.cost_known);
  EXPECT_EQ(outcome.usage.cost_micros, 1500);
  EXPECT_EQ(outcome.usage.calls, 1u);

  Json seen = Json::parse(ReadFile(dir_.Sub("seen.json")));
  EXPECT_EQ(seen["argv"], Json::parse(R"(["--strict", "two words"])"));
  EXPECT_EQ(seen["mode"], "prod");
  Json stdin_json = seen["stdin"];
  EXPECT_EQ(stdin_json["goal"], "pick a plan");
  EXPECT_EQ(stdin_json["options"], Json::parse(R"(["starter", "business", "enterprise"])"));
  EXPECT_EQ(stdin_json["context"], request_.context);
  EXPECT_EQ(stdin_json["tools"], Json::parse(R"([{"name": "crm.get_usage",
      "description": "usage of an account", "input_schema": {}}])"));
  EXPECT_EQ(stdin_json["run_id"], "run-1");
  EXPECT_EQ(stdin_json["task_path"], "/do/0/choosePlan");
  EXPECT_EQ(stdin_json["workflow"], "acme/plans:1.0.0");
  EXPECT_EQ(stdin_json["decision_key"], "run-1#1");
  EXPECT_EQ(stdin_json["limits"]["max_steps"], 4);
  const int64_t timeout_ms = stdin_json["limits"]["timeout_ms"].get<int64_t>();
  EXPECT_GT(timeout_ms, 9000);  // the decision's 10 s, less what was spent before the run
  EXPECT_LE(timeout_ms, 10000);

  EXPECT_EQ(outcome.request_transcript[0]["command"]["stdin"]["goal"], "pick a plan");
  EXPECT_EQ(outcome.response_transcript[0]["command"]["exit_code"], 0);
}

TEST_F(CommandAgentTest, NonZeroExitIsAnAgentErrorWithTheStderrTail) {
  DecisionOutcome outcome = Run("echo 'boom: bad input' >&2; echo '{}'; exit 3");
  EXPECT_EQ(outcome.reason, Reason::kAgentError) << Show(outcome);
  EXPECT_EQ(outcome.detail, "command agent 'triage': exited with code 3: boom: bad input");
  EXPECT_EQ(outcome.usage.calls, 1u);
  EXPECT_FALSE(outcome.usage.cost_known);

  std::string long_stderr =
      "python3 -c \"import sys; sys.stderr.write('e' * 5000 + 'END')\"; exit 1";
  DecisionOutcome tail = Run(long_stderr);
  EXPECT_EQ(tail.reason, Reason::kAgentError);
  EXPECT_TRUE(HasSubstr(tail.detail, "exited with code 1: ...eee"));
  EXPECT_TRUE(HasSubstr(tail.detail, "eeeEND"));
  EXPECT_LT(tail.detail.size(), 600u);

  DecisionOutcome killed = Run("kill -9 $$");
  EXPECT_EQ(killed.reason, Reason::kAgentError) << Show(killed);
  EXPECT_TRUE(HasSubstr(killed.detail, "exited with code 137"));
}

TEST_F(CommandAgentTest, GarbageIsMalformed) {
  struct Case {
    const char* command;
    const char* detail;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"echo this is not json", "the answer"},
           {"true", "the program printed no answer on stdout"},
           {"echo '[1, 2]'", "the answer is array, not an object"},
           {R"(echo '{"option": 3, "rationale": "r"}')", "option: expected a string, found number"},
           {R"(echo '{"rationale": "r"}')", "the answer has no 'option'"},
           {R"(echo '{"option": "starter"}')", "the answer has no 'rationale'"},
           {R"(echo '{"option": "starter", "rationale": "r", "confidence": "high"}')",
            "confidence: expected a number, found string"},
           {R"(echo '{"option": "starter", "rationale": "r", "usage": {"prompt_tokens": -1}}')",
            "usage.prompt_tokens: expected a non-negative integer"},
           {R"(echo '{"option": "starter", "rationale": "r", "usage": {"cost": "free"}}')",
            "usage.cost: expected a number"},
           {R"(echo '{"option": "starter", "rationale": "r", "usage": [1]}')",
            "usage: expected an object, found array"},
           {R"(echo '{"option": "starter", "rationale": "r", "model": 7}')",
            "model: expected a string, found number"},
           {R"(echo '{"option": "starter", "rationale": "r"} trailing')", "the answer"},
       }) {
    DecisionOutcome outcome = Run(c.command);
    EXPECT_EQ(outcome.reason, Reason::kMalformedAnswer) << c.command << " -> " << Show(outcome);
    EXPECT_TRUE(HasSubstr(outcome.detail, c.detail)) << c.command;
  }
}

TEST_F(CommandAgentTest, AnOptionOutsideTheAllowlistIsRefused) {
  DecisionOutcome outcome = Run(R"(echo '{"option": "platinum", "rationale": "r"}')");
  EXPECT_EQ(outcome.reason, Reason::kOptionNotAllowed) << Show(outcome);
}

TEST_F(CommandAgentTest, HugeStdoutIsTooLarge) {
  // Over the answer bound (64 KiB) but under the executor's cap.
  DecisionOutcome outcome = Run(
      R"cmd(python3 -c "import json; print(json.dumps({'option': 'starter', 'rationale': 'x' * 70000}))")cmd");
  EXPECT_EQ(outcome.reason, Reason::kAnswerTooLarge) << Show(outcome);
  EXPECT_TRUE(HasSubstr(outcome.detail, "more than the limit of 65536"));
  EXPECT_EQ(outcome.response_transcript[0]["command"]["stdout"].get<std::string>().size(), 65536u);
  // Over the executor's own cap: the process group is killed, still too large.
  DecisionOutcome flood = Run("head -c 3000000 /dev/zero | tr '\\0' x");
  EXPECT_EQ(flood.reason, Reason::kAnswerTooLarge) << Show(flood);
  EXPECT_TRUE(HasSubstr(flood.detail, "Command output too large"));
}

TEST_F(CommandAgentTest, ARationaleOverItsBoundIsTooLarge) {
  DecisionOutcome outcome = Run(
      R"cmd(python3 -c "import json; print(json.dumps({'option': 'starter', 'rationale': 'x' * 5000}))")cmd");
  EXPECT_EQ(outcome.reason, Reason::kAnswerTooLarge) << Show(outcome);
  EXPECT_TRUE(HasSubstr(outcome.detail, "rationale is 5000 bytes"));
}

TEST_F(CommandAgentTest, AProgramPastTheDecisionsTimeIsKilled) {
  request_.limits.timeout = 500ms;
  const std::string pid_file = dir_.Sub("pid");
  DecisionOutcome outcome = Run("echo $$ > '" + pid_file + "'; exec sleep 30");
  EXPECT_EQ(outcome.reason, Reason::kTimeout) << Show(outcome);
  EXPECT_TRUE(HasSubstr(outcome.detail, "command agent 'triage': out of time after"));
  EXPECT_TRUE(HasSubstr(outcome.detail, "its process group was killed"));
  EXPECT_LT(outcome.duration_ms, 10'000u);
  const pid_t pid = static_cast<pid_t>(std::atoi(ReadFile(pid_file).c_str()));
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(ExitsWithin(pid, 10s)) << "the sleeping program is gone";
}

TEST_F(CommandAgentTest, ThePerRunTimeoutIsKeptToo) {
  DecisionOutcome outcome = Run("exec sleep 30", 300ms);
  EXPECT_EQ(outcome.reason, Reason::kTimeout) << Show(outcome);
  EXPECT_EQ(outcome.detail,
            "command agent 'triage': out of time after 300 ms: command 'exec sleep 30' did not "
            "finish within 300 ms; its process group was killed");
}

TEST_F(CommandAgentTest, NoReportedCostFailsUnderACostCap) {
  const std::string answer = R"(echo '{"option": "starter", "rationale": "r"}')";
  EXPECT_EQ(Run(answer).reason, Reason::kDecided);
  request_.limits.max_cost_micros = 1'000'000;
  DecisionOutcome outcome = Run(answer);
  EXPECT_EQ(outcome.reason, Reason::kCostBudgetExceeded) << Show(outcome);
  EXPECT_TRUE(HasSubstr(outcome.detail, "cost unknown under a cost cap"));
  EXPECT_EQ(Run(R"(echo '{"option": "starter", "rationale": "r", "usage": {"cost": 0}}')").reason,
            Reason::kDecided);
}

TEST_F(CommandAgentTest, ReportedTokensCountAgainstTheBudget) {
  request_.limits.max_tokens = 100;
  DecisionOutcome outcome = Run(
      R"(echo '{"option": "starter", "rationale": "r", "usage": {"prompt_tokens": 90, "completion_tokens": 11}}')");
  EXPECT_EQ(outcome.reason, Reason::kTokenBudgetExceeded) << Show(outcome);
}

TEST(CommandAgentIoTest, IoErrorsMapToReasons) {
  struct Case {
    Status error;
    Reason reason;
  };
  DecisionRequest request = MakeRequest();
  ManualClock clock;
  for (const Case& c : std::initializer_list<Case>{
           {Status::Unavailable("Too many commands"), Reason::kAgentUnavailable},
           {Status::ResourceExhausted("Command output too large"), Reason::kAnswerTooLarge},
           {Status::DeadlineExceeded("did not start within 10 ms"), Reason::kTimeout},
           {Status::FailedPrecondition("Command could not be started"), Reason::kAgentError},
           {Status::InvalidArgument("Invalid shell arguments"), Reason::kAgentError},
       }) {
    testing::FakeAgentIo io;
    std::chrono::milliseconds given{0};
    io.SetCommand([&](const CommandSpec& command, const std::string& stdin_text,
                      std::chrono::milliseconds timeout) -> Result<CommandReply> {
      given = timeout;
      EXPECT_EQ(command.command, "triage --now");
      EXPECT_EQ(Json::parse(stdin_text)["decision_key"], "run-1#1");
      return c.error;
    });
    CommandAgentConfig config;
    config.command.command = "triage --now";
    config.timeout = 2s;
    DecisionOutcome outcome = Decide(*MakeCommandAgent("triage", config), request, io, clock);
    EXPECT_EQ(outcome.reason, c.reason) << c.error.ToString() << " -> " << Show(outcome);
    EXPECT_TRUE(HasSubstr(outcome.detail, c.error.message()));
    EXPECT_EQ(given, 2s) << "the per-run timeout, under the decision's 10 s";
    EXPECT_EQ(outcome.usage.calls, 1u);
    EXPECT_FALSE(outcome.usage.cost_known);
    EXPECT_EQ(outcome.response_transcript[0]["command_error"]["message"], c.error.message());
  }
}

TEST_F(CommandAgentTest, WithoutAShellExecutor) {
  ExecutorAgentIo io(nullptr, nullptr, nullptr);
  CommandAgentConfig config;
  config.command.command = "true";
  DecisionOutcome outcome = Decide(*MakeCommandAgent("triage", config), request_, io, clock_);
  EXPECT_EQ(outcome.reason, Reason::kAgentError) << Show(outcome);
  EXPECT_TRUE(HasSubstr(outcome.detail, "no shell executor"));
  EXPECT_TRUE(IsError(io.CallTool("crm.get_usage", Json::object(), 1s).status(),
                      StatusCode::kFailedPrecondition, {"no tool caller"}));
}

TEST_F(CommandAgentTest, ToolCallsGoToTheEnginesCaller) {
  std::string asked;
  ExecutorAgentIo io(nullptr, nullptr,
                     [&](const std::string& name, const Json& arguments,
                         std::chrono::milliseconds timeout) -> Result<Json> {
                       asked = name + " " + DumpJson(arguments);
                       return Json{{"ok", true}};
                     });
  Result<Json> result = io.CallTool("crm.get_usage", {{"a", 1}}, 1s);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, Json::parse(R"({"ok": true})"));
  EXPECT_EQ(asked, R"(crm.get_usage {"a":1})");
}

}  // namespace
}  // namespace cairn::agent
