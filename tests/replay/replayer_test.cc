// The replayer over real histories: runs driven by the engine (tool calls, policy
// verdicts, approvals, agent decisions, timers) replay with no divergence from a
// read-only store; mutated definitions diverge at the first event they change.
#include "replay/replayer.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <functional>
#include <string>

#include "agent/config.h"
#include "engine/core/engine.h"
#include "replay/replay_runs.h"
#include "tests/replay/billing_fixture.h"
#include "tests/support/assertions.h"
#include "tests/support/raw_db.h"
#include "tests/support/temp_dir.h"

namespace cairn::replay {
namespace {

using namespace std::chrono_literals;
using billing::kFlow;
using billing::kPick;
using engine::ApprovalAnswer;
using engine::Engine;
using engine::EngineOptions;
using storage::RunStatus;
using testing::Must;

constexpr const char* kAgents = R"(
default: planner
agents:
  planner:
    kind: scripted
    rules:
      - when: [{path: /context/team_size, gte: 10}]
        option: team
        rationale: Ten or more people share billing.
    otherwise: {option: starter, rationale: Small teams start small.}
)";

class ReplayerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (engine_) Must(engine_->Close());
  }

  void OpenEngine() {
    EngineOptions options = billing::RecordingOptions(
        dir_.Sub("data"), clock_, Must(agent::AgentRegistry::Load(kAgents, "a.yaml")));
    engine_ = Must(Engine::Open(options));
  }

  RunId Start(const std::string& definition, Json input) {
    const engine::WorkflowRef ref = Must(engine_->ApplyDefinition(definition, "w.yaml"));
    engine::StartRequest request;
    request.workflow = ref.namespace_ + "/" + ref.name;
    request.input = std::move(input);
    return Must(engine_->Start(std::move(request))).run_id;
  }

  // Runs every kind of history this suite replays, then stops the engine.
  void Record() {
    OpenEngine();
    small_ = Start(kFlow, Json{{"x", 1}});
    big_ = Start(kFlow, Json{{"x", 20}});
    approved_ = Start(kFlow, Json{{"x", 200}});
    for (int size : {3, 12}) picks_.push_back(Start(kPick, Json{{"size", size}}));
    EXPECT_EQ(Must(engine_->Wait(small_, 20s)).header.status, RunStatus::kCompleted);
    EXPECT_EQ(Must(engine_->Wait(big_, 20s)).header.status, RunStatus::kCompleted);
    engine::RunInfo info = Must(engine_->Wait(approved_, 20s));
    EXPECT_EQ(info.header.status, RunStatus::kWaiting) << info.waiting_on;
    Must(engine_->ResolveApproval(approved_, ApprovalAnswer{true, "", "fine", {"alice", "lead"}}));
    EXPECT_EQ(Must(engine_->Wait(approved_, 20s)).header.status, RunStatus::kCompleted);
    for (const RunId& id : picks_) {
      EXPECT_EQ(Must(engine_->Wait(id, 20s)).header.status, RunStatus::kCompleted);
    }
    Must(engine_->Close());
    engine_.reset();
  }

  std::unique_ptr<storage::Store> OpenReadOnly() {
    storage::StoreOptions options;
    options.read_only = true;
    options.clock = &clock_;
    return Must(storage::Store::Open(dir_.Sub("data"), options));
  }

  std::vector<RunId> AllRuns(const storage::Store& store) {
    std::vector<RunId> ids;
    for (const storage::RunSummary& s : Must(store.ListRuns(std::nullopt, "", 1000))) {
      ids.push_back(s.run_id);
    }
    return ids;
  }

  // The seq of the first event of `run` matching `pred`.
  uint64_t SeqOf(const storage::Store& store, const RunId& run,
                 const std::function<bool(const storage::Event&)>& pred) {
    for (const storage::Event& e : Must(store.ReadHistory(run, 0, 10'000))) {
      if (pred(e)) return e.seq.value();
    }
    ADD_FAILURE() << "no such event in run " << run.str();
    return 0;
  }

  std::shared_ptr<const engine::Definition> Mutated(const std::string& from, const std::string& to,
                                                    std::string text = kFlow) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return Must(engine::LoadDefinition(text, "mutated.yaml"));
  }

  ReplayResult ReplayWith(const storage::Store& store, const RunId& run,
                          std::shared_ptr<const engine::Definition> definition) {
    ReplayOptions options;
    options.definition = std::move(definition);
    Replayer replayer(store, options);
    return Must(replayer.Replay(run));
  }

  testing::TempDir dir_;
  SystemClock clock_;
  std::unique_ptr<Engine> engine_;
  RunId small_, big_, approved_;
  std::vector<RunId> picks_;
};

bool Is(const storage::Event& e, std::string_view kind, std::string_view path_part) {
  return storage::KindName(e.body) == kind && e.task_path.find(path_part) != std::string::npos;
}

TEST_F(ReplayerTest, EveryRecordedRunReplaysWithoutDivergence) {
  Record();
  std::unique_ptr<storage::Store> store = OpenReadOnly();
  Replayer replayer(*store);
  const std::vector<RunId> runs = AllRuns(*store);
  EXPECT_EQ(runs.size(), 5u);
  for (const RunId& id : runs) {
    ReplayResult r = Must(replayer.Replay(id));
    EXPECT_TRUE(r.matched()) << DescribeDivergence(*r.divergence) << "\nrecorded "
                             << r.divergence->recorded.dump() << "\nproduced "
                             << r.divergence->produced.dump();
    EXPECT_EQ(r.events, store->GetRun(id)->next_seq) << id.str();
  }
}

TEST_F(ReplayerTest, TheUnchangedDefinitionNeverDiverges) {
  Record();
  std::unique_ptr<storage::Store> store = OpenReadOnly();
  for (const RunId& id : {small_, big_, approved_}) {
    ReplayResult r = ReplayWith(*store, id, Must(engine::LoadDefinition(kFlow, "same.yaml")));
    EXPECT_TRUE(r.matched()) << DescribeDivergence(*r.divergence);
  }
}

TEST_F(ReplayerTest, AChangedExpressionDivergesWhereItsTaskCompletes) {
  Record();
  std::unique_ptr<storage::Store> store = OpenReadOnly();
  auto changed = Mutated("${ .x + 1 }", "${ .x + 2 }");
  for (const RunId& id : {small_, big_}) {
    ReplayResult r = ReplayWith(*store, id, changed);
    ASSERT_FALSE(r.matched());
    EXPECT_EQ(r.divergence->seq, SeqOf(*store, id, [](const storage::Event& e) {
                return Is(e, "task_completed", "first");
              }));
    EXPECT_EQ(r.divergence->recorded.at("kind"), "task_completed");
    EXPECT_EQ(r.divergence->produced.at("kind"), "task_completed");
  }
  // An expression only the other branch reads changes nothing for this run.
  auto other = Mutated("${ .a * 2 }", "${ .a * 3 }");
  EXPECT_TRUE(ReplayWith(*store, big_, other).matched());
  EXPECT_FALSE(ReplayWith(*store, small_, other).matched());
}

TEST_F(ReplayerTest, ReorderedTasksDivergeAtTheFirstRoutedTask) {
  Record();
  std::unique_ptr<storage::Store> store = OpenReadOnly();
  const std::string reordered = R"(
document: {dsl: '1.0.3', namespace: test, name: flow, version: '1.0.0'}
do:
  - pick:
      switch:
        - big:
            when: ${ .a > 10 }
            then: change
        - otherwise:
            then: first
  - first:
      set:
        a: ${ .x + 1 }
  - second:
      set:
        b: ${ .a * 2 }
      then: end
  - change:
      call: billing.change_plan
      with:
        plan: ${ .a | tostring }
        monthly_price: ${ .a }
)";
  ReplayResult r = ReplayWith(*store, small_, Must(engine::LoadDefinition(reordered, "r.yaml")));
  ASSERT_FALSE(r.matched());
  EXPECT_EQ(r.divergence->seq, SeqOf(*store, small_, [](const storage::Event& e) {
              return storage::KindName(e.body) != "run_started";
            }));
}

TEST_F(ReplayerTest, ARemovedBranchDivergesWhereTheSwitchDecides) {
  Record();
  std::unique_ptr<storage::Store> store = OpenReadOnly();
  auto removed = Mutated(R"(        - big:
            when: ${ .a > 10 }
            then: change
)",
                         "");
  // The small run took the branch that is left: no divergence.
  EXPECT_TRUE(ReplayWith(*store, small_, removed).matched());
  ReplayResult r = ReplayWith(*store, big_, removed);
  ASSERT_FALSE(r.matched());
  EXPECT_EQ(r.divergence->seq, SeqOf(*store, big_, [](const storage::Event& e) {
              return Is(e, "task_completed", "pick");
            }));
  EXPECT_NE(r.divergence->task_path.find("pick"), std::string::npos) << r.divergence->task_path;
}

TEST_F(ReplayerTest, AReplayBesideARunningEngineReadsOnly) {
  OpenEngine();
  const RunId id = Start(kFlow, Json{{"x", 200}});
  ASSERT_EQ(Must(engine_->Wait(id, 20s)).header.status, RunStatus::kWaiting);
  std::unique_ptr<storage::Store> store = OpenReadOnly();
  ReplayResult r = Must(Replayer(*store).Replay(id));
  EXPECT_TRUE(r.matched()) << DescribeDivergence(*r.divergence);
  EXPECT_EQ(r.events, Must(store->GetRun(id)).next_seq);
}

TEST_F(ReplayerTest, AnUnknownRunIsNotFound) {
  Record();
  std::unique_ptr<storage::Store> store = OpenReadOnly();
  EXPECT_EQ(Replayer(*store).Replay(Must(RunId::Parse("run_nope"))).status().code(),
            StatusCode::kNotFound);
}

// Many runs at once: the same result for each run as replaying it alone, in the order the
// runs were given, whatever the order and the threads; a run that cannot be read gets its
// own error and the others still replay.
TEST_F(ReplayerTest, ABatchGivesEachRunItsOwnResultInOrder) {
  Record();
  std::unique_ptr<storage::Store> store = OpenReadOnly();
  std::vector<RunId> runs = AllRuns(*store);
  ASSERT_EQ(runs.size(), 5u);
  std::reverse(runs.begin(), runs.end());  // out of id order: seeks between runs
  runs.insert(runs.begin() + 2, Must(RunId::Parse("run_nope")));
  runs.push_back(runs.front());  // twice
  auto changed = Mutated("${ .x + 1 }", "${ .x + 2 }");
  for (std::shared_ptr<const engine::Definition> definition : {changed, decltype(changed)()}) {
    ReplayOptions options;
    options.definition = definition;
    Replayer alone(*store, options);
    for (size_t jobs : {1, 2, 3}) {
      BatchReplayer batch(*store, options, jobs);
      EXPECT_EQ(batch.jobs(), jobs);
      for (bool sorted : {false, true}) {
        std::vector<RunId> order = runs;
        if (sorted) {
          std::sort(order.begin(), order.end(),
                    [](const RunId& a, const RunId& b) { return a.str() < b.str(); });
        }
        size_t next = 0;
        batch.Replay(order, [&](size_t i, Result<ReplayResult> r) {
          EXPECT_EQ(i, next++);
          Result<ReplayResult> want = alone.Replay(order[i]);
          ASSERT_EQ(r.ok(), want.ok()) << order[i].str();
          if (!want.ok()) {
            EXPECT_EQ(r.status().code(), want.status().code());
            EXPECT_EQ(r.status().message(), want.status().message());
            return;
          }
          EXPECT_EQ(r->run_id, order[i]);
          EXPECT_EQ(r->events, want->events);
          EXPECT_EQ(r->steps, want->steps);
          EXPECT_EQ(r->note, want->note);
          ASSERT_EQ(r->matched(), want->matched()) << order[i].str();
          if (!want->matched()) {
            EXPECT_EQ(DivergenceToJson(*r->divergence), DivergenceToJson(*want->divergence));
          }
        });
        EXPECT_EQ(next, order.size()) << jobs;
      }
    }
  }
}

TEST_F(ReplayerTest, ScanHistoriesReadsWhatScanHistoryReads) {
  Record();
  std::unique_ptr<storage::Store> store = OpenReadOnly();
  std::vector<RunId> runs = AllRuns(*store);
  runs.push_back(Must(RunId::Parse("run_nope")));
  runs.push_back(runs.front());
  size_t next = 0;
  Must(store->ScanHistories(runs, [&](size_t i, Result<std::vector<storage::Event>> history) {
    EXPECT_EQ(i, next++);
    Result<std::vector<storage::Event>> want = store->ReadHistory(runs[i], 0, 10'000);
    EXPECT_EQ(history.ok(), want.ok());
    if (!want.ok()) {
      EXPECT_EQ(history.status().code(), StatusCode::kNotFound);
      return true;
    }
    EXPECT_EQ(history->size(), want->size());
    for (size_t k = 0; k < std::min(history->size(), want->size()); ++k) {
      EXPECT_EQ((*history)[k].seq.value(), (*want)[k].seq.value());
      EXPECT_EQ((*history)[k].task_path, (*want)[k].task_path);
      EXPECT_TRUE((*history)[k].body == (*want)[k].body);
    }
    return true;
  }));
  EXPECT_EQ(next, runs.size());
  // Stopping early.
  next = 0;
  Must(store->ScanHistories(
      runs, [&](size_t, Result<std::vector<storage::Event>>) { return ++next < 2; }));
  EXPECT_EQ(next, 2u);
}

// ScanHistories decodes each event in place with the run's id already set; a tampered
// history must still give the error ScanHistory gives, and not spoil the runs after it.
TEST_F(ReplayerTest, ScanHistoriesRejectsTamperedEventsAsScanHistoryDoes) {
  Record();
  std::vector<RunId> runs;
  {
    std::unique_ptr<storage::Store> store = OpenReadOnly();
    runs = AllRuns(*store);
  }
  ASSERT_GE(runs.size(), 4u);
  {
    cairn::testing::RawDb raw(dir_.Sub("data"));
    // An event spliced from another run (it names that run), two events swapped (the seq
    // they name), and bytes that no longer decode.
    raw.PutEvent(runs[0], 1, raw.GetEvent(runs[1], 1));
    const std::string two = raw.GetEvent(runs[2], 2);
    raw.PutEvent(runs[2], 2, raw.GetEvent(runs[2], 3));
    raw.PutEvent(runs[2], 3, two);
    const std::string bytes = raw.GetEvent(runs[3], 1);
    raw.PutEvent(runs[3], 1, bytes.substr(0, bytes.size() / 2));
  }
  std::unique_ptr<storage::Store> store = OpenReadOnly();
  size_t errors = 0;
  Must(store->ScanHistories(runs, [&](size_t i, Result<std::vector<storage::Event>> history) {
    std::vector<storage::Event> want;
    const Status scanned = store->ScanHistory(runs[i], 0, [&](const storage::StoredEvent& e) {
      want.push_back(e.event);
      return true;
    });
    EXPECT_EQ(history.ok(), scanned.ok()) << i;
    if (!history.ok()) {
      ++errors;
      EXPECT_EQ(history.status().ToString(), scanned.ToString()) << i;
      return true;
    }
    EXPECT_TRUE(*history == want) << i;
    return true;
  }));
  EXPECT_EQ(errors, 3u);
}

}  // namespace
}  // namespace cairn::replay
