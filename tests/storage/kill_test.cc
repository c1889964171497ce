// Crash test: storage_kill_child (tests/storage/kill_child.cc) writes transitions into a
// store and reports each one the store acknowledged; this test SIGKILLs it at a random
// moment, reopens the store in-process and holds it to every acknowledgement. The data
// directory is reused across iterations, so history accumulates and every child also
// resumes the runs its predecessors left active.
//
// Seeded (printed; CAIRN_TEST_SEED=<n>): the seed picks each child's workload and when
// it is killed. CAIRN_KILL_ITERATIONS=<n> sets the number of kills (default 30).
//
// No sleeps: the parent waits on the child's pipe with poll(2), first for the child's
// first acknowledgement (so each iteration makes progress), then until the random kill
// time.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/random.h"
#include "base/status.h"
#include "storage/store.h"
#include "tests/support/seed.h"
#include "tests/support/spawned_child.h"
#include "tests/support/store_audit.h"
#include "tests/support/temp_dir.h"

#ifndef CAIRN_KILL_CHILD
#error "CAIRN_KILL_CHILD must name the storage_kill_child binary (tests/CMakeLists.txt)"
#endif


namespace cairn::storage {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kChildAckFd = 3;
constexpr milliseconds kChildStartTimeout{60'000};  // first ack; generous for sanitizers
constexpr milliseconds kChildExitTimeout{60'000};   // EOF after SIGKILL
constexpr int64_t kKillDelayMsMin = 5;
constexpr int64_t kKillDelayMsMax = 300;
constexpr int kDefaultIterations = 30;

int Iterations() {
  const char* env = std::getenv("CAIRN_KILL_ITERATIONS");
  if (env == nullptr || env[0] == '\0') return kDefaultIterations;
  int n = 0;
  auto [end, ec] = std::from_chars(env, env + std::strlen(env), n);
  if (ec != std::errc() || *end != '\0' || n <= 0) {
    ADD_FAILURE() << "CAIRN_KILL_ITERATIONS='" << env << "' is not a positive number";
    return kDefaultIterations;
  }
  return n;
}

int RemainingMs(SteadyClock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// One storage_kill_child process, reading its ack pipe (kChildAckFd) line by line.
std::unique_ptr<testing::SpawnedChild> SpawnChild(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CAIRN_KILL_CHILD};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::SpawnedChild::Spawn(argv, testing::SpawnedChild::Options{kChildAckFd, ""});
}

// What the children acknowledged, per run.
struct Acked {
  uint64_t next_seq = 0;
  bool stopped = false;
};

// Parses "<run> <next_seq>[ stopped]" and folds it into `acked`. Acks of one run must
// come in increasing order (one transition in flight per run).
void RecordAck(const std::string& line, std::map<RunId, Acked>* acked) {
  const size_t space = line.find(' ');
  ASSERT_NE(space, std::string::npos) << "malformed ack line '" << line << "'";
  auto run = RunId::Parse(std::string_view(line).substr(0, space));
  ASSERT_TRUE(run.ok()) << "malformed ack line '" << line << "'";
  std::string_view rest = std::string_view(line).substr(space + 1);
  bool stopped = false;
  if (const size_t s = rest.find(' '); s != std::string_view::npos) {
    ASSERT_EQ(rest.substr(s + 1), "stopped") << "malformed ack line '" << line << "'";
    stopped = true;
    rest = rest.substr(0, s);
  }
  uint64_t next_seq = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), next_seq);
  ASSERT_TRUE(ec == std::errc() && end == rest.data() + rest.size())
      << "malformed ack line '" << line << "'";
  Acked& a = (*acked)[*run];
  EXPECT_FALSE(a.stopped) << "run " << run->str() << " acknowledged after it stopped";
  EXPECT_GT(next_seq, a.next_seq) << "run " << run->str() << " acknowledged out of order";
  a.next_seq = next_seq;
  a.stopped = stopped;
}

Result<std::unique_ptr<Store>> OpenInProcess(const std::string& dir, const cairn::Clock& clock,
                                             bool read_only = false) {
  StoreOptions options;
  options.clock = &clock;
  options.read_only = read_only;
  options.owner_description = "storage_kill_test";
  options.block_cache_bytes = 8 << 20;
  return Store::Open(dir, std::move(options));
}

// Opens the store the child left behind and checks it against every acknowledgement.
// Returns the audit for the summary.
testing::StoreAudit CheckAfterKill(const std::string& dir, const std::map<RunId, Acked>& acked) {
  SystemClock clock;
  auto store = OpenInProcess(dir, clock);
  EXPECT_TRUE(store.ok()) << "reopen after SIGKILL: " << store.status().ToString();
  if (!store.ok()) return {};
  testing::StoreAudit audit = testing::AuditStore(**store);
  EXPECT_TRUE(audit.problems.empty()) << testing::Describe(audit);
  for (const auto& [id, a] : acked) {
    auto it = audit.runs.find(id);
    if (it == audit.runs.end()) {
      ADD_FAILURE() << "run " << id.str() << " was acknowledged up to " << a.next_seq
                    << " but is gone";
      continue;
    }
    EXPECT_GE(it->second.next_seq, a.next_seq)
        << "run " << id.str() << ": acknowledged up to " << a.next_seq << ", reopened at "
        << it->second.next_seq;
    if (a.stopped) {
      EXPECT_TRUE(IsTerminal(it->second.status) && it->second.next_seq == a.next_seq)
          << "run " << id.str() << " was acknowledged stopped at " << a.next_seq << ", reopened "
          << Name(it->second.status) << " at " << it->second.next_seq;
    }
  }
  EXPECT_TRUE((*store)->Close().ok());
  return audit;
}

struct KillSummary {
  int iterations = 0;
  uint64_t acks = 0;
  uint64_t acks_of_resumed_runs = 0;  // acks for runs an earlier child started
  // As the last check found the store.
  size_t runs = 0;
  uint64_t runs_stopped = 0;
  uint64_t events = 0;
};

// Runs `iterations` spawn-kill-check cycles on `dir`.
void KillLoop(const std::string& dir, const char* durability, const std::string& tag_prefix,
              int iterations, uint64_t seed, KillSummary* summary) {
  Random random(seed);
  std::map<RunId, Acked> acked;  // over all iterations: nothing may ever be lost
  for (int i = 0; i < iterations; ++i) {
    SCOPED_TRACE("iteration " + std::to_string(i));
    const std::string tag = tag_prefix + std::to_string(i);
    const uint64_t child_seed = random.Next64();
    const int64_t runs = random.Range(8, 64);
    const int64_t kill_after_ms = random.Range(kKillDelayMsMin, kKillDelayMsMax);
    auto child = SpawnChild({dir, std::to_string(kChildAckFd), std::to_string(child_seed), tag,
                               durability, std::to_string(runs)});
    ASSERT_NE(child, nullptr);
    std::vector<std::string> lines;
    const auto start_deadline = SteadyClock::now() + kChildStartTimeout;
    while (lines.empty() && SteadyClock::now() < start_deadline) {
      if (!child->Read(milliseconds(RemainingMs(start_deadline)), &lines)) break;
    }
    if (lines.empty()) {
      child->Kill();
      const int status = child->Reap(kChildExitTimeout, &lines);
      FAIL() << "the child made no progress: " << testing::DescribeWaitStatus(status);
    }
    const auto kill_at = SteadyClock::now() + milliseconds(kill_after_ms);
    while (SteadyClock::now() < kill_at && child->Read(milliseconds(RemainingMs(kill_at)), &lines)) {
    }
    child->Kill();
    const int status = child->Reap(kChildExitTimeout, &lines);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child died on its own: " << testing::DescribeWaitStatus(status);
    for (const std::string& line : lines) {
      ASSERT_NO_FATAL_FAILURE(RecordAck(line, &acked));
      if (line.compare(0, tag.size() + 1, tag + "-") != 0) ++summary->acks_of_resumed_runs;
    }
    summary->acks += lines.size();
    ++summary->iterations;
    const testing::StoreAudit audit = CheckAfterKill(dir, acked);
    summary->runs = audit.runs.size();
    summary->runs_stopped = 0;
    for (const auto& [id, run] : audit.runs) summary->runs_stopped += run.ends_with_run_stopped;
    summary->events = audit.events;
    if (::testing::Test::HasFailure()) return;
  }
}

void RunKillTest(const char* durability, const std::string& tag_prefix, int iterations) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  testing::TempDir temp;
  KillSummary s;
  KillLoop(temp.Sub("data"), durability, tag_prefix, iterations, seed, &s);
  std::fprintf(stderr,
               "kill test (%s): %d iterations, %llu transitions acknowledged (%llu for runs "
               "resumed from an earlier child), %zu runs (%llu stopped), %llu events, seed=%llu\n",
               durability, s.iterations, static_cast<unsigned long long>(s.acks),
               static_cast<unsigned long long>(s.acks_of_resumed_runs), s.runs,
               static_cast<unsigned long long>(s.runs_stopped),
               static_cast<unsigned long long>(s.events), static_cast<unsigned long long>(seed));
  if (::testing::Test::HasFailure()) return;
  EXPECT_GT(s.acks, 0u);
  if (iterations >= 3) {
    EXPECT_GT(s.acks_of_resumed_runs, 0u) << "no child ever resumed an earlier run";
  }
}

// kSync: every acknowledged transition survives SIGKILL.
TEST(KillTest, SyncedTransitionsSurviveSigkill) { RunKillTest("sync", "k", Iterations()); }

// kBuffered promises survival of a process crash (not of a power loss): the written
// WAL is in the OS page cache when the process dies.
TEST(KillTest, BufferedTransitionsSurviveSigkill) {
  RunKillTest("buffered", "b", std::max(1, Iterations() / 3));
}

// One process owns a data directory: a second opener is refused and told who holds it;
// a read-only opener may look; and the lock dies with its holder.
TEST(KillTest, SecondOpenerIsRefusedWithTheOwnersPid) {
  const uint64_t seed = testing::TestSeed();
  testing::TempDir temp;
  const std::string dir = temp.Sub("data");
  auto child =
      SpawnChild({dir, std::to_string(kChildAckFd), std::to_string(seed), "lock", "sync", "8"});
  ASSERT_NE(child, nullptr);
  std::vector<std::string> lines;
  const auto deadline = SteadyClock::now() + kChildStartTimeout;
  while (lines.empty() && SteadyClock::now() < deadline &&
         child->Read(milliseconds(RemainingMs(deadline)), &lines)) {
  }
  ASSERT_FALSE(lines.empty()) << "the child made no progress";
  std::map<RunId, Acked> acked;
  ASSERT_NO_FATAL_FAILURE(RecordAck(lines.front(), &acked));
  const auto& [first_run, first_ack] = *acked.begin();

  SystemClock clock;
  auto second = OpenInProcess(dir, clock);
  ASSERT_FALSE(second.ok()) << "a second writer opened a directory the child holds";
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition) << second.status().ToString();
  EXPECT_NE(second.status().message().find("pid " + std::to_string(child->pid())),
            std::string::npos)
      << "the refusal does not name the holder, pid " << child->pid() << ": "
      << second.status().ToString();

  auto reader = OpenInProcess(dir, clock, /*read_only=*/true);
  ASSERT_TRUE(reader.ok()) << "read-only open beside the owner: " << reader.status().ToString();
  auto header = (*reader)->GetRun(first_run);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_GE(header->next_seq, first_ack.next_seq);
  EXPECT_TRUE((*reader)->Close().ok());

  child->Kill();
  const int status = child->Reap(kChildExitTimeout, &lines);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << testing::DescribeWaitStatus(status);
  auto after = OpenInProcess(dir, clock);
  ASSERT_TRUE(after.ok()) << "the dead child's lock outlived it: " << after.status().ToString();
  EXPECT_TRUE((*after)->Close().ok());
}

}  // namespace
}  // namespace cairn::storage
