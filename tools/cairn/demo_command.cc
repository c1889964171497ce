#include "tools/cairn/demo_command.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tools/cairn/demo_scenarios.h"

namespace cairn::cli {
namespace {

constexpr size_t kDemoRunsDefault = 2 * demo::kDemoScenarioCount;
constexpr size_t kDemoRunsMax = 1000;

// A demo run and how far it got. The commit thread updates progress under Driver::mu_.
struct RunProgress {
  demo::DemoRun run;
  size_t next_step = 0;
  uint64_t next_seq = 0;
  bool already_there = false;
  Status error;

  bool Finished() const { return already_there || !error.ok() || next_step == run.steps.size(); }
};

// Submits the steps of all runs in rounds: in each round, the next step of every run
// that has one due is submitted without waiting, so the store group-commits them; the
// round ends when every submitted step is durable. A step that fires a timer waits for
// the timer's due time.
class Driver {
 public:
  Driver(storage::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  // Returns an error only if the driver cannot make progress; per-run write errors are
  // recorded in RunProgress::error.
  Status Run(std::vector<RunProgress>& runs) {
    for (;;) {
      if (SubmitRound(runs) > 0) {
        WaitForRound();
        continue;
      }
      const std::optional<int64_t> due = EarliestDue(runs);
      if (!due.has_value()) return Status::Ok();
      const int64_t wait_ns = *due - clock_.NowNanos();
      if (wait_ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait_ns));
      if (clock_.NowNanos() < *due) {
        return Status::Internal("demo timers are due but the clock does not advance");
      }
    }
  }

 private:
  storage::Transition MakeTransition(const RunProgress& p) const {
    const demo::DemoStep& step = p.run.steps[p.next_step];
    storage::Transition t;
    t.run_id = p.run.header.run_id;
    t.expected_next_seq = p.next_seq;
    t.events = step.events;
    t.blobs = step.blobs;
    t.header = p.run.header;
    t.header.status = step.status;
    t.header.stop_reason = step.stop_reason;
    t.header.waiting_on = step.waiting_on;
    t.header.budget_spent = step.budget_spent;
    t.header.budget_reserved = step.budget_reserved;
    return t;
  }

  size_t SubmitRound(std::vector<RunProgress>& runs) {
    const int64_t now = clock_.NowNanos();
    size_t submitted = 0;
    for (RunProgress& p : runs) {
      {
        std::lock_guard lock(mu_);
        if (p.Finished() || p.run.steps[p.next_step].not_before_ns > now) continue;
        ++outstanding_;
      }
      Status s = store_.Submit(MakeTransition(p), [this, &p](Result<storage::AppendResult> r) {
        OnDurable(p, std::move(r));
      });
      if (!s.ok()) {
        std::lock_guard lock(mu_);
        --outstanding_;
        // A start key that exists already: an earlier demo wrote this run.
        if (p.next_step == 0 && s.code() == StatusCode::kAlreadyExists) {
          p.already_there = true;
        } else {
          p.error = s;
        }
        continue;
      }
      ++submitted;
    }
    return submitted;
  }

  void OnDurable(RunProgress& p, Result<storage::AppendResult> result) {
    std::lock_guard lock(mu_);
    if (result.ok()) {
      p.next_seq = result->next_seq;
      ++p.next_step;
    } else {
      p.error = result.status();
    }
    --outstanding_;
    if (outstanding_ == 0) round_done_.notify_one();
  }

  void WaitForRound() {
    std::unique_lock lock(mu_);
    round_done_.wait(lock, [this] { return outstanding_ == 0; });
  }

  std::optional<int64_t> EarliestDue(const std::vector<RunProgress>& runs) {
    std::lock_guard lock(mu_);
    std::optional<int64_t> earliest;
    for (const RunProgress& p : runs) {
      if (p.Finished()) continue;
      const int64_t due = p.run.steps[p.next_step].not_before_ns;
      if (!earliest.has_value() || due < *earliest) earliest = due;
    }
    return earliest;
  }

  storage::Store& store_;
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable round_done_;
  size_t outstanding_ = 0;
};

// ---- setup and report ----

Result<demo::DemoSetup> StoreDefinitions(storage::Store& store, const Clock& clock) {
  demo::DemoSetup setup;
  setup.now_ns = clock.NowNanos();
  CAIRN_ASSIGN_OR_RETURN(setup.refund_definition,
                         store.PutDefinition(demo::RefundTriageDefinition()));
  CAIRN_ASSIGN_OR_RETURN(setup.plan_definition, store.PutDefinition(demo::PlanChangeDefinition()));
  setup.policy = Sha256::Of(demo::DemoPolicy());
  return setup;
}

std::string ShellQuote(const std::string& text) {
  const bool plain = !text.empty() && text.find_first_not_of(
                                          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789-_./=:@+,") == std::string::npos;
  if (plain) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string Outcome(const RunProgress& p) {
  if (p.already_there) return "already there";
  if (!p.error.ok()) return "error";
  const demo::DemoStep& last = p.run.steps.back();
  return std::string(storage::Name(last.status));
}

void PrintText(const GlobalOptions& global, const std::vector<RunProgress>& runs,
               const storage::StoreStats& stats) {
  std::ostream& out = *global.out;
  std::vector<std::vector<std::string>> rows;
  rows.reserve(runs.size());
  for (const RunProgress& p : runs) {
    rows.push_back({p.run.header.run_id.str(), p.run.header.workflow_name, Outcome(p),
                    std::to_string(p.next_seq), p.run.story});
  }
  out << "wrote " << stats.events_committed << " events in " << stats.transitions_committed
      << " transitions to " << global.data_dir << ", group-committed in " << stats.commit_groups
      << " synced writes\n\n";
  PrintTable(out, {"RUN", "WORKFLOW", "STATUS", "EVENTS", "STORY"}, rows);
  const std::string cairn = ShellQuote(global.program) + " --data " + ShellQuote(global.data_dir);
  out << "\nnext:\n"
      << "  " << cairn << " log list\n"
      << "  " << cairn << " log dump " << runs.front().run.header.run_id.str() << "\n"
      << "  " << cairn << " log verify\n";
}

void PrintJson(const GlobalOptions& global, const std::vector<RunProgress>& runs,
               const storage::StoreStats& stats) {
  nlohmann::json list = nlohmann::json::array();
  for (const RunProgress& p : runs) {
    list.push_back({{"run_id", p.run.header.run_id.str()},
                    {"workflow", p.run.header.workflow_name},
                    {"scenario", p.run.scenario},
                    {"status", Outcome(p)},
                    {"events", p.next_seq},
                    {"story", p.run.story}});
  }
  *global.out << JsonLine({{"data_dir", global.data_dir},
                           {"runs", list},
                           {"events", stats.events_committed},
                           {"transitions", stats.transitions_committed},
                           {"commit_groups", stats.commit_groups}})
              << '\n';
}

int ReportErrors(const GlobalOptions& global, const std::vector<RunProgress>& runs) {
  int code = kExitOk;
  for (const RunProgress& p : runs) {
    if (!p.error.ok()) {
      code = Fail(global, p.error.WithContext("demo run " + p.run.header.run_id.str() + " (" +
                                              p.run.scenario + ") in " + global.data_dir));
    }
  }
  return code;
}

// Drives `runs` to their end; returns what the store committed meanwhile.
Result<storage::StoreStats> WriteRuns(storage::Store& store, const Clock& clock,
                                      std::vector<RunProgress>& runs) {
  const storage::StoreStats before = store.stats();
  CAIRN_RETURN_IF_ERROR(Driver(store, clock).Run(runs));
  storage::StoreStats stats = store.stats();
  stats.transitions_committed -= before.transitions_committed;
  stats.events_committed -= before.events_committed;
  stats.commit_groups -= before.commit_groups;
  return stats;
}

int RunDemo(const GlobalOptions& global, size_t run_count) {
  auto store = OpenStoreForWriting(global, storage::Durability::kSync, "cairn log demo");
  if (!store.ok()) return Fail(global, store.status());
  auto setup = StoreDefinitions(**store, *global.clock);
  if (!setup.ok()) {
    return Fail(global,
                setup.status().WithContext("storing demo definitions in " + global.data_dir));
  }
  std::vector<RunProgress> runs(run_count);
  for (size_t i = 0; i < run_count; ++i) {
    runs[i].run = demo::BuildDemoRun(i, *setup, *global.random);
  }
  auto stats = WriteRuns(**store, *global.clock, runs);
  const Status closed = (*store)->Close();
  if (!stats.ok()) return Fail(global, stats.status());
  if (!closed.ok()) return Fail(global, closed.WithContext("closing " + global.data_dir));

  if (global.output == OutputFormat::kJson) {
    PrintJson(global, runs, *stats);
  } else {
    PrintText(global, runs, *stats);
  }
  return ReportErrors(global, runs);
}

}  // namespace

void AddDemoCommand(CLI::App& log, GlobalOptions& global) {
  auto run_count = std::make_shared<size_t>(kDemoRunsDefault);
  CLI::App* demo = log.add_subcommand(
      "demo",
      "Write example back-office runs (refund triage, plan change) into the data directory");
  demo->add_option("--runs", *run_count, "How many runs (cycling through 4 scenarios)")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, kDemoRunsMax));
  SetAction(demo, global, [&global, run_count] { return RunDemo(global, *run_count); });
}

}  // namespace cairn::cli
