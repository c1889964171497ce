// ChildProcess on its own: how children are set up, and that they are always reaped.
#include "engine/process/child_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "tests/process/process_test_util.h"
#include "tests/support/assertions.h"

namespace cairn::engine::process {
namespace {

using namespace std::chrono_literals;
using cairn::testing::HasSubstr;
using cairn::testing::IsError;
using testing::IoPool;

struct Outcome {
  std::string out;
  std::string err;
  ExitStatus exit;
};

// Runs `script` with /bin/sh; returns what it wrote and how it ended.
Outcome RunScript(IoPool& pool, const std::string& script, const std::string& stdin_bytes = "",
                  std::shared_ptr<ChildSet> children = std::make_shared<ChildSet>()) {
  Strand strand = boost::asio::make_strand(pool.executor());
  auto outcome = std::make_shared<Outcome>();
  auto finished = std::make_shared<std::promise<void>>();
  std::future<void> done = finished->get_future();
  boost::asio::post(strand, [&, finished] {
    ChildProcess::Spec spec;
    spec.program = "/bin/sh";
    spec.argv = {"sh", "-c", script};
    spec.environment = {"PATH=/usr/bin:/bin"};
    auto child = cairn::testing::Must(ChildProcess::Spawn(strand, spec, children));
    ChildProcess::Handlers handlers;
    handlers.on_stdout = [outcome](std::string_view b) { outcome->out.append(b); };
    handlers.on_stderr = [outcome](std::string_view b) { outcome->err.append(b); };
    handlers.on_finished = [outcome, finished](const ExitStatus& exit) {
      outcome->exit = exit;
      finished->set_value();
    };
    child->Start(std::move(handlers));
    child->Write(stdin_bytes);
    child->CloseStdin();
  });
  EXPECT_EQ(done.wait_for(30s), std::future_status::ready);
  return *outcome;
}

TEST(ChildProcess, RunsAndReportsExit) {
  IoPool pool;
  Outcome outcome = RunScript(pool, "cat; echo err >&2; exit 5", "in");
  EXPECT_EQ(outcome.out, "in");
  EXPECT_EQ(outcome.err, "err\n");
  EXPECT_EQ(outcome.exit.code, 5);
  EXPECT_EQ(outcome.exit.Describe(), "exited with code 5");
  EXPECT_FALSE(outcome.exit.success());
  EXPECT_EQ(RunScript(pool, "kill -KILL $$").exit.Describe(), "was killed by signal 9 (SIGKILL)");
}

TEST(ChildProcess, ChildIsLeaderOfANewSession) {
  IoPool pool;
  // /proc/self/stat of the shell: pid (1), pgrp (5), session (6).
  Outcome outcome = RunScript(pool, "read -r stat < /proc/$$/stat; echo $stat");
  std::istringstream fields(outcome.out);
  std::string pid, comm, state, ppid, pgrp, session;
  fields >> pid >> comm >> state >> ppid >> pgrp >> session;
  EXPECT_EQ(pgrp, pid);
  EXPECT_EQ(session, pid);
}

TEST(ChildProcess, OnlyStandardDescriptorsAreInherited) {
  IoPool pool;
  int leaked = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(leaked, 3);
  Outcome outcome = RunScript(pool, "ls /proc/$$/fd");
  ::close(leaked);
  EXPECT_EQ(outcome.out, "0\n1\n2\n") << outcome.err;
}

// The bits of /proc/<pid>/status's `field` (a hex signal mask) in `text`.
uint64_t SignalMask(const std::string& text, const std::string& field) {
  size_t at = text.find(field + ":\t");
  if (at == std::string::npos) return ~uint64_t{0};
  return std::stoull(text.substr(at + field.size() + 2, 16), nullptr, 16);
}

TEST(ChildProcess, SignalsStartAtTheirDefaults) {
  IoPool pool;
  EnsureSigpipeIgnored();
  struct sigaction current {};
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, SIG_IGN);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);  // only this thread; the child starts clean
  // exec: the program itself reports, not a shell that may block signals around a fork.
  Outcome outcome = RunScript(pool, "exec grep -E '^Sig(Ign|Blk)' /proc/self/status");
  pthread_sigmask(SIG_UNBLOCK, &blocked, nullptr);
  EXPECT_EQ(SignalMask(outcome.out, "SigBlk"), 0u) << outcome.out;
  // Nothing the engine ignores stays ignored. (glibc's posix_spawn leaves its two
  // internal signals, 32 and 33, ignored; glibc reinstalls them when it needs them.)
  uint64_t internal = (uint64_t{1} << 31) | (uint64_t{1} << 32);
  EXPECT_EQ(SignalMask(outcome.out, "SigIgn") & ~internal, 0u) << outcome.out;
}

TEST(ChildProcess, SpawnErrorsNameTheProgram) {
  IoPool pool;
  Strand strand = boost::asio::make_strand(pool.executor());
  auto children = std::make_shared<ChildSet>();
  ChildProcess::Spec spec;
  spec.program = "/nonexistent/program";
  spec.argv = {"program"};
  EXPECT_TRUE(IsError(ChildProcess::Spawn(strand, spec, children).status(), StatusCode::kNotFound,
                      {"'/nonexistent/program'", "No such file"}));
  cairn::testing::TempDir dir("cairn-child-");
  spec.program = dir.path();  // a directory
  EXPECT_TRUE(IsError(ChildProcess::Spawn(strand, spec, children).status(),
                      StatusCode::kFailedPrecondition, {"Permission denied"}));
  EXPECT_EQ(children->size(), 0u);
}

TEST(ChildProcess, KillAllAndWaitAllReaped) {
  IoPool pool;
  auto children = std::make_shared<ChildSet>();
  std::vector<std::future<Outcome>> runs;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(std::async(std::launch::async, [&pool, children] {
      return RunScript(pool, "exec sleep 1000", "", children);
    }));
  }
  ASSERT_TRUE(testing::Eventually([&] { return children->size() == 3; }));
  children->KillAll();
  EXPECT_TRUE(children->WaitAllReaped(30s));
  for (auto& run : runs) EXPECT_EQ(run.get().exit.signal, SIGKILL);
}

TEST(ChildProcess, EnvironmentHelpers) {
  ::setenv("CAIRN_CHILD_TEST", "a=b", 1);
  Environment environment = EnvironmentFromProcess();
  EXPECT_EQ(environment.at("CAIRN_CHILD_TEST"), "a=b");
  EXPECT_EQ(EnvironmentEntries({{"B", "2"}, {"A", "1"}}), (std::vector<std::string>{"A=1", "B=2"}));
}

TEST(ExitStatus, ShellCodes) {
  EXPECT_EQ((ExitStatus{3, 0, true}).ShellCode(), 3);
  EXPECT_EQ((ExitStatus{0, 15, true}).ShellCode(), 143);
  EXPECT_EQ((ExitStatus{0, 0, false}).ShellCode(), -1);
  EXPECT_EQ((ExitStatus{0, 0, false}).Describe(), "ended with an unknown status");
  EXPECT_TRUE((ExitStatus{0, 0, true}).success());
}

}  // namespace
}  // namespace cairn::engine::process
