// ShellExecutor end to end: real /bin/sh processes on a thread pool.
#include "engine/process/shell_executor.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/json.h"
#include "base/random.h"
#include "tests/process/process_test_util.h"
#include "tests/support/assertions.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace cairn::engine::process {
namespace {

using namespace std::chrono_literals;
using cairn::testing::HasSubstr;
using testing::CallAndWait;
using testing::ExitsWithin;
using testing::IoPool;
using testing::LineFifo;
using testing::PendingCall;

ToolRequest Shell(Json arguments, std::chrono::milliseconds timeout = 30s) {
  ToolRequest request;
  request.tool = "shell";
  request.arguments = std::move(arguments);
  request.idempotency_key = "key-1";
  request.run_id = RunId::FromTrusted("run-1");
  request.task_path = "/do/0/task";
  request.timeout = timeout;
  return request;
}

ToolResponse RunShell(ShellExecutor& executor, Json arguments) {
  return CallAndWait(executor, Shell(std::move(arguments)));
}

// Prints the response when an expectation about it fails.
std::string Show(const ToolResponse& response) {
  return "status=" + std::to_string(static_cast<int>(response.status)) +
         " output=" + DumpJson(response.output) + " type=" + response.error.type +
         " title=" + response.error.title + " detail=" + response.error.detail;
}

class ShellExecutorTest : public ::testing::Test {
 protected:
  IoPool pool_;
  cairn::testing::TempDir dir_{"cairn-shell-"};
};

TEST_F(ShellExecutorTest, EchoRoundTripsJsonAndText) {
  ShellExecutor executor(pool_.executor());
  ToolResponse json = RunShell(executor, {{"command", R"(echo '{"a": [1, 2], "b": "x"}')"}});
  ASSERT_EQ(json.status, ToolResponse::Status::kOk) << Show(json);
  EXPECT_EQ(json.output, Json::parse(R"({"a": [1, 2], "b": "x"})"));

  ToolResponse text = RunShell(executor, {{"command", "echo hello world"}});
  EXPECT_EQ(text.output, "hello world") << Show(text);
  // Only one trailing newline goes.
  EXPECT_EQ(RunShell(executor, {{"command", "printf 'two\\n\\n'"}}).output, "two\n");
  EXPECT_EQ(RunShell(executor, {{"command", "echo 42"}}).output, 42);
  EXPECT_EQ(RunShell(executor, {{"command", "true"}}).output, "");
}

TEST_F(ShellExecutorTest, ArgumentsArePositionalAndNeverParsed) {
  ShellExecutor executor(pool_.executor());
  ToolResponse response =
      RunShell(executor, {{"command", R"(printf '%s|%s|%s' "$1" "$2" "$#")"},
                          {"arguments", {"a b", "$(touch /tmp/cairn-pwned); `id`; 'q' \"d\""}}});
  EXPECT_EQ(response.output, "a b|$(touch /tmp/cairn-pwned); `id`; 'q' \"d\"|2") << Show(response);
  // Numbers and booleans are taken as their JSON text.
  EXPECT_EQ(
      RunShell(executor, {{"command", R"(printf '%s %s' "$1" "$2")"}, {"arguments", {8080, true}}})
          .output,
      "8080 true");

  // Random printable arguments come back byte for byte.
  uint64_t seed = cairn::testing::TestSeed();
  Random random(seed);
  for (int i = 0; i < 20; ++i) {
    std::string argument;
    size_t length = random.Uniform(40);
    for (size_t k = 0; k < length; ++k) {
      argument.push_back(static_cast<char>(random.Range(' ', '~')));
    }
    ToolResponse echoed = RunShell(
        executor,
        {{"command", R"(printf '%s' "$1")"}, {"arguments", {argument}}, {"return", "all"}});
    ASSERT_EQ(echoed.status, ToolResponse::Status::kOk) << Show(echoed);
    EXPECT_EQ(echoed.output["stdout"], argument) << "seed=" << seed;
  }
}

TEST_F(ShellExecutorTest, EnvironmentHasBaseCommandAndCairnVariables) {
  ShellOptions options;
  options.environment = Environment{{"PATH", "/usr/bin:/bin"}, {"BASE", "base-value"}};
  ShellExecutor executor(pool_.executor(), options);
  ToolResponse response = RunShell(
      executor,
      {{"command",
        R"(printf '%s|%s|%s|%s|%s|%s' "$BASE" "$FOO" "$CAIRN_IDEMPOTENCY_KEY" "$CAIRN_RUN_ID" "$CAIRN_TASK_PATH" "${HOME-unset}")"},
       {"environment", {{"FOO", "bar baz"}, {"CAIRN_IDEMPOTENCY_KEY", "forged"}, {"N", 7}}}});
  EXPECT_EQ(response.output, "base-value|bar baz|key-1|run-1|/do/0/task|unset") << Show(response);
}

TEST_F(ShellExecutorTest, EngineEnvironmentIsInheritedByDefault) {
  ::setenv("CAIRN_PROCESS_TEST_VAR", "inherited", 1);
  ShellExecutor executor(pool_.executor());
  EXPECT_EQ(RunShell(executor, {{"command", "printf %s \"$CAIRN_PROCESS_TEST_VAR\""}}).output,
            "inherited");
}

TEST_F(ShellExecutorTest, StdinStringJsonOrNothing) {
  ShellExecutor executor(pool_.executor());
  ToolResponse text = RunShell(
      executor, {{"command", "cat"}, {"stdin", "line one\nline two\n"}, {"return", "all"}});
  EXPECT_EQ(text.output["stdout"], "line one\nline two\n") << Show(text);

  Json value = {{"x", 1}, {"list", {true, nullptr, "s"}}};
  ToolResponse json = RunShell(executor, {{"command", "cat"}, {"stdin", value}});
  EXPECT_EQ(json.output, value) << Show(json);

  // No stdin: the command reads end of file at once instead of hanging.
  EXPECT_EQ(RunShell(executor, {{"command", "cat; echo done"}}).output, "done");
  EXPECT_EQ(RunShell(executor, {{"command", "cat; echo done"}, {"stdin", nullptr}}).output, "done");
}

TEST_F(ShellExecutorTest, CatalogCommandToolTakesJsonOnStdinAndAnswersJson) {
  // What the engine does for a catalog "command" tool: arguments on stdin, JSON back.
  ShellExecutor executor(pool_.executor());
  Json arguments = {{"plan", "pro"}, {"seats", 12}};
  ToolResponse response = RunShell(
      executor,
      {{"command", R"(read -r line; printf '{"received": %s, "tool": "%s"}' "$line" "$1")"},
       {"arguments", {"billing.change_plan"}},
       {"stdin", arguments},
       {"return", "stdout"}});
  ASSERT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
  EXPECT_EQ(response.output, (Json{{"received", arguments}, {"tool", "billing.change_plan"}}));
}

TEST_F(ShellExecutorTest, EachReturnMode) {
  ShellExecutor executor(pool_.executor());
  const std::string command = R"(echo '{"out": 1}'; echo '{"err": 2}' >&2; exit 3)";
  const std::string ok_command = R"(echo '{"out": 1}'; echo '{"err": 2}' >&2)";
  EXPECT_EQ(RunShell(executor, {{"command", ok_command}}).output, (Json{{"out", 1}}));
  EXPECT_EQ(RunShell(executor, {{"command", ok_command}, {"return", "stdout"}}).output,
            (Json{{"out", 1}}));
  EXPECT_EQ(RunShell(executor, {{"command", ok_command}, {"return", "stderr"}}).output,
            (Json{{"err", 2}}));
  EXPECT_EQ(RunShell(executor, {{"command", ok_command}, {"return", "none"}}).output, nullptr);

  // code and all: a non-zero exit is data.
  ToolResponse code = RunShell(executor, {{"command", command}, {"return", "code"}});
  ASSERT_EQ(code.status, ToolResponse::Status::kOk) << Show(code);
  EXPECT_EQ(code.output, 3);
  ToolResponse all = RunShell(executor, {{"command", command}, {"return", "all"}});
  ASSERT_EQ(all.status, ToolResponse::Status::kOk) << Show(all);
  EXPECT_EQ(all.output,
            (Json{{"code", 3}, {"stdout", "{\"out\": 1}\n"}, {"stderr", "{\"err\": 2}\n"}}));
  EXPECT_EQ(RunShell(executor, {{"command", "true"}, {"return", "code"}}).output, 0);
}

TEST_F(ShellExecutorTest, NonZeroExitFailsWithStderrTail) {
  ShellExecutor executor(pool_.executor());
  for (const char* mode : {"stdout", "stderr", "none"}) {
    ToolResponse response = RunShell(
        executor, {{"command", "echo partial; echo 'disk is full' >&2; exit 3"}, {"return", mode}});
    ASSERT_EQ(response.status, ToolResponse::Status::kFailed) << Show(response);
    EXPECT_EQ(response.error.type, error_type::kRuntime);
    EXPECT_EQ(response.error.status, 500);
    EXPECT_EQ(response.error.title, "Command failed");
    EXPECT_TRUE(HasSubstr(response.error.detail, "exited with code 3")) << mode;
    EXPECT_TRUE(HasSubstr(response.error.detail, "stderr: disk is full")) << mode;
    EXPECT_TRUE(HasSubstr(response.error.detail, "'echo partial;")) << mode;
  }
  // Only the tail of a long stderr is kept.
  ShellOptions options;
  options.stderr_tail_bytes_max = 100;
  ShellExecutor small(pool_.executor(), options);
  ToolResponse long_stderr = RunShell(
      small, {{"command", "head -c 100000 /dev/zero | tr '\\0' a >&2; echo THE-END >&2; exit 1"}});
  ASSERT_EQ(long_stderr.status, ToolResponse::Status::kFailed);
  EXPECT_TRUE(HasSubstr(long_stderr.error.detail, "aaaa THE-END") ||
              HasSubstr(long_stderr.error.detail, "aaaaTHE-END"))
      << long_stderr.error.detail;
  EXPECT_LT(long_stderr.error.detail.size(), 400u);
}

TEST_F(ShellExecutorTest, KilledBySignal) {
  ShellExecutor executor(pool_.executor());
  ToolResponse response = RunShell(executor, {{"command", "echo about to die >&2; kill -9 $$"}});
  ASSERT_EQ(response.status, ToolResponse::Status::kFailed) << Show(response);
  EXPECT_TRUE(HasSubstr(response.error.detail, "was killed by signal 9 (SIGKILL)"));
  EXPECT_TRUE(HasSubstr(response.error.detail, "about to die"));
  // As data, like a shell's $?.
  EXPECT_EQ(RunShell(executor, {{"command", "kill -TERM $$"}, {"return", "code"}}).output,
            128 + 15);
}

TEST_F(ShellExecutorTest, TimeoutKillsTheWholeProcessGroup) {
  ShellExecutor executor(pool_.executor());
  LineFifo fifo(dir_);
  // A background grandchild and the shell itself, both reporting their pid, then waiting.
  PendingCall call(executor,
                   Shell({{"command", "sleep 1000 & echo $! > \"$1\"; echo $$ > \"$1\"; wait"},
                          {"arguments", {fifo.path()}}},
                         1500ms));
  std::vector<pid_t> pids = fifo.ReadPids(2);
  ToolResponse response = call.Get();
  ASSERT_EQ(response.status, ToolResponse::Status::kTimedOut) << Show(response);
  EXPECT_EQ(response.error.type, error_type::kTimeout);
  EXPECT_TRUE(HasSubstr(response.error.detail, "did not finish within 1500 ms"));
  EXPECT_TRUE(HasSubstr(response.error.detail, "process group was killed"));
  for (pid_t pid : pids) EXPECT_TRUE(ExitsWithin(pid)) << "pid " << pid << " survived";
}

TEST_F(ShellExecutorTest, BackgroundLeftoversAreKilledWhenTheShellExits) {
  ShellExecutor executor(pool_.executor());
  LineFifo fifo(dir_);
  // The background sleep holds stdout open; the call must still end with the shell.
  auto started = std::chrono::steady_clock::now();
  ToolResponse response = RunShell(
      executor,
      {{"command", "sleep 1000 & echo $! > \"$1\"; echo done"}, {"arguments", {fifo.path()}}});
  EXPECT_EQ(response.output, "done") << Show(response);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1500ms);  // not the drain period
  std::vector<pid_t> pids = fifo.ReadPids(1);
  for (pid_t pid : pids) EXPECT_TRUE(ExitsWithin(pid));
}

TEST_F(ShellExecutorTest, HugeOutputIsCappedAndTheProcessKilled) {
  ShellOptions options;
  options.output_bytes_max = 1 << 20;
  ShellExecutor executor(pool_.executor(), options);
  ToolResponse finite = RunShell(executor, {{"command", "head -c 5000000 /dev/zero"}});
  ASSERT_EQ(finite.status, ToolResponse::Status::kFailed) << Show(finite);
  EXPECT_EQ(finite.error.title, "Command output too large");
  EXPECT_TRUE(HasSubstr(finite.error.detail, "more than 1048576 bytes to stdout"));
  // Endless output: only the kill ends it.
  ToolResponse endless = RunShell(executor, {{"command", "yes"}});
  EXPECT_EQ(endless.error.title, "Command output too large") << Show(endless);
  ToolResponse endless_stderr = RunShell(executor, {{"command", "yes >&2"}, {"return", "stderr"}});
  EXPECT_TRUE(HasSubstr(endless_stderr.error.detail, "bytes to stderr")) << Show(endless_stderr);
  // Output that is not returned is not captured, so not capped.
  ToolResponse ignored = RunShell(
      executor, {{"command", "head -c 5000000 /dev/zero; echo x >&2"}, {"return", "none"}});
  EXPECT_EQ(ignored.status, ToolResponse::Status::kOk) << Show(ignored);
}

TEST_F(ShellExecutorTest, DefaultCapIsTheToolOutputLimit) {
  ShellExecutor executor(pool_.executor());
  ToolResponse at_limit =
      RunShell(executor, {{"command", "head -c " + std::to_string(limits::tool_output_bytes_max) +
                                          " /dev/zero | tr '\\0' a"}});
  ASSERT_EQ(at_limit.status, ToolResponse::Status::kOk) << Show(at_limit).substr(0, 300);
  EXPECT_EQ(at_limit.output.get_ref<const std::string&>().size(), limits::tool_output_bytes_max);
  ToolResponse over = RunShell(
      executor,
      {{"command", "head -c " + std::to_string(limits::tool_output_bytes_max + 1) + " /dev/zero"}});
  EXPECT_EQ(over.error.title, "Command output too large") << Show(over).substr(0, 300);
}

TEST_F(ShellExecutorTest, GarbageAndInvalidUtf8NeverThrow) {
  ShellExecutor executor(pool_.executor());
  ToolResponse bytes = RunShell(executor, {{"command", R"(printf '\377\376ab\300\257c\n')"}});
  ASSERT_EQ(bytes.status, ToolResponse::Status::kOk) << Show(bytes);
  EXPECT_EQ(bytes.output,
            "\xEF\xBF\xBD\xEF\xBF\xBD"
            "ab\xEF\xBF\xBD\xEF\xBF\xBD"
            "c");
  EXPECT_NO_THROW(static_cast<void>(bytes.output.dump()));  // strict dump: valid UTF-8

  EXPECT_EQ(RunShell(executor, {{"command", R"(printf '{"a": ')"}}).output, "{\"a\": ");
  EXPECT_EQ(RunShell(executor, {{"command", R"(printf '[1, 2] trailing')"}}).output,
            "[1, 2] trailing");

  ToolResponse all =
      RunShell(executor, {{"command", R"(printf '\377'; printf '\376' >&2)"}, {"return", "all"}});
  EXPECT_NO_THROW(static_cast<void>(all.output.dump()));
  ToolResponse failed = RunShell(executor, {{"command", R"(printf 'bad \377 bytes' >&2; exit 1)"}});
  EXPECT_TRUE(HasSubstr(failed.error.detail, "bad \xEF\xBF\xBD bytes")) << Show(failed);
  EXPECT_NO_THROW(static_cast<void>(Json(failed.error.detail).dump()));
}

TEST_F(ShellExecutorTest, InvalidArgumentsAreConfigurationErrors) {
  ShellExecutor executor(pool_.executor());
  struct Case {
    Json arguments;
    const char* expected;
  };
  std::vector<Case> cases = {
      {Json::array(), "expected an object, got array"},
      {Json::object(), "command: required"},
      {{{"command", 42}}, "command: expected a string, got number"},
      {{{"command", ""}}, "command: must not be empty"},
      {{{"command", "true"}, {"arguments", "x"}}, "arguments: expected an array"},
      {{{"command", "true"}, {"arguments", {Json::object()}}}, "arguments[0]: expected a string"},
      {{{"command", "true"}, {"environment", {{"A=B", "x"}}}}, "'A=B' is not a valid"},
      {{{"command", "true"}, {"environment", {{"A", {1}}}}}, "environment.A: expected a string"},
      {{{"command", "true"}, {"return", "everything"}}, "return: expected one of"},
      {{{"command", "true"}, {"await", "yes"}}, "await: expected a boolean"},
      {{{"command", std::string("a\0b", 3)}}, "NUL"},
  };
  for (const Case& c : cases) {
    ToolResponse response = RunShell(executor, c.arguments);
    ASSERT_EQ(response.status, ToolResponse::Status::kFailed) << DumpJson(c.arguments);
    EXPECT_EQ(response.error.type, error_type::kConfiguration);
    EXPECT_EQ(response.error.status, 400);
    EXPECT_TRUE(HasSubstr(response.error.detail, c.expected)) << DumpJson(c.arguments);
  }
}

TEST_F(ShellExecutorTest, ShellThatCannotStart) {
  ShellOptions options;
  options.shell = "/nonexistent/sh";
  ShellExecutor executor(pool_.executor(), options);
  ToolResponse response = RunShell(executor, {{"command", "true"}});
  ASSERT_EQ(response.status, ToolResponse::Status::kFailed);
  EXPECT_EQ(response.error.title, "Command could not be started");
  EXPECT_TRUE(HasSubstr(response.error.detail, "'/nonexistent/sh': No such file or directory"));
}

TEST_F(ShellExecutorTest, StdinNobodyReadsIsNoProblem) {
  ShellExecutor executor(pool_.executor());
  // 4 MiB that `true` never reads: the write fails with EPIPE, not SIGPIPE.
  ToolResponse response =
      RunShell(executor, {{"command", "true"}, {"stdin", std::string(4 << 20, 'x')}});
  EXPECT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
}

TEST_F(ShellExecutorTest, ManyConcurrentCalls) {
  ShellOptions options;
  options.processes_max = 8;
  ShellExecutor executor(pool_.executor(), options);
  uint64_t seed = cairn::testing::TestSeed();
  Random random(seed);
  std::vector<std::string> words;
  std::vector<std::unique_ptr<PendingCall>> calls;
  for (int i = 0; i < 150; ++i) {
    words.push_back("w" + std::to_string(random.Next64()));
    calls.push_back(std::make_unique<PendingCall>(
        executor, Shell({{"command", "printf %s \"$1\""}, {"arguments", {words.back()}}})));
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    ToolResponse response = calls[i]->Get();
    EXPECT_EQ(response.output, words[i]) << "seed=" << seed << " " << Show(response);
    EXPECT_EQ(calls[i]->done_calls(), 1);
  }
  EXPECT_TRUE(testing::Eventually([&] { return executor.InFlight() == 0; }));
}

TEST_F(ShellExecutorTest, QueuedCallTimesOutWhenNoSlotFrees) {
  ShellOptions options;
  options.processes_max = 1;
  ShellExecutor executor(pool_.executor(), options);
  LineFifo fifo(dir_);
  PendingCall blocker(executor, Shell({{"command", "echo $$ > \"$1\"; exec sleep 1000"},
                                       {"arguments", {fifo.path()}}}));
  std::vector<pid_t> pids = fifo.ReadPids(1);
  ToolResponse queued = CallAndWait(executor, Shell({{"command", "true"}}, 200ms));
  ASSERT_EQ(queued.status, ToolResponse::Status::kTimedOut) << Show(queued);
  EXPECT_TRUE(HasSubstr(queued.error.detail, "did not start within 200 ms"));
  executor.Shutdown();
  EXPECT_EQ(blocker.Get().error.title, "Shell executor shutting down");
  for (pid_t pid : pids) EXPECT_FALSE(testing::ProcessExists(pid));
}

TEST_F(ShellExecutorTest, AwaitFalseAnswersAtOnceAndReapsTheChild) {
  ShellExecutor executor(pool_.executor());
  LineFifo fifo(dir_);
  ToolResponse response =
      RunShell(executor, {{"command", "read -r line; echo \"$line $$\" > \"$1\""},
                          {"arguments", {fifo.path()}},
                          {"stdin", "hello\n"},
                          {"await", false}});
  ASSERT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
  EXPECT_EQ(response.output, nullptr);
  std::vector<std::string> lines = fifo.ReadLines(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(HasSubstr(lines[0], "hello "));
  pid_t pid = std::atoi(lines[0].substr(6).c_str());
  // Reaped in the background: no zombie left.
  EXPECT_TRUE(testing::Eventually([&] { return !testing::ProcessExists(pid); }));
  EXPECT_TRUE(testing::Eventually([&] { return executor.LiveChildren() == 0; }));
}

TEST_F(ShellExecutorTest, ShutdownKillsDetachedCommands) {
  ShellExecutor executor(pool_.executor());
  LineFifo fifo(dir_);
  ToolResponse response = RunShell(executor, {{"command", "echo $$ > \"$1\"; exec sleep 1000"},
                                              {"arguments", {fifo.path()}},
                                              {"await", false}});
  ASSERT_EQ(response.status, ToolResponse::Status::kOk) << Show(response);
  std::vector<pid_t> pids = fifo.ReadPids(1);
  EXPECT_EQ(executor.LiveChildren(), 1u);
  executor.Shutdown();
  EXPECT_EQ(executor.LiveChildren(), 0u);
  for (pid_t pid : pids) EXPECT_FALSE(testing::ProcessExists(pid));
}

TEST_F(ShellExecutorTest, ShutdownWithCallsInFlight) {
  ShellExecutor executor(pool_.executor());
  LineFifo fifo(dir_);
  std::vector<std::unique_ptr<PendingCall>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::make_unique<PendingCall>(
        executor,
        Shell({{"command", "echo $$ > \"$1\"; exec sleep 1000"}, {"arguments", {fifo.path()}}})));
  }
  std::vector<pid_t> pids = fifo.ReadPids(4);
  // A few more that may not have started yet.
  for (int i = 0; i < 4; ++i) {
    calls.push_back(
        std::make_unique<PendingCall>(executor, Shell({{"command", "exec sleep 1000"}})));
  }
  executor.Shutdown();
  EXPECT_EQ(executor.InFlight(), 0u);
  for (auto& call : calls) {
    ASSERT_TRUE(call->Ready());  // Shutdown waited for every answer
    ToolResponse response = call->Get();
    EXPECT_EQ(response.status, ToolResponse::Status::kFailed);
    EXPECT_EQ(response.error.status, 503);
    EXPECT_TRUE(HasSubstr(response.error.detail, "shutting down"));
    EXPECT_EQ(call->done_calls(), 1);
  }
  for (pid_t pid : pids) EXPECT_FALSE(testing::ProcessExists(pid)) << pid;

  // After Shutdown: refused, but never inside Call().
  PendingCall late(executor, Shell({{"command", "true"}}));
  ToolResponse refused = late.Get();
  EXPECT_EQ(refused.error.title, "Shell executor shutting down");
  EXPECT_NE(late.thread(), std::this_thread::get_id());
  executor.Shutdown();  // idempotent
}

}  // namespace
}  // namespace cairn::engine::process
