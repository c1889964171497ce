// The store's commit pipeline under concurrency: many submitters and many runs, pipelined
// transitions of one run, callbacks that submit (closed loop), group commit actually
// grouping, and Close() draining a full queue. No test waits on time: the commit thread is
// held, where a test needs it held, by a completion callback that blocks on a promise.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <iostream>
#include <latch>
#include <memory>
#include <mutex>
#include <source_location>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "storage/store.h"
#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::storage {
namespace {

using testing::IsError;
using testing::Must;

RunId RunNamed(const std::string& prefix, size_t i) {
  return RunId::FromTrusted(prefix + "-" + std::to_string(i));
}

Transition Create(const RunId& run) {
  Transition t;
  t.run_id = run;
  RunStarted started;
  started.workflow_name = "group-commit";
  t.events.push_back({"", std::move(started)});
  t.header.status = RunStatus::kRunning;
  t.header.workflow_name = "group-commit";
  return t;
}

// A step of `events` value_recorded events named "<step>.<i>".
Transition Step(const RunId& run, uint64_t expected_next_seq, size_t step, size_t events = 1) {
  Transition t;
  t.run_id = run;
  t.expected_next_seq = expected_next_seq;
  for (size_t i = 0; i < events; ++i) {
    const std::string name = std::to_string(step) + "." + std::to_string(i);
    t.events.push_back({"/do/" + name, ValueRecorded{name, Payload::Json("1")}});
  }
  t.header.status = RunStatus::kRunning;
  t.header.workflow_name = "group-commit";
  return t;
}

// The value names of a run's events after run_started, in order.
std::vector<std::string> ValueNames(const Store& store, const RunId& run) {
  std::vector<std::string> names;
  for (const Event& e : Must(store.ReadHistory(run, 1, limits::history_read_events_max))) {
    const auto* value = std::get_if<ValueRecorded>(&e.body);
    names.push_back(value != nullptr ? value->name : "<not a value>");
  }
  return names;
}

// Counts completions and lets the test thread wait for a number of them.
class Completions {
 public:
  void Add(size_t n = 1) {
    std::lock_guard lock(mu_);
    done_ += n;
    cv_.notify_all();
  }
  void WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t done_ = 0;
};

// Problems seen on the commit thread, reported on the test thread.
class Problems {
 public:
  void Add(std::string problem) {
    std::lock_guard lock(mu_);
    if (list_.size() < 20) list_.push_back(std::move(problem));
    ++count_;
  }
  void ExpectNone() {
    std::lock_guard lock(mu_);
    EXPECT_EQ(count_, 0u);
    for (const auto& p : list_) ADD_FAILURE() << p;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> list_;
  size_t count_ = 0;
};

// Blocks the commit thread inside a completion callback until released, so that the
// test can fill the queue deterministically.
class CommitGate {
 public:
  explicit CommitGate(Store& store) {
    auto entered = entered_.get_future();
    Must(store.Submit(Create(RunId::FromTrusted("gate")), [this](Result<AppendResult> r) {
      gate_result_ = r.status();
      entered_.set_value();
      release_future_.wait();
    }));
    entered.wait();
  }
  // Releases the commit thread if the test did not (e.g. it failed early), so that the
  // store can still close.
  ~CommitGate() {
    if (!released_) Release();
  }
  CommitGate(const CommitGate&) = delete;
  CommitGate& operator=(const CommitGate&) = delete;

  void Release() {
    released_ = true;
    release_.set_value();
  }
  const Status& gate_result() const { return gate_result_; }

 private:
  std::promise<void> entered_;
  std::promise<void> release_;
  std::shared_future<void> release_future_ = release_.get_future().share();
  Status gate_result_;
  bool released_ = false;
};

class GroupCommitTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> Open(Durability durability) {
    StoreOptions options;
    options.clock = &clock_;
    options.durability = durability;
    return Must(Store::Open(dir_.path() + "/data", options));
  }

  testing::TempDir dir_;
  ManualClock clock_;
};

// ---------------------------------------------------------------------------------------

// Several threads, each driving its own runs: half wait for every step (Append), half
// pipeline them (Submit without waiting). Every run's history is exactly its steps, in
// order, and the counters add up.
TEST_F(GroupCommitTest, ManyThreadsManyRunsAppendAndSubmit) {
  constexpr size_t kThreads = 4;
  constexpr size_t kRunsPerThread = 8;
  constexpr size_t kSteps = 24;
  auto store = Open(Durability::kSync);
  Problems problems;
  std::vector<std::atomic<int>> calls(kThreads * kRunsPerThread * kSteps);
  Completions completions;

  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const bool pipelined = t % 2 == 1;
      std::vector<RunId> runs;
      for (size_t r = 0; r < kRunsPerThread; ++r)
        runs.push_back(RunNamed("t" + std::to_string(t), r));
      start.arrive_and_wait();
      for (const RunId& run : runs) {
        Status s = store->Append(Create(run)).status();
        if (!s.ok()) problems.Add("create " + run.str() + ": " + s.ToString());
      }
      // Round-robin over the runs so that their transitions interleave in the queue.
      for (size_t step = 0; step < kSteps; ++step) {
        for (size_t r = 0; r < kRunsPerThread; ++r) {
          const size_t index = (t * kRunsPerThread + r) * kSteps + step;
          const size_t events = 1 + step % 3;
          // Steps 0..step-1 appended 1, 2, 3, 1, 2, 3, ... events after run_started.
          uint64_t expected = 1;
          for (size_t i = 0; i < step; ++i) expected += 1 + i % 3;
          Transition tr = Step(runs[r], expected, step, events);
          if (pipelined) {
            Status s = store->Submit(std::move(tr), [&, index, expected, events,
                                                     run = runs[r]](Result<AppendResult> res) {
              ++calls[index];
              if (!res.ok()) {
                problems.Add(run.str() + ": " + res.status().ToString());
              } else if (res->first_seq.value() != expected || res->next_seq != expected + events) {
                problems.Add(run.str() + ": step committed at " +
                             std::to_string(res->first_seq.value()) + ", expected " +
                             std::to_string(expected));
              }
              completions.Add();
            });
            if (!s.ok()) {
              problems.Add("submit " + runs[r].str() + ": " + s.ToString());
              completions.Add();
            }
          } else {
            auto res = store->Append(std::move(tr));
            ++calls[index];
            if (!res.ok() || res->first_seq.value() != expected) {
              problems.Add("append " + runs[r].str() + ": " + res.status().ToString());
            }
            completions.Add();
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  completions.WaitFor(calls.size());
  problems.ExpectNone();
  for (size_t i = 0; i < calls.size(); ++i) ASSERT_EQ(calls[i].load(), 1) << "transition " << i;

  size_t events_per_run = 1;
  std::vector<std::string> expected_names;
  for (size_t step = 0; step < kSteps; ++step) {
    for (size_t i = 0; i < 1 + step % 3; ++i) {
      expected_names.push_back(std::to_string(step) + "." + std::to_string(i));
    }
  }
  events_per_run += expected_names.size();
  for (size_t t = 0; t < kThreads; ++t) {
    for (size_t r = 0; r < kRunsPerThread; ++r) {
      const RunId run = RunNamed("t" + std::to_string(t), r);
      EXPECT_EQ(ValueNames(*store, run), expected_names) << run.str();
      EXPECT_EQ(Must(store->GetRun(run)).next_seq, events_per_run) << run.str();
      EXPECT_TRUE(Must(store->VerifyRun(run)).ok) << run.str();
    }
  }
  const StoreStats stats = store->stats();
  const uint64_t runs = kThreads * kRunsPerThread;
  EXPECT_EQ(stats.transitions_committed, runs * (1 + kSteps));
  EXPECT_EQ(stats.events_committed, runs * events_per_run);
  EXPECT_LE(stats.commit_groups, stats.transitions_committed);
  EXPECT_EQ(stats.queued_transitions, 0u);
  EXPECT_TRUE(store->Close().ok());
}

// Each run's transitions are submitted back to back, transition k+1 before k is durable,
// with expected_next_seq taken from what k will produce. They commit in submission order
// and each callback sees its own sequence numbers.
TEST_F(GroupCommitTest, PipelinedTransitionsOfOneRunCommitInOrder) {
  constexpr size_t kRuns = 16;
  constexpr size_t kSteps = 64;
  auto store = Open(Durability::kBuffered);
  Problems problems;
  std::mutex mu;
  std::vector<std::vector<size_t>> order(kRuns);  // guarded by mu
  std::vector<std::atomic<int>> calls(kRuns * (kSteps + 1));
  Completions completions;

  for (size_t step = 0; step <= kSteps; ++step) {
    for (size_t r = 0; r < kRuns; ++r) {
      const RunId run = RunNamed("run", r);
      // Step 0 creates; step s >= 1 appends s events to a history of 1 + (s-1)s/2.
      const uint64_t expected = step == 0 ? 0 : 1 + (step - 1) * step / 2;
      Transition t = step == 0 ? Create(run) : Step(run, expected, step, step);
      const size_t index = r * (kSteps + 1) + step;
      Must(store->Submit(std::move(t), [&, r, step, index, expected](Result<AppendResult> res) {
        ++calls[index];
        if (!res.ok()) {
          problems.Add(res.status().ToString());
        } else if (res->first_seq.value() != expected ||
                   res->next_seq != expected + (step == 0 ? 1 : step)) {
          problems.Add("run " + std::to_string(r) + " step " + std::to_string(step) +
                       " committed at " + std::to_string(res->first_seq.value()));
        }
        {
          std::lock_guard lock(mu);
          order[r].push_back(step);
        }
        completions.Add();
      }));
    }
  }
  completions.WaitFor(calls.size());
  problems.ExpectNone();
  for (size_t i = 0; i < calls.size(); ++i) ASSERT_EQ(calls[i].load(), 1) << "transition " << i;
  std::vector<size_t> in_order(kSteps + 1);
  for (size_t s = 0; s <= kSteps; ++s) in_order[s] = s;
  std::vector<std::string> names;
  for (size_t step = 1; step <= kSteps; ++step) {
    for (size_t i = 0; i < step; ++i)
      names.push_back(std::to_string(step) + "." + std::to_string(i));
  }
  std::lock_guard lock(mu);
  for (size_t r = 0; r < kRuns; ++r) {
    EXPECT_EQ(order[r], in_order) << "callbacks of run " << r;
    EXPECT_EQ(ValueNames(*store, RunNamed("run", r)), names) << "history of run " << r;
  }
}

// Closed loop: every completion submits its run's next transition from the callback (on
// the commit thread). The first transitions of all runs are submitted from one callback
// too, so from then on every group holds every run that is not finished: group commit
// must write far fewer groups than transitions, whatever the timing.
class ClosedLoopTest : public GroupCommitTest, public ::testing::WithParamInterface<Durability> {};

TEST_P(ClosedLoopTest, CallbacksSubmitAndCommitsAreGrouped) {
  constexpr size_t kRuns = 256;
  constexpr size_t kRounds = 24;
  auto store = Open(GetParam());
  Problems problems;
  Completions finished_runs;
  std::vector<std::atomic<int>> calls(kRuns * (kRounds + 1));

  // Submits round `round` of run `r`; its callback submits the next round.
  std::function<void(size_t, size_t)> submit = [&](size_t r, size_t round) {
    const RunId run = RunNamed("loop", r);
    const uint64_t expected = round;  // one event per transition
    Transition t = round == 0 ? Create(run) : Step(run, expected, round);
    Status s = store->Submit(std::move(t), [&, r, round, expected](Result<AppendResult> res) {
      ++calls[r * (kRounds + 1) + round];
      if (!res.ok() || res->first_seq.value() != expected) {
        problems.Add("run " + std::to_string(r) + " round " + std::to_string(round) + ": " +
                     res.status().ToString());
      }
      if (round == kRounds) {
        finished_runs.Add();
      } else {
        submit(r, round + 1);
      }
    });
    if (!s.ok()) {
      problems.Add("submit: " + s.ToString());
      finished_runs.Add();
    }
  };
  Must(store->Submit(Create(RunId::FromTrusted("starter")), [&](Result<AppendResult> res) {
    if (!res.ok()) problems.Add("starter: " + res.status().ToString());
    for (size_t r = 0; r < kRuns; ++r) submit(r, 0);
  }));
  finished_runs.WaitFor(kRuns);
  problems.ExpectNone();
  for (size_t i = 0; i < calls.size(); ++i) ASSERT_EQ(calls[i].load(), 1) << "transition " << i;

  const StoreStats stats = store->stats();
  const uint64_t transitions = 1 + kRuns * (kRounds + 1);
  EXPECT_EQ(stats.transitions_committed, transitions);
  EXPECT_EQ(stats.events_committed, transitions);
  std::cout << "closed loop: " << stats.transitions_committed << " transitions in "
            << stats.commit_groups << " commit groups\n";
  EXPECT_LE(stats.commit_groups, transitions / 2);
  EXPECT_GE(stats.commit_groups, kRounds + 2);  // a run's rounds can never share a group

  for (size_t r = 0; r < kRuns; r += 51) {
    EXPECT_EQ(Must(store->GetRun(RunNamed("loop", r))).next_seq, kRounds + 1);
  }
  uint64_t verified = 0;
  EXPECT_EQ(Must(store->VerifyAll([&](const VerifyReport& report) {
              ++verified;
              EXPECT_TRUE(report.ok) << report.run_id.str() << ": " << report.problem;
            })),
            0u);
  EXPECT_EQ(verified, kRuns + 1);
  EXPECT_TRUE(store->Close().ok());
}

INSTANTIATE_TEST_SUITE_P(GroupCommit, ClosedLoopTest,
                         ::testing::Values(Durability::kSync, Durability::kBuffered),
                         [](const auto& info) {
                           return info.param == Durability::kSync ? "Sync" : "Buffered";
                         });

// With the commit thread held, a queue of pipelined transitions builds up; Close() then
// writes and acknowledges every one of them, and the store refuses work afterwards.
TEST_F(GroupCommitTest, CloseDrainsTheQueueAndAcknowledgesEverything) {
  constexpr size_t kRuns = 64;
  constexpr size_t kSteps = 31;
  auto store = Open(Durability::kSync);
  Problems problems;
  std::vector<std::atomic<int>> calls(kRuns * (kSteps + 1));

  CommitGate gate(*store);
  for (size_t r = 0; r < kRuns; ++r) {
    const RunId run = RunNamed("drain", r);
    for (size_t step = 0; step <= kSteps; ++step) {
      Transition t = step == 0 ? Create(run) : Step(run, step, step);
      Must(store->Submit(
          std::move(t), [&, index = r * (kSteps + 1) + step, step](Result<AppendResult> res) {
            ++calls[index];
            if (!res.ok() || res->first_seq.value() != step) {
              problems.Add("transition " + std::to_string(index) + ": " + res.status().ToString());
            }
          }));
    }
  }
  EXPECT_EQ(store->stats().queued_transitions, calls.size());
  EXPECT_EQ(store->stats().transitions_committed, 1u);  // the gate's

  // Close() from another thread while the commit thread is still held, so that the whole
  // queue is waiting when Close() begins. It has begun once the store refuses new work,
  // which a submission to a run that does not exist shows without queueing anything.
  Status close_status = Status::Internal("Close() did not return");
  std::thread closer([&] { close_status = store->Close(); });
  for (;;) {
    const Status probe =
        store->Submit(Step(RunId::FromTrusted("no-such-run"), 1, 0), [](Result<AppendResult>) {});
    if (probe.code() != StatusCode::kNotFound) {
      EXPECT_TRUE(IsError(probe, StatusCode::kFailedPrecondition, {"closed"}));
      break;
    }
    std::this_thread::yield();
  }
  EXPECT_EQ(store->stats().queued_transitions, calls.size());
  gate.Release();
  closer.join();
  EXPECT_TRUE(close_status.ok()) << close_status.ToString();
  EXPECT_TRUE(gate.gate_result().ok()) << gate.gate_result().ToString();
  problems.ExpectNone();
  for (size_t i = 0; i < calls.size(); ++i) ASSERT_EQ(calls[i].load(), 1) << "transition " << i;
  EXPECT_EQ(store->stats().transitions_committed, 1 + calls.size());
  EXPECT_EQ(store->stats().queued_transitions, 0u);

  // Closed: refused, and the callback is never called.
  int late_calls = 0;
  EXPECT_TRUE(IsError(store->Submit(Create(RunId::FromTrusted("late")),
                                    [&](Result<AppendResult>) { ++late_calls; }),
                      StatusCode::kFailedPrecondition, {"closed"}));
  EXPECT_TRUE(IsError(store->Append(Step(RunNamed("drain", 0), kSteps + 1, 99)).status(),
                      StatusCode::kFailedPrecondition, {"closed"}));
  EXPECT_TRUE(
      IsError(store->PutBlob("late").status(), StatusCode::kFailedPrecondition, {"closed"}));
  EXPECT_EQ(late_calls, 0);
  store.reset();

  auto reopened = Open(Durability::kSync);
  for (size_t r = 0; r < kRuns; ++r) {
    const RunId run = RunNamed("drain", r);
    EXPECT_EQ(Must(reopened->GetRun(run)).next_seq, kSteps + 1) << run.str();
  }
  EXPECT_EQ(ValueNames(*reopened, RunNamed("drain", 7)).back(), std::to_string(kSteps) + ".0");
  uint64_t runs = 0;
  EXPECT_EQ(Must(reopened->VerifyAll([&](const VerifyReport& r) {
              ++runs;
              EXPECT_TRUE(r.ok) << r.run_id.str() << ": " << r.problem;
            })),
            0u);
  EXPECT_EQ(runs, kRuns + 1);
  EXPECT_TRUE(
      IsError(reopened->GetRun(RunId::FromTrusted("late")).status(), StatusCode::kNotFound));
}

// Optimistic concurrency: of several appends racing at the same expected_next_seq,
// exactly one commits; the others are told to re-read.
TEST_F(GroupCommitTest, RacingAppendsAtOneSeqHaveOneWinner) {
  constexpr size_t kThreads = 6;
  constexpr size_t kRounds = 12;
  auto store = Open(Durability::kBuffered);
  const RunId run = RunId::FromTrusted("contended");
  Must(store->Append(Create(run)));
  std::vector<std::string> winners;
  for (size_t round = 0; round < kRounds; ++round) {
    std::latch start(kThreads);
    std::vector<Status> results(kThreads);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        Transition t = Step(run, 1 + round, round * 100 + i);
        start.arrive_and_wait();
        results[i] = store->Append(std::move(t)).status();
      });
    }
    for (auto& t : threads) t.join();
    size_t wins = 0;
    for (size_t i = 0; i < kThreads; ++i) {
      if (results[i].ok()) {
        ++wins;
        winners.push_back(std::to_string(round * 100 + i) + ".0");
      } else {
        EXPECT_TRUE(
            IsError(results[i], StatusCode::kAborted, {"expected " + std::to_string(1 + round)}));
      }
    }
    EXPECT_EQ(wins, 1u) << "round " << round;
  }
  EXPECT_EQ(ValueNames(*store, run), winners);
}

// The queue is bounded: with the commit thread held, transition number
// limits::commit_queue_transitions_max + 1 is refused (and its callback never called);
// everything queued is still committed once the thread moves on.
TEST_F(GroupCommitTest, FullQueueIsResourceExhausted) {
  constexpr size_t kRuns = 256;
  constexpr size_t kPerRun = limits::commit_queue_transitions_max / kRuns;
  static_assert(kRuns * kPerRun == limits::commit_queue_transitions_max);
  auto store = Open(Durability::kBuffered);
  std::atomic<size_t> ok_calls{0};
  std::atomic<size_t> failed_calls{0};
  Completions completions;
  auto done = [&](Result<AppendResult> res) {
    ++(res.ok() ? ok_calls : failed_calls);
    completions.Add();
  };

  CommitGate gate(*store);
  for (size_t r = 0; r < kRuns; ++r) {
    const RunId run = RunNamed("q", r);
    for (size_t i = 0; i < kPerRun; ++i) {
      Must(store->Submit(i == 0 ? Create(run) : Step(run, i, i), done));
    }
  }
  EXPECT_EQ(store->stats().queued_transitions, limits::commit_queue_transitions_max);
  int refused_calls = 0;
  EXPECT_TRUE(IsError(store->Submit(Step(RunNamed("q", 0), kPerRun, kPerRun),
                                    [&](Result<AppendResult>) { ++refused_calls; }),
                      StatusCode::kResourceExhausted, {"queue is full"}));
  gate.Release();
  completions.WaitFor(limits::commit_queue_transitions_max);
  EXPECT_EQ(ok_calls.load(), limits::commit_queue_transitions_max);
  EXPECT_EQ(failed_calls.load(), 0u);
  EXPECT_EQ(refused_calls, 0);
  // The refused transition left no trace: the run continues at kPerRun.
  EXPECT_EQ(Must(store->Append(Step(RunNamed("q", 0), kPerRun, kPerRun))).next_seq, kPerRun + 1);
  EXPECT_EQ(Must(store->GetRun(RunNamed("q", kRuns - 1))).next_seq, kPerRun);
  EXPECT_TRUE(store->Close().ok());
}

}  // namespace
}  // namespace cairn::storage
