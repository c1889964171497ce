// storage_kill_child: the process tests/storage/kill_test.cc SIGKILLs.
//
//   storage_kill_child DIR ACK_FD SEED TAG sync|buffered RUNS_IN_FLIGHT
//
// Opens the store in DIR and submits transitions for RUNS_IN_FLIGHT runs at once, until
// killed: each transition carries 1-4 random events, and about one in twelve ends its run
// with run_stopped and a terminal status, after which a new run takes its place. Runs
// left active by an earlier (killed) child are resumed first, from their headers.
//
// After -- and only after -- the store reports a transition durable, a line
//   "<run_id> <next_seq>\n"          or, for a transition that stopped the run,
//   "<run_id> <next_seq> stopped\n"
// is written to ACK_FD (one write(2), below PIPE_BUF, so a line is never torn). The
// parent then holds the store to every line it read.
//
// Exit status: killed by the parent, normally. 2: the store did not open. 3: a store call
// failed, which on a healthy disk is a bug (message on stderr). 4: bad arguments.
// 0: the transition bound was reached (the parent waited far too long).
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "base/random.h"
#include "storage/event.h"
#include "storage/store.h"
#include "tests/support/event_gen.h"

namespace cairn::storage {
namespace {

// A safety net, should a parent forget to kill: about a minute of work on a slow disk.
constexpr uint64_t kTransitionsMax = 200'000;
constexpr size_t kPayloadBytes = 64;

struct Args {
  std::string dir;
  int ack_fd = -1;
  uint64_t seed = 0;
  std::string tag;
  Durability durability = Durability::kSync;
  size_t runs_in_flight = 0;
};

[[noreturn]] void Die(int code, const std::string& what) {
  std::fprintf(stderr, "storage_kill_child[%d]: %s\n", static_cast<int>(getpid()), what.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  if (argc != 7) Die(4, "usage: storage_kill_child DIR ACK_FD SEED TAG sync|buffered RUNS");
  a.dir = argv[1];
  a.tag = argv[4];
  const std::string_view durability = argv[5];
  if (!ParseNumber(argv[2], &a.ack_fd) || a.ack_fd < 0) Die(4, "bad ACK_FD");
  if (!ParseNumber(argv[3], &a.seed)) Die(4, "bad SEED");
  if (!ParseNumber(argv[6], &a.runs_in_flight) || a.runs_in_flight == 0 ||
      a.runs_in_flight > 4096) {
    Die(4, "bad RUNS (1..4096)");
  }
  if (durability == "sync") {
    a.durability = Durability::kSync;
  } else if (durability == "buffered") {
    a.durability = Durability::kBuffered;
  } else {
    Die(4, "durability must be sync or buffered");
  }
  if (!RunId::Parse(a.tag + "-0").ok()) Die(4, "TAG must be run id characters");
  return a;
}

// The runs being driven, one transition in flight each. Callbacks (commit thread) hand
// results to the main thread through a queue; only the main thread writes acks and
// submits, so the ack order is the order the store reported durability in.
class Driver {
 public:
  Driver(Store& store, const Args& args) : store_(store), args_(args), random_(args.seed) {}

  void Resume() {
    std::string after;
    for (;;) {
      auto page = store_.ListActiveRuns(after, limits::list_runs_max);
      if (!page.ok()) Die(3, "ListActiveRuns: " + page.status().ToString());
      if (page->empty()) break;
      after = page->back().run_id.str();
      for (const RunSummary& r : *page) {
        auto header = store_.GetRun(r.run_id);
        if (!header.ok()) Die(3, "GetRun " + r.run_id.str() + ": " + header.status().ToString());
        if (IsTerminal(header->status)) Die(3, "active run " + r.run_id.str() + " is terminal");
        resumed_.push_back({r.run_id, header->next_seq});
      }
    }
    std::fprintf(stderr, "storage_kill_child[%d]: resuming %zu active runs\n",
                 static_cast<int>(getpid()), resumed_.size());
  }

  void Loop() {
    for (size_t i = 0; i < args_.runs_in_flight; ++i) SubmitNext(NextRun());
    for (uint64_t done = 0; done < kTransitionsMax; ++done) {
      Completion c;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !completions_.empty(); });
        c = std::move(completions_.front());
        completions_.pop_front();
      }
      if (!c.result.ok()) {
        Die(3, "transition of run " + c.run.id.str() + " failed: " + c.result.status().ToString());
      }
      c.run.next_seq = c.result->next_seq;
      Ack(c.run, c.stopped);
      SubmitNext(c.stopped ? NextRun() : c.run);
    }
  }

 private:
  struct RunState {
    RunId id;
    uint64_t next_seq = 0;
  };
  struct Completion {
    RunState run;
    bool stopped = false;
    Result<AppendResult> result = Status::Internal("unset");
  };

  RunState NextRun() {
    if (!resumed_.empty()) {
      RunState r = std::move(resumed_.front());
      resumed_.pop_front();
      return r;
    }
    return {RunId::Parse(args_.tag + "-" + std::to_string(created_++)).value(), 0};
  }

  void SubmitNext(RunState run) {
    const bool stops = random_.OneIn(12);
    Transition t;
    t.run_id = run.id;
    t.expected_next_seq = run.next_seq;
    size_t count = 1 + random_.Uniform(4);
    if (stops && run.next_seq == 0) count = std::max<size_t>(count, 2);  // started, stopped
    for (size_t i = 0; i < count; ++i) {
      NewEvent e;
      e.task_path = "/do/" + std::to_string(random_.Uniform(8));
      if (i == 0 && run.next_seq == 0) {
        RunStarted started;
        started.workflow_namespace = "kill";
        started.workflow_name = "child";
        started.input = Payload::Json(cairn::testing::MakeJson(random_, kPayloadBytes));
        if (random_.OneIn(2)) started.start_key = "start:" + run.id.str();
        e.body = std::move(started);
      } else if (stops && i + 1 == count) {
        RunStopped stopped;
        stopped.reason = StopReason::kCompleted;
        e.body = std::move(stopped);
      } else {
        e.body = cairn::testing::RandomMiddleEventBody(random_, kPayloadBytes);
      }
      t.events.push_back(std::move(e));
    }
    t.header.status = stops ? RunStatus::kCompleted
                            : (random_.OneIn(3) ? RunStatus::kWaiting : RunStatus::kRunning);
    t.header.stop_reason = stops ? StopReason::kCompleted : StopReason::kNone;
    t.header.workflow_namespace = "kill";
    t.header.workflow_name = "child";
    Status s = store_.Submit(std::move(t), [this, run, stops](Result<AppendResult> r) {
      std::lock_guard lock(mu_);
      completions_.push_back({run, stops, std::move(r)});
      cv_.notify_one();
    });
    if (!s.ok()) Die(3, "Submit for run " + run.id.str() + ": " + s.ToString());
  }

  void Ack(const RunState& run, bool stopped) {
    const std::string line =
        run.id.str() + " " + std::to_string(run.next_seq) + (stopped ? " stopped\n" : "\n");
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      const ssize_t n = write(args_.ack_fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) Die(3, std::string("write to the ack pipe: ") + std::strerror(errno));
      p += n;
      left -= static_cast<size_t>(n);
    }
  }

  Store& store_;
  const Args& args_;
  Random random_;
  std::deque<RunState> resumed_;
  uint64_t created_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Completion> completions_;
};

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  // Never outlive the test that started us, whatever happens to it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) Die(4, "parent already gone");

  SystemClock clock;
  StoreOptions options;
  options.durability = args.durability;
  options.clock = &clock;
  options.owner_description = "storage_kill_child " + args.tag;
  options.block_cache_bytes = 8 << 20;
  auto store = Store::Open(args.dir, std::move(options));
  if (!store.ok()) Die(2, "open " + args.dir + ": " + store.status().ToString());

  Driver driver(**store, args);
  driver.Resume();
  driver.Loop();
  Die(0, "transition bound reached without being killed");
}

}  // namespace
}  // namespace cairn::storage

int main(int argc, char** argv) { return cairn::storage::Main(argc, argv); }
